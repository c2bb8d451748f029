"""Tests of the reference profile builder on scikit-learn's bundled datasets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

from kubeloop_runtime.profile import (
    SAMPLE_SIZE,
    ProfileError,
    bin_counts,
    build_profile,
)


def test_iris_profile_matches_the_contract() -> None:
    frame = load_iris(as_frame=True).frame
    profile = build_profile(frame.drop(columns="target"))
    assert profile["schemaVersion"] == 1
    assert profile["rows"] == 150
    feature = profile["features"]["sepal length (cm)"]
    assert feature["kind"] == "numeric"
    assert feature["count"] == 150
    assert feature["nullShare"] == 0.0
    assert feature["mean"] == pytest.approx(5.8433, abs=1e-3)
    assert feature["std"] == pytest.approx(frame["sepal length (cm)"].std(ddof=0))
    assert feature["min"] == 4.3
    assert feature["max"] == 7.9
    assert len(feature["quantiles"]) == 11
    assert feature["quantiles"][0] == 4.3
    assert feature["quantiles"][-1] == 7.9
    assert len(feature["binShares"]) == len(feature["binEdges"]) - 1
    assert sum(feature["binShares"]) == pytest.approx(1.0)
    assert sorted(feature["sample"]) == sorted(frame["sepal length (cm)"].tolist())


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine, load_diabetes])
def test_profiles_are_json_and_deterministic(loader: object) -> None:
    frame = loader(as_frame=True).frame  # type: ignore[operator]
    first = build_profile(frame)
    second = build_profile(frame.copy())
    text = json.dumps(first, allow_nan=False)
    assert text == json.dumps(second, allow_nan=False)
    assert set(first["features"]) == {str(name) for name in frame.columns}


def test_large_column_is_subsampled_deterministically_and_sorted() -> None:
    values = np.random.default_rng(1).normal(size=20_000)
    frame = pd.DataFrame({"x": values})
    sample = build_profile(frame)["features"]["x"]["sample"]
    assert len(sample) == SAMPLE_SIZE
    assert sample == sorted(sample)
    assert sample == build_profile(frame)["features"]["x"]["sample"]
    assert set(sample) <= set(values.tolist())


def test_categorical_bool_and_nulls() -> None:
    frame = pd.DataFrame(
        {
            "color": pd.Series(["red", "blue", "red", None], dtype="object"),
            "size": pd.Categorical(["s", "m", "m", "m"]),
            "flag": [True, False, True, True],
            "age": [1.0, np.nan, 3.0, np.nan],
        }
    )
    features = build_profile(frame)["features"]
    assert features["color"] == {
        "kind": "categorical",
        "count": 3,
        "nullShare": 0.25,
        "shares": {"blue": pytest.approx(1 / 3), "red": pytest.approx(2 / 3)},
    }
    assert features["size"]["shares"] == {"m": 0.75, "s": 0.25}
    assert features["flag"]["kind"] == "numeric"
    assert features["flag"]["mean"] == 0.75
    assert features["age"]["nullShare"] == 0.5
    assert features["age"]["count"] == 2
    assert features["age"]["mean"] == 2.0


def test_all_null_and_constant_columns_are_json_safe() -> None:
    frame = pd.DataFrame({"empty": [np.nan, np.nan], "constant": [2.0, 2.0]})
    features = build_profile(frame)["features"]
    json.dumps(features, allow_nan=False)
    assert features["empty"]["mean"] is None
    assert features["empty"]["sample"] == []
    assert features["constant"]["std"] == 0.0
    assert features["constant"]["binEdges"] == [2.0, 2.0]
    assert features["constant"]["binShares"] == [1.0]


def test_bins_are_open_at_both_ends() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    counts = bin_counts(np.array([-5.0, 0.0, 0.5, 1.0, 2.0, 9.0]), edges)
    assert counts.tolist() == [3.0, 3.0]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame(), "no columns"),
        (pd.DataFrame({"x": pd.Series([], dtype=float)}), "no rows"),
        (pd.DataFrame({"when": pd.to_datetime(["2026-01-01"])}), "column 'when'"),
        (pd.DataFrame({"x": [1.0, np.inf]}), "column 'x': contains infinite"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column names"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        build_profile(frame)
