"""Shared fixtures of the runtime tests: trained artifact folders and a live model server.

Artifacts are real scikit-learn models fitted on bundled datasets (iris for classification,
diabetes for regression) and written with ``kubeloop_runtime.artifact.write_artifact``, the way
train writes them (docs/design/contracts.md, "Artifact folder"). The live server is uvicorn on
127.0.0.1 with an ephemeral port, in a thread of the test process.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge

from kubeloop_runtime.artifact import write_artifact
from kubeloop_runtime.serve.app import create_app
from kubeloop_runtime.serve.settings import ServeSettings


@dataclass(frozen=True)
class TrainedArtifact:
    directory: Path
    digest: str
    feature_names: list[str]
    classes: list[str] | None
    rows: np.ndarray[Any, Any]
    """Rows of the dataset the model was fitted on, in feature order (handy request bodies)."""


def artifact_metadata(
    name: str, task: str, feature_names: list[str], classes: list[str] | None, estimator: str
) -> dict[str, Any]:
    """A metadata.json following the contract; ``profile`` is left empty for server tests."""
    return {
        "schemaVersion": 1,
        "modelName": name,
        "task": task,
        "estimator": estimator,
        "params": {},
        "metrics": {},
        "features": [{"name": feature, "type": "number"} for feature in feature_names],
        "target": {"name": "target", "classes": classes},
        "profile": {},
        "dataset": {"uri": f"builtin://{name}", "digest": "sha256:" + "0" * 64, "rows": 0},
        "libraries": {},
        "createdAt": "2026-11-23T19:00:00Z",
    }


def _write_iris(directory: Path) -> TrainedArtifact:
    data = load_iris()
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(data.data, data.target)
    names = list(data.feature_names)
    classes = [str(name) for name in data.target_names]
    metadata = artifact_metadata(
        "iris", "classification", names, classes, "sklearn.ensemble.RandomForestClassifier"
    )
    digest = write_artifact(directory, model, metadata)
    return TrainedArtifact(directory, digest, names, classes, np.asarray(data.data))


def _write_diabetes(directory: Path) -> TrainedArtifact:
    data = load_diabetes()
    model = Ridge(alpha=0.1).fit(data.data, data.target)
    names = list(data.feature_names)
    metadata = artifact_metadata(
        "diabetes", "regression", names, None, "sklearn.linear_model.Ridge"
    )
    digest = write_artifact(directory, model, metadata)
    return TrainedArtifact(directory, digest, names, None, np.asarray(data.data))


@pytest.fixture(scope="session")
def iris_artifact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtifact:
    return _write_iris(tmp_path_factory.mktemp("iris-artifact"))


@pytest.fixture(scope="session")
def diabetes_artifact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtifact:
    return _write_diabetes(tmp_path_factory.mktemp("diabetes-artifact"))


@pytest.fixture
def artifact_copy(tmp_path: Path) -> Callable[[TrainedArtifact], Path]:
    """A private copy of an artifact folder, for tests that tamper with it."""

    def copy(artifact: TrainedArtifact) -> Path:
        target = tmp_path / artifact.directory.name
        shutil.copytree(artifact.directory, target)
        return target

    return copy


def serve_settings(artifact_dir: Path, **overrides: Any) -> ServeSettings:
    values: dict[str, Any] = {
        "model_dir": artifact_dir,
        "host": "127.0.0.1",
        "port": 0,
        "exit_on_load_failure": False,
        "termination_log": artifact_dir / "termination-log",
    }
    values.update(overrides)
    return ServeSettings(**values)


class LiveServer:
    """uvicorn serving ``create_app(settings)`` on 127.0.0.1, ephemeral port, in a thread."""

    def __init__(self, settings: ServeSettings) -> None:
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            loop="asyncio",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = ""

    def start(self, wait_ready: bool = True) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        wait_until_ready(self.url)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def wait_until_ready(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not become ready within {timeout} s")


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """Start servers on demand: ``live_server(artifact_dir, **settings)``; all stopped after."""
    started: list[LiveServer] = []

    def start(artifact_dir: Path, wait_ready: bool = True, **overrides: Any) -> LiveServer:
        server = LiveServer(serve_settings(artifact_dir, **overrides))
        started.append(server)
        return server.start(wait_ready=wait_ready)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def shared_server() -> Iterator[Callable[..., LiveServer]]:
    """Like ``live_server``, but one server per (folder, settings) for the whole session.

    For tests that do not care what earlier tests sent (bad-input cases, mostly).
    """
    servers: dict[tuple[Path, tuple[tuple[str, Any], ...]], LiveServer] = {}

    def get(artifact_dir: Path, **overrides: Any) -> LiveServer:
        key = (artifact_dir, tuple(sorted(overrides.items())))
        if key not in servers:
            servers[key] = LiveServer(serve_settings(artifact_dir, **overrides)).start()
        return servers[key]

    yield get
    for server in servers.values():
        server.stop()
