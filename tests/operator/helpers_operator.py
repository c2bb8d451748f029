"""The real operator as a subprocess (`python -m kubeloop`), restartable and killable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import eventually, free_port

RUNTIME_IMAGE = os.environ.get("KUBELOOP_TEST_RUNTIME_IMAGE", "kubeloop-runtime:dev")


@dataclass
class OperatorProcess:
    """One `python -m kubeloop` run at a time, restartable."""

    kubeconfig: str
    namespace: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    health_port: int = 0
    runs: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.runs}.log"

    def start(self, **env: str) -> OperatorProcess:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        self.metrics_port, self.health_port = free_port(), free_port()
        environment = {
            **os.environ,
            "KUBELOOP_KUBECONFIG": self.kubeconfig,
            "KUBELOOP_NAMESPACES": self.namespace,
            "KUBELOOP_RUNTIME_IMAGE": RUNTIME_IMAGE,
            "KUBELOOP_IMAGE_PULL_POLICY": "IfNotPresent",
            "KUBELOOP_METRICS_PORT": str(self.metrics_port),
            "KUBELOOP_METRICS_HOST": "127.0.0.1",
            "KUBELOOP_HEALTH_PORT": str(self.health_port),
            "KUBELOOP_HEALTH_HOST": "127.0.0.1",
            "KUBELOOP_STANDALONE": "true",
            "KUBELOOP_RETRY_BASE_SECONDS": "0.5",
            "KUBELOOP_RETRY_MAX_SECONDS": "2",
            **self.extra_env,
            **env,
        }
        environment.pop("KUBECONFIG", None)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kubeloop"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        eventually(self.healthy, timeout=30, interval=0.1, what="the operator's /healthz")
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"the operator exited {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode())

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies or the OOM killer strikes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-20000:]
            for path in sorted(self.log_dir.glob("operator-*.log"))
        )
