"""Metrics, metric choice, search scoring, the split and the gate: pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.svm import LinearSVC

from kubeloop_runtime.errors import ConfigError, TrainingError
from kubeloop_runtime.evaluation import (
    apply_gate,
    choose_metric,
    classification_metrics,
    evaluate,
    regression_metrics,
    scoring_for,
    split,
    task_of,
)


def test_task_and_default_metric_follow_the_estimator() -> None:
    assert task_of(LogisticRegression()) == "classification"
    assert task_of(Ridge()) == "regression"
    assert choose_metric("classification", None) == "accuracy"
    assert choose_metric("regression", None) == "r2"
    assert choose_metric("regression", "mae") == "mae"


def test_metric_of_the_wrong_task_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"evaluation\.metric: 'rmse' does not apply to classification"
    ):
        choose_metric("classification", "rmse")
    with pytest.raises(ConfigError, match="'accuracy' does not apply to regression"):
        choose_metric("regression", "accuracy")


@pytest.mark.parametrize(
    ("metric", "value", "threshold", "passed"),
    [
        ("accuracy", 0.95, 0.9, True),
        ("accuracy", 0.85, 0.9, False),
        ("r2", 0.5, 0.5, True),
        ("rmse", 40.0, 50.0, True),
        ("rmse", 60.0, 50.0, False),
        ("mae", 10.0, 10.0, True),
        ("f1", 0.1, None, True),
    ],
)
def test_gate_compares_in_the_metric_direction(
    metric: str, value: float, threshold: float | None, passed: bool
) -> None:
    gate = apply_gate({metric: value}, metric, threshold)
    assert gate.passed is passed
    assert gate.to_dict() == {
        "metric": metric,
        "threshold": threshold,
        "value": value,
        "passed": passed,
    }


def test_gate_on_a_metric_that_was_not_computed_names_it() -> None:
    with pytest.raises(TrainingError, match=r"roc_auc could not be computed .*accuracy, f1"):
        apply_gate({"accuracy": 0.9, "f1": 0.9}, "roc_auc", 0.5)


def test_binary_metrics_with_text_labels() -> None:
    actual = np.array(["no", "yes", "yes", "no", "yes"])
    predicted = np.array(["no", "yes", "no", "no", "yes"])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9]])
    metrics = classification_metrics(actual, predicted, scores, np.array(["no", "yes"]))
    assert metrics["accuracy"] == pytest.approx(0.8)
    # positive class "yes": precision 1, recall 2/3
    assert metrics["f1"] == pytest.approx(0.8)
    assert metrics["roc_auc"] == pytest.approx(5 / 6)


def test_multiclass_roc_auc_is_left_out_when_the_split_lacks_a_class() -> None:
    classes = np.array([0, 1, 2])
    actual = np.array([0, 1, 1, 0])
    scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    metrics = classification_metrics(actual, actual, scores, classes)
    assert metrics == {"accuracy": 1.0, "f1": pytest.approx(2 / 3)}


def test_model_without_probabilities_uses_decision_values() -> None:
    data = load_breast_cancer()
    model = LinearSVC(random_state=0, max_iter=5000).fit(data.data / data.data.max(0), data.target)
    metrics = evaluate(model, data.data / data.data.max(0), data.target, "classification")
    assert set(metrics) == {"accuracy", "f1", "roc_auc"}
    assert metrics["roc_auc"] > 0.9


def test_regression_metrics() -> None:
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert metrics["mae"] == pytest.approx(2 / 3)
    assert metrics["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert metrics["r2"] == pytest.approx(1 - 4 / 2)


def test_search_scoring_matches_the_reported_metric() -> None:
    assert scoring_for("accuracy", np.array([0, 1, 2])) == "accuracy"
    assert scoring_for("f1", np.array([0, 1, 2])) == "f1_macro"
    assert scoring_for("roc_auc", np.array([0, 1, 2])) == "roc_auc_ovr"
    assert scoring_for("roc_auc", np.array(["a", "b"])) == "roc_auc"
    assert scoring_for("rmse", None) == "neg_root_mean_squared_error"
    binary_f1 = scoring_for("f1", np.array(["no", "yes"]))
    assert binary_f1._kwargs["pos_label"] == "yes"


def test_classification_split_is_stratified_and_seeded() -> None:
    data = load_iris()
    first = split(data.data, data.target, 0.2, 5, "classification")
    again = split(data.data, data.target, 0.2, 5, "classification")
    assert np.array_equal(first[3], again[3])
    assert np.bincount(first[3]).tolist() == [10, 10, 10]


def test_split_too_small_is_a_training_error() -> None:
    with pytest.raises(TrainingError, match=r"evaluation.testSize"):
        split(np.zeros((1, 1)), np.array([0.0]), 0.5, 0, "regression")
