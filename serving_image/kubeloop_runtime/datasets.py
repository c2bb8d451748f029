"""Loading a dataset from its URI, and its content digest (the data version).

A dataset is ``builtin://<name>`` (a scikit-learn bundled dataset) or a CSV / Parquet file at any
storage URI (storage.py). The digest is a sha256 over a canonical serialisation of the table, not of
the file bytes, so the same table has the same version whether it is stored as CSV or Parquet, at a
PVC path or behind https:

- header ``kubeloop-dataset-v1``, then the row and column counts;
- for each column in order: its name, then either its values as little-endian float64 (numeric and
  boolean columns; ints become floats, -0.0 becomes 0.0, every null the same NaN) or, for any other
  column, each value's ``str()`` in UTF-8 with a length prefix (nulls marked apart from "").

A URI ending in ``/`` is a folder (docs/design/contracts.md, "Datasets over folders"): every CSV and
Parquet file under it, recursively, in sorted relative-path order, read as one table with columns
aligned by name; capture parts (captures.py) contribute their labelled rows. Its digest is the
same table digest, over the whole table, so it changes exactly when the rows do.

A folder keeps growing (serving captures land in it), so a folder read also gives its manifest:
the files read, each with its size and sha256, and a digest over that list. The profile records
it with the data version; train is given it (``dataset.manifest``) and reads exactly those files,
checking each one's bytes, so it trains on the rows that were profiled, not on what arrived
since. With ``dataset.version`` set (the pinned data version), a table whose digest differs is a
`DataVersionError`: the data that version named is gone.

This module loads and hashes; validation is schema.py's job.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final, Literal

import numpy as np
import pandas as pd

from kubeloop_runtime.captures import (
    CapturePart,
    join_labels,
    labelled_rows,
    read_capture_part,
)
from kubeloop_runtime.config import DatasetSpec, ManifestEntry, ManifestSpec
from kubeloop_runtime.errors import DatasetError, DataVersionError, MissingFileError
from kubeloop_runtime.storage import Location, list_files, read_bytes, resolve

FileFormat = Literal["csv", "parquet"]

BUILTIN_SCHEME: Final = "builtin://"
BUILTIN_TARGET: Final = "target"
BUILTIN_DATASETS: Final = ("iris", "wine", "breast_cancer", "diabetes", "digits")
DIGEST_HEADER: Final = b"kubeloop-dataset-v1\n"
MANIFEST_HEADER: Final = b"kubeloop-manifest-v1\n"
MANIFEST_SCHEMA_VERSION: Final = 1
_PARQUET_MAGIC: Final = b"PAR1"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_DATA_SUFFIXES: Final[dict[str, FileFormat]] = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# pandas 3 parses floats with round-trip precision by default (and deprecates asking for it);
# pandas 2 has to be asked.
_ASK_ROUND_TRIP: Final = int(pd.__version__.split(".")[0]) < 3


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset in memory, with where it came from and its content digest."""

    uri: str
    format: str  # "csv", "parquet", "builtin" or "folder"
    frame: pd.DataFrame
    digest: str
    default_target: str | None  # the builtin datasets name their target column
    target_names: tuple[str, ...] | None  # builtin classification sets: label of each class code
    files: int = 1  # data files read (a folder's count)
    manifest: tuple[ManifestEntry, ...] = ()  # a folder's files as read, in table order

    @property
    def rows(self) -> int:
        return int(self.frame.shape[0])

    @property
    def manifest_digest(self) -> str | None:
        return manifest_digest(self.manifest) if self.format == "folder" else None


def load_dataset(spec: DatasetSpec) -> LoadedDataset:
    """Load the dataset a spec names and compute its digest; with ``spec.version`` (the pinned
    data version) refuse a table whose digest differs, and with ``spec.manifest`` read exactly
    the folder files it lists."""
    loaded = _load(spec)
    if spec.version is not None and loaded.digest != spec.version:
        raise DataVersionError(
            f"dataset {spec.uri}: its content is now version {loaded.digest}, not the pinned "
            f"version {spec.version}: the data of that version is gone (the source changed "
            "since the Dataset was profiled). Refresh the Dataset (set the kubeloop.dev/refresh "
            "annotation) and train again on its new version"
        )
    return loaded


def _load(spec: DatasetSpec) -> LoadedDataset:
    if spec.uri.startswith(BUILTIN_SCHEME):
        name = spec.uri.removeprefix(BUILTIN_SCHEME).strip("/")
        frame, target_names = load_builtin(name)
        return LoadedDataset(
            spec.uri, "builtin", frame, content_digest(frame), BUILTIN_TARGET, target_names
        )
    location = resolve(spec.uri)
    if spec.uri.endswith("/"):
        pinned = None if spec.manifest is None else pinned_files(spec.manifest, spec.uri)
        return load_folder(spec, location, pinned)
    if spec.manifest is not None:
        raise DatasetError(
            f"dataset.manifest: {spec.uri} is one file, not a folder (a URI ending in /); "
            "only a folder has a manifest"
        )
    data = read_bytes(location)
    file_format = detect_format(location.path, spec.format, data)
    frame = parse_table(data, file_format, spec.uri)
    if frame.shape[0] == 0:
        raise DatasetError(f"{spec.uri}: the dataset has no rows")
    return LoadedDataset(spec.uri, file_format, frame, content_digest(frame), None, None)


