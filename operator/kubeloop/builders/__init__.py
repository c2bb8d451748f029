"""Pure functions from specs and observed state to child manifests and to status; no I/O."""
