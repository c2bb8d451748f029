"""Train → serve → drift with the real parts: the contract between them, end to end.

The real train entry point writes the artifact (and the reference profile) from a bundled dataset
or a CSV with a categorical column; the real model server serves it on loopback; real requests
fill its window; the drift checker reads that window. Nothing is written by hand in between, so a
drift between what train profiles and what serve keeps would show here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from helpers_train import mixed_frame, train_config
from sklearn.datasets import load_diabetes, load_wine

from kubeloop_runtime import train
from kubeloop_runtime.drift.hysteresis import Freshness
from kubeloop_runtime.drift.loop import DriftChecker, load_model_reference
from kubeloop_runtime.drift.settings import DriftSettings


def run_train(tmp_path: Path, config: dict[str, Any]) -> Path:
    output = Path(config["output"]["uri"])
    log = tmp_path / "termination-log"
    code = train.main(["--config", json.dumps(config), "--termination-log", str(log)])
    assert code == 0, log.read_text()
    return output


def checker_for(url: str, model_dir: Path, **overrides: Any) -> DriftChecker:
    values: dict[str, Any] = {
        "server_url": url,
        "model_dir": model_dir,
        "isvc_name": None,
        "drift_min_samples": 50,
        "drift_threshold": 0.1,
        "drift_raise_after": 1,
        "drift_clear_after": 1,
        "drift_metrics_port": 0,
    }
    values.update(overrides)
    return DriftChecker(DriftSettings(**values))


def predict(url: str, records: list[dict[str, Any]]) -> list[str]:
    answer = httpx.post(f"{url}/predict", json={"instances": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    ids: list[str] = answer.json()["ids"]
    return ids


def test_wine_classifier_clean_then_shifted(
    tmp_path: Path, live_server: Callable[..., Any]
) -> None:
    config = train_config(
        tmp_path / "wine",
        modelName="wine",
        dataset={"uri": "builtin://wine", "format": "auto", "target": "target"},
    )
    model_dir = run_train(tmp_path, config)
    features = load_wine(as_frame=True).data
    server = live_server(model_dir, window_size=len(features))
    checker = checker_for(server.url, model_dir)
    try:
        predict(server.url, features.to_dict(orient="records"))
        clean = checker.check_once()
        assert clean.freshness is Freshness.FRESH
        assert clean.data is not None
        assert clean.data.drifted_features == []
        assert not clean.state.detected

        moved = features.copy()
        for name in ("alcohol", "proline"):
            moved[name] = moved[name] + 1.5 * features[name].std()
        predict(server.url, moved.to_dict(orient="records"))
        drifted = checker.check_once()
        assert drifted.data is not None
        assert sorted(drifted.data.drifted_features) == ["alcohol", "proline"]
        assert drifted.state.detected
    finally:
        checker.close()


def test_diabetes_regressor_concept_drift_from_feedback(
    tmp_path: Path, live_server: Callable[..., Any]
) -> None:
    config = train_config(
        tmp_path / "diabetes",
        modelName="diabetes",
        dataset={"uri": "builtin://diabetes", "format": "auto", "target": "target"},
        estimator="sklearn.linear_model.Ridge",
        params={"alpha": 0.1},
        evaluation={"testSize": 0.25, "metric": "rmse", "threshold": 80.0, "randomSeed": 7},
    )
    model_dir = run_train(tmp_path, config)
    reference = load_model_reference(DriftSettings(model_dir=model_dir))
    assert reference.task == "regression"
    assert "rmse" in reference.metrics
    data = load_diabetes(as_frame=True)
    server = live_server(model_dir, window_size=len(data.data))
    checker = checker_for(server.url, model_dir)
    try:
        ids = predict(server.url, data.data.to_dict(orient="records"))
        # The world changed: the true values are now far from what the model learned.
        labels = (data.target.to_numpy() * 2.0 + 100.0).tolist()
        feedback = [{"id": i, "label": y} for i, y in zip(ids, labels, strict=True)]
        assert httpx.post(f"{server.url}/feedback", json=feedback).status_code == 200
        outcome = checker.check_once()
        assert outcome.data is not None
        assert outcome.data.drifted_features == []  # the inputs did not move
        assert outcome.concept is not None
        assert outcome.concept.labeled == len(labels)
        assert outcome.concept.rmse is not None
        assert outcome.concept.rmse > 2 * float(reference.metrics["rmse"])
        assert outcome.concept.detected
        assert outcome.state.detected
    finally:
        checker.close()


def test_categorical_column_through_the_real_server(
    tmp_path: Path, live_server: Callable[..., Any]
) -> None:
    frame = mixed_frame(rows=600, seed=11)
    csv = tmp_path / "mixed.csv"
    frame.to_csv(csv, index=False)
    config = train_config(
        tmp_path / "mixed",
        modelName="mixed",
        dataset={"uri": f"file://{csv}", "format": "csv", "target": "label"},
        evaluation={"testSize": 0.25, "metric": "accuracy", "threshold": 0.5, "randomSeed": 7},
    )
    model_dir = run_train(tmp_path, config)
    references = load_model_reference(DriftSettings(model_dir=model_dir)).references
    assert references["colour"].kind == "categorical"
    features = frame.drop(columns="label")
    # The server takes numbers for a number feature, not JSON booleans: send the flag as 0/1,
    # which is also how the profile sees a bool column.
    features["flag"] = features["flag"].astype(int)
    server = live_server(model_dir, window_size=300, allow_missing=True)
    checker = checker_for(server.url, model_dir, drift_min_samples=100)
    try:
        same = features.sample(300, random_state=1)
        predict(server.url, _records(same))
        clean = checker.check_once()
        assert clean.data is not None
        assert "colour" not in clean.data.drifted_features

        rng = np.random.default_rng(5)
        reds = same.copy()
        reds["colour"] = rng.choice(["red", "blue"], p=[0.9, 0.1], size=len(reds)).astype(object)
        predict(server.url, _records(reds))
        shifted = checker.check_once()
        assert shifted.data is not None
        by_name = {result.feature: result for result in shifted.data.features}
        assert by_name["colour"].drifted
        assert by_name["colour"].method == "chisquare"
        assert "colour" in shifted.data.drifted_features
    finally:
        checker.close()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON records with NaN/None as null."""
    return [
        {
            str(key): (None if isinstance(value, float) and np.isnan(value) else value)
            for key, value in row.items()
        }
        for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    ]
