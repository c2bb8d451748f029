"""Helpers of the train / profile / fetch tests: configs, a loopback file server, CLI runs.

Kept out of conftest.py (the serve tests own it); the test modules import these directly.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def train_config(output: Path, **overrides: Any) -> dict[str, Any]:
    """A train configuration (contract shape) for iris with a random forest, then overrides."""
    config: dict[str, Any] = {
        "modelName": "iris",
        "dataset": {"uri": "builtin://iris", "format": "auto", "target": "target"},
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 25},
        "evaluation": {"testSize": 0.25, "metric": "accuracy", "threshold": 0.8, "randomSeed": 7},
        "output": {"uri": str(output)},
    }
    config.update(overrides)
    return config


def mixed_frame(rows: int = 120, seed: int = 3) -> pd.DataFrame:
    """A small table with numeric, integer, boolean and text columns (with nulls) and a label.

    The label depends on the features, so a model trained on it beats chance.
    """
    rng = np.random.default_rng(seed)
    size = rng.normal(50.0, 10.0, rows)
    count = rng.integers(0, 20, rows)
    colour = rng.choice(["red", "green", "blue"], rows).astype(object)
    colour[::17] = None
    flag = rng.random(rows) > 0.5
    label = np.where((size > 50) ^ (colour == "red"), "yes", "no")
    return pd.DataFrame(
        {"size": size, "count": count, "colour": colour, "flag": flag, "label": label}
    )


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve a folder over HTTP on 127.0.0.1 (ephemeral port); yield the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    module: str = "kubeloop_runtime",
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> <args>`` as a real process from the repository root."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def read_termination(path: Path) -> dict[str, Any]:
    text = path.read_text()
    assert len(text.encode("utf-8")) < 4096
    loaded: dict[str, Any] = json.loads(text)
    return loaded
