"""What train records about how a model was made: the framework (scikit-learn's and Python's
versions, for ModelVersion spec.framework) and an input example (training rows in /predict's
records form, for the smoke test), in the result and in metadata.json. The real train entry
point as a real process; the example is predicted by the real model."""

from __future__ import annotations

import json
import platform
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from helpers_train import mixed_frame, read_termination, run_cli, train_config

from kubeloop_runtime.train import input_example, result_example


def test_the_result_and_metadata_carry_the_framework_and_an_input_example(
    tmp_path: Path,
) -> None:
    output = tmp_path / "model"
    log = tmp_path / "termination-log"
    config = train_config(output, params={"n_estimators": 10})
    completed = run_cli(
        "train", "--config", json.dumps(config), "--termination-log", str(log), timeout=180
    )
    assert completed.returncode == 0, completed.stderr
    result = read_termination(log)
    framework = {
        "name": "scikit-learn",
        "version": version("scikit-learn"),
        "pythonVersion": platform.python_version(),
    }
    assert result["framework"] == framework
    metadata = json.loads((output / "metadata.json").read_text())
    assert metadata["framework"] == framework
    features = [feature["name"] for feature in metadata["features"]]
    example = metadata["inputExample"]
    assert len(example) == 5
    assert all(set(row) == set(features) for row in example)  # metadata.json sorts keys
    assert result["inputExample"] == example[:2]
    # The rows are what the model takes: it predicts them.
    model = joblib.load(output / "model.joblib")
    rows = np.array([[row[name] for name in features] for row in example], dtype=np.float64)
    assert len(model.predict(rows)) == 5


def test_the_example_prefers_complete_rows_and_keeps_categories_as_strings() -> None:
    frame = mixed_frame().drop(columns=["label"])
    frame.iloc[0, 0] = np.nan
    rows = input_example(frame, 3)
    assert len(rows) == 3
    assert all(value is not None for row in rows for value in row.values())
    values = [value for row in rows for value in row.values()]
    assert all(isinstance(value, str | int | float | bool) for value in values)
    wide = input_example(pd.DataFrame({f"pixel_{i}": [0.5] * 3 for i in range(200)}), 3)
    assert result_example(wide) == []  # over the termination message's budget: metadata only
