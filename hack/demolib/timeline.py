"""What the demo saw over time, as plain data: drift from the InferenceService's status, accuracy
and serving version from the answers the clients got, and the moments the narration names.

Times are seconds since the demo's start (time.monotonic() offsets). Pure: the sampler and the
traffic thread append, the summary and the picture read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DriftSample:
    """The InferenceService's status at one poll."""

    t: float
    score: float | None
    detected: bool | None
    serving: str | None  # status.activeModelVersion


@dataclass(frozen=True)
class TrafficSample:
    """One batch of predictions the clients sent and the labels they fed back."""

    t: float
    rows: int
    correct: int
    shifted: bool
    served_by: str | None  # the modelVersion the answers name


@dataclass(frozen=True)
class Mark:
    """A moment the narration names (drift injected, retrain started, switch, ...)."""

    t: float
    label: str


@dataclass
class Timeline:
    """Everything sampled during one demo run; safe to append from several threads."""

    drift: list[DriftSample] = field(default_factory=list)
    traffic: list[TrafficSample] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_drift(self, sample: DriftSample) -> None:
        with self._lock:
            self.drift.append(sample)

    def add_traffic(self, sample: TrafficSample) -> None:
        with self._lock:
            self.traffic.append(sample)

    def mark(self, t: float, label: str) -> None:
        with self._lock:
            self.marks.append(Mark(t, label))

    def snapshot(self) -> Timeline:
        """A copy that no thread appends to."""
        with self._lock:
            return Timeline(list(self.drift), list(self.traffic), list(self.marks))


def rolling_accuracy(
    traffic: Sequence[TrafficSample], window_seconds: float
) -> list[tuple[float, float]]:
    """(t, accuracy over the batches of the last `window_seconds`) at each batch: the feedback
    accuracy a person would read off a dashboard, without one batch's noise."""
    points: list[tuple[float, float]] = []
    start = 0
    rows = correct = 0
    for end, sample in enumerate(traffic):
        rows += sample.rows
        correct += sample.correct
        while traffic[start].t < sample.t - window_seconds and start < end:
            rows -= traffic[start].rows
            correct -= traffic[start].correct
            start += 1
        if rows:
            points.append((sample.t, correct / rows))
    return points


def version_number(model_version: str | None) -> int | None:
    """`iris-v3` → 3, `3` → 3; None for anything else."""
    if not model_version:
        return None
    tail = model_version.rsplit("-v", 1)[-1]
    return int(tail) if tail.isdigit() else None


def serving_steps(traffic: Sequence[TrafficSample]) -> list[tuple[float, int]]:
    """(t, version) each time the version answering the clients changes."""
    steps: list[tuple[float, int]] = []
    for sample in traffic:
        number = version_number(sample.served_by)
        if number is not None and (not steps or steps[-1][1] != number):
            steps.append((sample.t, number))
    return steps


def first_answer_from(traffic: Sequence[TrafficSample], model_version: str) -> float | None:
    """When the clients first got an answer from `model_version`."""
    wanted = version_number(model_version)
    for sample in traffic:
        if version_number(sample.served_by) == wanted:
            return sample.t
    return None


def accuracy_between(
    traffic: Sequence[TrafficSample], start: float, end: float, *, served_by: str | None = None
) -> float | None:
    """Accuracy over the batches in [start, end), optionally only those one version answered."""
    wanted = version_number(served_by) if served_by else None
    chosen = [
        s
        for s in traffic
        if start <= s.t < end and (wanted is None or version_number(s.served_by) == wanted)
    ]
    rows = sum(s.rows for s in chosen)
    return sum(s.correct for s in chosen) / rows if rows else None
