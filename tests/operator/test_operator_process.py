"""`python -m kubeloop` as a process: liveness, metrics, JSON logs, and peering of two replicas."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helpers_operator import OperatorProcess

from kubeloop.kube import apply as kube
from support import eventually

REPO = Path(__file__).resolve().parents[2]


def test_the_script_entry_point_is_the_same_main() -> None:
    scripts = (REPO / "pyproject.toml").read_text()
    assert 'kubeloop-operator = "kubeloop.main:main"' in scripts
    invalid = subprocess.run(
        [sys.executable, "-m", "kubeloop"],
        env={"KUBELOOP_METRICS_PORT": "-1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert invalid.returncode == 2
    assert "metrics_port" in invalid.stderr


def test_operator_serves_liveness_and_metrics_and_logs_json(operator: OperatorProcess) -> None:
    operator.start()
    metrics = operator.metrics()
    assert "kubeloop_reconciles_total" in metrics or "# HELP kubeloop_reconciles" in metrics
    operator.stop()
    lines = [
        json.loads(line)
        for line in operator.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert lines, operator.log()
    assert {"time", "level", "logger", "message"} <= lines[0].keys()
    assert any("starting: namespaces" in line["message"] for line in lines)


def test_two_replicas_peer_and_only_the_higher_priority_works(
    operator: OperatorProcess, kubeconfig: str, namespace: str, api: Any, tmp_path: Path
) -> None:
    operator.start(KUBELOOP_STANDALONE="false", KUBELOOP_PEERING_PRIORITY="200")
    peering = eventually(
        lambda: kube.get_or_none(api, "kopf.dev/v1", "KopfPeering", namespace, "kubeloop"),
        what="the KopfPeering the operator creates",
    )
    assert peering["metadata"]["namespace"] == namespace
    standby = OperatorProcess(kubeconfig=kubeconfig, namespace=namespace, log_dir=tmp_path / "b")
    standby.log_dir.mkdir()
    try:
        standby.start(KUBELOOP_STANDALONE="false", KUBELOOP_PEERING_PRIORITY="100")

        def both_registered() -> bool:
            status = (
                kube.get(api, "kopf.dev/v1", "KopfPeering", namespace, "kubeloop").get("status")
                or {}
            )
            return sorted(entry.get("priority") for entry in status.values()) == [100, 200]

        eventually(both_registered, timeout=30, what="both replicas' keep-alives")
        # Mandatory peering starts every replica paused; only the highest priority resumes.
        resumed = "Resuming operations after the pause"
        eventually(lambda: resumed in operator.log(), what="the active replica to resume")
        time.sleep(3)
        assert resumed not in standby.log()
    finally:
        standby.stop()
