"""Our own node programs (hack/nodeimages), run for real: the pause image's process stops on
SIGTERM and reaps, the local-path helper creates and removes volume folders, testkit serves
and fetches over loopback HTTP. Needs hack/build-tools.sh to have built them."""

from __future__ import annotations

import signal
import stat
import subprocess
from pathlib import Path

import pytest

import devcluster
from support import eventually, free_port

BIN = devcluster.Layout.from_env().bin


def binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{path} is not built: run hack/build-tools.sh")
    return str(path)


def test_pause_sleeps_until_sigterm_and_exits_zero() -> None:
    pause = subprocess.Popen([binary("pause")])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            pause.wait(timeout=0.3)  # it sleeps
        pause.send_signal(signal.SIGTERM)
        assert pause.wait(timeout=5) == 0
    finally:
        pause.kill()


def test_local_path_helper_creates_a_world_writable_folder_and_removes_it(tmp_path: Path) -> None:
    helper = binary("local-path-helper")
    volume = tmp_path / "pvc-1_ns_claim"
    args = ["-p", str(volume), "-s", "1048576", "-m", "Filesystem"]
    subprocess.run([helper, *args, "-a", "create"], check=True)
    assert stat.S_IMODE(volume.stat().st_mode) == 0o777
    (volume / "data").write_text("x")
    subprocess.run([helper, *args, "-a", "delete"], check=True)
    assert not volume.exists()


def test_local_path_helper_refuses_the_root_and_block_volumes() -> None:
    helper = binary("local-path-helper")
    for args in (["-p", "/", "-a", "delete"], ["-p", "/tmp/x", "-m", "Block", "-a", "create"]):
        refused = subprocess.run([helper, *args], capture_output=True, text=True)
        assert refused.returncode == 1
        assert "local-path-helper:" in refused.stderr


def test_testkit_serves_and_fetches_over_http(tmp_path: Path) -> None:
    testkit = binary("testkit")
    port = free_port()
    server = subprocess.Popen([testkit, "serve", f"127.0.0.1:{port}"])
    try:
        fetched = eventually(
            lambda: (
                subprocess.run(
                    [testkit, "get", f"http://127.0.0.1:{port}/healthz", "1"],
                    capture_output=True,
                    text=True,
                ).stdout
            ),
            timeout=10,
            what="testkit's /healthz",
        )
        assert fetched == "ok"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=5) == 0
    finally:
        server.kill()
    note = tmp_path / "note"
    subprocess.run([testkit, "write", str(note), "kept"], check=True)
    assert (
        subprocess.run([testkit, "cat", str(note)], capture_output=True, text=True).stdout == "kept"
    )
