"""The served model: a verified artifact, its feature schema, and the predict function.

Loading checks the digest of model.joblib before anything unpickles it
(``kubeloop_runtime.artifact.load_model``). Prediction takes a validated feature matrix (a float
array in metadata.features order, or a DataFrame when some features are categorical) and returns
labels as the names in ``target.classes``; it does no request parsing and no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

try:  # scikit-learn keeps the mixin in a private module; without it, no shortcut
    from sklearn.linear_model._base import LinearClassifierMixin
except ImportError:  # pragma: no cover - a future scikit-learn that moved it
    LinearClassifierMixin = None

from kubeloop_runtime.artifact import ArtifactError, load_model, read_metadata, verify_model

Task = Literal["classification", "regression"]
FeatureKind = Literal["number", "category"]
FeatureMatrix = npt.NDArray[np.float64] | pd.DataFrame


@dataclass(frozen=True)
class Feature:
    name: str
    kind: FeatureKind


@dataclass(slots=True)
class Prediction:
    """Predictions for a batch of rows, aligned with its rows."""

    labels: npt.NDArray[Any]
    """Class names (object array) for classification, float64 for regression."""

    class_index: npt.NDArray[np.intp] | None
    """Per row, the position of the predicted class in ``classes`` (classification only)."""

    probabilities: npt.NDArray[np.float64] | None = None
    """Rows by classes, when asked for."""

    def rows(self, start: int, stop: int) -> Prediction:
        return Prediction(
            labels=self.labels[start:stop],
            class_index=None if self.class_index is None else self.class_index[start:stop],
            probabilities=None if self.probabilities is None else self.probabilities[start:stop],
        )


@dataclass(frozen=True)
class ModelSchema:
    """What metadata.json says about the model's inputs and outputs."""

    name: str
    task: Task
    features: tuple[Feature, ...]
    classes: tuple[str, ...] | None
    digest: str
    metadata: dict[str, Any] = field(repr=False)

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @cached_property
    def feature_set(self) -> frozenset[str]:
        return frozenset(self.feature_names)

    @cached_property
    def all_numeric(self) -> bool:
        return all(feature.kind == "number" for feature in self.features)


def parse_schema(metadata: dict[str, Any], digest: str) -> ModelSchema:
    """Read the parts of metadata.json the server needs; ArtifactError names a bad key."""
    features_raw = metadata.get("features")
    if not isinstance(features_raw, list) or not features_raw:
        raise ArtifactError("metadata.json: 'features' must be a non-empty list")
    features: list[Feature] = []
    for position, entry in enumerate(features_raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ArtifactError(f"metadata.json: features[{position}] needs a string 'name'")
        kind = entry.get("type", "number")
        if kind not in ("number", "category"):
            raise ArtifactError(
                f"metadata.json: features[{position}].type {kind!r} is not number or category"
            )
        features.append(Feature(entry["name"], kind))
    if len({feature.name for feature in features}) != len(features):
        raise ArtifactError("metadata.json: feature names are not unique")
    task = metadata.get("task")
    if task not in ("classification", "regression"):
        raise ArtifactError(f"metadata.json: 'task' {task!r} is not classification or regression")
    target = metadata.get("target") or {}
    classes_raw = target.get("classes") if isinstance(target, dict) else None
    classes = tuple(str(name) for name in classes_raw) if isinstance(classes_raw, list) else None
    name = metadata.get("modelName")
    return ModelSchema(
        name=name if isinstance(name, str) and name else "model",
        task=task,
        features=tuple(features),
        classes=classes,
        digest=digest,
        metadata=metadata,
    )


_FOREST_CLASSIFIERS = (RandomForestClassifier, ExtraTreesClassifier)
_FOREST_REGRESSORS = (RandomForestRegressor, ExtraTreesRegressor)
ArrayFunction = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def forest_function(estimator: Any) -> ArrayFunction | None:
    """For a scikit-learn forest, its predict_proba (or regression predict) without joblib.

    The forest's own method dispatches one joblib task per tree even with ``n_jobs=1``: about
    5 ms for 100 trees on a single row, 20x the trees' own work. This sums the same per-tree
    results in the same order, so the answer is bit-identical (tests check it). Exact types
    only: a subclass may predict differently.
    """
    kind = type(estimator)
    if kind not in (*_FOREST_CLASSIFIERS, *_FOREST_REGRESSORS):
        return None
    if getattr(estimator, "n_outputs_", 1) != 1:
        return None
    trees = list(estimator.estimators_)
    per_tree = "predict_proba" if kind in _FOREST_CLASSIFIERS else "predict"
    calls = [getattr(tree, per_tree) for tree in trees]

    def forest(features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        rows = np.ascontiguousarray(features, dtype=np.float32)  # the trees' own dtype
        total: npt.NDArray[np.float64] = np.array(calls[0](rows, check_input=False), copy=True)
        for call in calls[1:]:
            total += call(rows, check_input=False)
        total /= len(calls)
        return total

    return forest


ClassIndexFunction = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.intp]]


