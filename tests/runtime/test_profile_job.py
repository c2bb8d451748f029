"""The Dataset profiling entry point: digest, rows, column types, profile; failures reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_train import mixed_frame, read_termination, run_cli

from kubeloop_runtime.config import parse_profile_config
from kubeloop_runtime.datasets import content_digest, load_builtin
from kubeloop_runtime.profile_job import main, run_profile


def test_builtin_profile_with_full_profile_file(tmp_path: Path) -> None:
    out = tmp_path / "profiles" / "iris"
    result = run_profile(
        parse_profile_config({"dataset": {"uri": "builtin://iris"}, "output": {"uri": str(out)}})
    )
    frame, _ = load_builtin("iris")
    assert result["ok"] is True
    assert result["kind"] == "profile"
    assert result["digest"] == content_digest(frame)
    assert result["rows"] == 150
    assert result["target"] == "target"
    assert result["columns"][-1] == {"name": "target", "type": "number"}
    assert len(result["columns"]) == 5
    assert result["profile"]["rows"] == 150
    features = result["profile"]["features"]
    assert sorted(features) == sorted(str(name) for name in frame.columns[:-1])
    summary = features["petal length (cm)"]
    assert set(summary) == {"kind", "count", "nullShare", "mean", "std", "min", "max"}
    assert summary["min"] == 1.0
    full = json.loads((out / "profile.json").read_text())
    assert full["rows"] == 150
    assert len(full["features"]["sepal width (cm)"]["quantiles"]) == 11
    assert result["profileUri"] == f"{out}/profile.json"


def test_csv_with_declared_category_and_schema(tmp_path: Path) -> None:
    data = tmp_path / "shop.csv"
    mixed_frame().to_csv(data, index=False)
    config = {
        "dataset": {
            "uri": f"file://{data}",
            "target": "label",
            "schema": {
                "columns": [
                    {"name": "count", "type": "category"},
                    {
                        "name": "colour",
                        "allowedValues": ["red", "green", "blue"],
                        "maxNullShare": 0.1,
                    },
                ],
                "minRows": 100,
            },
        }
    }
    result = run_profile(parse_profile_config(config))
    assert result["format"] == "csv"
    assert result["columns"] == [
        {"name": "size", "type": "number"},
        {"name": "count", "type": "category"},
        {"name": "colour", "type": "category"},
        {"name": "flag", "type": "number"},
        {"name": "label", "type": "category"},
    ]
    colour = result["profile"]["features"]["colour"]
    assert colour["kind"] == "categorical"
    assert set(colour["shares"]) == {"red", "green", "blue"}
    assert colour["nullShare"] == pytest.approx(8 / 120)
    assert "profileUri" not in result


def test_wide_dataset_message_stays_under_the_limit(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    config = json.dumps({"dataset": {"uri": "builtin://digits"}})
    assert main(["--config", config, "--termination-log", str(log)]) == 0
    result = read_termination(log)
    assert result["ok"] is True
    assert result["rows"] == 1797
    assert result["digest"].startswith("sha256:")
    assert result["truncated"] is True


def test_schema_violation_exits_4_naming_column_and_rule(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    config = {
        "dataset": {
            "uri": "builtin://wine",
            "schema": {"columns": [{"name": "alcohol", "min": 12.0}]},
        }
    }
    assert main(["--config", json.dumps(config), "--termination-log", str(log)]) == 4
    result = read_termination(log)
    assert result["reason"] == "SchemaError"
    assert result["message"].startswith("1 schema violation: column 'alcohol': ")
    assert "below min 12" in result["message"]
    assert result["violations"] == [result["message"].split(": ", 1)[1]]


def test_unknown_target_is_a_dataset_error(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    config = {"dataset": {"uri": "builtin://wine", "target": "quality"}}
    assert main(["--config", json.dumps(config), "--termination-log", str(log)]) == 4
    assert "dataset.target: no column 'quality'" in read_termination(log)["message"]


def test_profile_as_a_real_process(tmp_path: Path) -> None:
    data = tmp_path / "shop.parquet"
    mixed_frame().to_parquet(data)
    config = tmp_path / "profile.json"
    config.write_text(json.dumps({"dataset": {"uri": str(data), "target": "label"}}))
    log = tmp_path / "termination"
    done = run_cli("profile", "--config", str(config), "--termination-log", str(log))
    assert done.returncode == 0, done.stderr
    result = read_termination(log)
    assert result["digest"] == content_digest(mixed_frame())
    assert result["format"] == "parquet"


def test_unwritable_output_is_a_storage_error(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    taken = tmp_path / "taken"
    taken.write_text("a file where the output folder should be")
    config = {"dataset": {"uri": "builtin://iris"}, "output": {"uri": str(taken / "profile")}}
    assert main(["--config", json.dumps(config), "--termination-log", str(log)]) == 4
    result = read_termination(log)
    assert result["reason"] == "StorageError"
    assert f"output.uri {taken / 'profile'}: cannot write profile.json" in result["message"]
