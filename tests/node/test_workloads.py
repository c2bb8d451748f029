"""Workloads on a real node: Pods start under the restricted Pod Security Standard, pass their
readiness probes, are reached through ClusterIP Services from the host and by DNS name from
other Pods, keep data on PersistentVolumes of the default StorageClass, and are replaced when
deleted. Runs against the local cluster's node or any cluster with a Ready node that has the
testkit image (hack/devcluster.py imports it; elsewhere load kubeloop.dev/testkit:dev)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from support import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    TESTKIT_IMAGE,
    eventually,
)

pytestmark = [pytest.mark.cluster, pytest.mark.node]
KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


def container(name: str, *args: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": TESTKIT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/testkit", *args],
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        **extra,
    }


def pod_spec(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "securityContext": RESTRICTED_POD_SECURITY,
        "terminationGracePeriodSeconds": 5,
        "containers": list(containers),
        **extra,
    }


def web_deployment(name: str) -> list[dict[str, Any]]:
    """A Deployment of the testkit HTTP server behind a ClusterIP Service on port 80."""
    labels = {"app": name}
    server = container(
        "web",
        "serve",
        ":8080",
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 1,
        },
    )
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec(server)},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    ]


def apply(kubectl: KubectlRunner, namespace: str, objects: list[dict[str, Any]]) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": objects}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def get_json(kubectl: KubectlRunner, namespace: str, *what: str) -> Any:
    return json.loads(kubectl("get", "-n", namespace, *what, "-o", "json").stdout)


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None  # a new Service answers a moment after its endpoints are ready


def ready_pods(kubectl: KubectlRunner, namespace: str, selector: str) -> list[str]:
    pods = get_json(kubectl, namespace, "pods", "-l", selector)["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if "deletionTimestamp" not in p["metadata"]
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    ]


def test_deployment_becomes_ready_and_its_service_answers_the_host(
    kubectl: KubectlRunner, namespace: str
) -> None:
    apply(kubectl, namespace, web_deployment("web"))
    kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=90s", timeout=100)
    [pod] = ready_pods(kubectl, namespace, "app=web")
    cluster_ip = get_json(kubectl, namespace, "service", "web")["spec"]["clusterIP"]
    assert cluster_ip.startswith("10.96.")
    body = eventually(lambda: http_get(f"http://{cluster_ip}/"), what=f"http://{cluster_ip}/")
    assert body == pod  # the server answers with its hostname, the Pod's name


def test_a_pod_reaches_a_service_by_its_dns_name(kubectl: KubectlRunner, namespace: str) -> None:
    apply(kubectl, namespace, web_deployment("named"))
    kubectl("rollout", "status", "-n", namespace, "deployment/named", "--timeout=90s", timeout=100)
    url = f"http://named.{namespace}.svc.cluster.local/"
    client = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "client"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": pod_spec(container("get", "get", url), restartPolicy="Never")},
        },
    }
    apply(kubectl, namespace, [client])
    kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/client", "--timeout=90s",
        timeout=100,
    )  # fmt: skip
    [server] = ready_pods(kubectl, namespace, "app=named")
    assert kubectl("logs", "-n", namespace, "job/client").stdout == server


def test_a_pod_reaches_the_api_server_as_its_service_account(
    kubectl: KubectlRunner, namespace: str
) -> None:
    # What every in-cluster client relies on: kubernetes.default.svc resolves, its ClusterIP
    # reaches the API server, whose certificate names it, and the projected token is accepted.
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "api"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": pod_spec(
                    container("api", "api", f"/api/v1/namespaces/{namespace}/pods"),
                    restartPolicy="Never",
                )
            },
        },
    }
    apply(kubectl, namespace, [job])
    kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/api", "--timeout=90s",
        timeout=100,
    )  # fmt: skip
    status, _, body = kubectl("logs", "-n", namespace, "job/api").stdout.partition(" ")
    # Authenticated as system:serviceaccount:<ns>:default, which RBAC grants nothing.
    assert status == "403", body
    assert f"system:serviceaccount:{namespace}:default" in body


def test_a_volume_of_the_default_storage_class_keeps_what_a_job_wrote(
    kubectl: KubectlRunner, namespace: str
) -> None:
    classes = get_json(kubectl, namespace, "storageclass")["items"]
    defaults = [
        c["metadata"]["name"]
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert defaults, "the cluster has no default StorageClass"
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
    }
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    mount = {"name": "data", "mountPath": "/data"}
    writer = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "writer"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": pod_spec(
                    container("write", "write", "/data/note", "kept", volumeMounts=[mount]),
                    restartPolicy="Never",
                    volumes=[volume],
                )
            },
        },
    }
    apply(kubectl, namespace, [claim, writer])
    kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/writer", "--timeout=120s",
        timeout=130,
    )  # fmt: skip
    bound = get_json(kubectl, namespace, "pvc", "data")
    assert bound["status"]["phase"] == "Bound"
    assert bound["spec"]["storageClassName"] in defaults

    reader = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": pod_spec(
            container("read", "cat", "/data/note", volumeMounts=[mount]),
            restartPolicy="Never",
            volumes=[volume],
        ),
    }
    apply(kubectl, namespace, [reader])
    eventually(
        lambda: get_json(kubectl, namespace, "pod", "reader")["status"].get("phase") == "Succeeded",
        timeout=60,
        interval=0.5,
        what="the reader Pod to succeed",
    )
    assert kubectl("logs", "-n", namespace, "reader").stdout == "kept"


def test_a_deleted_pod_is_replaced(kubectl: KubectlRunner, namespace: str) -> None:
    apply(kubectl, namespace, web_deployment("phoenix"))
    kubectl(
        "rollout", "status", "-n", namespace, "deployment/phoenix", "--timeout=90s", timeout=100
    )
    [first] = ready_pods(kubectl, namespace, "app=phoenix")
    kubectl("delete", "pod", "-n", namespace, first, "--wait=false")
    replacement = eventually(
        lambda: [p for p in ready_pods(kubectl, namespace, "app=phoenix") if p != first],
        timeout=90,
        interval=0.5,
        what="a Ready replacement Pod",
    )
    assert len(replacement) == 1
