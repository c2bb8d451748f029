"""Fixtures of the `node` tests: the runtime image in the node, a restricted namespace, one trained
artifact per session, and the serving Deployment built from it.

The image: on the local node (a kubeconfig inside $KUBELOOP_CACHE) `hack/images.sh load` builds
kubeloop-runtime:dev when its inputs changed and loads it into the node's containerd, the way
`kind load docker-image` does; with any other cluster (KUBECONFIG, KUBELOOP_TEST_KUBECONFIG) the
user loaded it already (`kind load docker-image kubeloop-runtime:dev`).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import node_manifests as m
import pytest
from node_kube import Kube, Serving, Trained, termination_message
from node_manifests import DRIFT_ACCOUNT, ISVC, MODEL_PATH, OTHER_ISVC, SERVING

from incluster import is_local_node

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kube(kubectl: Any) -> Kube:
    return Kube(kubectl)


@pytest.fixture(scope="session")
def runtime_image(kubeconfig: str, ready_node: str) -> str:
    if is_local_node(kubeconfig):
        subprocess.run(
            ["bash", str(REPO / "hack" / "images.sh"), "load", m.IMAGE],
            check=True,
            timeout=1800,
        )
    return m.IMAGE


@pytest.fixture(scope="session")
def node_namespace(kube: Kube, runtime_image: str) -> Iterator[str]:
    """One namespace for the session, enforcing the restricted Pod Security Standard."""
    name = f"t-node-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", name)
    kube.run(
        "label",
        "namespace",
        name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    kube.wait_for_default_service_account(name)
    try:
        yield name
    finally:
        kube.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="session")
def trained(kube: Kube, node_namespace: str) -> Trained:
    """The runtime's `train` as a Job on builtin://iris, its artifact on a claim of the default
    StorageClass; shared by every test of the session."""
    kube.apply(node_namespace, [m.claim(), m.train_job("train-iris", MODEL_PATH)])
    pod = kube.wait_for_job_pod(node_namespace, "train-iris", timeout=300)
    result = termination_message(pod, "train-iris")
    assert result.get("ok") is True, f"train failed: {json.dumps(result)}"
    return Trained(result=result, digest=str(result["artifact"]["digest"]))


@pytest.fixture(scope="session")
def serving(kube: Kube, node_namespace: str, trained: Trained, kubeloop_crds: list[str]) -> Serving:
    """Two serving replicas (fetch init container, server, drift sidecar) behind a Service, the
    sidecar's ServiceAccount allowed one InferenceService only."""
    ns = node_namespace
    kube.apply(ns, [m.inference_service(ISVC), m.inference_service(OTHER_ISVC)])
    # The operator would set the active colour; the sidecars aggregate reports of that colour.
    for isvc in (ISVC, OTHER_ISVC):
        kube.run(
            "patch",
            "inferenceservice",
            isvc,
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status": {"activeColor": "blue"}}',
        )
    kube.apply(ns, m.drift_rbac(DRIFT_ACCOUNT, ISVC))
    kube.apply(
        ns,
        [
            m.serving_deployment(SERVING, MODEL_PATH, trained.digest, ISVC, DRIFT_ACCOUNT),
            m.service(SERVING),
        ],
    )
    kube.run("rollout", "status", f"deployment/{SERVING}", "-n", ns, "--timeout=180s", timeout=200)
    cluster_ip = kube.get_json("service", SERVING, namespace=ns)["spec"]["clusterIP"]
    return Serving(namespace=ns, name=SERVING, cluster_ip=cluster_ip, digest=trained.digest)
