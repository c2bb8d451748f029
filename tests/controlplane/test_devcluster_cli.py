"""hack/devcluster: a second, private API-only plane on free ports goes up, is reused, and goes
down leaving no process behind, without touching the node a cluster may be running. Needs the
built binaries, not a running cluster."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import devcluster
import hostnet
from clusters import plane_layout
from support import free_plane_port

REPO = Path(__file__).resolve().parents[2]
needs_local_binaries = pytest.mark.skipif(
    bool(os.environ.get("KUBELOOP_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")),
    reason="runs the local control plane binaries; a cluster was given instead",
)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "hack" / "devcluster"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.cluster
@needs_local_binaries
def test_up_reuse_and_down(tmp_path: Path) -> None:
    port = free_plane_port()
    env = {
        **os.environ,
        "KUBELOOP_DEVCLUSTER_DIR": str(tmp_path / "plane"),
        "KUBELOOP_DEVCLUSTER_PORT": str(port),
        # The node is one per machine and may be running: this plane must not disturb it.
        "KUBELOOP_DEVCLUSTER_NODE": "0",
    }
    env.pop("KUBECONFIG", None)
    layout = plane_layout(tmp_path / "plane", port)
    try:
        first = run(["up"], env)
        assert first.returncode == 0, first.stderr
        pids = {c: devcluster.running_pid(layout, c) for c in devcluster.COMPONENTS}
        assert all(pids.values()), pids

        readyz = subprocess.run(
            [
                str(layout.bin / "kubectl"),
                f"--kubeconfig={layout.kubeconfig}",
                "get",
                "--raw",
                "/readyz",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert readyz.stdout.strip() == "ok", readyz.stderr

        second = run(["up"], env)
        assert second.returncode == 0
        assert "already running" in second.stdout
        assert {c: devcluster.running_pid(layout, c) for c in devcluster.COMPONENTS} == pids

        assert run(["status"], env).returncode == 0
        exports = run(["env"], env).stdout
        assert f"export KUBECONFIG={layout.kubeconfig}" in exports
    finally:
        stopped = run(["down"], env)
    assert stopped.returncode == 0
    for pid in pids.values():
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} still running after down"
    assert run(["status"], env).returncode == 1
    assert (tmp_path / "plane" / "logs" / "kube-apiserver.log").stat().st_size > 0


def test_command_lines_stay_on_loopback() -> None:
    layout = devcluster.Layout.from_env(node=False)
    for component, argv in devcluster.command_lines(layout).items():
        for arg in argv:
            if "://" in arg or "address" in arg:
                assert "0.0.0.0" not in arg, f"{component}: {arg}"
                assert "10.244." not in arg, f"{component}: {arg}"


@pytest.mark.cluster
@needs_local_binaries
def test_a_second_node_is_refused_while_one_runs(tmp_path: Path) -> None:
    running = hostnet.other_nodes(tmp_path)
    if not running:
        pytest.skip("no node of ours is running on this machine")
    env = {**os.environ, "KUBELOOP_DEVCLUSTER_DIR": str(tmp_path / "second")}
    env.pop("KUBELOOP_DEVCLUSTER_NODE", None)
    refused = run(["up"], env)
    assert refused.returncode == 1
    folder = next(iter(running))
    assert f"another devcluster node is running from {folder}" in refused.stderr
    assert hostnet.other_nodes(tmp_path) == running  # the running node was not touched
