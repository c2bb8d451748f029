"""Prometheus metrics of the model server, in a registry of its own (one per app).

Request counts and latency per endpoint and status, predictions per class (or a histogram of
predicted values for regression), rows per predict call, model info and window fill. Label
children are cached: ``labels()`` takes a lock and a dict lookup per call, and the hot path
records every request.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from kubeloop_runtime.serve.model import Prediction

# The *_created series double the exposition for nothing a dashboard uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "kubeloop_requests", "HTTP requests answered.", ["endpoint", "status"],
            registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "kubeloop_request_duration_seconds", "Time to answer a request.",
            ["endpoint", "status"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.in_flight = Gauge(
            "kubeloop_requests_in_flight", "Requests being answered now.", registry=registry
        )
        self.predictions = Counter(
            "kubeloop_predictions", "Predicted rows per class.", ["class_name"], registry=registry
        )
        self.predicted_values = Histogram(
            "kubeloop_predicted_value", "Predicted values (regression).", registry=registry,
            buckets=(-1000, -100, -10, -1, 0, 1, 10, 100, 1000, 10000),
        )  # fmt: skip
        self.batch_rows = Histogram(
            "kubeloop_batch_rows", "Rows per predict call.", buckets=_BATCH_BUCKETS,
            registry=registry,
        )  # fmt: skip
        self.batch_requests = Histogram(
            "kubeloop_batch_requests", "Requests merged into one predict call.",
            buckets=_BATCH_BUCKETS, registry=registry,
        )  # fmt: skip
        self.feedback = Counter(
            "kubeloop_feedback_labels", "Ground-truth labels received.", registry=registry
        )
        self.model_info = Gauge(
            "kubeloop_model_info", "The served model (value 1).",
            ["model", "version", "digest", "task"], registry=registry,
        )  # fmt: skip
        self.model_ready = Gauge(
            "kubeloop_model_ready", "1 once the model is loaded and verified.", registry=registry
        )
        self.window_rows = Gauge(
            "kubeloop_window_rows", "Rows in the drift window now.", registry=registry
        )
        self.window_capacity = Gauge(
            "kubeloop_window_capacity", "Rows the drift window holds at most.", registry=registry
        )
        self.window_seq = Gauge(
            "kubeloop_window_seq", "Rows ever received into the window.", registry=registry
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._class_children: list[Any] = []

    def set_classes(self, class_names: tuple[str, ...] | None) -> None:
        if class_names is not None:
            self._class_children = [self.predictions.labels(name) for name in class_names]

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:
            label = str(status)
            children = (self.requests.labels(endpoint, label), self.latency.labels(endpoint, label))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_prediction(self, prediction: Prediction) -> None:
        if prediction.class_index is not None and self._class_children:
            counts: npt.NDArray[np.intp] = np.bincount(
                prediction.class_index, minlength=len(self._class_children)
            )
            for child, count in zip(self._class_children, counts.tolist(), strict=False):
                if count:
                    child.inc(count)
        elif prediction.class_index is None:
            for value in prediction.labels.tolist():
                self.predicted_values.observe(value)

    def observe_batch(self, requests: int, rows: int) -> None:
        self.batch_requests.observe(requests)
        self.batch_rows.observe(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
