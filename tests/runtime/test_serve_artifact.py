"""A tampered or incomplete artifact is refused: never unpickled, never ready, a clear reason.

In-app (uvicorn in a thread) the server stays alive and not ready, readiness naming the reason;
as a real process (``python -m kubeloop_runtime.serve``) it exits 3 after writing the reason to
its termination log, which is what the pod's status then shows (docs/runtime.md, "serve").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest

from support import free_port

TrainedArtifact = Any  # tests/runtime/conftest.py
StartServer = Callable[..., Any]


class Detonator:
    """Unpickling this object writes a marker file: proof that a file was (not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


def tamper(directory: Path) -> Path:
    """Replace model.joblib by a payload that acts when unpickled; digests left untouched."""
    marker = directory / "UNPICKLED"
    joblib.dump(Detonator(marker), directory / "model.joblib")
    return marker


def refusal(server: Any) -> str:
    response = httpx.get(f"{server.url}/v2/health/ready")
    assert response.status_code == 503
    reason: str = response.json()["error"]
    return reason


def wait_for_refusal(server: Any) -> str:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        reason = refusal(server)
        if "still loading" not in reason:
            return reason
        time.sleep(0.02)
    raise TimeoutError("the server neither loaded nor refused the model")


def test_tampered_model_file_is_refused_before_unpickling(
    iris_artifact: TrainedArtifact,
    artifact_copy: Callable[[Any], Path],
    live_server: StartServer,
) -> None:
    directory = artifact_copy(iris_artifact)
    marker = tamper(directory)
    server = live_server(directory, wait_ready=False, model_digest=iris_artifact.digest)
    reason = wait_for_refusal(server)
    assert "digest mismatch" in reason
    assert iris_artifact.digest in reason
    assert not marker.exists()
    assert httpx.get(f"{server.url}/v2/models/iris/ready").status_code == 503
    answer = httpx.post(f"{server.url}/predict", json={"instances": [[1, 2, 3, 4]]})
    assert answer.status_code == 503
    assert "digest mismatch" in answer.json()["error"]
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    termination = json.loads((directory / "termination-log").read_text())
    assert termination["ok"] is False
    assert termination["reason"] == "ArtifactError"
    assert "digest mismatch" in termination["message"]


def test_folder_digest_file_is_checked_when_no_digest_is_given(
    iris_artifact: TrainedArtifact,
    artifact_copy: Callable[[Any], Path],
    live_server: StartServer,
) -> None:
    directory = artifact_copy(iris_artifact)
    marker = tamper(directory)
    server = live_server(directory, wait_ready=False)
    assert "digest mismatch" in wait_for_refusal(server)
    assert not marker.exists()


def test_wrong_expected_digest_is_refused(
    iris_artifact: TrainedArtifact, live_server: StartServer
) -> None:
    server = live_server(
        iris_artifact.directory, wait_ready=False, model_digest="sha256:" + "ab" * 32,
        termination_log=Path(os.devnull),
    )  # fmt: skip
    assert "digest mismatch" in wait_for_refusal(server)


@pytest.mark.parametrize(
    ("missing", "words"),
    [("model.joblib", "model file is missing"), ("metadata.json", "metadata file is missing")],
)
def test_missing_file_is_refused(
    iris_artifact: TrainedArtifact,
    artifact_copy: Callable[[Any], Path],
    live_server: StartServer,
    missing: str,
    words: str,
) -> None:
    directory = artifact_copy(iris_artifact)
    (directory / missing).unlink()
    server = live_server(directory, wait_ready=False)
    assert words in wait_for_refusal(server)


def test_metadata_that_does_not_fit_the_model_is_refused(
    iris_artifact: TrainedArtifact,
    artifact_copy: Callable[[Any], Path],
    live_server: StartServer,
) -> None:
    directory = artifact_copy(iris_artifact)
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["features"] = metadata["features"][:3]
    (directory / "metadata.json").write_text(json.dumps(metadata))
    server = live_server(directory, wait_ready=False)
    assert "lists 3 features, the model was fitted on 4" in wait_for_refusal(server)


def test_process_exits_non_zero_on_a_tampered_artifact(
    iris_artifact: TrainedArtifact, artifact_copy: Callable[[Any], Path], tmp_path: Path
) -> None:
    directory = artifact_copy(iris_artifact)
    marker = tamper(directory)
    termination_log = tmp_path / "termination-log"
    env = {
        **os.environ,
        "KUBELOOP_MODEL_DIR": str(directory),
        "KUBELOOP_MODEL_DIGEST": iris_artifact.digest,
        "KUBELOOP_HOST": "127.0.0.1",
        "KUBELOOP_PORT": str(free_port()),
        "KUBELOOP_TERMINATION_LOG": str(termination_log),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "kubeloop_runtime.serve"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 3, completed.stderr
    assert "digest mismatch" in completed.stderr
    assert not marker.exists()
    assert json.loads(termination_log.read_text())["reason"] == "ArtifactError"


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "KUBELOOP_PORT": "not-a-port", "KUBELOOP_MODEL_DIR": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-m", "kubeloop_runtime.serve"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "port" in completed.stderr
