"""The ``profile`` entry point: validate a Dataset, version it, and profile its features.

Reports the content digest (the data version), row count, column types and a compact per-feature
summary through the termination message. The full reference profile (with PSI bins and samples,
far over the 4096-byte message limit) is written as ``profile.json`` into ``output.uri`` when the
configuration names one. A folder's manifest (the files read, with sizes and digests) goes there
too, as ``manifest.json``; the result carries its digest, file count and URI, and the entries
themselves only while they are small (`MANIFEST_INLINE_BYTES`), so the message stays bounded.
The drift checker never reads this profile: it reads the one train writes into the model's
metadata.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from kubeloop_runtime.cli import batch_argument_parser
from kubeloop_runtime.config import ProfileConfig, parse_profile_config, read_config_document
from kubeloop_runtime.datasets import LoadedDataset, load_dataset, manifest_document
from kubeloop_runtime.errors import EXIT_OK, DatasetError, StorageError
from kubeloop_runtime.profile import ProfileError, build_profile
from kubeloop_runtime.schema import (
    apply_declared_types,
    column_type,
    feature_columns,
    validate,
)
from kubeloop_runtime.storage import resolve, upload_folder
from kubeloop_runtime.termination import run_batch, termination_log_path, to_plain

PROFILE_FILE: Final = "profile.json"
MANIFEST_FILE: Final = "manifest.json"
# Inline manifest entries in the result up to this JSON size (a few files); beyond, only the URI.
MANIFEST_INLINE_BYTES: Final = 1024
TOP_CATEGORIES: Final = 10
SUMMARY_FIELDS: Final = ("kind", "count", "nullShare", "mean", "std", "min", "max")


def main(argv: Sequence[str] | None = None) -> int:
    parser = batch_argument_parser(
        "profile", "Validate a dataset, compute its content digest and its per-feature profile."
    )
    args = parser.parse_args(argv)

    def work() -> tuple[dict[str, Any], int]:
        config = parse_profile_config(read_config_document(args.config))
        return run_profile(config), EXIT_OK

    return run_batch("profile", termination_log_path(args.termination_log), work)


def run_profile(config: ProfileConfig) -> dict[str, Any]:
    """Profile the dataset and return the result (the termination message payload)."""
    loaded = load_dataset(config.dataset)
    target = config.dataset.target or loaded.default_target
    schema = config.dataset.schema_
    if schema is not None:
        validate(loaded.frame, schema, target)
    features = feature_columns(loaded.frame, target, loaded.uri)
    typed = apply_declared_types(loaded.frame, schema)
    columns = [
        {"name": str(name), "type": column_type(str(name), typed[name])} for name in typed.columns
    ]
    try:
        profile = build_profile(typed[features])
    except ProfileError as error:
        raise DatasetError(f"{loaded.uri}: {error}") from error

    result: dict[str, Any] = {
        "ok": True,
        "kind": "profile",
        "uri": loaded.uri,
        "format": loaded.format,
        **({"files": loaded.files} if loaded.format == "folder" else {}),
        "digest": loaded.digest,
        "rows": loaded.rows,
        "target": target,
        "columns": columns,
    }
    outputs: dict[str, Any] = {PROFILE_FILE: profile}
    if loaded.format == "folder":
        outputs[MANIFEST_FILE] = manifest_document(loaded)
    if config.output is not None:
        save_outputs(outputs, config.output.uri)
        result["profileUri"] = resolve(config.output.uri).child(PROFILE_FILE).uri
    if loaded.format == "folder":
        manifest_uri = (
            None if config.output is None else resolve(config.output.uri).child(MANIFEST_FILE).uri
        )
        result["manifest"] = manifest_summary(loaded, manifest_uri)
    result["profile"] = summarise_profile(profile)
    return result


def manifest_summary(loaded: LoadedDataset, uri: str | None) -> dict[str, Any]:
    """The manifest in the result: digest, file count, the URI of manifest.json, and the
    entries when they are small or there is no manifest.json to point at."""
    summary: dict[str, Any] = {"digest": loaded.manifest_digest, "files": len(loaded.manifest)}
    entries = [entry.model_dump() for entry in loaded.manifest]
    if uri is not None:
        summary["uri"] = uri
    if uri is None or len(json.dumps(entries, separators=(",", ":"))) <= MANIFEST_INLINE_BYTES:
        summary["entries"] = entries
    return summary


def summarise_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The reference profile's shape with less in it: per feature the kind, counts and moments
    (numeric) or the largest category shares, no bins, deciles or samples."""
    summary: dict[str, Any] = {}
    for name, feature in profile["features"].items():
        entry = {key: feature[key] for key in SUMMARY_FIELDS if key in feature}
        if feature["kind"] == "categorical":
            top = sorted(feature["shares"].items(), key=lambda item: (-item[1], item[0]))
            entry["shares"] = dict(top[:TOP_CATEGORIES])
        summary[name] = entry
    return {"schemaVersion": profile["schemaVersion"], "rows": profile["rows"], "features": summary}


def save_profile(profile: dict[str, Any], uri: str) -> None:
    """Write ``profile.json`` into the output folder (created if needed)."""
    save_outputs({PROFILE_FILE: profile}, uri)


def save_outputs(documents: dict[str, Any], uri: str) -> None:
    """Write each JSON document under its file name into the output folder (created if needed),
    each one whole (written beside its name, then renamed)."""
    location = resolve(uri)
    texts = {
        name: json.dumps(to_plain(document), separators=(",", ":"), allow_nan=False) + "\n"
        for name, document in documents.items()
    }
    if location.is_local:
        folder = Path(location.path)
        for name, text in texts.items():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                staging = folder / f".{name}.tmp"
                staging.write_text(text)
                staging.replace(folder / name)
            except OSError as error:
                raise StorageError(f"output.uri {uri}: cannot write {name}: {error}") from error
        return
    with tempfile.TemporaryDirectory(prefix="kubeloop-profile-") as scratch:
        for name, text in texts.items():
            (Path(scratch) / name).write_text(text)
        upload_folder(Path(scratch), location)


if __name__ == "__main__":
    sys.exit(main())
