"""Shared fixtures: a Kubernetes API for the `cluster` tests, and a namespace per test.

The cluster is the one named by $KUBELOOP_TEST_KUBECONFIG or $KUBECONFIG (kind, or any real
cluster) when set; otherwise the local cluster of hack/devcluster.py, with its node, is reused
when running, or started and, unless KUBELOOP_KEEP_CLUSTER=1, stopped again at the end of the
session. Where the node cannot run (not root, packages missing, or another node of ours runs on
this machine) the local cluster starts without it, and the `node` tests skip.

`node` tests (they need running Pods) skip when the cluster has no Ready node. The tests that
play the kubelet (tests/operator/played) need the opposite: that folder's conftest gives them a
cluster without a Ready node. A module that sets `RUNS_LAST = True` runs after every other test
(the test of `devcluster down` stops the cluster).

Tools (kubectl, helm, kubeconform) come from the pinned build cache (hack/build-tools.sh), else
from PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import devcluster  # hack/devcluster.py, on pytest's pythonpath
from clusters import KubectlRunner, apply_crds, kubectl_runner, node_names, ready_node_name
from incluster import HelmRunner, helm_runner, load_images

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Anything that uses the cluster fixtures is a cluster test, even if it forgot the marker,
    # so `-m "not cluster"` never starts a control plane.
    cluster_fixtures = {"kubeconfig", "k8s_api_client", "kubectl", "namespace", "kubeloop_crds"}
    for item in items:
        if cluster_fixtures & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
    # Stable sort: everything else keeps its order, the tests that tear down come last.
    items.sort(key=lambda item: bool(getattr(getattr(item, "module", None), "RUNS_LAST", False)))


@pytest.fixture(scope="session")
def tool_path() -> Callable[[str], str]:
    layout = devcluster.Layout.from_env()

    def find(name: str) -> str:
        built = layout.bin / name
        if built.exists():
            return str(built)
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is neither in {layout.bin} nor on PATH: run hack/build-tools.sh")
        return found

    return find


def local_layout() -> devcluster.Layout:
    """The local cluster the tests use: with the node unless KUBELOOP_DEVCLUSTER_NODE=0 or the
    machine cannot run it (then the API-only plane, and a warning saying why). With
    KUBELOOP_REQUIRE_NODE=1 (CI sets it) a node that cannot run is an error instead: CI must
    not pass by skipping every `node` test."""
    want_node = os.environ.get("KUBELOOP_DEVCLUSTER_NODE", "1") not in ("0", "false", "no")
    layout = devcluster.Layout.from_env(node=want_node)
    if want_node:
        problems = devcluster.node_prerequisites()
        others = devcluster.hostnet.other_nodes(layout.root)
        problems += [f"a node of ours already runs from {folder}" for folder in others]
        if problems and os.environ.get("KUBELOOP_REQUIRE_NODE") == "1":
            pytest.fail("KUBELOOP_REQUIRE_NODE=1 but the node cannot run: " + "; ".join(problems))
        if problems:
            warnings.warn(
                "the local cluster starts without its node (node tests skip): "
                + "; ".join(problems),
                stacklevel=2,
            )
            layout = devcluster.Layout.from_env(node=False)
    return layout


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    given = os.environ.get("KUBELOOP_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if given:
        yield given
        return
    layout = local_layout()
    started = not devcluster.is_up(layout)
    if started:
        devcluster.up(layout)
    try:
        yield str(layout.kubeconfig)
    finally:
        if started and os.environ.get("KUBELOOP_KEEP_CLUSTER") != "1":
            devcluster.down(layout, quiet=True)


@pytest.fixture(scope="session")
def helm(tool_path: Callable[[str], str]) -> HelmRunner:
    return helm_runner(tool_path("helm"))


@pytest.fixture(scope="session")
def node_images(kubectl: KubectlRunner, kubeconfig: str, ready_node: str) -> set[str]:
    """kubeloop-operator:dev and kubeloop-runtime:dev on the node (tests/incluster.py): built
    and loaded into the local node, required on any other cluster."""
    return load_images(kubectl, kubeconfig)


@pytest.fixture(scope="session")
def k8s_api_client(kubeconfig: str) -> Iterator[Any]:
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=kubeconfig)
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str, tool_path: Callable[[str], str]) -> KubectlRunner:
    return kubectl_runner(tool_path("kubectl"), kubeconfig)


@pytest.fixture(scope="session")
def kubeloop_crds(kubectl: KubectlRunner) -> list[str]:
    """Apply every CRD in crds/ (server-side) and wait until each is Established."""
    return apply_crds(kubectl)


@pytest.fixture
def namespace(kubectl: KubectlRunner, request: pytest.FixtureRequest) -> Iterator[str]:
    # Namespace names are DNS labels: lower-case, at most 63 characters.
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:6]}"
    # Every test's Pods meet the restricted Pod Security Standard, as the operator's must.
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    kubectl("create", "-f", "-", input=json.dumps(manifest))
    # The ServiceAccount admission plugin refuses pods until `default` exists in the namespace.
    deadline = time.monotonic() + 30
    while kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {name}: the default ServiceAccount never appeared")
        time.sleep(0.2)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="session")
def ready_node(k8s_api_client: Any, kubeconfig: str) -> str:
    """The name of a Ready node of the cluster; skips the test when there is none."""
    name = ready_node_name(k8s_api_client)
    if name is None:
        nodes = node_names(k8s_api_client)
        pytest.skip(f"the cluster at {kubeconfig} has no Ready node (nodes: {nodes})")
    return name


@pytest.fixture(autouse=True)
def _node_tests_need_a_ready_node(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("node") is not None:
        request.getfixturevalue("ready_node")
