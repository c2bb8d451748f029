"""Window-level drift decisions on real datasets (kubeloop_runtime.drift.detector)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers_drift import (
    columns_of,
    reference_and_holdout,
    scaled,
    shifted,
    window_document,
)
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from kubeloop_runtime.drift.detector import (
    assess_feedback,
    detect_data_drift,
    parse_window,
)
from kubeloop_runtime.drift.errors import DriftInputError, WindowError
from kubeloop_runtime.drift.stattests import prepare_reference
from kubeloop_runtime.profile import build_profile

# Share of drifted features that makes a window drifted in these tests: 2 of 10-13 features, or
# 4 of 30, is above it; an unshifted holdout is below it.
SHARE = 0.1

DATASETS: list[tuple[Callable[..., Any], list[str]]] = [
    (load_breast_cancer, ["mean radius", "mean texture", "worst area", "worst symmetry"]),
    (load_wine, ["alcohol", "proline"]),
    (load_diabetes, ["bmi", "s5"]),
]


@pytest.mark.parametrize(("loader", "names"), DATASETS)
def test_unshifted_holdout_is_not_drifted(loader: Callable[..., Any], names: list[str]) -> None:
    reference, holdout = reference_and_holdout(loader)
    references = prepare_reference(build_profile(reference))
    verdict = detect_data_drift(references, columns_of(holdout), share_threshold=SHARE)
    assert not verdict.detected
    assert verdict.drifted_features == []
    assert {result.method for result in verdict.features} <= {"ks", "z"}  # small reference
    assert len(verdict.features) == holdout.shape[1]


@pytest.mark.parametrize(("loader", "names"), DATASETS)
def test_shifted_features_are_named(loader: Callable[..., Any], names: list[str]) -> None:
    reference, holdout = reference_and_holdout(loader)
    references = prepare_reference(build_profile(reference))
    moved = shifted(holdout, reference, names)
    verdict = detect_data_drift(references, columns_of(moved), share_threshold=SHARE)
    assert verdict.detected
    assert sorted(verdict.drifted_features) == sorted(names)
    assert verdict.score == pytest.approx(len(names) / holdout.shape[1])


@pytest.mark.parametrize(("loader", "names"), DATASETS)
def test_scaled_features_are_named(loader: Callable[..., Any], names: list[str]) -> None:
    reference, holdout = reference_and_holdout(loader)
    references = prepare_reference(build_profile(reference))
    verdict = detect_data_drift(
        references, columns_of(scaled(holdout, names)), share_threshold=SHARE
    )
    assert verdict.detected
    assert sorted(verdict.drifted_features) == sorted(names)


def test_categorical_and_numeric_together_with_nulls() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, size=900),
            "channel": rng.choice(["web", "store", "phone"], p=[0.6, 0.3, 0.1], size=900),
        }
    )
    references = prepare_reference(build_profile(reference))
    current = {
        "amount": [*rng.gamma(2.0, 50.0, size=300).tolist(), None, float("nan")],
        "channel": [
            *rng.choice(["web", "store", "phone"], p=[0.2, 0.2, 0.6], size=300),
            None,
            None,
        ],
    }
    verdict = detect_data_drift(references, current, share_threshold=0.5)
    assert verdict.drifted_features == ["channel"]
    assert verdict.detected  # 1 of 2 features reaches a 0.5 share
    by_name = {result.feature: result for result in verdict.features}
    assert by_name["amount"].samples == 300  # nulls are not tested
    assert by_name["channel"].method == "chisquare"


def test_window_feature_unknown_to_the_profile_is_named() -> None:
    reference, holdout = reference_and_holdout(load_wine)
    references = prepare_reference(build_profile(reference.drop(columns="proline")))
    with pytest.raises(DriftInputError, match=r"not in the reference profile: \['proline'\]"):
        detect_data_drift(references, columns_of(holdout))


def test_profile_feature_missing_from_the_window_is_skipped() -> None:
    reference, holdout = reference_and_holdout(load_wine)
    references = prepare_reference(build_profile(reference))
    verdict = detect_data_drift(references, columns_of(holdout.drop(columns="proline")))
    assert "proline" not in {result.feature for result in verdict.features}


def test_non_numeric_window_values_are_named() -> None:
    reference, _ = reference_and_holdout(load_wine)
    references = prepare_reference(build_profile(reference))
    with pytest.raises(DriftInputError, match="feature 'alcohol': window values are not numbers"):
        detect_data_drift(references, {"alcohol": [13.0, "thirteen"]})


def test_parse_window_follows_the_contract() -> None:
    _, holdout = reference_and_holdout(load_wine)
    window = parse_window(window_document(holdout, seq=99, predictions=[1], labels=[1]))
    assert window.seq == 99
    assert window.size == len(holdout)
    assert window.model_version == "1"
    assert list(window.columns) == [str(name) for name in holdout.columns]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected a JSON object"),
        ({"seq": -1, "columns": {}}, "'seq'"),
        ({"seq": "7", "columns": {}}, "'seq'"),
        ({"seq": 1, "columns": []}, "'columns'"),
        ({"seq": 1, "columns": {"a": 3}}, "column 'a': expected a list"),
        ({"seq": 1, "columns": {"a": [1], "b": [1, 2]}}, "differ in length"),
        (
            {"seq": 1, "columns": {}, "feedback": {"predictions": [1], "labels": []}},
            "1 predictions",
        ),
    ],
)
def test_bad_windows_are_refused_naming_the_field(document: Any, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        parse_window(document)


def test_feedback_accuracy_for_classification() -> None:
    labels = ["malignant", "benign"] * 50
    good = assess_feedback(labels, labels, task="classification", metrics={"accuracy": 0.95})
    assert good.accuracy == 1.0
    assert good.labeled == 100
    assert not good.detected
    wrong = ["benign"] * 100
    bad = assess_feedback(wrong, labels, task="classification", metrics={"accuracy": 0.95})
    assert bad.accuracy == 0.5
    assert bad.detected
    few = assess_feedback(
        wrong[:10], labels[:10], task="classification", metrics={"accuracy": 0.95}
    )
    assert not few.detected  # fewer than min_labels: no concept-drift verdict yet
    numeric = assess_feedback([1, 0, 2], [1.0, "0", 2], task="classification", metrics={})
    assert numeric.accuracy == 1.0  # 1 == 1.0 == "1": labels compare as numbers when they are


def test_feedback_rmse_for_regression() -> None:
    truth = np.linspace(50, 300, 60)
    close = assess_feedback(
        (truth + 10).tolist(), truth.tolist(), task="regression", metrics={"rmse": 55.0}
    )
    assert close.rmse == pytest.approx(10.0)
    assert not close.detected
    far = assess_feedback(
        (truth + 120).tolist(), truth.tolist(), task="regression", metrics={"rmse": 55.0}
    )
    assert far.detected
    none_yet = assess_feedback([], [], task="regression", metrics={"rmse": 55.0})
    assert none_yet.labeled == 0
    assert none_yet.rmse is None
    with pytest.raises(DriftInputError, match="regression predictions and labels must be numbers"):
        assess_feedback(["a"], ["b"], task="regression", metrics={})
    with pytest.raises(DriftInputError, match="unknown task 'ranking'"):
        assess_feedback([1], [1], task="ranking", metrics={})
