"""The local node's life cycle on the machine: `up` recovers from a killed run (every process
SIGKILLed, shims, mounts, chains and leases left behind), and `hack/devcluster down` leaves
nothing of the node behind: no process, mount, bridge, route, iptables chain, cgroup, address
lease or kubelet file. These stop the shared local cluster, so they run after every other test
(RUNS_LAST, see conftest), in this order, and nothing is started after them. Skipped when the
tests run against a given cluster (KUBELOOP_TEST_KUBECONFIG or KUBECONFIG)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

import devcluster
import devnode
import hostnet
from support import RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY, TESTKIT_IMAGE

RUNS_LAST = True
REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.node,
    pytest.mark.skipif(
        bool(os.environ.get("KUBELOOP_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")),
        reason="stops the local cluster; the tests run against a given cluster",
    ),
]


def devcluster_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "hack" / "devcluster"), *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def local_node(kubeconfig: str) -> devcluster.Layout:
    layout = devcluster.Layout.from_env()
    if not layout.node or devcluster.running_pid(layout, "kubelet") is None:
        pytest.skip("the local cluster runs without its node")
    return layout


@pytest.fixture(scope="module")
def running_pod(local_node: devcluster.Layout, kubeconfig: str) -> list[str]:
    """A running Pod, so there is network state (veth, chains, a lease) and mounts to undo;
    returns the kubectl command line to reach the cluster."""
    kubectl = [str(local_node.bin / "kubectl"), f"--kubeconfig={kubeconfig}"]
    namespace = f"t-down-{uuid.uuid4().hex[:6]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "running", "namespace": namespace},
        "spec": {
            "securityContext": RESTRICTED_POD_SECURITY,
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "web",
                    "image": TESTKIT_IMAGE,
                    "command": ["/testkit", "serve", ":8080"],
                    "securityContext": RESTRICTED_CONTAINER_SECURITY,
                }
            ],
        },
    }
    subprocess.run([*kubectl, "create", "namespace", namespace], check=True, capture_output=True)
    subprocess.run(
        [*kubectl, "create", "-f", "-"], input=json.dumps(pod), text=True, check=True,
        capture_output=True,
    )  # fmt: skip
    wait_ready = ["wait", "-n", namespace, "--for=condition=Ready", "pod/running"]
    subprocess.run(
        [*kubectl, *wait_ready, "--timeout=60s"], check=True, capture_output=True, timeout=70
    )
    return [*kubectl, *wait_ready]


def test_up_restarts_a_dead_stateless_component_alone(
    local_node: devcluster.Layout, running_pod: list[str]
) -> None:
    before = {c: devcluster.running_pid(local_node, c) for c in local_node.components}
    pid = before["coredns"]
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    hostnet.wait_gone([pid], 10)
    up = devcluster_cli("up")
    assert up.returncode == 0, up.stderr
    assert "restarted coredns" in up.stdout
    after = {c: devcluster.running_pid(local_node, c) for c in local_node.components}
    assert {c: p for c, p in after.items() if c != "coredns"} == {
        c: p for c, p in before.items() if c != "coredns"
    }  # nothing else restarted, nothing drained
    assert after["coredns"] not in (None, pid)
    assert subprocess.run([*running_pod, "--timeout=5s"], capture_output=True).returncode == 0


def test_up_recovers_from_a_killed_run(
    local_node: devcluster.Layout, running_pod: list[str]
) -> None:
    for component in local_node.components:
        pid = devcluster.running_pid(local_node, component)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)  # the shims and the Pod's containers live on
    assert devcluster_cli("status").returncode == 1
    assert hostnet.mounts_under(local_node.root)  # what the killed run left

    up = devcluster_cli("up")
    assert up.returncode == 0, up.stderr
    assert devcluster_cli("status").returncode == 0
    # The Pod is started again by the new kubelet.
    again = subprocess.run([*running_pod, "--timeout=90s"], capture_output=True, timeout=100)
    assert again.returncode == 0, again.stderr


def test_down_leaves_nothing_of_the_node_behind(
    local_node: devcluster.Layout, running_pod: list[str]
) -> None:
    layout = local_node
    assert hostnet.mounts_under(layout.root)

    down = devcluster_cli("down")
    assert down.returncode == 0, down.stderr

    marker = str(layout.root)
    assert [p.argv for p in hostnet.processes() if any(marker in a for a in p.argv)] == []
    assert hostnet.mounts_under(layout.root) == []
    assert not hostnet.bridge_exists()
    assert hostnet.run(["ip", "route", "show", devnode.SERVICE_CIDR]).stdout == ""
    for family in ("iptables-save", "ip6tables-save"):
        chains = [
            line
            for line in hostnet.run([family]).stdout.splitlines()
            if line.startswith((":CNI-", ":KUBE-")) or " -j CNI-" in line or " -j KUBE-" in line
        ]
        assert chains == [], family
    assert hostnet.cgroup_dirs() == []
    assert not Path(devnode.KUBELET_DEVICE_PLUGINS).exists()
    logs = Path(devnode.KUBELET_CONTAINER_LOGS)
    assert not logs.exists() or not [p for p in logs.iterdir() if p.is_symlink()]
    assert not list(Path(devnode.CNI_RESULT_CACHE).glob(f"{devnode.CNI_NETWORK}-*"))
    ipam = layout.node_layout.cni_ipam_dir
    assert not ipam.exists() or not any(ipam.rglob("10.244.*"))
    assert devcluster_cli("status").returncode == 1
