"""The drift checker end to end over HTTP on loopback (kubeloop_runtime.drift.loop).

The first tests read the window of the real model server (kubeloop_runtime.serve, uvicorn on
127.0.0.1) fed with real requests to a real breast_cancer model. The outage tests use a tiny real
http.server instead, because they must stop and restart the window's server on the same port
and control ``seq`` exactly; no Kubernetes here (the InferenceService name is unset).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_drift import (
    BreastCancerArtifact,
    WindowServer,
    shifted,
    window_document,
    write_breast_cancer_artifact,
)
from prometheus_client.parser import text_string_to_metric_families

from kubeloop_runtime.drift import main
from kubeloop_runtime.drift.hysteresis import Freshness
from kubeloop_runtime.drift.loop import DriftChecker, backoff_delay
from kubeloop_runtime.drift.settings import DriftSettings
from support import eventually, free_port

SHIFTED = ["mean radius", "mean texture", "worst area", "worst symmetry"]


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> BreastCancerArtifact:
    return write_breast_cancer_artifact(tmp_path_factory.mktemp("breast-cancer"))


def checker_for(url: str, model_dir: Path, **overrides: Any) -> DriftChecker:
    values: dict[str, Any] = {
        "server_url": url,
        "model_dir": model_dir,
        "isvc_name": None,
        "drift_min_samples": 50,
        "drift_threshold": 0.1,
        "drift_raise_after": 1,
        "drift_clear_after": 1,
        "drift_interval_seconds": 0.2,
        "drift_metrics_port": 0,
    }
    values.update(overrides)
    return DriftChecker(DriftSettings(**values))


def metric_values(checker: DriftChecker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    text = generate_latest(checker.metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_checker_reads_the_real_model_server(
    breast_cancer: BreastCancerArtifact, live_server: Callable[..., Any]
) -> None:
    holdout = breast_cancer.holdout
    server = live_server(breast_cancer.directory, window_size=len(holdout))
    checker = checker_for(server.url, breast_cancer.directory)
    try:
        answer = httpx.post(f"{server.url}/predict", json={"instances": holdout.values.tolist()})
        assert answer.status_code == 200, answer.text
        ids = answer.json()["ids"]
        feedback = [
            {"id": prediction_id, "label": label}
            for prediction_id, label in zip(ids, breast_cancer.holdout_labels, strict=True)
        ]
        assert httpx.post(f"{server.url}/feedback", json=feedback).status_code == 200

        clean = checker.check_once()
        assert clean.freshness is Freshness.FRESH
        assert clean.data is not None
        assert clean.concept is not None
        assert not clean.data.detected
        assert clean.data.drifted_features == []
        assert clean.concept.labeled == len(holdout)
        assert clean.concept.accuracy is not None
        assert clean.concept.accuracy > 0.9
        assert not clean.state.detected

        assert checker.check_once().freshness is Freshness.STALE  # no new rows since

        moved = shifted(holdout, breast_cancer.reference, SHIFTED)
        answer = httpx.post(f"{server.url}/predict", json={"instances": moved.values.tolist()})
        assert answer.status_code == 200, answer.text
        drifted = checker.check_once()
        assert drifted.freshness is Freshness.FRESH
        assert drifted.data is not None
        assert drifted.data.detected
        assert sorted(drifted.data.drifted_features) == sorted(SHIFTED)
        assert drifted.state.detected
        assert drifted.window.seq == 2 * len(holdout)
        metrics = metric_values(checker)
        assert metrics[("kubeloop_drift_detected", ())] == 1.0
        assert metrics[("kubeloop_drift_drifted_features", ())] == len(SHIFTED)
        assert metrics[("kubeloop_drift_checks_total", (("outcome", "stale"),))] == 1.0
        assert metrics[("kubeloop_drift_checks_total", (("outcome", "drifted"),))] == 1.0
    finally:
        checker.close()


def test_loop_survives_the_window_server_going_away(
    breast_cancer: BreastCancerArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    first = WindowServer(window_document(breast_cancer.holdout, seq=100))
    port = first.port
    checker = checker_for(first.url, breast_cancer.directory, drift_max_backoff_seconds=0.2)
    stop = threading.Event()
    runner = threading.Thread(target=checker.run, args=(stop,), daemon=True)
    caplog.set_level(logging.INFO, logger="kubeloop_runtime.drift")
    runner.start()
    try:
        eventually(lambda: checker.state.verdicts == 1)
        first.stop()  # the model server restarts: nothing listens on its port for a while
        eventually(lambda: _errors(checker, "server") >= 3)
        assert runner.is_alive()
        moved = shifted(breast_cancer.holdout, breast_cancer.reference, SHIFTED)
        second = WindowServer(window_document(moved, seq=60), port=port)  # seq restarts
        try:
            eventually(lambda: checker.state.verdicts == 2)
            assert checker.state.detected
            messages = [record.getMessage() for record in caplog.records]
        finally:
            stop.set()
            second.stop()
    finally:
        stop.set()
        runner.join(timeout=5)
        checker.close()
    assert not runner.is_alive()
    outage_logs = [message for message in messages if "drift check failed (server)" in message]
    assert len(outage_logs) == 1  # logged once per outage, not once per retry
    assert any("server is back after" in message for message in messages)


def test_missing_model_folder_is_retried_not_fatal(tmp_path: Path) -> None:
    checker = checker_for("http://127.0.0.1:9", tmp_path / "not-there-yet")
    try:
        failures = checker.run(threading.Event(), max_checks=2)
    finally:
        checker.close()
    assert failures == 2
    assert _errors(checker, "model") == 2


def test_backoff_is_capped() -> None:
    delays = [backoff_delay(failures, interval=30, cap=8) for failures in range(1, 8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff_delay(5, interval=1.5, cap=60) == 1.5


def test_metrics_are_served_on_their_own_port(breast_cancer: BreastCancerArtifact) -> None:
    server = WindowServer(window_document(breast_cancer.holdout, seq=5))
    checker = checker_for(server.url, breast_cancer.directory)
    port = free_port()
    try:
        checker.metrics.serve(port, "127.0.0.1")
        checker.check_once()
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        server.stop()
        checker.close()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "kubeloop_drift_checks",
        "kubeloop_drift_errors",
        "kubeloop_drift_score",
        "kubeloop_drift_drifted_features",
        "kubeloop_drift_detected",
    } <= names


def test_bad_settings_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBELOOP_DRIFT_METHOD", "bogus")
    assert main(["--once"]) == 2
    assert "KUBELOOP_DRIFT_METHOD" in capsys.readouterr().err
    monkeypatch.delenv("KUBELOOP_DRIFT_METHOD")
    monkeypatch.setenv("KUBELOOP_DRIFT_THRESHOLD", "1.5")
    assert main(["--once"]) == 2
    assert "KUBELOOP_DRIFT_THRESHOLD" in capsys.readouterr().err


def _errors(checker: DriftChecker, source: str) -> float:
    return metric_values(checker).get(("kubeloop_drift_errors_total", (("source", source),)), 0.0)


def test_cli_process_runs_without_metrics_port_and_stops_on_sigterm(
    breast_cancer: BreastCancerArtifact, tmp_path: Path
) -> None:
    """``python -m kubeloop_runtime drift`` as a real process: a taken metrics port is not fatal."""
    window = WindowServer(window_document(breast_cancer.holdout, seq=7))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env = {
        **os.environ,
        "KUBELOOP_SERVER_URL": window.url,
        "KUBELOOP_MODEL_DIR": str(breast_cancer.directory),
        "KUBELOOP_DRIFT_INTERVAL_SECONDS": "0.2",
        "KUBELOOP_DRIFT_MIN_SAMPLES": "50",
        "KUBELOOP_DRIFT_METRICS_PORT": str(taken.getsockname()[1]),
        "KUBELOOP_DRIFT_METRICS_HOST": "127.0.0.1",
    }
    env.pop("KUBELOOP_ISVC_NAME", None)
    log_path = tmp_path / "sidecar.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kubeloop_runtime", "drift"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        eventually(lambda: "window seq=7" in log_path.read_text())
        eventually(lambda: window.requests >= 3)  # still checking every interval
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        window.stop()
        taken.close()
    output = log_path.read_text()
    assert code == 0, output
    assert "running without metrics" in output
