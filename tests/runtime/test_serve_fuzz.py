"""Fuzz the server's OpenAPI surface with schemathesis: no input may get a 5xx.

The schema is the app's own /openapi.json, which describes the raw-body endpoints (/predict,
v2 infer, /feedback) too, so the fuzzer exercises their parsers. A real uvicorn server on
127.0.0.1 answers; examples per operation are bounded to keep the run short.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow
TrainedArtifact = Any  # tests/runtime/conftest.py
EXAMPLES_PER_OPERATION = 60


def test_openapi_describes_raw_body_endpoints(
    iris_artifact: TrainedArtifact, live_server: Callable[..., Any]
) -> None:
    server = live_server(iris_artifact.directory)
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/predict", "/feedback", "/v2/models/{model_name}/infer"):
        body = spec["paths"][path]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert schema, path
    infer_schema = spec["paths"]["/v2/models/{model_name}/infer"]["post"]["requestBody"]
    assert infer_schema["content"]["application/json"]["schema"]["required"] == ["inputs"]


def test_fuzz_no_server_errors(
    iris_artifact: TrainedArtifact, live_server: Callable[..., Any]
) -> None:
    server = live_server(iris_artifact.directory, max_body_bytes=64 * 1024)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    statuses: set[int] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(base_url=server.url, timeout=10)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.200} -> "
                    f"{response.status_code} {response.text[:200]}"
                )

        call()
    # names that are the served model's, so the fuzzer reaches past the 404 for unknown models
    named = schema["/v2/models/{model_name}/infer"]["POST"]

    @given(case=named.as_strategy(path_parameters={"model_name": "iris"}))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION * 3,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call_served_model(case: Any) -> None:
        response = case.call(base_url=server.url, timeout=10)
        statuses.add(response.status_code)
        if response.status_code >= 500:
            failures.append(f"infer {case.body!r:.200} -> {response.status_code}")

    call_served_model()
    assert not failures, "\n".join(failures[:20])
    assert 422 in statuses, "the fuzzer never got past the parser to the schema checks"
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
