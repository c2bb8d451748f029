"""`hack/devcluster down` leaves nothing of the node behind: no process, mount, bridge, route,
iptables chain, cgroup, address lease or kubelet file. It stops the shared local cluster, so it
runs after every other test (RUNS_LAST, see conftest) and starts nothing afterwards. Skipped
when the tests run against a given cluster (KUBELOOP_TEST_KUBECONFIG or KUBECONFIG)."""

from __future__ import annotations

import json
import os
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


def test_down_leaves_nothing_of_the_node_behind(kubeconfig: str) -> None:
    layout = devcluster.Layout.from_env()
    if not layout.node or devcluster.running_pid(layout, "kubelet") is None:
        pytest.skip("the local cluster runs without its node")
    kubectl = [str(layout.bin / "kubectl"), f"--kubeconfig={kubeconfig}"]
    # A running Pod, so there is network state (veth, chains, a lease) and mounts to undo.
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
    subprocess.run(
        [
            *kubectl,
            "wait",
            "-n",
            namespace,
            "--for=condition=Ready",
            "pod/running",
            "--timeout=60s",
        ],
        check=True,
        capture_output=True,
        timeout=70,
    )
    assert hostnet.mounts_under(layout.root)

    down = subprocess.run(
        [str(REPO / "hack" / "devcluster"), "down"], capture_output=True, text=True, timeout=180
    )
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
    status = subprocess.run(
        [str(REPO / "hack" / "devcluster"), "status"], capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 1
