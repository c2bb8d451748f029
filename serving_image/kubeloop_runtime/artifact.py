"""The artifact folder: where a trained model lives and how its integrity is checked.

Layout and metadata schema: docs/design/contracts.md. The digest is checked on bytes, before
anything unpickles the model file: joblib files can run code when loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import joblib

MODEL_FILE = "model.joblib"
DIGEST_FILE = "model.sha256"
METADATA_FILE = "metadata.json"
_CHUNK = 1 << 20


class ArtifactError(Exception):
    """The artifact folder is missing a file, or a file does not match its digest."""


def file_digest(path: Path) -> str:
    """Return ``sha256:<hex>`` of a file's bytes."""
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
    return f"sha256:{sha.hexdigest()}"


def write_artifact(directory: Path, model: Any, metadata: dict[str, Any]) -> str:
    """Write model, digest and metadata into ``directory``; return the model's digest.

    ``metadata["artifact"]`` is filled in here so the digest in the metadata always matches.
    """
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    joblib.dump(model, model_path)
    digest = file_digest(model_path)
    (directory / DIGEST_FILE).write_text(digest + "\n")
    metadata = {**metadata, "artifact": {"file": MODEL_FILE, "digest": digest}}
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return digest


def read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: metadata file is missing")
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(loaded, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    return loaded


def verify_model(directory: Path, expected_digest: str | None = None) -> str:
    """Check ``model.joblib`` against ``expected_digest`` (or the folder's own digest file).

    Returns the digest. Raises ArtifactError on a missing file or any mismatch.
    """
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file is missing")
    if expected_digest is None:
        digest_path = directory / DIGEST_FILE
        if not digest_path.is_file():
            raise ArtifactError(f"{digest_path}: digest file is missing and no digest was given")
        expected_digest = digest_path.read_text().strip()
    actual = file_digest(model_path)
    if actual != expected_digest:
        raise ArtifactError(
            f"{model_path}: digest mismatch: expected {expected_digest}, file has {actual}"
        )
    return actual


def load_model(directory: Path, expected_digest: str | None = None) -> Any:
    """Verify the digest, then unpickle. Never unpickles an unverified file."""
    verify_model(directory, expected_digest)
    return joblib.load(directory / MODEL_FILE)
