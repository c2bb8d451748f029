"""Thin Kubernetes I/O of the sidecar: read an InferenceService, merge-patch its status.

Credentials: in-cluster config when running in a pod, else the kubeconfig named by ``KUBECONFIG``
(or ``~/.kube/config``). API failures become the small exception hierarchy below so the loop can
react to meaning (away, conflict, missing, forbidden), not to status codes. The decision of what to
write is status.py's; this module only carries it, guarded by ``metadata.resourceVersion``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, cast

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP: Final = "kubeloop.dev"
VERSION: Final = "v1alpha1"
PLURAL: Final = "inferenceservices"
MERGE_PATCH: Final = "application/merge-patch+json"


class KubeError(Exception):
    """A Kubernetes API call failed."""

    source: ClassVar[str] = "apiserver"


class ApiUnavailableError(KubeError):
    """The API server could not be reached or answered with a server error."""


class ConflictError(KubeError):
    """The resource changed since it was read (409): read again and retry."""


class NotFoundError(KubeError):
    """The InferenceService (or its CRD) does not exist."""


class AccessDeniedError(KubeError):
    """The credentials may not read or patch the resource (401/403)."""


def load_api_client() -> client.ApiClient:
    """An API client from the in-cluster service account, else from the kubeconfig."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        except config.ConfigException:
            pass  # a KUBERNETES_SERVICE_HOST without a mounted token: fall back to kubeconfig
    loaded = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=os.environ.get("KUBECONFIG")
    )
    return cast(client.ApiClient, loaded)


def translate(error: Exception, what: str) -> KubeError:
    """Turn a client exception into a `KubeError` with meaning."""
    if isinstance(error, ApiException):
        status = error.status or 0
        detail = f"{what}: HTTP {status} {error.reason}"
        if status == 409:
            return ConflictError(detail)
        if status == 404:
            return NotFoundError(detail)
        if status in (401, 403):
            return AccessDeniedError(detail)
        if status == 0 or status >= 500 or status == 429:
            return ApiUnavailableError(detail)
        return KubeError(detail)
    return ApiUnavailableError(f"{what}: {type(error).__name__}: {error}")


_TRANSPORT_ERRORS: Final = (ApiException, urllib3.exceptions.HTTPError, OSError)


class InferenceServiceStatus:
    """Reads and patches the status of InferenceServices through one API client."""

    def __init__(self, api_client: client.ApiClient, request_timeout: float = 10.0) -> None:
        self._api = client.CustomObjectsApi(api_client)
        self._timeout = request_timeout

    def read(self, namespace: str, name: str) -> dict[str, Any]:
        what = f"read inferenceservice {namespace}/{name}"
        try:
            found = self._api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self._timeout
            )
        except _TRANSPORT_ERRORS as error:
            raise translate(error, what) from error
        return cast(dict[str, Any], found)

    def patch_status(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        what = f"patch inferenceservice {namespace}/{name} status"
        try:
            patched = self._api.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                dict(body),
                _content_type=MERGE_PATCH,
                _request_timeout=self._timeout,
            )
        except _TRANSPORT_ERRORS as error:
            raise translate(error, what) from error
        return cast(dict[str, Any], patched)

    def update_drift(
        self,
        namespace: str,
        name: str,
        build_drift: Callable[[Mapping[str, Any]], dict[str, Any]],
        attempts: int = 5,
    ) -> dict[str, Any]:
        """Read, build ``status.drift`` from the fresh status, patch guarded by resourceVersion.

        On a conflict (another sidecar wrote in between) read again and rebuild, up to
        ``attempts`` times; the last `ConflictError` is raised when they all lose.
        """
        conflict: ConflictError | None = None
        for _ in range(attempts):
            current = self.read(namespace, name)
            status = current.get("status") or {}
            body = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "status": {"drift": build_drift(status)},
            }
            try:
                return self.patch_status(namespace, name, body)
            except ConflictError as error:
                conflict = error
        assert conflict is not None
        raise conflict
