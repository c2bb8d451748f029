"""Held-out evaluation: the split, the metrics, the search scoring and the threshold gate.

Decisions fixed here:
- Classification reports ``accuracy``, ``f1`` and, where the model gives scores, ``roc_auc``.
  With two classes ``f1`` is the F1 of the positive class (the second of the sorted labels, the
  one ``predict_proba[:, 1]`` scores) and ``roc_auc`` is the binary ROC-AUC; with more classes both
  are macro averages (ROC-AUC one-vs-rest). ROC-AUC is left out when the test split lacks a class.
- Regression reports ``rmse``, ``mae`` and ``r2``.
- Greater is better for accuracy, f1, roc_auc and r2; lower is better for rmse and mae. The gate
  passes when the value is at least (or, lower-is-better, at most) the threshold; no threshold
  always passes.
- The split is stratified for classification whenever every class has at least two rows.

Everything here is a function of its arguments: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from kubeloop_runtime.errors import ConfigError, TrainingError

Task = Literal["classification", "regression"]

CLASSIFICATION_METRICS: Final = ("accuracy", "f1", "roc_auc")
REGRESSION_METRICS: Final = ("rmse", "mae", "r2")
DEFAULT_METRIC: Final[dict[str, str]] = {"classification": "accuracy", "regression": "r2"}
LOWER_IS_BETTER: Final = frozenset({"rmse", "mae"})


@dataclass(frozen=True)
class GateResult:
    metric: str
    threshold: float | None
    value: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "value": self.value,
            "passed": self.passed,
        }


def task_of(estimator: Any) -> Task:
    """Classification or regression, from the estimator itself."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise ConfigError(
        f"estimator {type(estimator).__name__} is neither a classifier nor a regressor"
    )


def choose_metric(task: Task, metric: str | None) -> str:
    """The gate metric: the configured one if it fits the task, else the task's default."""
    if metric is None:
        return DEFAULT_METRIC[task]
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric not in allowed:
        raise ConfigError(
            f"evaluation.metric: {metric!r} does not apply to {task}; "
            f"use one of {', '.join(allowed)}"
        )
    return metric


def split(
    features: Any, target: np.ndarray, test_size: float, seed: int, task: Task
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Train/test split, stratified for classification when every class has two rows or more."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if task == "classification":
        _, counts = np.unique(target, return_counts=True)
        test_rows = int(np.ceil(test_size * len(target)))
        if counts.min() >= 2 and test_rows >= len(counts):
            stratify = target
    try:
        parts = train_test_split(
            features, target, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as error:
        raise TrainingError(f"cannot split the dataset (evaluation.testSize): {error}") from error
    x_train, x_test, y_train, y_test = parts
    return x_train, x_test, np.asarray(y_train), np.asarray(y_test)


def evaluate(model: Any, features: Any, target: np.ndarray, task: Task) -> dict[str, float]:
    """The metrics of a fitted model on held-out rows."""
    predicted = np.asarray(model.predict(features))
    if task == "regression":
        return regression_metrics(target, predicted)
    classes = np.asarray(model.classes_)
    return classification_metrics(target, predicted, prediction_scores(model, features), classes)


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    return {
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)),
    }


def classification_metrics(
    actual: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None, classes: np.ndarray
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    binary = len(classes) == 2
    metrics = {"accuracy": float(accuracy_score(actual, predicted))}
    if binary:
        metrics["f1"] = float(
            f1_score(actual, predicted, average="binary", pos_label=classes[1], zero_division=0)
        )
    else:
        metrics["f1"] = float(
            f1_score(actual, predicted, average="macro", labels=classes, zero_division=0)
        )
    if scores is not None and set(np.unique(actual)) == set(classes.tolist()):
        if binary:
            positive = scores[:, 1] if scores.ndim == 2 else scores
            metrics["roc_auc"] = float(roc_auc_score(actual == classes[1], positive))
        elif scores.ndim == 2:
            metrics["roc_auc"] = float(
                roc_auc_score(actual, scores, multi_class="ovr", average="macro", labels=classes)
            )
    return metrics


def prediction_scores(model: Any, features: Any) -> np.ndarray | None:
    """Class probabilities, else decision values, else None (the model gives no scores)."""
    for method in ("predict_proba", "decision_function"):
        if hasattr(model, method):
            try:
                return np.asarray(getattr(model, method)(features))
            except (AttributeError, NotImplementedError):
                # SVC(probability=False) has predict_proba but refuses to run it.
                continue
    return None


def scoring_for(metric: str, classes: np.ndarray | None) -> Any:
    """The scikit-learn scorer a search optimises, matching how `evaluate` computes ``metric``."""
    from sklearn.metrics import f1_score, make_scorer

    multiclass = classes is not None and len(classes) > 2
    if metric == "f1":
        if multiclass or classes is None:
            return "f1_macro"
        return make_scorer(f1_score, pos_label=classes[1], zero_division=0)
    return {
        "accuracy": "accuracy",
        "roc_auc": "roc_auc_ovr" if multiclass else "roc_auc",
        "rmse": "neg_root_mean_squared_error",
        "mae": "neg_mean_absolute_error",
        "r2": "r2",
    }[metric]


def apply_gate(metrics: dict[str, float], metric: str, threshold: float | None) -> GateResult:
    """Compare the metric with its threshold, in the metric's better direction."""
    if metric not in metrics:
        raise TrainingError(
            f"evaluation.metric: {metric} could not be computed for this model and split "
            f"(computed: {', '.join(sorted(metrics))})"
        )
    value = metrics[metric]
    if threshold is None:
        passed = True
    elif metric in LOWER_IS_BETTER:
        passed = value <= threshold
    else:
        passed = value >= threshold
    return GateResult(metric, threshold, value, passed)


def no_worse(metric: str, candidate: float, baseline: float | None) -> bool:
    """Whether the candidate scores at least as well as the baseline, in the metric's direction.

    A baseline without a score (the metric could not be computed for it) is no evidence against
    the candidate.
    """
    if baseline is None:
        return True
    if metric in LOWER_IS_BETTER:
        return candidate <= baseline
    return candidate >= baseline
