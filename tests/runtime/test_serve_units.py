"""The server's pure parts: the forest shortcut, the window ring, the batcher, categorical input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

from kubeloop_runtime.artifact import write_artifact
from kubeloop_runtime.serve.batching import MicroBatcher
from kubeloop_runtime.serve.model import (
    Feature,
    ModelSchema,
    Prediction,
    forest_function,
    linear_class_index,
)
from kubeloop_runtime.serve.window import Window


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_forest_shortcut_is_bit_identical_for_classifiers(kind: Any) -> None:
    data = load_wine()
    forest = kind(n_estimators=30, random_state=0).fit(data.data, data.target)
    function = forest_function(forest)
    assert function is not None
    for rows in (data.data[:1], data.data[:7], data.data):
        probabilities = function(rows)
        assert np.array_equal(probabilities, forest.predict_proba(rows))
        assert np.array_equal(forest.classes_[probabilities.argmax(axis=1)], forest.predict(rows))


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_forest_shortcut_is_bit_identical_for_regressors(kind: Any) -> None:
    data = load_diabetes()
    forest = kind(n_estimators=30, random_state=0).fit(data.data, data.target)
    function = forest_function(forest)
    assert function is not None
    assert np.array_equal(function(data.data[:5]).ravel(), forest.predict(data.data[:5]))


@pytest.mark.parametrize(
    ("estimator", "dataset"),
    [
        (LogisticRegression(max_iter=5000), load_wine),
        (LogisticRegression(max_iter=5000), load_breast_cancer),
        (SGDClassifier(random_state=0), load_wine),
        (LinearSVC(random_state=0, max_iter=5000), load_breast_cancer),
    ],
)
def test_linear_shortcut_picks_the_same_class(estimator: Any, dataset: Any) -> None:
    data = dataset()
    model = estimator.fit(data.data, data.target)
    class_index = linear_class_index(model)
    assert class_index is not None
    for rows in (data.data[:1], data.data):
        assert np.array_equal(model.classes_[class_index(rows)], model.predict(rows))


def test_linear_shortcut_skips_classifiers_with_their_own_predict() -> None:
    data = load_iris()
    assert linear_class_index(RidgeClassifier().fit(data.data, data.target)) is None
    assert (
        linear_class_index(RandomForestClassifier(n_estimators=2).fit(data.data, data.target))
        is None
    )


def test_forest_shortcut_only_for_exact_forest_types() -> None:
    data = load_iris()

    class CustomForest(RandomForestClassifier):
        pass

    assert forest_function(LogisticRegression(max_iter=500).fit(data.data, data.target)) is None
    assert forest_function(CustomForest(n_estimators=3).fit(data.data, data.target)) is None
    multi = RandomForestClassifier(n_estimators=3).fit(
        data.data, np.column_stack([data.target, data.target])
    )
    assert forest_function(multi) is None


def _schema(names: list[str], kinds: list[str] | None = None) -> ModelSchema:
    kinds = kinds or ["number"] * len(names)
    return ModelSchema(
        name="m",
        task="classification",
        features=tuple(Feature(n, k) for n, k in zip(names, kinds, strict=True)),  # type: ignore[arg-type]
        classes=("a", "b"),
        digest="sha256:x",
        metadata={},
    )


def test_window_wraps_oldest_first_and_forgets_evicted_ids() -> None:
    window = Window(_schema(["x", "y"]), capacity=5, instance="pod1")
    rows = np.arange(14, dtype=np.float64).reshape(7, 2)  # x = 0, 2, 4, ...
    labels = np.array(list("abababa"), dtype=object)
    assert window.append(rows[:3], labels[:3]) == 0
    assert window.append(rows[3:], labels[3:]) == 3
    assert window.ids(3, 4) == ["pod1-3", "pod1-4", "pod1-5", "pod1-6"]
    snapshot = window.snapshot("m", "1")
    assert snapshot["seq"] == 7
    assert snapshot["size"] == 5
    assert snapshot["columns"]["x"].tolist() == [4.0, 6.0, 8.0, 10.0, 12.0]
    with pytest.raises(KeyError):
        window.prediction_for("pod1-1")  # evicted
    with pytest.raises(KeyError):
        window.prediction_for("pod2-4")  # another replica's id
    with pytest.raises(KeyError):
        window.prediction_for("pod1-7")  # not made yet
    assert window.prediction_for("pod1-6") == "a"
    window.add_feedback("pod1-6", "b")
    window.add_feedback("pod1-6", "a")  # a second label for the same id replaces the first
    assert window.snapshot("m", "1")["feedback"] == {"predictions": ["a"], "labels": ["a"]}


def test_window_batch_larger_than_capacity_keeps_the_last_rows() -> None:
    window = Window(_schema(["x"]), capacity=4, instance="p")
    first = window.append(np.arange(10, dtype=np.float64).reshape(10, 1), np.array(list("ab" * 5)))
    assert first == 0
    assert window.snapshot("m", "1")["columns"]["x"].tolist() == [6.0, 7.0, 8.0, 9.0]
    assert window.prediction_for("p-9") == "b"
    with pytest.raises(KeyError):
        window.prediction_for("p-5")


def _prediction_of(features: Any, probabilities: bool) -> Prediction:
    if (np.asarray(features) < 0).any():
        raise ValueError("negative values are not allowed by this model")
    total = np.asarray(features).sum(axis=1)
    return Prediction(labels=total, class_index=None)


def recording(calls: list[tuple[int, int]]) -> Any:
    """A batch recorder that numbers rows consecutively, like the window does."""

    def record(features: Any, prediction: Prediction, requests: int) -> int:
        first = sum(rows for _, rows in calls)
        calls.append((requests, len(features)))
        return first

    return record


@pytest.fixture
def event_loop_runner() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_batcher_merges_concurrent_requests_and_isolates_a_bad_one(
    event_loop_runner: asyncio.AbstractEventLoop,
) -> None:
    calls: list[tuple[int, int]] = []

    async def scenario() -> list[Any]:
        batcher = MicroBatcher(
            _prediction_of, max_rows=1000, max_wait_seconds=0.002, thread_mode="never",
            direct_threshold_seconds=0,
            recorder=recording(calls),
        )  # fmt: skip
        batcher.start()
        requests = [np.full((i % 3 + 1, 2), float(i)) for i in range(20)]
        requests[7] = np.full((1, 2), -1.0)
        results = await asyncio.gather(
            *(batcher.predict(r) for r in requests), return_exceptions=True
        )
        await batcher.stop()
        return results

    results = event_loop_runner.run_until_complete(scenario())
    for i, result in enumerate(results):
        if i == 7:
            assert isinstance(result, ValueError)
        else:
            prediction, _ = result
            assert prediction.labels.tolist() == [2.0 * i] * (i % 3 + 1)
    # the merged call failed, so each request was retried alone: only the bad one fails
    assert calls == [(1, i % 3 + 1) for i in range(20) if i != 7]


def test_batcher_merges_requests_waiting_together(
    event_loop_runner: asyncio.AbstractEventLoop,
) -> None:
    calls: list[tuple[int, int]] = []

    async def scenario() -> list[tuple[Prediction, int]]:
        batcher = MicroBatcher(
            _prediction_of, max_rows=1000, max_wait_seconds=0.002, thread_mode="never",
            direct_threshold_seconds=0,
            recorder=recording(calls),
        )  # fmt: skip
        batcher.start()
        results = await asyncio.gather(
            *(batcher.predict(np.full((2, 2), float(i))) for i in range(20))
        )
        await batcher.stop()
        return results

    results = event_loop_runner.run_until_complete(scenario())
    assert [p.labels.tolist() for p, _ in results] == [[2.0 * i] * 2 for i in range(20)]
    assert [first for _, first in results] == list(range(0, 40, 2))  # each request's row numbers
    assert calls == [(20, 40)]


def test_batcher_respects_max_rows_and_waits_only_for_arriving_requests(
    event_loop_runner: asyncio.AbstractEventLoop,
) -> None:
    calls: list[tuple[int, int]] = []
    arriving = {"count": 0}

    async def scenario() -> float:
        batcher = MicroBatcher(
            _prediction_of, max_rows=4, max_wait_seconds=0.5, thread_mode="always",
            direct_threshold_seconds=0,
            arriving=lambda: arriving["count"],
            recorder=recording(calls),
        )  # fmt: skip
        batcher.start()
        await asyncio.gather(*(batcher.predict(np.ones((1, 2))) for _ in range(10)))
        started = time.perf_counter()
        await batcher.predict(np.ones((1, 2)))  # nobody arriving: no wait
        alone = time.perf_counter() - started
        await batcher.stop()
        return alone

    alone = event_loop_runner.run_until_complete(scenario())
    assert all(rows <= 4 for _, rows in calls)
    assert sum(rows for _, rows in calls) == 11
    assert alone < 0.25


@pytest.fixture(scope="module")
def categorical_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Pipeline over iris with one categorical feature (petal size class), fitted on a frame."""
    data = load_iris(as_frame=True)
    frame = data.data.copy()
    frame["petal size"] = pd.cut(
        frame["petal length (cm)"], [0, 2.5, 5, 10], labels=["small", "medium", "large"]
    ).astype(str)
    frame = frame.drop(columns=["petal length (cm)"])
    encoder = ColumnTransformer(
        [("size", OneHotEncoder(handle_unknown="error"), ["petal size"])], remainder="passthrough"
    )
    model = make_pipeline(encoder, LogisticRegression(max_iter=1000)).fit(frame, data.target)
    features = [
        {"name": name, "type": "category" if name == "petal size" else "number"}
        for name in frame.columns
    ]
    metadata = {
        "schemaVersion": 1,
        "modelName": "iris-cat",
        "task": "classification",
        "features": features,
        "target": {"name": "target", "classes": list(map(str, data.target_names))},
        "profile": {},
    }
    directory = tmp_path_factory.mktemp("categorical")
    write_artifact(directory, model, metadata)
    return directory


