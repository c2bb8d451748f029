"""The thin edge between the operator and the Kubernetes API: one client, typed errors, apply,
status patches and Events. Nothing here decides what to create; the builders do."""
