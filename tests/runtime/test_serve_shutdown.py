"""SIGTERM: the server stops taking connections, finishes what it is answering, and exits 0.

A real ``python -m kubeloop_runtime.serve`` process on 127.0.0.1 gets a large batch (about a
second of predict for a 200-tree forest), then SIGTERM while that batch is being answered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

from kubeloop_runtime.artifact import write_artifact
from support import free_port

pytestmark = pytest.mark.slow


def in_flight(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "kubeloop_requests_in_flight":
            return float(family.samples[0].value)
    raise AssertionError("no kubeloop_requests_in_flight in /metrics")


def test_sigterm_finishes_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    data = load_iris()
    model = RandomForestClassifier(n_estimators=200, random_state=0).fit(data.data, data.target)
    metadata = {
        "schemaVersion": 1,
        "modelName": "iris",
        "task": "classification",
        "features": [{"name": name, "type": "number"} for name in data.feature_names],
        "target": {"name": "target", "classes": [str(name) for name in data.target_names]},
        "profile": {},
    }
    write_artifact(tmp_path / "artifact", model, metadata)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "KUBELOOP_MODEL_DIR": str(tmp_path / "artifact"),
        "KUBELOOP_HOST": "127.0.0.1",
        "KUBELOOP_PORT": str(port),
        "KUBELOOP_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        # predict in a thread, so /metrics answers while the batch is being predicted
        "KUBELOOP_PREDICT_IN_THREAD": "always",
        "KUBELOOP_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kubeloop_runtime.serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready"
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.05)

        rows = np.tile(data.data, (600, 1))  # 90,000 rows
        body = {"instances": rows.tolist()}
        answer: dict[str, Any] = {}

        def send() -> None:
            response = httpx.post(f"{url}/predict", json=body, timeout=120)
            answer["status"] = response.status_code
            answer["predictions"] = len(response.json().get("predictions", []))

        sender = threading.Thread(target=send)
        sender.start()
        while in_flight(url) < 2:  # the batch, and this scrape
            assert sender.is_alive(), "the batch finished before SIGTERM; make it larger"
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        sender.join(timeout=120)
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read() if process.stdout else ""
    assert answer == {"status": 200, "predictions": len(rows)}, output
    assert exit_code == 0, output
    assert "Shutting down" in output or "Finished server process" in output
