"""The tests in this folder PLAY THE KUBELET: they write the Pod status a kubelet would (Running,
Ready, a Job's exit code; helpers_kubelet.py, isvc_cluster.make_pods_ready). A real kubelet
would fight over that status, so they run on a cluster without a Ready node: the main test
cluster when it has none (the API-only plane), else a private API-only plane of their own
(hack/devcluster.py, free ports, a pytest temporary folder) started at the first test here that
needs it and stopped at the end of the session. Against a given cluster with a node (kind, ...)
and without the plane's binaries in the cache they skip, saying so.

Every session fixture that depends on `kubeconfig` is defined again here: pytest caches a
session fixture per definition, so the root's `kubectl` (say), once computed for the main
cluster, would be handed to these tests unchanged. The function-scoped fixtures (`namespace`,
`operator`, `jobs`) resolve these overrides by themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers_kubelet import has_ready_node

from clusters import (
    KubectlRunner,
    apply_crds,
    kubectl_runner,
    missing_plane_binaries,
    private_plane,
    ready_node_at,
    ready_node_name,
)
from kubeloop.kube.client import connect


@pytest.fixture(scope="session", name="kubeconfig")
def played_kubeconfig(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The main cluster's kubeconfig (the root fixture's) when it has no Ready node, else the
    private plane's."""
    node = ready_node_at(kubeconfig)
    if node is None:
        yield kubeconfig
        return
    missing = missing_plane_binaries()
    if missing:
        pytest.skip(
            f"plays the kubelet, and the cluster at {kubeconfig} has a Ready node {node}; a "
            f"private API-only plane needs {', '.join(missing)} (hack/build-tools.sh)"
        )
    with private_plane(tmp_path_factory.mktemp("played-plane")) as layout:
        yield str(layout.kubeconfig)


@pytest.fixture(scope="session")
def k8s_api_client(api: Any) -> Any:
    return api  # the same `kubernetes` ApiClient type


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str, tool_path: Callable[[str], str]) -> KubectlRunner:
    return kubectl_runner(tool_path("kubectl"), kubeconfig)


@pytest.fixture(scope="session")
def kubeloop_crds(kubectl: KubectlRunner) -> list[str]:
    return apply_crds(kubectl)


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> Iterator[Any]:
    client = connect(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def ready_node(k8s_api_client: Any) -> str:
    name = ready_node_name(k8s_api_client)
    if name is None:
        pytest.skip(
            "this folder's cluster has no Ready node, by design: its tests play the kubelet"
        )
    return name


@pytest.fixture(autouse=True)
def _nothing_else_plays_the_kubelet(api: Any, kubeconfig: str) -> None:
    """The plane chosen above has no Ready node, and none has joined it since."""
    assert not has_ready_node(api), f"a Ready node joined {kubeconfig}, whose Pods tests play"