def manifest_digest(entries: tuple[ManifestEntry, ...] | list[ManifestEntry]) -> str:
    """``sha256:<hex>`` over the header and each entry's path, size and digest, length-prefixed."""
    sha = hashlib.sha256(MANIFEST_HEADER)
    sha.update(f"{len(entries)}\n".encode())
    for entry in entries:
        _update_bytes(sha, entry.path.encode())
        _update_bytes(sha, str(entry.size).encode())
        _update_bytes(sha, entry.digest.encode())
    return f"sha256:{sha.hexdigest()}"


def manifest_document(loaded: LoadedDataset) -> dict[str, object]:
    """``manifest.json``: the folder's files as read, with the data version they make."""
    return {
        "schemaVersion": MANIFEST_SCHEMA_VERSION,
        "uri": loaded.uri,
        "version": loaded.digest,
        "digest": manifest_digest(loaded.manifest),
        "files": [entry.model_dump() for entry in loaded.manifest],
    }


def pinned_files(manifest: ManifestSpec, uri: str) -> tuple[ManifestEntry, ...]:
    """The files a manifest lists (inline, else read from ``manifest.uri``), its digest checked."""
    entries: tuple[ManifestEntry, ...]
    if manifest.entries is not None:
        entries = tuple(manifest.entries)
    else:
        assert manifest.uri is not None  # config.py: entries or uri
        try:
            document = json.loads(read_bytes(resolve(manifest.uri)))
            entries = tuple(ManifestEntry.model_validate(item) for item in document["files"])
        except MissingFileError as error:
            raise DataVersionError(
                f"dataset.manifest.uri: the file list of the pinned data version of {uri} "
                f"cannot be read ({error}); refresh the Dataset and train again"
            ) from error
        except (ValueError, KeyError, TypeError) as error:
            raise DatasetError(
                f"dataset.manifest.uri {manifest.uri}: not a manifest ({error})"
            ) from error
    digest = manifest_digest(entries)
    if digest != manifest.digest or len(entries) != manifest.files:
        raise DatasetError(
            f"dataset.manifest: the file list has digest {digest} and {len(entries)} files, "
            f"not {manifest.digest} and {manifest.files} (a truncated or edited manifest)"
        )
    return entries


def data_file_format(relative: str, declared: str) -> FileFormat | None:
    """A folder member's format by its name, or None when the folder reader skips it."""
    if any(part.startswith((".", "_")) for part in relative.split("/")):
        return None  # writers' temporary files, _SUCCESS markers
    name = relative.lower()
    for suffix, file_format in _DATA_SUFFIXES.items():
        if name.endswith(suffix):
            return file_format if declared in ("auto", file_format) else None
    return None


def load_folder(
    spec: DatasetSpec, location: Location, pinned: tuple[ManifestEntry, ...] | None = None
) -> LoadedDataset:
    """Every data file under the folder as one table (the rules are in the module docstring);
    with ``pinned``, exactly those files, each checked against its size and digest."""
    if pinned is None:
        members = [
            (relative, member, file_format)
            for relative, member in list_files(location)
            if (file_format := data_file_format(relative, spec.format)) is not None
        ]
    else:
        folder = Location(location.uri.rstrip("/") + "/", location.protocol, location.path)
        members = []
        for entry in pinned:
            file_format = data_file_format(entry.path, spec.format)
            if file_format is None:
                raise DatasetError(
                    f"dataset.manifest: {entry.path} is not a data file of {spec.uri} "
                    f"(format {spec.format})"
                )
            members.append((entry.path, folder.child(entry.path), file_format))
    if not members:
        kinds = "CSV or Parquet" if spec.format == "auto" else spec.format.upper()
        raise DatasetError(f"{spec.uri}: the folder holds no {kinds} files")
    pieces: list[pd.DataFrame | CapturePart] = []
    manifest: list[ManifestEntry] = []
    for index, (relative, member, file_format) in enumerate(members):
        data = _read_member(member, None if pinned is None else pinned[index], spec.uri)
        manifest.append(ManifestEntry(path=relative, size=len(data), digest=_sha256(data)))
        part = read_capture_part(data, member.uri) if file_format == "parquet" else None
        pieces.append(part if part is not None else parse_table(data, file_format, member.uri))
    labels = join_labels([piece for piece in pieces if isinstance(piece, CapturePart)])
    frames: list[pd.DataFrame] = []
    columns: list[str] | None = None
    first_uri = ""
    for (_, member, _), piece in zip(members, pieces, strict=True):
        frame = labelled_rows(piece, labels) if isinstance(piece, CapturePart) else piece
        names = [str(name) for name in frame.columns]
        if columns is None:
            columns, first_uri = names, member.uri
        elif set(names) != set(columns) or len(names) != len(columns):
            missing = [name for name in columns if name not in names]
            extra = [name for name in names if name not in columns]
            raise DatasetError(
                f"{member.uri}: its columns differ from those of {first_uri} (a folder's files "
                f"must have the same columns): missing {missing}, extra {extra}"
            )
        else:
            frame = frame[columns]
        if frame.shape[0]:  # empty pieces would only blur the dtypes of the concatenation
            frames.append(frame)
    if not frames:
        raise DatasetError(f"{spec.uri}: the dataset has no rows")
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    table = table.reset_index(drop=True)
    return LoadedDataset(
        spec.uri,
        "folder",
        table,
        content_digest(table),
        None,
        None,
        files=len(members),
        manifest=tuple(manifest),
    )


