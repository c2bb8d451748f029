"""Drift decisions for one window: per-feature tests, the dataset-level rule and concept drift.

Pure: takes the window's columns (as the server sent them, or numpy arrays), the prepared reference
and the model's metadata; returns verdicts. No clock, no I/O, no state across windows (that is
hysteresis.py's job).

- Data drift: every feature the window and the profile share is tested (stattests.py); the window
  is drifted when the share of drifted features reaches the threshold (evidently's rule: share >=
  threshold). A feature the profile does not know is an error naming it: the model and its profile
  disagree. A profile feature the window lacks (the target, say) is skipped.
- Concept drift: with at least ``min_labels`` labelled predictions, accuracy (classification) must
  not fall more than ``accuracy_drop`` below the model's held-out accuracy, and RMSE (regression)
  must not rise more than ``rmse_increase`` (relative) above the held-out RMSE in metadata.json.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kubeloop_runtime.drift.errors import DriftInputError, WindowError
from kubeloop_runtime.drift.stattests import (
    FeatureDrift,
    FeatureReference,
    check_feature,
)

# The InferenceService spec's default (monitoring.threshold): one rule wherever it is applied.
DEFAULT_SHARE_THRESHOLD = 0.3


@dataclass(frozen=True, slots=True)
class Window:
    """The parts of a server window (contracts.md, "Server window") the checker uses."""

    seq: int
    size: int
    model_version: str | None
    columns: Mapping[str, Sequence[Any] | np.ndarray]
    predictions: Sequence[Any] = ()
    labels: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class DataDrift:
    """The dataset-level verdict of one window."""

    detected: bool
    score: float  # share of tested features that drifted
    threshold: float
    features: tuple[FeatureDrift, ...]
    untested: tuple[str, ...] = ()

    @property
    def drifted_features(self) -> list[str]:
        return [result.feature for result in self.features if result.drifted]


@dataclass(frozen=True, slots=True)
class ConceptDrift:
    """Model quality on the labelled feedback of one window."""

    labeled: int
    accuracy: float | None = None
    rmse: float | None = None
    detected: bool = False
    reasons: tuple[str, ...] = field(default=())


def parse_window(document: Any) -> Window:
    """Validate a ``GET /v2/window`` body and return its parts; `WindowError` names the field."""
    if not isinstance(document, Mapping):
        raise WindowError("window: expected a JSON object")
    seq = document.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise WindowError(f"window field 'seq': expected a non-negative integer, got {seq!r}")
    columns = document.get("columns")
    if not isinstance(columns, Mapping):
        raise WindowError("window field 'columns': expected an object of feature columns")
    lengths = set()
    for name, column in columns.items():
        if not isinstance(column, list):
            raise WindowError(f"window column {name!r}: expected a list")
        lengths.add(len(column))
    if len(lengths) > 1:
        raise WindowError(f"window field 'columns': columns differ in length {sorted(lengths)}")
    size = lengths.pop() if lengths else 0
    feedback = document.get("feedback") or {}
    if not isinstance(feedback, Mapping):
        raise WindowError("window field 'feedback': expected an object")
    predictions = feedback.get("predictions") or []
    labels = feedback.get("labels") or []
    if not isinstance(predictions, list) or not isinstance(labels, list):
        raise WindowError("window field 'feedback': 'predictions' and 'labels' must be lists")
    if len(predictions) != len(labels):
        raise WindowError(
            f"window field 'feedback': {len(predictions)} predictions but {len(labels)} labels"
        )
    version = document.get("modelVersion")
    return Window(
        seq=seq,
        size=size,
        model_version=None if version is None else str(version),
        columns=dict(columns),
        predictions=predictions,
        labels=labels,
    )


def current_values(feature: FeatureReference, column: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The window's non-null values of one feature, typed for its test."""
    if feature.kind == "numeric":
        try:
            values = np.asarray(column, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise DriftInputError(
                f"feature {feature.name!r}: window values are not numbers ({error})"
            ) from error
        if values.ndim != 1:
            raise DriftInputError(f"feature {feature.name!r}: window column is not one-dimensional")
        return values[np.isfinite(values)]
    return np.asarray(
        [str(value) for value in column if value is not None and value == value], dtype=object
    )


def detect_data_drift(
    references: Mapping[str, FeatureReference],
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    method: str = "auto",
    share_threshold: float = DEFAULT_SHARE_THRESHOLD,
    feature_threshold: float | None = None,
) -> DataDrift:
    """Test every feature of the window against the reference; decide by drifted share."""
    unknown = sorted(str(name) for name in columns if name not in references)
    if unknown:
        raise DriftInputError(f"window features not in the reference profile: {unknown}")
    results: list[FeatureDrift] = []
    untested: list[str] = []
    for name, column in columns.items():
        reference = references[name]
        values = current_values(reference, column)
        if values.size == 0 or reference.count == 0:
            untested.append(str(name))
            continue
        results.append(check_feature(reference, values, method, feature_threshold))
    drifted = sum(result.drifted for result in results)
    score = drifted / len(results) if results else 0.0
    return DataDrift(
        detected=bool(results) and score >= share_threshold,
        score=score,
        threshold=share_threshold,
        features=tuple(results),
        untested=tuple(untested),
    )


def assess_feedback(
    predictions: Sequence[Any],
    labels: Sequence[Any],
    *,
    task: str,
    metrics: Mapping[str, Any],
    min_labels: int = 30,
    accuracy_drop: float = 0.1,
    rmse_increase: float = 0.5,
) -> ConceptDrift:
    """Quality on labelled feedback against the held-out metrics recorded at training."""
    pairs = [
        (prediction, label)
        for prediction, label in zip(predictions, labels, strict=True)
        if label is not None and prediction is not None
    ]
    if not pairs:
        return ConceptDrift(labeled=0)
    if task == "classification":
        hits = sum(_same_label(prediction, label) for prediction, label in pairs)
        accuracy = hits / len(pairs)
        baseline = _number(metrics.get("accuracy"))
        detected = (
            len(pairs) >= min_labels
            and baseline is not None
            and accuracy < baseline - accuracy_drop
        )
        reason = f"accuracy {accuracy:.3f} < {baseline} - {accuracy_drop}" if detected else None
        return ConceptDrift(len(pairs), accuracy=accuracy, detected=detected, reasons=_opt(reason))
    if task == "regression":
        try:
            errors = np.array([float(p) - float(y) for p, y in pairs], dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise DriftInputError(
                f"feedback: regression predictions and labels must be numbers ({error})"
            ) from error
        rmse = float(np.sqrt(np.mean(errors**2)))
        baseline = _number(metrics.get("rmse"))
        detected = (
            len(pairs) >= min_labels
            and baseline is not None
            and rmse > baseline * (1 + rmse_increase)
        )
        reason = f"rmse {rmse:.4g} > {baseline} x (1 + {rmse_increase})" if detected else None
        return ConceptDrift(len(pairs), rmse=rmse, detected=detected, reasons=_opt(reason))
    raise DriftInputError(f"metadata field 'task': unknown task {task!r}")


def _same_label(prediction: Any, label: Any) -> bool:
    """Labels compare as numbers when both are numbers (1 == 1.0), otherwise as text."""
    left, right = _number(prediction), _number(label)
    if left is not None and right is not None:
        return left == right
    return str(prediction) == str(label)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _opt(reason: str | None) -> tuple[str, ...]:
    return () if reason is None else (reason,)
