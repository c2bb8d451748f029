"""The reference profile: a compact, JSON-ready summary of a data set that drift is tested against.

The schema is fixed in docs/design/contracts.md ("Reference profile"). Train writes it into
metadata.json, the Dataset profile Job into the Dataset status, and the drift sidecar reads it.

Decisions this module makes (and the drift checker relies on):
- A column's kind follows its dtype. Integer, float and bool columns are numeric (bool as 0/1, so a
  flag that flips in production shows up as a shifted mean); object, string and category columns are
  categorical. Any other dtype (datetimes, timedeltas, complex) is refused with a `ProfileError`
  naming the column: a drift test over it would be meaningless.
- Nulls are counted in ``nullShare`` and left out of every other statistic; ``count`` is the number
  of non-null values.
- ``std`` is the population standard deviation (ddof=0), the normaliser the Wasserstein test uses.
- PSI bins are the reference deciles with duplicate edges dropped; values outside ``[min, max]``
  fall into the first or last bin when the drift checker bins a window.
- ``sample`` holds at most `SAMPLE_SIZE` non-null values drawn without replacement with a fixed
  seed, sorted ascending, so the same data always gives the same profile and tests can skip a sort.
- Every number is a plain Python float (or int); a statistic that does not exist is ``null``.

This module only computes; it reads and writes nothing.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import pandas as pd

SCHEMA_VERSION: Final = 1
SAMPLE_SIZE: Final = 5000
SAMPLE_SEED: Final = 20261123
QUANTILE_LEVELS: Final = tuple(i / 10 for i in range(11))


class ProfileError(ValueError):
    """The data cannot be profiled; the message names the column and the reason."""


def build_profile(frame: pd.DataFrame) -> dict[str, Any]:
    """Return the reference profile of every column of ``frame`` (see the module docstring)."""
    if not isinstance(frame, pd.DataFrame):
        raise ProfileError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if frame.shape[1] == 0:
        raise ProfileError("the data has no columns")
    if frame.shape[0] == 0:
        raise ProfileError("the data has no rows")
    names = [str(name) for name in frame.columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ProfileError(f"duplicate column names: {duplicates}")
    features = {
        name: profile_column(name, frame.iloc[:, position]) for position, name in enumerate(names)
    }
    return {"schemaVersion": SCHEMA_VERSION, "rows": int(frame.shape[0]), "features": features}


def column_kind(name: str, column: pd.Series) -> str:
    """Return ``"numeric"`` or ``"categorical"`` for a column, by dtype."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "numeric"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "categorical"
    raise ProfileError(f"column {name!r}: dtype {dtype} is neither numeric nor categorical")


def profile_column(name: str, column: pd.Series) -> dict[str, Any]:
    """Return one feature's entry of the profile."""
    kind = column_kind(name, column)
    rows = len(column)
    nulls = int(column.isna().sum())
    base: dict[str, Any] = {
        "kind": kind,
        "count": rows - nulls,
        "nullShare": _plain(nulls / rows) if rows else 0.0,
    }
    present = column.dropna()
    if kind == "categorical":
        return {**base, "shares": _category_shares(present)}
    try:
        values = present.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ProfileError(f"column {name!r}: values are not numbers ({error})") from error
    if not np.all(np.isfinite(values)):
        raise ProfileError(f"column {name!r}: contains infinite values")
    return {**base, **numeric_summary(values)}


def numeric_summary(values: np.ndarray) -> dict[str, Any]:
    """Return the numeric statistics of non-null, finite values (all ``null`` when empty)."""
    if values.size == 0:
        return {
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "quantiles": [],
            "binEdges": [],
            "binShares": [],
            "sample": [],
        }
    quantiles = np.quantile(values, QUANTILE_LEVELS)
    edges = np.unique(quantiles)
    if edges.size < 2:
        # A constant column: one bin that holds everything.
        edges = np.array([edges[0], edges[0]])
        shares = np.array([1.0])
    else:
        shares = bin_counts(values, edges) / values.size
    return {
        "mean": _plain(float(np.mean(values))),
        "std": _plain(float(np.std(values))),
        "min": _plain(float(values.min())),
        "max": _plain(float(values.max())),
        "quantiles": _plain_list(quantiles),
        "binEdges": _plain_list(edges),
        "binShares": _plain_list(shares),
        "sample": _plain_list(deterministic_sample(values)),
    }


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Count values per bin of ``edges``; the end bins are open, so every value lands somewhere.

    Bins are left-closed like numpy.histogram's, except the last, which is closed on both sides so
    that the reference maximum lands in it.
    """
    bins = max(len(edges) - 1, 1)
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    index = np.searchsorted(inner, values, side="right")
    return np.bincount(index, minlength=bins).astype(np.float64)


def deterministic_sample(values: np.ndarray, size: int = SAMPLE_SIZE) -> np.ndarray:
    """Return at most ``size`` values drawn without replacement with a fixed seed, sorted."""
    if values.size <= size:
        return np.sort(values)
    rng = np.random.default_rng(SAMPLE_SEED)
    picked = rng.choice(values.size, size=size, replace=False)
    return np.sort(values[picked])


def _category_shares(present: pd.Series) -> dict[str, float]:
    if present.empty:
        return {}
    counts = present.astype(str).value_counts()
    total = float(counts.sum())
    return {str(key): _plain(float(counts[key]) / total) for key in sorted(counts.index)}


def _plain(value: float) -> Any:
    """A JSON-safe float: NaN and infinities become ``None``."""
    number = float(value)
    return number if math.isfinite(number) else None


def _plain_list(values: np.ndarray) -> list[Any]:
    return [_plain(value) for value in np.asarray(values, dtype=np.float64).tolist()]
