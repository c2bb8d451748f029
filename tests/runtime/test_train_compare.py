"""train's comparison with the serving model (``evaluation.compareTo: serving``).

Baselines are real artifacts written by ``train`` itself, on real data: iris (one trained on
shifted measurements, one on the very rows the candidate is scored on) and diabetes (rmse, where
lower is better). Rules: docs/design/contracts.md, "Comparison with the serving model".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers_train import read_termination, run_cli, train_config
from sklearn.datasets import load_diabetes, load_iris

from kubeloop_runtime.config import parse_train_config
from kubeloop_runtime.errors import BaselineError, ConfigError
from kubeloop_runtime.train import run_training


def trained(output: Path, **overrides: Any) -> dict[str, Any]:
    return run_training(parse_train_config(train_config(output, **overrides)))


def baseline_of(result: dict[str, Any], version: str) -> dict[str, Any]:
    return {"uri": result["artifact"]["uri"], "digest": result["artifact"]["digest"],
            "version": version}  # fmt: skip


def iris_csv(folder: Path, shift: float = 0.0, drop: str | None = None) -> str:
    frame = load_iris(as_frame=True).frame
    features = [column for column in frame.columns if column != "target"]
    frame[features] = frame[features] + shift
    if drop is not None:
        frame = frame.drop(columns=[drop])
    path = folder / f"iris-{shift}-{drop}.csv"
    frame.to_csv(path, index=False)
    return f"file://{path}"


def compare(baseline: dict[str, Any] | None, **evaluation: Any) -> dict[str, Any]:
    settings = {"testSize": 0.25, "metric": "accuracy", "randomSeed": 7, "compareTo": "serving"}
    if baseline is not None:
        settings["baseline"] = baseline
    return {**settings, **evaluation}


def test_a_model_on_current_data_beats_one_trained_on_shifted_data(tmp_path: Path) -> None:
    old = trained(
        tmp_path / "v1", dataset={"uri": iris_csv(tmp_path, shift=3.0), "target": "target"}
    )
    current = iris_csv(tmp_path)
    result = trained(
        tmp_path / "v2",
        dataset={"uri": current, "target": "target"},
        evaluation=compare(baseline_of(old, "iris-v1")),
    )
    comparison = result["comparison"]
    assert result["passed"] is True
    assert result["ok"] is True
    assert comparison["passed"] is True
    assert comparison["metric"] == "accuracy"
    assert comparison["baselineVersion"] == "iris-v1"
    assert comparison["testRows"] == 38  # 25 % of 150, both scored on the same rows
    assert comparison["candidate"] == result["metrics"]["accuracy"]
    assert comparison["baseline"] < 0.5 < comparison["candidate"]
    metadata = json.loads((tmp_path / "v2" / "metadata.json").read_text())
    assert metadata["comparison"] == comparison
    # the new version's reference profile is its own data's, not the baseline's
    assert metadata["profile"]["rows"] == 150
    old_profile = json.loads((tmp_path / "v1" / "metadata.json").read_text())["profile"]
    feature = "sepal length (cm)"
    assert old_profile["features"][feature]["mean"] == pytest.approx(
        metadata["profile"]["features"][feature]["mean"] + 3.0
    )


def test_the_serving_model_wins_and_the_candidate_is_rejected_but_written(
    tmp_path: Path,
) -> None:
    strong = trained(tmp_path / "v3", params={"n_estimators": 50})
    config = train_config(
        tmp_path / "v4",
        estimator="sklearn.tree.DecisionTreeClassifier",
        params={"max_depth": 1},
        evaluation=compare(baseline_of(strong, "iris-v3"), threshold=0.5),
    )
    log = tmp_path / "termination"
    done = run_cli("train", "--config", json.dumps(config), "--termination-log", str(log))
    assert done.returncode == 3, done.stderr
    result = read_termination(log)
    assert (result["ok"], result["passed"], result["reason"]) == (False, False, "ComparisonFailed")
    assert result["gate"]["passed"] is True
    comparison = result["comparison"]
    assert comparison["passed"] is False
    assert comparison["candidate"] < comparison["baseline"]
    assert (
        f"accuracy {comparison['candidate']:.4g} is worse than {comparison['baseline']:.4g} of "
        "the serving version iris-v3 on the same 38 held-out rows; the model was written to"
    ) in result["message"]
    assert (tmp_path / "v4" / "model.joblib").is_file()


def test_a_missed_gate_and_a_lost_comparison_name_both(tmp_path: Path) -> None:
    strong = trained(tmp_path / "v1", params={"n_estimators": 50})
    result = trained(
        tmp_path / "v2",
        estimator="sklearn.tree.DecisionTreeClassifier",
        params={"max_depth": 1},
        evaluation=compare(baseline_of(strong, "iris-v1"), threshold=0.9),
    )
    assert result["reason"] == "GateFailed"
    assert "is below the threshold 0.9; accuracy" in result["message"]
    assert "is worse than" in result["message"]


def test_rmse_lower_is_better_in_both_directions(tmp_path: Path) -> None:
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    dataset = {"uri": f"file://{tmp_path}/diabetes.csv", "target": "target"}
    regression = {"dataset": dataset, "modelName": "diabetes"}
    ridge = trained(
        tmp_path / "ridge", estimator="sklearn.linear_model.Ridge", params={"alpha": 0.1},
        evaluation={"metric": "rmse", "randomSeed": 7}, **regression,
    )  # fmt: skip
    stump = trained(
        tmp_path / "stump", estimator="sklearn.tree.DecisionTreeRegressor",
        params={"max_depth": 1}, evaluation={"metric": "rmse", "randomSeed": 3}, **regression,
    )  # fmt: skip
    beats_stump = trained(
        tmp_path / "ridge2", estimator="sklearn.linear_model.Ridge", params={"alpha": 0.1},
        evaluation=compare(baseline_of(stump, "d-v1"), metric="rmse"), **regression,
    )  # fmt: skip
    assert beats_stump["comparison"]["passed"] is True
    assert beats_stump["comparison"]["candidate"] < beats_stump["comparison"]["baseline"]
    loses_to_ridge = trained(
        tmp_path / "stump2", estimator="sklearn.tree.DecisionTreeRegressor",
        params={"max_depth": 1}, evaluation=compare(baseline_of(ridge, "d-v2"), metric="rmse"),
        **regression,
    )  # fmt: skip
    assert loses_to_ridge["passed"] is False
    assert loses_to_ridge["reason"] == "ComparisonFailed"
    assert loses_to_ridge["comparison"]["candidate"] > loses_to_ridge["comparison"]["baseline"]


def test_a_baseline_with_other_features_is_refused_before_training(tmp_path: Path) -> None:
    narrow = trained(
        tmp_path / "v1",
        dataset={"uri": iris_csv(tmp_path, drop="petal width (cm)"), "target": "target"},
    )
    config = train_config(
        tmp_path / "v2",
        dataset={"uri": iris_csv(tmp_path), "target": "target"},
        evaluation=compare(baseline_of(narrow, "iris-v1")),
    )
    log = tmp_path / "termination"
    done = run_cli("train", "--config", json.dumps(config), "--termination-log", str(log))
    assert done.returncode == 5, done.stderr
    result = read_termination(log)
    assert result["reason"] == "BaselineError"
    assert result["message"] == (
        "evaluation.baseline iris-v1: its features differ from the data's: the data has "
        "['petal width (cm)'] it lacks, it has [] the data lacks"
    )
    assert not (tmp_path / "v2").exists()


def test_a_baseline_whose_digest_does_not_match_is_never_unpickled(tmp_path: Path) -> None:
    old = trained(tmp_path / "v1")
    model = tmp_path / "v1" / "model.joblib"
    model.write_bytes(b"not a pickle: never loaded")  # loading it would fail loudly
    with pytest.raises(BaselineError, match=r"evaluation\.baseline iris-v1: digest mismatch"):
        trained(tmp_path / "v2", evaluation=compare(baseline_of(old, "iris-v1")))
    missing = {**baseline_of(old, "iris-v1"), "uri": str(tmp_path / "gone")}
    with pytest.raises(BaselineError, match="no such file"):
        trained(tmp_path / "v3", evaluation=compare(missing))


def test_a_baseline_of_another_task_is_refused(tmp_path: Path) -> None:
    frame = load_iris(as_frame=True).frame
    frame.to_csv(tmp_path / "iris.csv", index=False)
    dataset = {"uri": f"file://{tmp_path}/iris.csv", "target": "target"}
    regressor = trained(
        tmp_path / "r", estimator="sklearn.linear_model.Ridge", params={}, dataset=dataset,
        evaluation={"metric": "r2"},
    )  # fmt: skip
    with pytest.raises(BaselineError, match="it is a regression model, this run trains"):
        trained(tmp_path / "c", dataset=dataset, evaluation=compare(baseline_of(regressor, "x")))


def test_feature_order_may_differ(tmp_path: Path) -> None:
    frame = load_iris(as_frame=True).frame
    frame.to_csv(tmp_path / "iris.csv", index=False)
    reordered = frame[[*reversed(frame.columns[:4]), "target"]]
    reordered.to_csv(tmp_path / "reordered.csv", index=False)
    old = trained(
        tmp_path / "v1", dataset={"uri": f"file://{tmp_path}/reordered.csv", "target": "target"}
    )
    result = trained(
        tmp_path / "v2",
        dataset={"uri": f"file://{tmp_path}/iris.csv", "target": "target"},
        evaluation=compare(baseline_of(old, "iris-v1")),
    )
    # the old model, fed in its own column order, scores as well as a fresh one of the same kind
    assert result["comparison"]["baseline"] > 0.85


def test_without_a_serving_version_the_comparison_is_skipped(tmp_path: Path) -> None:
    result = trained(tmp_path / "v1", evaluation=compare(None))
    assert result["passed"] is True
    assert result["comparison"] == {
        "metric": "accuracy", "candidate": result["metrics"]["accuracy"], "baseline": None,
        "baselineVersion": None, "passed": True, "testRows": 38,
    }  # fmt: skip


def test_a_baseline_without_compare_to_is_a_config_error(tmp_path: Path) -> None:
    config = train_config(
        tmp_path / "v1",
        evaluation={"baseline": {"uri": "/x", "digest": "sha256:" + "0" * 64}},
    )
    with pytest.raises(ConfigError, match=r"only used with evaluation\.compareTo: serving"):
        parse_train_config(config)
    with pytest.raises(ConfigError, match="compareTo"):
        parse_train_config(train_config(tmp_path, evaluation={"compareTo": "best"}))


def test_the_new_data_folder_and_the_serving_model(tmp_path: Path) -> None:
    """The retrain the loop runs: base data plus new rows in a folder, against the old model."""
    data = tmp_path / "data"
    data.mkdir()
    frame = load_iris(as_frame=True).frame
    frame.to_csv(data / "base.csv", index=False)
    old = trained(tmp_path / "v1", dataset={"uri": f"file://{data}/", "target": "target"})
    # the world moves: new rows whose measurements are shifted, labelled as before
    shifted = frame.copy()
    shifted[shifted.columns[:4]] = shifted[shifted.columns[:4]] + 2.5
    pd.concat([shifted] * 2).to_parquet(data / "new.parquet", index=False)
    result = trained(
        tmp_path / "v2",
        dataset={"uri": f"file://{data}/", "target": "target"},
        evaluation=compare(baseline_of(old, "iris-v1")),
    )
    assert result["dataset"]["rows"] == 450
    assert result["dataset"]["digest"] != old["dataset"]["digest"]
    assert result["comparison"]["passed"] is True
    assert result["comparison"]["candidate"] > result["comparison"]["baseline"]
