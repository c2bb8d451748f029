"""How the tests reach a cluster: kubectl bound to a kubeconfig, our CRDs applied, the Ready
node, and the private API-only plane of the tests that play the kubelet (tests/operator/played).

The root conftest builds its session fixtures from these, and tests/operator/played/conftest.py
builds the same fixtures again for its own plane: pytest caches a session fixture per
definition, so each definition must be its own, not the root's computed for the main cluster.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import devcluster  # hack/devcluster.py, on pytest's pythonpath
from support import free_plane_port

REPO = Path(__file__).resolve().parent.parent
KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


def kubectl_runner(binary: str, kubeconfig: str) -> KubectlRunner:
    """`kubectl` against `kubeconfig`; a non-zero exit fails the test with its output."""

    def run(
        *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [binary, f"--kubeconfig={kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    return run


def apply_crds(kubectl: KubectlRunner) -> list[str]:
    """Apply every CRD in crds/ (server-side) and wait until each is Established."""
    files = sorted((REPO / "crds").glob("*.yaml"))
    if not files:
        pytest.fail("crds/ has no CRD files: run `python -m kubeloop.crdgen`")
    kubectl("apply", "--server-side", "--force-conflicts", *(f"-f={f}" for f in files))
    names = kubectl("get", "crd", "-o", "name").stdout.split()
    ours = [n for n in names if n.endswith(".kubeloop.dev")]
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *ours)
    # On a fresh plane a just-established resource still answers 429 "storage is
    # (re)initializing" for a moment: the operator's first watches would start late.
    resources = ",".join(name.split("/", 1)[1] for name in ours)
    deadline = time.monotonic() + 30
    while kubectl("get", resources, "-A", "-o", "name", check=False).returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail(f"{resources} never answered a list")
        time.sleep(0.2)
    return ours


def ready_node_name(k8s_api_client: Any) -> str | None:
    """The name of a Ready node of the cluster (a `kubernetes` ApiClient), or None."""
    from kubernetes import client

    for node in client.CoreV1Api(k8s_api_client).list_node().items:
        conditions = node.status.conditions or []
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            return str(node.metadata.name)
    return None


def node_names(k8s_api_client: Any) -> str:
    from kubernetes import client

    nodes = client.CoreV1Api(k8s_api_client).list_node().items
    return ", ".join(n.metadata.name for n in nodes) or "none"


def ready_node_at(kubeconfig: str) -> str | None:
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=kubeconfig)
    try:
        return ready_node_name(api_client)
    finally:
        api_client.close()


def plane_layout(root: Path, port: int) -> devcluster.Layout:
    """An API-only plane in `root` with its API server on `port` (etcd on port-4064, -4063),
    run from the cache's binaries."""
    return devcluster.Layout(
        root=root,
        bin=devcluster.Layout.from_env().bin,
        etcd_port=port - 4064,
        etcd_peer_port=port - 4063,
        apiserver_port=port,
    )


def missing_plane_binaries() -> list[str]:
    bin_ = devcluster.Layout.from_env().bin
    return [c for c in (*devcluster.PLANE, "kubectl") if not (bin_ / c).exists()]


@contextmanager
def private_plane(root: Path) -> Iterator[devcluster.Layout]:
    """A second API-only plane (no kubelet) in `root` on free ports, up for the block and
    stopped after it. It never touches the node a main cluster may be running."""
    layout = plane_layout(root, free_plane_port())
    try:
        devcluster.up(layout)
        yield layout
    finally:
        devcluster.down(layout, quiet=True)
        # Its etcd data and certificates are of no use to another session.
        shutil.rmtree(root / "etcd", ignore_errors=True)
