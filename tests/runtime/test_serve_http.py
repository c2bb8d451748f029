"""The model server's main flows over real HTTP: uvicorn on 127.0.0.1, real trained models.

Every endpoint is called on a classification model (iris, random forest) and a regression
model (diabetes, ridge); the answers are checked against the estimator's own predictions, and
/metrics is parsed with prometheus_client's parser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

# Fixtures (tests/runtime/conftest.py): TrainedArtifact folders and a LiveServer starter.
TrainedArtifact = Any
StartServer = Callable[..., Any]


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_classification_endpoints(iris_artifact: TrainedArtifact, live_server: StartServer) -> None:
    server = live_server(iris_artifact.directory, model_version="3")
    url = server.url
    estimator = joblib.load(iris_artifact.directory / "model.joblib")
    rows = iris_artifact.rows[[0, 60, 120, 75]]
    expected = [iris_artifact.classes[code] for code in estimator.predict(rows)]  # type: ignore[index]

    with httpx.Client(base_url=url) as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get("/v2").json()["name"] == "kubeloop"
        assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
        assert client.get("/v2/models/iris/versions/3/ready").status_code == 200

        metadata = client.get("/v2/models/iris").json()
        assert metadata["name"] == "iris"
        assert metadata["versions"] == ["3"]
        assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert metadata["parameters"]["classes"] == iris_artifact.classes
        assert metadata["parameters"]["digest"] == iris_artifact.digest
        assert client.get("/v2/models/iris/versions/3").json() == metadata

        # v2, one [N, F] tensor, both outputs
        infer = client.post(
            "/v2/models/iris/infer",
            json={
                "id": "request-1",
                "inputs": [
                    {"name": "input-0", "shape": [4, 4], "datatype": "FP32",
                     "data": rows.tolist()},
                ],
                "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
            },
        )  # fmt: skip
        assert infer.status_code == 200, infer.text
        answer = infer.json()
        assert answer["id"] == "request-1"
        assert answer["model_name"] == "iris"
        assert answer["model_version"] == "3"
        predict_output, proba_output = answer["outputs"]
        assert predict_output == {
            "name": "predict", "datatype": "BYTES", "shape": [4], "data": expected,
        }  # fmt: skip
        assert proba_output["shape"] == [4, 3]
        np.testing.assert_allclose(
            np.reshape(proba_output["data"], (4, 3)), estimator.predict_proba(rows)
        )
        v2_ids = answer["parameters"]["prediction_ids"]
        assert len(set(v2_ids)) == 4

        # v2, one tensor per feature (the pandas-codec form), versioned path
        per_feature = client.post(
            "/v2/models/iris/versions/3/infer",
            json={
                "inputs": [
                    {"name": name, "shape": [4, 1], "datatype": "FP64",
                     "data": rows[:, position].tolist()}
                    for position, name in enumerate(iris_artifact.feature_names)
                ]
            },
        )  # fmt: skip
        assert per_feature.status_code == 200, per_feature.text
        assert per_feature.json()["outputs"][0]["data"] == expected

        # /predict: rows and records, with probabilities
        plain = client.post("/predict", json={"instances": rows.tolist()}).json()
        assert plain["predictions"] == expected
        assert plain["model"] == "iris"
        assert plain["modelVersion"] == "3"
        records = [
            dict(zip(iris_artifact.feature_names, row, strict=True)) for row in rows.tolist()
        ]
        by_name = client.post("/predict", json={"instances": records, "probabilities": True})
        assert by_name.json()["predictions"] == expected
        np.testing.assert_allclose(by_name.json()["probabilities"], estimator.predict_proba(rows))

        # feedback by prediction id: a class name, and a class code
        labels = {plain["ids"][0]: "setosa", plain["ids"][1]: 2}
        feedback = client.post(
            "/feedback", json=[{"id": key, "label": value} for key, value in labels.items()]
        )
        assert feedback.status_code == 200, feedback.text
        assert feedback.json() == {"accepted": 2, "labelled": 2}
        assert (
            client.post("/feedback", json={"id": v2_ids[0], "label": "virginica"}).json()[
                "labelled"
            ]
            == 3
        )

        window = client.get("/v2/window").json()
        assert window["model"] == "iris"
        assert window["modelVersion"] == "3"
        assert window["seq"] == 16
        assert window["size"] == 16
        assert window["features"] == iris_artifact.feature_names
        first = iris_artifact.feature_names[0]
        assert window["columns"][first] == (rows[:, 0].tolist() * 4)
        assert window["feedback"] == {
            "predictions": [expected[0], expected[1], expected[0]],
            "labels": ["setosa", "virginica", "virginica"],
        }

        samples = metric_samples(client.get("/metrics").text)
    infer_ok = ("endpoint", "/v2/models/{model_name}/infer"), ("status", "200")
    assert samples[("kubeloop_requests_total", infer_ok)] == 1
    assert samples[("kubeloop_requests_total", (("endpoint", "/predict"), ("status", "200")))] == 2
    versioned = (
        ("endpoint", "/v2/models/{model_name}/versions/{model_version}/infer"),
        ("status", "200"),
    )
    assert samples[("kubeloop_requests_total", versioned)] == 1
    assert samples[("kubeloop_request_duration_seconds_count", infer_ok)] == 1
    predicted = {
        name: samples.get(("kubeloop_predictions_total", (("class_name", name),)), 0)
        for name in iris_artifact.classes  # type: ignore[union-attr]
    }
    assert sum(predicted.values()) == 16
    assert predicted[expected[0]] >= 4
    assert samples[("kubeloop_window_rows", ())] == 16
    assert samples[("kubeloop_window_capacity", ())] == 5000
    assert samples[("kubeloop_feedback_labels_total", ())] == 3
    assert samples[("kubeloop_model_ready", ())] == 1
    info = [key for key in samples if key[0] == "kubeloop_model_info"]
    assert dict(info[0][1])["digest"] == iris_artifact.digest


def test_regression_endpoints(diabetes_artifact: TrainedArtifact, live_server: StartServer) -> None:
    server = live_server(diabetes_artifact.directory, model_name="diabetes-ridge", window_size=8)
    estimator = joblib.load(diabetes_artifact.directory / "model.joblib")
    rows = diabetes_artifact.rows[:5]
    expected = estimator.predict(rows)
    with httpx.Client(base_url=server.url) as client:
        metadata = client.get("/v2/models/diabetes-ridge").json()
        assert metadata["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
        answer = client.post(
            "/v2/models/diabetes-ridge/infer",
            json={"inputs": [{"name": "x", "shape": [5, 10], "datatype": "FP64",
                              "data": rows.ravel().tolist()}]},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        output = answer.json()["outputs"][0]
        assert output["datatype"] == "FP64"
        assert output["shape"] == [5]
        np.testing.assert_allclose(output["data"], expected)

        plain = client.post("/predict", json={"instances": rows.tolist()}).json()
        np.testing.assert_allclose(plain["predictions"], expected)
        assert (
            client.post("/feedback", json={"id": plain["ids"][4], "label": 151.0}).status_code
            == 200
        )

        # the window keeps only the last 8 of 10 rows; the first ids have left it
        window = client.get("/v2/window").json()
        assert window["seq"] == 10
        assert window["size"] == 8
        assert window["capacity"] == 8
        assert window["columns"]["age"] == [*rows[2:, 0].tolist(), *rows[:, 0].tolist()][:8]
        gone = client.post("/feedback", json={"id": plain["ids"][0], "label": 1.0})
        assert gone.status_code == 200  # ids 5..9 are the /predict rows, all still in the window
        evicted = answer.json()["parameters"]["prediction_ids"][0]
        missing = client.post("/feedback", json={"id": evicted, "label": 1.0})
        assert missing.status_code == 404
        assert missing.json()["field"] == "id"

        samples = metric_samples(client.get("/metrics").text)
    # negative bucket bounds: no _count/_sum (Prometheus' rule); the +Inf bucket counts all
    assert samples[("kubeloop_predicted_value_bucket", (("le", "+Inf"),))] == 10
    assert samples[("kubeloop_window_seq", ())] == 10


def test_concurrent_requests_share_predict_calls(
    iris_artifact: TrainedArtifact, live_server: StartServer
) -> None:
    """Requests sent together are merged into fewer predict calls, each still answered right."""
    import asyncio

    server = live_server(iris_artifact.directory, direct_threshold_ms=0)  # always batch
    estimator = joblib.load(iris_artifact.directory / "model.joblib")
    rows = iris_artifact.rows

    async def send_all() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.url) as client:
            calls = [
                client.post("/predict", json={"instances": [rows[i].tolist()]}) for i in range(150)
            ]
            return [response.json() for response in await asyncio.gather(*calls)]

    answers = asyncio.run(send_all())
    expected = [iris_artifact.classes[code] for code in estimator.predict(rows)]  # type: ignore[index]
    assert [answer["predictions"][0] for answer in answers] == expected
    samples = metric_samples(httpx.get(f"{server.url}/metrics").text)
    calls = samples[("kubeloop_batch_requests_count", ())]
    assert samples[("kubeloop_batch_requests_sum", ())] == 150
    assert calls < 150, "no two concurrent requests shared a predict call"


@pytest.mark.parametrize("path", ["/v2/models/iris/ready", "/v2/health/ready"])
def test_not_ready_while_loading(
    iris_artifact: TrainedArtifact,
    live_server: StartServer,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Readiness answers 503 until the model is loaded (loading is slowed down here)."""
    import threading

    from kubeloop_runtime.serve import app as app_module

    release = threading.Event()
    real_load = app_module.load

    def slow_load(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(app_module, "load", slow_load)
    server = live_server(iris_artifact.directory, wait_ready=False, model_name="iris")
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    pending = httpx.get(f"{server.url}{path}")
    assert pending.status_code == 503
    assert "still loading" in pending.json()["error"]
    early = httpx.post(f"{server.url}/predict", json={"instances": [[1, 2, 3, 4]]})
    assert early.status_code == 503
    release.set()
    server.wait_ready()
    assert httpx.get(f"{server.url}{path}").status_code == 200
