"""Training end to end on bundled datasets, plus the termination message and the CLI exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers_train import mixed_frame, read_termination, run_cli, train_config

from kubeloop_runtime.artifact import load_model, read_metadata
from kubeloop_runtime.config import parse_train_config
from kubeloop_runtime.errors import (
    ConfigError,
    DatasetError,
    EstimatorError,
    SchemaError,
    StorageError,
)
from kubeloop_runtime.termination import MESSAGE_LIMIT_BYTES, render_message
from kubeloop_runtime.train import run_training


def train(output: Path, **overrides: Any) -> dict[str, Any]:
    return run_training(parse_train_config(train_config(output, **overrides)))


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 30}),
        ("sklearn.linear_model.LogisticRegression", {"C": 1.0, "max_iter": 500}),
    ],
)
def test_iris_classifier_artifact(tmp_path: Path, estimator: str, params: dict[str, Any]) -> None:
    out = tmp_path / "artifacts" / "iris-1"
    result = train(out, estimator=estimator, params=params)

    assert result["ok"] is True
    assert result["passed"] is True
    assert set(result["metrics"]) == {"accuracy", "f1", "roc_auc"}
    assert result["metrics"]["accuracy"] >= 0.85
    metadata = read_metadata(out)
    assert metadata["schemaVersion"] == 1
    assert metadata["task"] == "classification"
    assert metadata["estimator"] == estimator
    assert metadata["params"] == {**params, "random_state": 7}
    assert metadata["target"] == {
        "name": "target",
        "classes": ["setosa", "versicolor", "virginica"],
        "values": [0, 1, 2],
    }
    names = [feature["name"] for feature in metadata["features"]]
    assert names == [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ]
    assert {feature["type"] for feature in metadata["features"]} == {"number"}
    assert sorted(metadata["profile"]["features"]) == sorted(names)
    assert metadata["profile"]["rows"] == 150
    assert metadata["dataset"]["rows"] == 150
    assert metadata["dataset"]["digest"] == result["dataset"]["digest"]
    assert metadata["artifact"]["digest"] == result["artifact"]["digest"]
    assert (out / "model.sha256").read_text().strip() == result["artifact"]["digest"]
    assert {"python", "scikit-learn", "numpy", "pandas", "joblib"} <= set(metadata["libraries"])
    assert metadata["gate"] == result["gate"]
    # the server's fast path: a float array in metadata.features order
    model = load_model(out, result["artifact"]["digest"])
    predicted = model.predict(np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]))
    assert [metadata["target"]["classes"][int(code)] for code in predicted] == [
        "setosa",
        "virginica",
    ]
    assert not list(tmp_path.joinpath("artifacts").glob(".*")), "staging folder left behind"


def test_diabetes_ridge_regression(tmp_path: Path) -> None:
    out = tmp_path / "diabetes"
    result = train(
        out,
        modelName="diabetes",
        dataset={"uri": "builtin://diabetes"},
        estimator="sklearn.linear_model.Ridge",
        params={"alpha": 0.1},
        evaluation={"metric": "rmse", "threshold": 70.0, "randomSeed": 1},
    )
    assert result["passed"] is True
    assert set(result["metrics"]) == {"rmse", "mae", "r2"}
    assert result["metrics"]["r2"] > 0.3
    assert result["gate"]["value"] == result["metrics"]["rmse"] <= 70.0
    metadata = read_metadata(out)
    assert metadata["task"] == "regression"
    assert metadata["target"] == {"name": "target", "classes": None, "values": None}
    assert metadata["params"] == {"alpha": 0.1, "random_state": 1}
    assert len(metadata["features"]) == 10


def test_grid_search_on_wine(tmp_path: Path) -> None:
    out = tmp_path / "wine"
    result = train(
        out,
        modelName="wine",
        dataset={"uri": "builtin://wine"},
        estimator="sklearn.tree.DecisionTreeClassifier",
        params={"min_samples_leaf": 1},
        search={
            "strategy": "grid",
            "space": {"max_depth": [1, 3, None], "criterion": ["gini", "entropy"]},
            "maxTrials": 6,
            "cvFolds": 3,
        },
        evaluation={"metric": "f1", "threshold": 0.7, "randomSeed": 0},
    )
    metadata = read_metadata(out)
    search = metadata["search"]
    assert search["strategy"] == "grid"
    assert search["trials"] == 6
    assert search["bestParams"]["max_depth"] in (3, None)  # a stump cannot split three classes
    assert metadata["params"]["max_depth"] == search["bestParams"]["max_depth"]
    assert metadata["params"]["min_samples_leaf"] == 1
    assert result["search"] == {
        key: search[key] for key in ("strategy", "trials", "bestScore", "bestParams")
    }
    assert 0.7 < search["bestScore"] <= 1.0
    assert result["passed"] is True


def test_random_search_is_seeded(tmp_path: Path) -> None:
    overrides: dict[str, Any] = {
        "estimator": "sklearn.tree.DecisionTreeClassifier",
        "params": {},
        "search": {
            "strategy": "random",
            "space": {"max_depth": [1, 2, 3, 4, 5], "min_samples_leaf": [1, 5]},
            "maxTrials": 3,
        },
    }
    first = train(tmp_path / "a", **overrides)
    second = train(tmp_path / "b", **overrides)
    assert read_metadata(tmp_path / "a")["search"]["trials"] == 3
    assert first["params"] == second["params"]
    assert first["metrics"] == second["metrics"]


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"strategy": "random", "space": {"C": [1, 2]}}, "search.maxTrials is required"),
        (
            {"strategy": "grid", "space": {"C": [1, 2, 3], "tol": [0.1, 0.2]}, "maxTrials": 5},
            "the grid has 6 combinations, more than search.maxTrials=5",
        ),
        ({"space": {"C": []}}, r"no candidate values for \['C'\]"),
        ({"space": {"C": [1]}, "cvFolds": 1}, "search.cvFolds: Input should be greater"),
    ],
)
def test_bad_search_is_a_config_error(tmp_path: Path, search: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_train_config(train_config(tmp_path, search=search))


def test_operator_spec_forms_are_accepted(tmp_path: Path) -> None:
    """The operator may pass a Dataset spec (``source.uri``) and null params through unchanged."""
    result = train(
        tmp_path / "out",
        dataset={"source": {"uri": "builtin://iris", "format": "auto"}, "target": "target"},
        params=None,
        search={"space": {"max_depth": [2, 4]}, "maxTrials": 2, "parallelism": 1},
        resources={"limits": {"cpu": "1"}},
        backoffLimit=1,
    )
    assert result["dataset"]["uri"] == "builtin://iris"
    assert result["search"]["trials"] == 2
    assert set(result["search"]["bestParams"]) == {"max_depth"}


def test_retraining_into_the_same_folder_replaces_the_artifact(tmp_path: Path) -> None:
    out = tmp_path / "artifacts" / "iris"
    first = train(out, params={"n_estimators": 5})
    second = train(out, params={"n_estimators": 6})
    assert first["artifact"]["digest"] != second["artifact"]["digest"]
    assert read_metadata(out)["params"]["n_estimators"] == 6
    assert sorted(path.name for path in (tmp_path / "artifacts").iterdir()) == ["iris"]


def test_unwritable_output_is_a_storage_error_leaving_nothing(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file where the artifact folder should be")
    with pytest.raises(StorageError, match=r"output\.uri .*taken: cannot write the artifact"):
        train(taken)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]
    assert taken.read_text() == "a file where the artifact folder should be"


def test_builtin_class_names_label_only_the_builtin_target(tmp_path: Path) -> None:
    # wine's "magnesium" holds integers; they are not wine classes, so no class_0/1/2 labels
    train(
        tmp_path / "out",
        dataset={"uri": "builtin://wine", "target": "magnesium"},
        estimator="sklearn.naive_bayes.GaussianNB",
        params={},
        evaluation={"testSize": 0.5},
    )
    target = read_metadata(tmp_path / "out")["target"]
    assert target["classes"] == [str(value) for value in target["values"]]


def test_search_space_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(EstimatorError, match=r"search\.space: .* has no parameter 'depth'"):
        train(tmp_path / "x", search={"space": {"depth": [1, 2]}})
    assert not (tmp_path / "x").exists()


def test_categorical_features_train_a_pipeline_on_named_columns(tmp_path: Path) -> None:
    data = tmp_path / "shop.csv"
    mixed_frame(rows=300).to_csv(data, index=False)
    out = tmp_path / "shop"
    result = train(
        out,
        modelName="shop",
        dataset={
            "uri": f"file://{data}",
            "target": "label",
            "schema": {"columns": [{"name": "count", "type": "category"}]},
        },
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        params={"max_iter": 50},
        evaluation={"metric": "roc_auc", "threshold": 0.6},
    )
    assert result["passed"] is True
    metadata = read_metadata(out)
    assert metadata["features"] == [
        {"name": "size", "type": "number"},
        {"name": "count", "type": "category"},
        {"name": "colour", "type": "category"},
        {"name": "flag", "type": "number"},
    ]
    assert metadata["target"]["classes"] == ["no", "yes"]
    assert metadata["target"]["values"] == ["no", "yes"]
    assert metadata["profile"]["features"]["colour"]["kind"] == "categorical"
    model = load_model(out)
    rows = pd.DataFrame(
        {"size": [70.0, 30.0], "count": ["3", "999"], "colour": ["red", "unseen"], "flag": [1, 0]}
    )
    assert set(model.predict(rows)) <= {"no", "yes"}


def test_missing_target_and_regressor_on_text_target(tmp_path: Path) -> None:
    data = tmp_path / "shop.csv"
    mixed_frame().to_csv(data, index=False)
    with pytest.raises(DatasetError, match=r"dataset\.target: no column 'price'.*columns: size"):
        train(tmp_path / "a", dataset={"uri": str(data), "target": "price"})
    with pytest.raises(ConfigError, match=r"dataset\.target: name the target column"):
        train(tmp_path / "b", dataset={"uri": str(data)})
    with pytest.raises(DatasetError, match="column 'label': a regressor needs a numeric target"):
        train(
            tmp_path / "c",
            dataset={"uri": str(data), "target": "label"},
            estimator="sklearn.linear_model.Ridge",
            params={},
            evaluation={},
        )


def test_classifier_on_a_single_class_target_is_a_dataset_error(tmp_path: Path) -> None:
    data = tmp_path / "one-class.csv"
    frame = mixed_frame()
    frame["label"] = "yes"
    frame.to_csv(data, index=False)
    with pytest.raises(DatasetError, match="column 'label': a classifier needs at least two"):
        train(tmp_path / "model", dataset={"uri": str(data), "target": "label"}, evaluation={})
    assert not (tmp_path / "model").exists()


def test_schema_violations_stop_training(tmp_path: Path) -> None:
    schema = {
        "columns": [
            {"name": "petal length (cm)", "max": 5.0},
            {"name": "species", "required": True},
        ],
        "minRows": 200,
    }
    with pytest.raises(SchemaError) as caught:
        train(tmp_path / "x", dataset={"uri": "builtin://iris", "schema": schema})
    assert caught.value.violations == [
        "dataset: 150 rows, fewer than minRows 200",
        "column 'petal length (cm)': 42 values above max 5 (highest 6.9)",
        "column 'species': missing",
    ]


def test_nan_features_the_estimator_rejects_are_a_training_error(tmp_path: Path) -> None:
    frame = mixed_frame()
    frame.loc[::10, "size"] = np.nan
    data = tmp_path / "holes.parquet"
    frame[["size", "count", "label"]].to_parquet(data)
    from kubeloop_runtime.errors import TrainingError

    with pytest.raises(
        TrainingError, match=r"fitting sklearn\.linear_model\.LogisticRegression failed"
    ):
        train(
            tmp_path / "x",
            dataset={"uri": str(data), "target": "label"},
            estimator="sklearn.linear_model.LogisticRegression",
            params={},
        )


# --- termination message ---------------------------------------------------------------------


def test_small_result_is_kept_whole() -> None:
    payload = {"ok": True, "kind": "train", "metrics": {"accuracy": np.float64(0.9)}}
    assert json.loads(render_message(payload)) == {
        "ok": True,
        "kind": "train",
        "metrics": {"accuracy": 0.9},
    }
    assert json.loads(render_message({"ok": True, "value": float("nan")}))["value"] is None


def test_large_result_is_trimmed_under_the_limit_keeping_the_verdict() -> None:
    payload = {
        "ok": False,
        "kind": "train",
        "passed": False,
        "reason": "GateFailed",
        "message": "accuracy 0.5 is below the threshold 0.9",
        "params": {f"p{index}": "x" * 300 for index in range(40)},
        "features": [f"feature-{index}" for index in range(500)],
        "metrics": {"accuracy": 0.5},
    }
    text = render_message(payload)
    assert len(text.encode()) < MESSAGE_LIMIT_BYTES
    trimmed = json.loads(text)
    assert trimmed["truncated"] is True
    for key in ("ok", "kind", "passed", "reason", "message", "metrics"):
        assert trimmed[key] == payload[key]


def test_huge_message_alone_is_cut() -> None:
    payload = {"ok": False, "kind": "train", "reason": "SchemaError", "message": "é" * 20_000}
    text = render_message(payload)
    assert len(text.encode()) < MESSAGE_LIMIT_BYTES
    trimmed = json.loads(text)
    assert trimmed["reason"] == "SchemaError"
    assert trimmed["message"].startswith("éé")
    assert trimmed["message"].endswith("…")


def test_many_violations_fit_the_limit(tmp_path: Path) -> None:
    schema = {"columns": [{"name": f"missing-{index:03d}"} for index in range(300)]}
    log = tmp_path / "termination"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            train_config(tmp_path / "out", dataset={"uri": "builtin://iris", "schema": schema})
        )
    )
    from kubeloop_runtime.train import main

    assert main(["--config", str(config), "--termination-log", str(log)]) == 4
    result = read_termination(log)
    assert result["reason"] == "SchemaError"
    assert result["message"].startswith("300 schema violations: column 'missing-000': missing")


# --- real processes ----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_success_writes_the_termination_log(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(train_config(tmp_path / "out")))
    log = tmp_path / "termination"
    done = run_cli("train", "--config", str(config), "--termination-log", str(log))
    assert done.returncode == 0, done.stderr
    result = read_termination(log)
    assert result["ok"] is True
    assert result["kind"] == "train"
    assert result["artifact"]["digest"] == (tmp_path / "out" / "model.sha256").read_text().strip()
    assert json.loads(done.stdout.strip().splitlines()[-1]) == result


@pytest.mark.slow
def test_cli_gate_failure_exits_3_and_keeps_the_model(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    config = train_config(
        tmp_path / "out",
        params={"n_estimators": 2, "max_depth": 1},
        evaluation={"metric": "accuracy", "threshold": 0.999, "randomSeed": 7},
    )
    # the module's own entry point this time: python -m kubeloop_runtime.train
    done = run_cli(
        env={"KUBELOOP_CONFIG": json.dumps(config), "KUBELOOP_TERMINATION_LOG": str(log)},
        module="kubeloop_runtime.train",
    )
    assert done.returncode == 3, done.stderr
    result = read_termination(log)
    assert result["ok"] is False
    assert result["passed"] is False
    assert result["reason"] == "GateFailed"
    assert "is below the threshold 0.999" in result["message"]
    assert (tmp_path / "out" / "model.joblib").is_file()


@pytest.mark.parametrize(
    ("overrides", "exit_code", "reason", "message"),
    [
        (
            {"estimator": "evil_module.Thing"},
            2,
            "EstimatorError",
            "'evil_module.Thing' is not allowed",
        ),
        ({"params": {"n_trees": 5}}, 2, "EstimatorError", "has no parameter 'n_trees'"),
        ({"modelName": ""}, 2, "ConfigError", "modelName: String should have at least 1 character"),
        ({"dataset": {"uri": "builtin://nope"}}, 4, "DatasetError", "unknown builtin dataset"),
    ],
)
def test_cli_failures_exit_non_zero_with_a_reason(
    tmp_path: Path, overrides: dict[str, Any], exit_code: int, reason: str, message: str
) -> None:
    log = tmp_path / "termination"
    config = json.dumps(train_config(tmp_path / "out", **overrides))
    from kubeloop_runtime.train import main

    assert main(["--config", config, "--termination-log", str(log)]) == exit_code
    result = read_termination(log)
    assert result["ok"] is False
    assert result["reason"] == reason
    assert message in result["message"]
    assert not (tmp_path / "out").exists()


def test_cli_without_configuration_is_a_config_error(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    done = run_cli("train", "--termination-log", str(log), env={"KUBELOOP_CONFIG": ""})
    assert done.returncode == 2
    assert "no configuration: pass --config or set KUBELOOP_CONFIG" in done.stderr
    assert read_termination(log)["reason"] == "ConfigError"


def test_dispatcher_refuses_unknown_commands() -> None:
    from kubeloop_runtime.__main__ import COMMANDS, main

    assert set(COMMANDS) == {"train", "profile", "fetch", "serve", "drift"}
    assert main([]) == 2
    assert main(["--help"]) == 0
    done = run_cli("retrain")
    assert done.returncode == 2
    assert "unknown command 'retrain'" in done.stderr
    assert "train|profile|fetch|serve|drift" in done.stderr


# --- the batch side feeding the server -----------------------------------------------------------


@pytest.mark.parametrize("categorical", [False, True], ids=["iris-numeric", "shop-categorical"])
def test_trained_fetched_artifact_is_served(
    tmp_path: Path, live_server: Any, categorical: bool
) -> None:
    """train → fetch (with the digest from the result) → serve on loopback → /predict."""
    import httpx

    from kubeloop_runtime.fetch import fetch_artifact

    if categorical:
        data = tmp_path / "shop.csv"
        mixed_frame(rows=300).to_csv(data, index=False)
        overrides: dict[str, Any] = {
            "modelName": "shop",
            "dataset": {"uri": str(data), "target": "label"},
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": 20},
            "evaluation": {},
        }
        records: list[dict[str, Any]] = [
            {"size": 70.0, "count": 3, "colour": "red", "flag": 1},
            {"size": 30.0, "count": 9, "colour": "blue", "flag": 0},
        ]
        allowed = {"no", "yes"}
    else:
        overrides = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {}}
        names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
        records = [
            dict(zip(names, row, strict=True))
            for row in ([5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3])
        ]
        allowed = {"setosa", "versicolor", "virginica"}
    result = train(tmp_path / "registry" / "m-1", **overrides)
    models = tmp_path / "mnt" / "models"
    fetch_artifact(f"file://{tmp_path}/registry/m-1", models, result["artifact"]["digest"])

    server = live_server(models, model_digest=result["artifact"]["digest"])
    answer = httpx.post(f"{server.url}/predict", json={"instances": records}, timeout=10)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == 2
    assert set(predictions) <= allowed
    if not categorical:
        assert predictions == ["setosa", "virginica"]