def test_categorical_features_through_predict_and_v2(
    categorical_artifact: Path, live_server: Any
) -> None:
    server = live_server(categorical_artifact)
    with httpx.Client(base_url=server.url) as client:
        rows = [[5.1, 3.5, 0.2, "small"], [6.5, 3.0, 2.0, "large"]]
        answer = client.post("/predict", json={"instances": rows})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == ["setosa", "virginica"]
        names = ["sepal length (cm)", "sepal width (cm)", "petal width (cm)", "petal size"]
        records = [dict(zip(names, row, strict=True)) for row in rows]
        assert client.post("/predict", json={"instances": records}).json()["predictions"] == [
            "setosa",
            "virginica",
        ]
        v2 = client.post(
            "/v2/models/iris-cat/infer",
            json={"inputs": [
                {"name": name, "shape": [2], "datatype": "BYTES" if name == "petal size"
                 else "FP64", "data": [row[i] for row in rows]}
                for i, name in enumerate(names)
            ]},
        )  # fmt: skip
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["data"] == ["setosa", "virginica"]
        # an unknown category is refused by the model: 422 naming the problem, not a 500
        unknown = client.post("/predict", json={"instances": [[5.1, 3.5, 0.2, "huge"]]})
        assert unknown.status_code == 422
        assert "huge" in unknown.json()["error"]
        not_a_category = client.post("/predict", json={"instances": [[5.1, 3.5, 0.2, 1.5]]})
        assert not_a_category.status_code == 422
        assert not_a_category.json()["field"] == "petal size"
        numeric_as_string = client.post("/predict", json={"instances": [["5", 3.5, 0.2, "small"]]})
        assert numeric_as_string.status_code == 422
        assert numeric_as_string.json()["field"] == "sepal length (cm)"
        window = client.get("/v2/window").json()
        assert window["columns"]["petal size"] == ["small", "large", "small", "large", "small",
                                                   "large"]  # fmt: skip