def linear_class_index(estimator: Any) -> ClassIndexFunction | None:
    """For a linear classifier, the position in ``classes_`` that its predict would pick.

    The same arithmetic as scikit-learn's ``LinearClassifierMixin`` (``X @ coef_.T +
    intercept_``, then the sign or the arg-max), without its per-call input validation, which
    costs more than the product itself on small batches (the server validated the input).
    Only for estimators that use that mixin's predict and decision_function unchanged.
    """
    if (
        LinearClassifierMixin is None
        or type(estimator).predict is not LinearClassifierMixin.predict
        or type(estimator).decision_function is not LinearClassifierMixin.decision_function
    ):
        return None
    coef = getattr(estimator, "coef_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim != 2:  # e.g. sparsified coefficients
        return None
    coef_t = coef.T
    intercept = estimator.intercept_

    def class_index(features: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        scores: npt.NDArray[np.float64] = features @ coef_t + intercept
        index: npt.NDArray[np.intp]
        if scores.shape[1] == 1:
            index = (scores[:, 0] > 0).astype(np.intp)
        else:
            index = np.argmax(scores, axis=1)
        return index

    return class_index


def _set_n_jobs(estimator: Any, n_jobs: int) -> None:
    """Set ``n_jobs`` on the estimator and, for a Pipeline, on its steps."""
    if hasattr(estimator, "n_jobs"):
        estimator.n_jobs = n_jobs
    for _, step in getattr(estimator, "steps", []):
        _set_n_jobs(step, n_jobs)


class LoadedModel:
    """A fitted estimator with the schema it was trained on."""

    def __init__(self, estimator: Any, schema: ModelSchema) -> None:
        self.estimator = estimator
        self.schema = schema
        self._names: npt.NDArray[Any] | None = None
        self._model_classes: npt.NDArray[Any] | None = None
        self._forest = forest_function(estimator)
        self._linear = linear_class_index(estimator) if schema.task == "classification" else None
        expected = getattr(estimator, "n_features_in_", None)
        if expected is not None and expected != len(schema.features):
            raise ArtifactError(
                f"metadata.json lists {len(schema.features)} features, the model was fitted "
                f"on {expected}"
            )
        if schema.task == "classification":
            model_classes = getattr(estimator, "classes_", None)
            if model_classes is None:
                raise ArtifactError("classification model has no classes_ attribute")
            self._model_classes = np.asarray(model_classes)
            names = schema.classes or tuple(str(value) for value in self._model_classes)
            if len(names) != len(self._model_classes):
                raise ArtifactError(
                    f"metadata.json: target.classes has {len(names)} names, "
                    f"the model has {len(self._model_classes)} classes"
                )
            self._names = np.array(names, dtype=object)

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return None if self._names is None else tuple(self._names.tolist())

    @property
    def class_values(self) -> list[Any] | None:
        """The model's own class values (``classes_`` as plain Python values), in class order."""
        return None if self._model_classes is None else self._model_classes.tolist()

    def class_position(self, label: object) -> int | None:
        """Position of a feedback label among the classes: by name first, then by model code."""
        if self._names is None or self._model_classes is None:
            return None
        names = self._names.tolist()
        if isinstance(label, str) and label in names:
            return int(names.index(label))
        if isinstance(label, bool):
            return None
        codes = self._model_classes.tolist()
        if label in codes:
            return int(codes.index(label))
        return None

    def predict(self, features: FeatureMatrix, probabilities: bool = False) -> Prediction:
        if isinstance(features, np.ndarray):
            if self._forest is not None:
                return self._predict_forest(self._forest, features, probabilities)
            if self._linear is not None and self._names is not None:
                index = self._linear(features)
                proba = None
                if probabilities:
                    proba = np.asarray(self.estimator.predict_proba(features), dtype=np.float64)
                return Prediction(self._names[index], index, proba)
        raw = self.estimator.predict(features)
        proba = None
        if probabilities and self._names is not None:
            proba = np.asarray(self.estimator.predict_proba(features), dtype=np.float64)
        if self._names is None or self._model_classes is None:
            return Prediction(labels=np.asarray(raw, dtype=np.float64).ravel(), class_index=None)
        index = np.searchsorted(self._model_classes, raw)
        return Prediction(labels=self._names[index], class_index=index, probabilities=proba)

    def _predict_forest(
        self, forest: ArrayFunction, features: npt.NDArray[np.float64], probabilities: bool
    ) -> Prediction:
        result = forest(features)
        if self._names is None:
            return Prediction(labels=result.ravel(), class_index=None)
        index = np.argmax(result, axis=1)  # what the forest's predict does
        return Prediction(
            labels=self._names[index],
            class_index=index,
            probabilities=result if probabilities else None,
        )


def load(directory: Path, expected_digest: str | None, n_jobs: int | None) -> LoadedModel:
    """Verify and load the artifact folder. Raises ArtifactError with the reason.

    The metadata is parsed first and the digest checked before joblib unpickles anything.
    """
    metadata = read_metadata(directory)
    digest = verify_model(directory, expected_digest)
    schema = parse_schema(metadata, digest)
    estimator = load_model(directory, digest)
    if not hasattr(estimator, "predict"):
        raise ArtifactError("model.joblib holds no estimator with a predict method")
    if n_jobs is not None:
        _set_n_jobs(estimator, n_jobs)
    return LoadedModel(estimator, schema)
