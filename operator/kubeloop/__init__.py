"""Kubeloop operator: the API models, the CRD generator and the Kopf reconcilers."""