def _read_member(member: Location, expected: ManifestEntry | None, uri: str) -> bytes:
    """A folder file's bytes; a pinned one must still exist with the same size and digest."""
    if expected is None:
        return read_bytes(member)
    gone = (
        f"the data of the pinned version of {uri} is gone. Refresh the Dataset (set the "
        "kubeloop.dev/refresh annotation) and train again on its new version"
    )
    try:
        data = read_bytes(member)
    except MissingFileError as error:  # a storage that cannot be reached stays a StorageError
        raise DataVersionError(
            f"{member.uri}: the file vanished since profiling ({error}); {gone}"
        ) from error
    if len(data) != expected.size or _sha256(data) != expected.digest:
        raise DataVersionError(
            f"{member.uri}: the file changed since profiling ({len(data)} bytes, "
            f"{_sha256(data)}; profiled {expected.size} bytes, {expected.digest}); {gone}"
        )
    return data


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def load_builtin(name: str) -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    """Return a bundled dataset as one frame (features then ``target``) and its class names."""
    if name not in BUILTIN_DATASETS:
        raise DatasetError(
            f"builtin://{name}: unknown builtin dataset; "
            f"choose one of {', '.join(BUILTIN_DATASETS)}"
        )
    from sklearn import datasets as sklearn_datasets

    bunch = getattr(sklearn_datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [str(column) for column in frame.columns]
    names = bunch.get("target_names")
    target_names = None if names is None else tuple(str(label) for label in names)
    return frame, target_names


def detect_format(path: str, declared: str, data: bytes) -> FileFormat:
    """The declared format, else the file extension, else the content (Parquet's magic bytes)."""
    if declared in ("csv", "parquet"):
        return "csv" if declared == "csv" else "parquet"
    suffixes = [suffix.lower() for suffix in PurePosixPath(path.split("?", 1)[0]).suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes:
        return "csv"
    return "parquet" if data.startswith(_PARQUET_MAGIC) else "csv"


def parse_table(data: bytes, file_format: FileFormat, uri: str) -> pd.DataFrame:
    """Parse file bytes; CSV floats are read back exactly, so CSV and Parquet digests agree."""
    try:
        if file_format == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        if data.startswith(_GZIP_MAGIC):
            data = gzip.decompress(data)
        if _ASK_ROUND_TRIP:
            return pd.read_csv(io.BytesIO(data), float_precision="round_trip")
        return pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError as error:
        raise DatasetError(f"{uri}: the file is empty") from error
    except Exception as error:  # pandas and pyarrow raise many parser types
        raise DatasetError(
            f"{uri}: cannot parse as {file_format} ({type(error).__name__}: {error})"
        ) from error


def content_digest(frame: pd.DataFrame) -> str:
    """``sha256:<hex>`` of the canonical serialisation described in the module docstring."""
    sha = hashlib.sha256(DIGEST_HEADER)
    rows, columns = frame.shape
    sha.update(f"{rows},{columns}\n".encode())
    for position in range(columns):
        _update_bytes(sha, str(frame.columns[position]).encode())
        column = frame.iloc[:, position]
        if _is_numeric(column):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan) + 0.0
            values[np.isnan(values)] = np.nan
            sha.update(b"n")
            sha.update(values.astype("<f8").tobytes())
        else:
            sha.update(b"s")
            for value, missing in zip(column.tolist(), column.isna().tolist(), strict=True):
                if missing:
                    sha.update(b"\x00")
                else:
                    sha.update(b"\x01")
                    _update_bytes(sha, str(value).encode())
    return f"sha256:{sha.hexdigest()}"


def _is_numeric(column: pd.Series) -> bool:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    return bool(
        pd.api.types.is_bool_dtype(dtype)
        or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype))
    )


def _update_bytes(sha: hashlib._Hash, data: bytes) -> None:
    sha.update(len(data).to_bytes(8, "little"))
    sha.update(data)
