"""Shared helpers of the drift tests: real datasets split into reference and holdout, shifts, a
real artifact folder with a trained model, and a tiny real HTTP window server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kubeloop_runtime.artifact import write_artifact
from kubeloop_runtime.profile import build_profile

# A split in which no unshifted feature happens to fail KS at p < 0.05 (5% of them would on
# average): the tests assert exact feature names, so the split is fixed.
SPLIT_SEED = 42


def reference_and_holdout(
    loader: Callable[..., Any], seed: int = SPLIT_SEED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A bundled dataset's features split 70/30 into reference and holdout."""
    features = loader(as_frame=True).data
    reference, holdout = train_test_split(features, test_size=0.3, random_state=seed)
    return reference, holdout


def shifted(
    holdout: pd.DataFrame, reference: pd.DataFrame, names: Iterable[str], stds: float = 1.5
) -> pd.DataFrame:
    """The holdout with ``names`` moved by ``stds`` reference standard deviations."""
    moved = holdout.copy()
    for name in names:
        moved[name] = moved[name] + stds * reference[name].std()
    return moved


def scaled(holdout: pd.DataFrame, names: Iterable[str], factor: float = 2.5) -> pd.DataFrame:
    """The holdout with ``names`` spread ``factor`` times wider around their mean."""
    moved = holdout.copy()
    for name in names:
        mean = moved[name].mean()
        moved[name] = mean + factor * (moved[name] - mean)
    return moved


def columns_of(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A frame as window columns (plain JSON lists, as the server sends them)."""
    return {str(name): frame[name].tolist() for name in frame.columns}


def window_document(
    frame: pd.DataFrame,
    seq: int,
    *,
    predictions: list[Any] | None = None,
    labels: list[Any] | None = None,
    model_version: str = "1",
) -> dict[str, Any]:
    """A ``GET /v2/window`` body per docs/design/contracts.md."""
    return {
        "model": "breast-cancer",
        "modelVersion": model_version,
        "seq": seq,
        "size": len(frame),
        "features": [str(name) for name in frame.columns],
        "columns": columns_of(frame),
        "feedback": {"predictions": predictions or [], "labels": labels or []},
    }


@dataclass(frozen=True)
class BreastCancerArtifact:
    directory: Path
    reference: pd.DataFrame
    holdout: pd.DataFrame
    holdout_labels: list[str]
    """True class names of the holdout rows, as feedback labels."""


def write_breast_cancer_artifact(directory: Path) -> BreastCancerArtifact:
    """Train a real logistic regression on breast_cancer and write its artifact folder.

    metadata.json holds the reference profile of the training features and the held-out accuracy.
    """
    data = load_breast_cancer(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=SPLIT_SEED
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train.to_numpy(), y_train)
    accuracy = float(model.score(x_test.to_numpy(), y_test))
    metadata = {
        "schemaVersion": 1,
        "modelName": "breast-cancer",
        "task": "classification",
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 1000},
        "metrics": {"accuracy": accuracy},
        "features": [{"name": str(name), "type": "number"} for name in data.data.columns],
        "target": {"name": "target", "classes": [str(c) for c in data.target_names]},
        "profile": build_profile(x_train),
    }
    write_artifact(directory, model, metadata)
    names = [str(c) for c in data.target_names]
    return BreastCancerArtifact(directory, x_train, x_test, [names[int(y)] for y in y_test])


class WindowServer:
    """A real HTTP server on 127.0.0.1 (ephemeral port) answering ``GET /v2/window``.

    Used where the test needs to control the window exactly (seq, feedback, outages); the tests
    against the real model server use kubeloop_runtime.serve instead.
    """

    def __init__(self, document: dict[str, Any] | None = None, port: int = 0) -> None:
        self.document: dict[str, Any] | None = document
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                if self.path != "/v2/window" or owner.document is None:
                    self.send_error(404)
                    return
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
