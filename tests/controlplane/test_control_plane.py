"""The control plane does what the operator relies on: controllers act, custom resources
round-trip, RBAC refuses what was not granted. Runs against the local plane or $KUBECONFIG."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from support import PAUSE_IMAGE, RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY, eventually

pytestmark = pytest.mark.cluster


def _pod_spec() -> dict[str, Any]:
    # A local image (nothing can be pulled) and what the namespace's restricted policy asks.
    return {
        "securityContext": RESTRICTED_POD_SECURITY,
        "containers": [
            {
                "name": "main",
                "image": PAUSE_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "securityContext": RESTRICTED_CONTAINER_SECURITY,
            }
        ],
    }


def test_deployment_gets_replicaset_and_pods(k8s_api_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(k8s_api_client)
    core = client.CoreV1Api(k8s_api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": _pod_spec()},
            },
        },
    )
    replica_sets = eventually(
        lambda: apps.list_namespaced_replica_set(namespace).items, what="a ReplicaSet"
    )
    owner = replica_sets[0].metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("Deployment", "web")

    def owned_pods() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace).items
        return pods if len(pods) == 2 and all(p.metadata.owner_references for p in pods) else None

    pods = eventually(
        owned_pods,
        what="two Pods",
    )
    assert {p.metadata.owner_references[0].kind for p in pods} == {"ReplicaSet"}


def test_job_gets_its_pod(k8s_api_client: Any, namespace: str) -> None:
    batch = client.BatchV1Api(k8s_api_client)
    core = client.CoreV1Api(k8s_api_client)
    batch.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {**_pod_spec(), "restartPolicy": "Never"}},
            },
        },
    )
    pods = eventually(
        lambda: core.list_namespaced_pod(namespace, label_selector="job-name=once").items,
        what="the Job's Pod",
    )
    assert pods[0].metadata.owner_references[0].kind == "Job"


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.devcluster.test.kubeloop.dev"},
    "spec": {
        "group": "devcluster.test.kubeloop.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_round_trips_a_custom_object(k8s_api_client: Any, namespace: str) -> None:
    extensions = client.ApiextensionsV1Api(k8s_api_client)
    custom = client.CustomObjectsApi(k8s_api_client)
    try:
        extensions.create_custom_resource_definition(CRD)
    except ApiException as error:
        if error.status != 409:  # left by an earlier run: same definition, reuse it
            raise

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(CRD["metadata"]["name"])
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    eventually(established, what="the CRD to be Established")
    group, version, plural = "devcluster.test.kubeloop.dev", "v1", "widgets"
    body = {
        "apiVersion": f"{group}/{version}",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3, "dropped": "unknown field"},
    }
    # Discovery of a brand-new CRD can lag a moment behind Established.
    eventually(
        lambda: _try_create(custom, group, version, namespace, plural, body),
        what="the custom object to be created",
    )
    stored = custom.get_namespaced_custom_object(group, version, namespace, plural, "w1")
    assert stored["spec"] == {"size": 3}  # structural schema pruned the unknown field
    custom.patch_namespaced_custom_object_status(
        group, version, namespace, plural, "w1", {"status": {"phase": "Ready"}}
    )
    assert custom.get_namespaced_custom_object(group, version, namespace, plural, "w1")[
        "status"
    ] == {"phase": "Ready"}
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(
            group,
            version,
            namespace,
            plural,
            {**body, "metadata": {"name": "w2"}, "spec": {"size": 0}},
        )
    assert rejected.value.status == 422
    assert "spec.size" in rejected.value.body


def _try_create(custom: Any, group: str, version: str, ns: str, plural: str, body: Any) -> bool:
    try:
        custom.create_namespaced_custom_object(group, version, ns, plural, body)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_rbac_denies_a_service_account_what_it_was_not_granted(
    k8s_api_client: Any, kubeconfig: str, namespace: str
) -> None:
    core = client.CoreV1Api(k8s_api_client)
    rbac = client.RbacAuthorizationV1Api(k8s_api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    # A real bound token from the TokenRequest API, as a kubelet would project into a pod.
    token = core.create_namespaced_service_account_token(
        "reader",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token
    configuration = client.Configuration()
    configuration.host = k8s_api_client.configuration.host
    configuration.ssl_ca_cert = k8s_api_client.configuration.ssl_ca_cert
    configuration.verify_ssl = k8s_api_client.configuration.verify_ssl
    configuration.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(configuration) as as_reader:
        reader = client.CoreV1Api(as_reader)
        # RBAC changes reach the authorizer's cache a moment after they are written.
        eventually(
            lambda: _allowed(lambda: reader.read_namespaced_config_map("settings", namespace)),
            what="the granted read to be allowed",
        )
        for denied in (
            lambda: reader.list_namespaced_pod(namespace),
            lambda: reader.list_namespaced_secret(namespace),
            lambda: reader.delete_namespaced_config_map("settings", namespace),
            lambda: reader.read_namespace(namespace),
        ):
            with pytest.raises(ApiException) as refused:
                denied()
            assert refused.value.status == 403
            assert f"system:serviceaccount:{namespace}:reader" in refused.value.body


def _allowed(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as error:
        if error.status == 403:
            return False
        raise
    return True
