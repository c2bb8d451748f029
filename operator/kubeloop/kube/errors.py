"""API failures as a small exception hierarchy, so callers catch a meaning, not a status code.

`translate` turns any exception the kubernetes client raises into one of these, with the
original chained (`raise translate(error) from error`). Connection failures and 5xx/429 answers
are `Unavailable`: worth retrying. 401/403 are `Forbidden`, 400/422 `Invalid`: retrying the same
request will not help.
"""

from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """A request to the API server failed."""

    status: int | None

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):  # noqa: N818 (the names the controllers share)
    """404: the object (or its kind) does not exist."""


class Conflict(KubeError):  # noqa: N818 (the names the controllers share)
    """409: the object exists already, or its resourceVersion moved (optimistic concurrency)."""


class Forbidden(KubeError):  # noqa: N818 (the names the controllers share)
    """401/403: the operator's account may not do this; RBAC must change."""


class Invalid(KubeError):  # noqa: N818 (the names the controllers share)
    """400/422: the API server refused the object (schema, CEL rule, immutable field)."""


class Unavailable(KubeError):  # noqa: N818 (the names the controllers share)
    """The API server could not be reached or asked to retry (5xx, 429, connection errors)."""


_BY_STATUS: dict[int, type[KubeError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: Unavailable,
}


def _status_message(body: Any, fallback: str) -> str:
    """The `message` of a metav1.Status body when there is one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        import json

        try:
            body = json.loads(body)
        except ValueError:
            return body or fallback
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return fallback


def translate(error: BaseException) -> KubeError:
    """The KubeError for an exception of the kubernetes client (or of the network under it)."""
    if isinstance(error, KubeError):
        return error
    status = getattr(error, "status", None)
    if isinstance(status, int) and status > 0:
        body = getattr(error, "body", None)
        message = _status_message(body, getattr(error, "reason", None) or str(error))
        kind = _BY_STATUS.get(status, Unavailable if status >= 500 else KubeError)
        return kind(f"{status}: {message}", status)
    return Unavailable(f"{type(error).__name__}: {error}")
