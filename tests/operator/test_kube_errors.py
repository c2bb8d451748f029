"""API failures become typed errors with the server's message."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from kubeloop.kube.errors import (
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Unavailable,
    translate,
)


def api_exception(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"kind": "Status", "message": message}).encode()
    return error


def test_status_codes_map_to_meanings() -> None:
    cases = {404: NotFound, 409: Conflict, 403: Forbidden, 401: Forbidden, 422: Invalid}
    cases |= {400: Invalid, 429: Unavailable, 503: Unavailable}
    for status, kind in cases.items():
        error = translate(api_exception(status, f"message {status}"))
        assert type(error) is kind, status
        assert error.status == status
        assert f"message {status}" in str(error)


def test_connection_failures_are_unavailable_and_others_generic() -> None:
    assert isinstance(translate(ConnectionRefusedError("refused")), Unavailable)
    teapot = translate(api_exception(418, "teapot"))
    assert type(teapot) is KubeError
    existing = NotFound("gone", 404)
    assert translate(existing) is existing