@pytest.fixture(scope="module")
def missing_values_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that handles missing values itself: HistGradientBoosting on iris."""
    data = load_iris()
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(data.data, data.target)
    metadata = {
        "schemaVersion": 1,
        "modelName": "iris-hgb",
        "task": "classification",
        "features": [{"name": name, "type": "number"} for name in data.feature_names],
        "target": {"name": "target", "classes": list(map(str, data.target_names))},
        "profile": {},
    }
    directory = tmp_path_factory.mktemp("missing-values")
    write_artifact(directory, model, metadata)
    return directory


def test_missing_values_only_when_allowed(missing_values_artifact: Path, live_server: Any) -> None:
    row_with_gap = [[5.1, None, 1.4, 0.2]]
    strict = live_server(missing_values_artifact)
    refused = httpx.post(f"{strict.url}/predict", json={"instances": row_with_gap})
    assert refused.status_code == 422
    assert "null is not allowed" in refused.json()["error"]

    lenient = live_server(missing_values_artifact, allow_missing=True)
    answer = httpx.post(f"{lenient.url}/predict", json={"instances": row_with_gap})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == ["setosa"]
    v2 = httpx.post(
        f"{lenient.url}/v2/models/iris-hgb/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                          "data": [5.1, None, 1.4, 0.2]}]},
    )  # fmt: skip
    assert v2.status_code == 200, v2.text
    window = httpx.get(f"{lenient.url}/v2/window").content
    assert b"NaN" not in window  # orjson writes NaN as null: the window stays valid JSON
    still_not_a_string = httpx.post(
        f"{lenient.url}/predict", json={"instances": [[5.1, "x", 1.4, 0.2]]}
    )
    assert still_not_a_string.status_code == 422
