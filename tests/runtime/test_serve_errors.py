"""Bad input gets a 4xx JSON error naming the problem; never a 500.

All over real HTTP: uvicorn on 127.0.0.1 with an ephemeral port (tests/runtime/conftest.py),
serving the iris forest with a 4 KiB body limit (one server shared by these tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

TrainedArtifact = Any  # tests/runtime/conftest.py
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture
def client(iris_artifact: TrainedArtifact, shared_server: Any) -> Iterator[httpx.Client]:
    server = shared_server(iris_artifact.directory, max_body_bytes=4096)
    with httpx.Client(base_url=server.url) as http:
        yield http


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    """Post JSON; bytes go as they are (for what Python's json cannot write, like 1e400)."""
    if isinstance(body, bytes):
        return client.post(path, content=body, headers={"content-type": "application/json"})
    return client.post(path, json=body)


def tensor(data: Any, shape: list[int], datatype: str = "FP64", name: str = "input-0") -> Any:
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


def records(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = dict(zip(FEATURES, IRIS_ROW, strict=True))
    record.update(changes)
    return {"instances": [{key: value for key, value in record.items() if value != "DROP"}]}


PREDICT_CASES: list[tuple[str, Any, int, str, str | None]] = [
    # (case, body, status, words in the message, field)
    ("empty batch", {"instances": []}, 422, "empty", "instances"),
    ("too few features", {"instances": [[1, 2, 3]]}, 422, "expected 4 features", "instances[0]"),
    ("ragged rows", {"instances": [IRIS_ROW, [1, 2]]}, 422, "got 2", "instances[1]"),
    ("string value", {"instances": [[1, 2, "x", 4]]}, 422, "not a number", FEATURES[2]),
    ("null value", {"instances": [[1, None, 3, 4]]}, 422, "null", FEATURES[1]),
    ("boolean value", {"instances": [[True, False, True, True]]}, 422, "boolean", FEATURES[0]),
    # orjson refuses numbers beyond float range while parsing, naming the place
    ("infinite value", b'{"instances": [[1, 2, 3, 1e400]]}', 400, "infinity", None),
    ("NaN literal", b'{"instances": [[1, 2, 3, NaN]]}', 400, "not valid JSON", None),
    ("nested value", {"instances": [[1, 2, 3, [4]]]}, 422, "nested", FEATURES[3]),
    ("row not a list", {"instances": [5]}, 422, "expected a list of 4", "instances[0]"),
    ("instances not a list", {"instances": {"a": 1}}, 422, "list of rows", "instances"),
    ("missing instances", {"rows": [IRIS_ROW]}, 422, "unknown field 'rows'", "rows"),
    ("no instances at all", {}, 422, "missing field 'instances'", "instances"),
    ("body not an object", [IRIS_ROW], 400, "JSON object", None),
    ("unknown record key", records(color="red"), 422, "unknown feature 'color'", "color"),
    ("missing record key", records(**{FEATURES[1]: "DROP"}), 422, "missing feature", FEATURES[1]),
    ("record value a string", records(**{FEATURES[0]: "5"}), 422, "not a number", FEATURES[0]),
    ("records mixed with rows", {"instances": [records()["instances"][0], IRIS_ROW]}, 422,
     "cannot be mixed", "instances[1]"),
    ("probabilities not a flag", {"instances": [IRIS_ROW], "probabilities": "yes"}, 422,
     "true or false", "probabilities"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "words", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in PREDICT_CASES],
)
def test_predict_rejects(
    client: httpx.Client, body: Any, status: int, words: str, field: str | None
) -> None:
    response = post(client, "/predict", body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert words in answer["error"]
    assert answer["field"] == field


INFER_CASES: list[tuple[str, Any, int, str, str | None]] = [
    ("no inputs", {"inputs": []}, 422, "non-empty list", "inputs"),
    ("inputs missing", {"id": "x"}, 422, "non-empty list", "inputs"),
    ("tensor without name", {"inputs": [{"shape": [1, 4]}]}, 422, "string 'name'", "inputs[0]"),
    ("unknown datatype", tensor(IRIS_ROW, [1, 4], "FLOAT"), 422, "datatype 'FLOAT'",
     "input 'input-0'"),
    ("shape and data disagree", tensor(IRIS_ROW, [2, 4]), 422, "needs 8 values, 'data' has 4",
     "input 'input-0'"),
    ("wrong feature count", tensor([1, 2, 3], [1, 3]), 422, "expected [N, 4]", "input-0"),
    ("bad shape", tensor(IRIS_ROW, [1, -4]), 422, "non-negative integers", "input 'input-0'"),
    ("shape not a list", tensor(IRIS_ROW, "1x4"), 422, "'shape'", "input 'input-0'"),  # type: ignore[arg-type]
    ("INT64 with fractions", tensor(IRIS_ROW, [1, 4], "INT64"), 422,
     "datatype INT64 does not match", "input 'input-0'"),
    ("UINT8 with negatives", tensor([1, -2, 3, 4], [1, 4], "UINT8"), 422,
     "datatype UINT8 does not match", "input 'input-0'"),
    # found by the fuzzer: a null makes an object array, whose values are not numpy scalars
    ("BOOL with nulls", tensor([None] * 4, [1, 4], "BOOL"), 422,
     "datatype BOOL does not match its data (found null)", "input 'input-0'"),
    ("FP32 with strings", tensor(["a", "b", "c", "d"], [1, 4], "FP32"), 422,
     "does not match", "input 'input-0'"),
    ("BYTES for numeric features", tensor(["a", "b", "c", "d"], [1, 4], "BYTES"), 422,
     "cannot feed numeric features", "input-0"),
    ("BOOL for numeric features", tensor([True] * 4, [1, 4], "BOOL"), 422,
     "cannot feed numeric features", "input-0"),
    ("infinite value", b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
     b'"data": [1, 2, -1e999, 4]}]}', 400, "infinity", None),
    ("ragged nested data", tensor([[1, 2], [3]], [1, 3]), 422, "regular nested list",
     "input 'input-0'"),
    ("empty batch", tensor([], [0, 4]), 422, "empty", "input-0"),
    ("unknown feature tensor",
     {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]}
                 for n in [*FEATURES[:3], "color"]]},
     422, "'color' is not a feature", "color"),
    ("missing feature tensor",
     {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]}
                 for n in FEATURES[:3]]},
     422, "missing input for feature", FEATURES[3]),
    ("feature tensors of different lengths",
     {"inputs": [{"name": n, "shape": [1 + (n == FEATURES[2])], "datatype": "FP64",
                  "data": [1.0] * (1 + (n == FEATURES[2]))} for n in FEATURES]},
     422, "has 2 rows, the other inputs have 1", FEATURES[2]),
    ("unknown output", {**tensor(IRIS_ROW, [1, 4]), "outputs": [{"name": "logits"}]}, 422,
     "unknown output 'logits'", "outputs[0].name"),
    ("id not a string", {**tensor(IRIS_ROW, [1, 4]), "id": 7}, 422, "'id'", "id"),
    ("body not an object", "hello", 400, "JSON object", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "words", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in INFER_CASES],
)
def test_infer_rejects(
    client: httpx.Client, body: Any, status: int, words: str, field: str | None
) -> None:
    response = post(client, "/v2/models/iris/infer", body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert words in answer["error"]
    assert answer["field"] == field


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/v2/models/wine/infer", 404, "model_name"),
        ("/v2/models/iris/versions/9/infer", 404, "model_version"),
        ("/v2/models/wine", 404, "model_name"),
        ("/v2/models/wine/ready", 404, "model_name"),
        ("/v2/models/iris/versions/9/ready", 404, "model_version"),
    ],
)
def test_unknown_model_or_version(client: httpx.Client, path: str, status: int, field: str) -> None:
    method = client.post if path.endswith("/infer") else client.get
    kwargs: dict[str, Any] = {"json": tensor(IRIS_ROW, [1, 4])} if method == client.post else {}
    response = method(path, **kwargs)
    assert response.status_code == status
    assert response.json()["field"] == field
    assert "not served here" in response.json()["error"] or "no version" in response.json()["error"]


