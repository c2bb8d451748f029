"""Prometheus metrics of the model server, in a registry of its own (one per app).

Request counts and latency per endpoint and status, predictions per class (or a histogram of
predicted values for regression), rows and requests per predict call, requests in flight,
model info and window fill.

The per-request numbers are plain Python/numpy counters rendered by a collector at scrape
time, not prometheus_client metric objects: those take a lock per update, and updates happen
several times per request on the hot path. Only the event loop updates or reads them.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from kubeloop_runtime.serve.capture import CaptureStats
from kubeloop_runtime.serve.model import Prediction

# The *_created series double the exposition for nothing a dashboard uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0)
_BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0)


def _histogram_buckets(
    bounds: tuple[float, ...], counts: list[int] | npt.NDArray[np.int64]
) -> list[tuple[str, float]]:
    cumulative = itertools.accumulate(int(count) for count in counts)
    edges = [*bounds, float("inf")]
    return [
        (floatToGoString(edge), float(total))  # type: ignore[no-untyped-call]
        for edge, total in zip(edges, cumulative, strict=True)
    ]


def _empty_histogram(bounds: tuple[float, ...]) -> tuple[list[float], list[int]]:
    return [0.0, 0.0], [0] * (len(bounds) + 1)


def _observe(
    histogram: tuple[list[float], list[int]], bounds: tuple[float, ...], value: float
) -> None:
    totals, buckets = histogram
    totals[0] += 1
    totals[1] += value
    buckets[bisect_left(bounds, value)] += 1


class _HotPathCollector(Collector):
    """Counters updated on every request or batch, rendered at scrape time."""

    def __init__(self) -> None:
        # (endpoint, status) -> [count, sum of seconds, per-bucket counts (not cumulative)]
        self.requests: dict[tuple[str, int], tuple[list[float], list[int]]] = {}
        self.in_flight = 0
        self.class_names: tuple[str, ...] = ()
        self.class_counts: list[int] = []
        # rows and requests per predict call: [count, sum, per-bucket counts]
        self.batch_rows: tuple[list[float], list[int]] = _empty_histogram(_BATCH_BUCKETS)
        self.batch_requests: tuple[list[float], list[int]] = _empty_histogram(_BATCH_BUCKETS)
        self.value_counts: npt.NDArray[np.int64] = np.zeros(len(VALUE_BUCKETS) + 1, dtype=np.int64)
        self.value_sum = 0.0
        self.regression = False
        self.window_rows: Callable[[], int] = lambda: 0
        self.window_seq: Callable[[], int] = lambda: 0

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "kubeloop_requests", "HTTP requests answered.", labels=["endpoint", "status"]
        )
        latency = HistogramMetricFamily(
            "kubeloop_request_duration_seconds", "Time to answer a request.",
            labels=["endpoint", "status"],
        )  # fmt: skip
        for (endpoint, status), (totals, buckets) in list(self.requests.items()):
            labels = [endpoint, str(status)]
            requests.add_metric(labels, totals[0])
            latency.add_metric(
                labels, _histogram_buckets(LATENCY_BUCKETS, buckets), sum_value=totals[1]
            )
        yield requests
        yield latency
        yield GaugeMetricFamily(
            "kubeloop_requests_in_flight", "Requests being answered now.", value=self.in_flight
        )
        predictions = CounterMetricFamily(
            "kubeloop_predictions", "Predicted rows per class.", labels=["class_name"]
        )
        for name, count in zip(self.class_names, self.class_counts, strict=True):
            predictions.add_metric([name], count)
        yield predictions
        for name, documentation, (totals, buckets) in (
            ("kubeloop_batch_rows", "Rows per predict call.", self.batch_rows),
            ("kubeloop_batch_requests", "Requests merged into one predict call.",
             self.batch_requests),
        ):  # fmt: skip
            family = HistogramMetricFamily(name, documentation)
            family.add_metric([], _histogram_buckets(_BATCH_BUCKETS, buckets), totals[1])
            yield family
        if self.regression:
            values = HistogramMetricFamily(
                "kubeloop_predicted_value", "Predicted values (regression)."
            )
            values.add_metric(
                [], _histogram_buckets(VALUE_BUCKETS, self.value_counts), sum_value=self.value_sum
            )
            yield values
        yield GaugeMetricFamily(
            "kubeloop_window_rows", "Rows in the drift window now.", value=self.window_rows()
        )
        yield GaugeMetricFamily(
            "kubeloop_window_seq", "Rows ever received into the window.", value=self.window_seq()
        )


class _CaptureCollector(Collector):
    """The data capture's counters (serve/capture.py), read at scrape time."""

    def __init__(self, stats: CaptureStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        rows = CounterMetricFamily(
            "kubeloop_capture_rows", "Captured records written, by record kind.", labels=["record"]
        )
        rows.add_metric(["prediction"], stats.prediction_rows)
        rows.add_metric(["feedback"], stats.feedback_rows)
        yield rows
        yield CounterMetricFamily(
            "kubeloop_capture_parts", "Capture part files written.", value=stats.parts
        )
        dropped = CounterMetricFamily(
            "kubeloop_capture_dropped", "Captured records dropped, by reason.", labels=["reason"]
        )
        dropped.add_metric(["buffer_full"], stats.dropped_buffer_full)
        dropped.add_metric(["write_error"], stats.dropped_write_error)
        yield dropped
        yield GaugeMetricFamily(
            "kubeloop_capture_queued_rows", "Captured records waiting to be written.",
            value=stats.waiting,
        )  # fmt: skip


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._hot = _HotPathCollector()
        registry.register(self._hot)
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
        self.window_capacity = Gauge(
            "kubeloop_window_capacity", "Rows the drift window holds at most.", registry=registry
        )

    def watch_window(self, rows: Callable[[], int], seq: Callable[[], int]) -> None:
        self._hot.window_rows = rows
        self._hot.window_seq = seq

    def watch_capture(self, stats: CaptureStats) -> None:
        self.registry.register(_CaptureCollector(stats))

    def set_classes(self, class_names: tuple[str, ...] | None) -> None:
        if class_names is None:
            self._hot.regression = True
        else:
            self._hot.class_names = class_names
            self._hot.class_counts = [0] * len(class_names)

    def request_started(self) -> None:
        self._hot.in_flight += 1

    def request_finished(self, endpoint: str, status: int, seconds: float) -> None:
        hot = self._hot
        hot.in_flight -= 1
        entry = hot.requests.get((endpoint, status))
        if entry is None:
            entry = hot.requests[(endpoint, status)] = _empty_histogram(LATENCY_BUCKETS)
        _observe(entry, LATENCY_BUCKETS, seconds)

    def observe_prediction(self, prediction: Prediction) -> None:
        hot = self._hot
        if prediction.class_index is not None:
            counts = hot.class_counts
            if len(prediction.class_index) <= 16:  # cheaper than numpy for a few rows
                for position in prediction.class_index.tolist():
                    counts[position] += 1
            else:
                per_class = np.bincount(prediction.class_index, minlength=len(counts))
                for position, count in enumerate(per_class.tolist()):
                    counts[position] += count
        else:
            values = np.asarray(prediction.labels, dtype=np.float64)
            positions = np.searchsorted(VALUE_BUCKETS, values, side="left")
            hot.value_counts += np.bincount(positions, minlength=len(hot.value_counts))
            hot.value_sum += float(values.sum())

    def observe_batch(self, requests: int, rows: int) -> None:
        _observe(self._hot.batch_requests, _BATCH_BUCKETS, requests)
        _observe(self._hot.batch_rows, _BATCH_BUCKETS, rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
