"""The ``fetch`` entry point (the storage initializer): copy an artifact folder and verify it.

``python -m kubeloop_runtime fetch --uri <folder URI> --dest /mnt/models --digest sha256:…``
copies model.joblib, model.sha256 and metadata.json, checks model.joblib against the expected
digest (and against the folder's own digest file and metadata), and only then moves the files into
place. Nothing is unpickled here.

Nothing half-written is ever left at the destination: files are staged in a temporary folder, on
the destination's own filesystem so the final step is a rename. When the destination folder already
exists (in a pod it is usually an emptyDir mount point, which cannot be replaced by a rename) the
staging folder is inside it and each verified file is renamed into place; otherwise the staging
folder sits beside it and is renamed to it. A failure removes the staging folder.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from kubeloop_runtime.artifact import (
    DIGEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    ArtifactError,
    file_digest,
    read_metadata,
)
from kubeloop_runtime.cli import batch_argument_parser
from kubeloop_runtime.errors import EXIT_OK, ConfigError, FetchError, StorageError
from kubeloop_runtime.storage import Location, copy_to_local, resolve
from kubeloop_runtime.termination import run_batch, termination_log_path

ARTIFACT_FILES: Final = (MODEL_FILE, DIGEST_FILE, METADATA_FILE)
DEFAULT_DEST: Final = "/mnt/models"
DIGEST_PATTERN: Final = re.compile(r"^sha256:[0-9a-f]{64}$")


def main(argv: Sequence[str] | None = None) -> int:
    parser = batch_argument_parser(
        "fetch",
        "Copy an artifact folder to a local path and verify the model digest.",
        takes_config=False,
    )
    parser.add_argument("--uri", required=True, help="the artifact folder URI")
    parser.add_argument(
        "--dest", default=DEFAULT_DEST, help=f"local folder (default {DEFAULT_DEST})"
    )
    parser.add_argument(
        "--digest",
        default=os.environ.get("KUBELOOP_MODEL_DIGEST"),
        help="expected sha256:<hex> of model.joblib (default: $KUBELOOP_MODEL_DIGEST; without "
        "one, the folder's own model.sha256 is trusted)",
    )
    args = parser.parse_args(argv)

    def work() -> tuple[dict[str, Any], int]:
        return fetch_artifact(args.uri, Path(args.dest), args.digest), EXIT_OK

    return run_batch("fetch", termination_log_path(args.termination_log), work)


def fetch_artifact(uri: str, dest: Path, expected_digest: str | None) -> dict[str, Any]:
    """Copy, verify, then publish the artifact folder; return the result payload."""
    if expected_digest is not None and not DIGEST_PATTERN.match(expected_digest):
        raise ConfigError(f"--digest: expected sha256:<64 lowercase hex>, got {expected_digest!r}")
    source = resolve(uri)
    if dest.exists() and not dest.is_dir():
        raise FetchError(f"--dest {dest}: exists and is not a folder")
    into_existing = dest.is_dir()
    if into_existing:
        staging = dest / f".fetch-{uuid.uuid4().hex[:12]}"
    else:
        staging = dest.parent / f".{dest.name}.fetch-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir(parents=True)
        for name in ARTIFACT_FILES:
            try:
                copy_to_local(source.child(name), staging / name)
            except StorageError as error:
                raise FetchError(f"{uri}: cannot fetch {name}: {error}") from error
        digest = verify_staged(staging, expected_digest, source)
        publish(staging, dest, into_existing)
    except OSError as error:
        # A read-only or full volume, a file on the destination's path: the user's to fix.
        raise FetchError(f"--dest {dest}: cannot write the artifact: {error}") from error
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return {
        "ok": True,
        "kind": "fetch",
        "uri": uri,
        "dest": str(dest),
        "digest": digest,
        "files": list(ARTIFACT_FILES),
    }


def verify_staged(staging: Path, expected_digest: str | None, source: Location) -> str:
    """Check the model against the expected digest, its digest file and its metadata.

    Messages name the files at ``source``, not the staging copies, which are removed on failure.
    """
    actual = file_digest(staging / MODEL_FILE)
    recorded = (staging / DIGEST_FILE).read_text().strip()
    if expected_digest is not None and actual != expected_digest:
        raise FetchError(
            f"artifact refused: {source.child(MODEL_FILE).uri}: digest mismatch: expected "
            f"{expected_digest}, file has {actual}"
        )
    if recorded != actual:
        raise FetchError(
            f"artifact refused: {source.child(DIGEST_FILE).uri} says {recorded}, "
            f"{MODEL_FILE} has {actual}"
        )
    try:
        metadata = read_metadata(staging)
    except ArtifactError as error:
        raise FetchError(f"artifact refused: {source.child(METADATA_FILE).uri}: {error}") from error
    artifact = metadata.get("artifact")
    described = artifact.get("digest") if isinstance(artifact, dict) else None
    if described != actual:
        raise FetchError(
            f"artifact refused: {source.child(METADATA_FILE).uri}: artifact.digest is "
            f"{described}, {MODEL_FILE} has {actual}"
        )
    return actual


def publish(staging: Path, dest: Path, into_existing: bool) -> None:
    """Move verified files into place with renames (atomic on one filesystem)."""
    if not into_existing:
        staging.rename(dest)
        return
    for name in ARTIFACT_FILES:
        os.replace(staging / name, dest / name)


if __name__ == "__main__":
    sys.exit(main())