@pytest.mark.parametrize("path", ["/predict", "/v2/models/iris/infer", "/feedback"])
def test_malformed_json(client: httpx.Client, path: str) -> None:
    response = client.post(path, content=b'{"instances": [[1, 2', headers=JSON_HEADERS)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    empty = client.post(path, content=b"", headers=JSON_HEADERS)
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]


JSON_HEADERS = {"content-type": "application/json"}


@pytest.mark.parametrize("path", ["/predict", "/v2/models/iris/infer", "/feedback"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]
)
def test_wrong_content_type(client: httpx.Client, path: str, content_type: str) -> None:
    response = client.post(path, content=b'{"instances": [[1,2,3,4]]}',
                           headers={"content-type": content_type})  # fmt: skip
    assert response.status_code == 415
    assert content_type in response.json()["error"]
    assert response.json()["field"] == "content-type"


def test_json_suffix_content_type_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        "/predict",
        content=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        headers={"content-type": "application/vnd.kubeloop+json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/predict", "/v2/models/iris/infer", "/feedback"])
def test_oversized_body_by_content_length(client: httpx.Client, path: str) -> None:
    body = b'{"instances": [' + b",".join([b"[5.1, 3.5, 1.4, 0.2]"] * 300) + b"]}"
    assert len(body) > 4096
    response = client.post(path, content=body, headers=JSON_HEADERS)
    assert response.status_code == 413
    assert "exceeds the limit of 4096 bytes" in response.json()["error"]


