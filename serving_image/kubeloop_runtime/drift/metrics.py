"""The sidecar's own Prometheus metrics, served on a small port of their own (default 9090).

A private registry, so the sidecar exposes exactly these series and nothing leaks in from the
process-wide default registry (tests create several checkers in one process).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from kubeloop_runtime.drift.detector import ConceptDrift, DataDrift


class DriftMetrics:
    """Counters and gauges of one drift checker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.checks = Counter(
            "kubeloop_drift_checks",
            "Windows looked at, by outcome (drifted, clean, stale, too-small).",
            ["outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "kubeloop_drift_errors",
            "Failed steps, by source (server, apiserver, model, input).",
            ["source"],
            registry=self.registry,
        )
        self.score = Gauge(
            "kubeloop_drift_score",
            "Share of features that drifted in the last judged window.",
            registry=self.registry,
        )
        self.drifted_features = Gauge(
            "kubeloop_drift_drifted_features",
            "Number of features that drifted in the last judged window.",
            registry=self.registry,
        )
        self.detected = Gauge(
            "kubeloop_drift_detected",
            "1 while drift is reported (after hysteresis), else 0.",
            registry=self.registry,
        )
        self.accuracy = Gauge(
            "kubeloop_drift_feedback_accuracy",
            "Accuracy on labelled feedback in the last judged window (classification).",
            registry=self.registry,
        )
        self.samples = Gauge(
            "kubeloop_drift_window_samples",
            "Rows in the last window read from the server.",
            registry=self.registry,
        )
        self.last_check = Gauge(
            "kubeloop_drift_last_check_timestamp_seconds",
            "Unix time of the last judged window.",
            registry=self.registry,
        )

    def record_verdict(
        self, data: DataDrift, concept: ConceptDrift, *, detected: bool, at: float
    ) -> None:
        self.checks.labels(
            outcome="drifted" if data.detected or concept.detected else "clean"
        ).inc()
        self.score.set(data.score)
        self.drifted_features.set(len(data.drifted_features))
        self.detected.set(1 if detected else 0)
        if concept.accuracy is not None:
            self.accuracy.set(concept.accuracy)
        self.last_check.set(at)

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Expose the registry over HTTP in a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
