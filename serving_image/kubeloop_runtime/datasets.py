"""Loading a dataset from its URI, and its content digest (the data version).

A dataset is ``builtin://<name>`` (a scikit-learn bundled dataset) or a CSV / Parquet file at any
storage URI (storage.py). The digest is a sha256 over a canonical serialisation of the table, not of
the file bytes, so the same table has the same version whether it is stored as CSV or Parquet, at a
PVC path or behind https:

- header ``kubeloop-dataset-v1``, then the row and column counts;
- for each column in order: its name, then either its values as little-endian float64 (numeric and
  boolean columns; ints become floats, -0.0 becomes 0.0, every null the same NaN) or, for any other
  column, each value's ``str()`` in UTF-8 with a length prefix (nulls marked apart from "").

This module loads and hashes; validation is schema.py's job.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final, Literal

import numpy as np
import pandas as pd

from kubeloop_runtime.config import DatasetSpec
from kubeloop_runtime.errors import DatasetError
from kubeloop_runtime.storage import read_bytes, resolve

BUILTIN_SCHEME: Final = "builtin://"
BUILTIN_TARGET: Final = "target"
BUILTIN_DATASETS: Final = ("iris", "wine", "breast_cancer", "diabetes", "digits")
DIGEST_HEADER: Final = b"kubeloop-dataset-v1\n"
_PARQUET_MAGIC: Final = b"PAR1"
_GZIP_MAGIC: Final = b"\x1f\x8b"

# pandas 3 parses floats with round-trip precision by default (and deprecates asking for it);
# pandas 2 has to be asked.
_ASK_ROUND_TRIP: Final = int(pd.__version__.split(".")[0]) < 3

FileFormat = Literal["csv", "parquet"]


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset in memory, with where it came from and its content digest."""

    uri: str
    format: str  # "csv", "parquet" or "builtin"
    frame: pd.DataFrame
    digest: str
    default_target: str | None  # the builtin datasets name their target column
    target_names: tuple[str, ...] | None  # builtin classification sets: label of each class code

    @property
    def rows(self) -> int:
        return int(self.frame.shape[0])


def load_dataset(spec: DatasetSpec) -> LoadedDataset:
    """Load the dataset a spec names and compute its digest."""
    if spec.uri.startswith(BUILTIN_SCHEME):
        name = spec.uri.removeprefix(BUILTIN_SCHEME).strip("/")
        frame, target_names = load_builtin(name)
        return LoadedDataset(
            spec.uri, "builtin", frame, content_digest(frame), BUILTIN_TARGET, target_names
        )
    location = resolve(spec.uri)
    data = read_bytes(location)
    file_format = detect_format(location.path, spec.format, data)
    frame = parse_table(data, file_format, spec.uri)
    if frame.shape[0] == 0:
        raise DatasetError(f"{spec.uri}: the dataset has no rows")
    return LoadedDataset(spec.uri, file_format, frame, content_digest(frame), None, None)


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