@pytest.mark.parametrize("path", ["/predict", "/v2/models/iris/infer"])
def test_oversized_body_streamed_without_length(
    iris_artifact: TrainedArtifact, live_server: Any, path: str
) -> None:
    """Chunked upload, no Content-Length: refused as soon as the streamed size passes the limit."""
    server = live_server(iris_artifact.directory, max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(400):
            yield b"[5.1, 3.5, 1.4, 0.2],"
        yield b"[5.1, 3.5, 1.4, 0.2]]}"

    response = httpx.post(f"{server.url}{path}", content=chunks(), headers=JSON_HEADERS)
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def test_feedback_errors(iris_artifact: TrainedArtifact, live_server: Any) -> None:
    client = httpx.Client(base_url=live_server(iris_artifact.directory).url)
    ids = client.post("/predict", json={"instances": [IRIS_ROW]}).json()["ids"]
    cases: list[tuple[Any, int, str, str | None]] = [
        ({"id": "deadbeef-0", "label": "setosa"}, 404, "unknown", "id"),
        ({"id": ids[0] + "0", "label": "setosa"}, 404, "unknown", "id"),
        ({"id": "no-dash-number-x", "label": "setosa"}, 404, "unknown", "id"),
        ({"id": ids[0], "label": "tulip"}, 422, "not one of the classes", "label"),
        ({"id": ids[0], "label": 7}, 422, "not one of the classes", "label"),
        ({"id": ids[0]}, 422, "missing 'label'", "label"),
        ({"id": 12, "label": "setosa"}, 422, "prediction id string", "id"),
        ({"id": ids[0], "label": "setosa", "note": 1}, 422, "unknown field 'note'", "note"),
        ([], 422, "empty", "feedback"),
        ([{"id": ids[0], "label": "setosa"}, "x"], 400, "must be an object", None),
        ("setosa", 400, "must be an object", None),
    ]
    for body, status, words, field in cases:
        response = client.post("/feedback", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"], body
        assert response.json()["field"] == field, body
    # a list with one bad entry is refused as a whole
    mixed = [{"id": ids[0], "label": "setosa"}, {"id": "deadbeef-1", "label": "setosa"}]
    assert client.post("/feedback", json=mixed).status_code == 404
    window = client.get("/v2/window").json()
    assert window["feedback"] == {"predictions": [], "labels": []}


def test_unknown_route_and_method(client: httpx.Client) -> None:
    missing = client.get("/v3/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found", "field": None}
    wrong_method = client.get("/predict")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()
