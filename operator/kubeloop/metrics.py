"""The operator's Prometheus metrics, on one registry served by `serve_metrics`.

Label values are kinds (`Dataset`, `Job`, ...), never object names, so the series count stays
bounded however many objects the operator manages. Controllers with metrics of their own (the
InferenceService rollouts) define them here too, on `REGISTRY`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "kubeloop_reconciles_total",
    "Reconciles run, per kind of the reconciled object.",
    ["kind"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "kubeloop_reconcile_errors_total",
    "Reconciles that raised (and were retried with backoff), per kind.",
    ["kind"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "kubeloop_reconcile_duration_seconds",
    "Time one reconcile took, per kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
CHILDREN_CREATED = Counter(
    "kubeloop_children_created_total",
    "Child objects the operator created, per kind of the parent and of the child.",
    ["kind", "child"],
    registry=REGISTRY,
)
MODEL_VERSIONS_REGISTERED = Counter(
    "kubeloop_model_versions_registered_total",
    "ModelVersions registered by TrainingJobs whose model passed its gate.",
    registry=REGISTRY,
)
TRAINING_OUTCOMES = Counter(
    "kubeloop_training_outcomes_total",
    "Finished TrainingJobs by outcome: Succeeded, Rejected (missed the gate) or Failed.",
    ["outcome"],
    registry=REGISTRY,
)

ROLLOUTS = Counter(
    "kubeloop_rollouts",
    "InferenceService blue-green rollouts, by outcome: started, promoted or aborted.",
    ["outcome"],
    registry=REGISTRY,
)
RETRAINS = Counter(
    "kubeloop_retrains",
    "TrainingJobs an InferenceService started because its live traffic drifted.",
    registry=REGISTRY,
)


def serve_metrics(port: int, host: str) -> None:
    """Serve `/metrics` from a daemon thread (nothing when `port` is 0)."""
    if port:
        start_http_server(port, addr=host, registry=REGISTRY)
