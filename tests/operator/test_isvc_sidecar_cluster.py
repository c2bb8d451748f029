"""The drift sidecar's RBAC with the real operator: the ServiceAccount token of one
InferenceService's sidecar can read it and patch its status, and nothing else. Plays no kubelet
(no Pod has to run), so it runs on the main test cluster, node or not."""

from __future__ import annotations

from typing import Any

import pytest
from isvc_cluster import drift, isvc_manifest

from kubeloop.api.base import API_VERSION
from kubeloop.kube.apply import create, get, list_objects, patch, patch_status
from kubeloop.kube.errors import Forbidden
from support import eventually

pytestmark = pytest.mark.cluster


def token_client(api: Any, namespace: str, account: str) -> Any:
    """An ApiClient that authenticates with a TokenRequest token of `account`."""
    from kubernetes import client as k8s

    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    token = (
        k8s.CoreV1Api(api)
        .create_namespaced_service_account_token(account, namespace, request)
        .status.token
    )
    configuration = k8s.Configuration()
    configuration.host = api.configuration.host
    configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
    configuration.verify_ssl = True
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return k8s.ApiClient(configuration)


def test_the_sidecar_account_patches_only_its_own_status(
    api: Any, namespace: str, operator: Any
) -> None:
    operator.start()
    create(api, isvc_manifest(namespace, name="iris"))
    create(api, isvc_manifest(namespace, name="other"))
    for name in ("iris", "other"):
        eventually(
            lambda name=name: list_objects(
                api,
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                namespace,
                f"kubeloop.dev/inferenceservice={name}",
            ),
            timeout=30,
            what=f"{name}'s RoleBinding",
        )
    sidecar = token_client(api, namespace, "iris-drift")
    try:
        assert (
            get(sidecar, API_VERSION, "InferenceService", namespace, "iris")["metadata"]["name"]
            == "iris"
        )
        patched = patch_status(
            sidecar, API_VERSION, "InferenceService", namespace, "iris", {"drift": drift(False)}
        )
        assert patched["status"]["drift"]["detected"] is False
        with pytest.raises(Forbidden):
            patch_status(
                sidecar, API_VERSION, "InferenceService", namespace, "other", {"drift": drift(True)}
            )
        with pytest.raises(Forbidden):
            patch(
                sidecar,
                API_VERSION,
                "InferenceService",
                namespace,
                "iris",
                {"spec": {"replicas": 5}},
            )
        with pytest.raises(Forbidden):
            list_objects(sidecar, "v1", "Pod", namespace)
        with pytest.raises(Forbidden):
            get(sidecar, API_VERSION, "InferenceService", namespace, "other")
    finally:
        sidecar.close()
