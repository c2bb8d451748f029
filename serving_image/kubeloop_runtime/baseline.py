"""The serving model a retrain is compared with (``evaluation.compareTo: serving``).

The operator names the serving version's artifact folder and digest (``evaluation.baseline``).
Loading reads metadata.json and the bytes of model.joblib through storage.py, checks the bytes'
sha256 against the digest **before** unpickling (as fetch and serve do), and refuses a baseline
whose task or features do not fit the new data. Scoring it is evaluation.py's job, on the rows
`rows_for` arranges in the baseline's own feature order. Rules: docs/design/contracts.md,
"Comparison with the serving model".
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kubeloop_runtime.artifact import METADATA_FILE, MODEL_FILE
from kubeloop_runtime.config import BaselineSpec
from kubeloop_runtime.errors import BaselineError, StorageError
from kubeloop_runtime.storage import read_bytes, resolve


@dataclass(frozen=True)
class Baseline:
    """A verified, loaded serving model and what its metadata says about its inputs."""

    label: str  # how messages name it: the version, else the URI
    model: Any
    task: str
    features: tuple[tuple[str, str], ...]  # (name, "number" | "category") in the model's order


def load_baseline(spec: BaselineSpec) -> Baseline:
    """Read, verify and unpickle the baseline artifact; BaselineError says what is wrong."""
    label = spec.version or spec.uri
    where = f"evaluation.baseline {label}"
    try:
        folder = resolve(spec.uri)
        metadata_bytes = read_bytes(folder.child(METADATA_FILE))
        model_bytes = read_bytes(folder.child(MODEL_FILE))
    except StorageError as error:
        raise BaselineError(f"{where}: {error}") from error
    actual = f"sha256:{hashlib.sha256(model_bytes).hexdigest()}"
    if actual != spec.digest:
        raise BaselineError(
            f"{where}: digest mismatch: expected {spec.digest}, {MODEL_FILE} has {actual}"
        )
    try:
        metadata = json.loads(metadata_bytes)
        task = str(metadata["task"])
        features = tuple(
            (str(entry["name"]), str(entry.get("type", "number"))) for entry in metadata["features"]
        )
    except (ValueError, KeyError, TypeError) as error:
        raise BaselineError(f"{where}: {METADATA_FILE} is not a Kubeloop artifact's") from error
    import joblib

    try:
        model = joblib.load(io.BytesIO(model_bytes))
    except Exception as error:  # a verified file that does not unpickle here (library versions)
        raise BaselineError(
            f"{where}: {MODEL_FILE} does not load ({type(error).__name__}: {error})"
        ) from error
    return Baseline(label, model, task, features)


def check_fits(baseline: Baseline, task: str, feature_types: dict[str, str]) -> None:
    """Refuse a baseline of another task or with other features than the new data's."""
    where = f"evaluation.baseline {baseline.label}"
    if baseline.task != task:
        raise BaselineError(f"{where}: it is a {baseline.task} model, this run trains {task}")
    theirs = dict(baseline.features)
    missing = [name for name in feature_types if name not in theirs]
    extra = [name for name in theirs if name not in feature_types]
    if missing or extra:
        raise BaselineError(
            f"{where}: its features differ from the data's: the data has {missing} it lacks, "
            f"it has {extra} the data lacks"
        )
    retyped = [name for name, kind in theirs.items() if feature_types[name] != kind]
    if retyped:
        raise BaselineError(
            f"{where}: features {retyped} have another type in the data than in the baseline"
        )


def rows_for(baseline: Baseline, rows: Any, features: list[str]) -> Any:
    """The held-out rows as the baseline takes them: its feature order, array or DataFrame."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=features)
    order = [name for name, _ in baseline.features]
    if all(kind == "number" for _, kind in baseline.features):
        return frame[order].to_numpy(dtype=np.float64, na_value=np.nan)
    return frame[order]
