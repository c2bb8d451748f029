"""Kubeloop runtime image: the train, profile, fetch, serve and drift entry points."""
