"""Validating a dataset against its schema expectations (contracts.md, config ``schema``).

`find_violations` is pure: it returns every violation, each naming the column and the rule, so a
user fixes the data once rather than one error per run. `validate` raises them together as one
`SchemaError`. Rules: ``minRows``, ``required`` (missing column), ``allowExtraColumns``, ``type``,
``min``, ``max``, ``allowedValues``, ``maxNullShare``. Nulls are left out of the value rules: they
are ``maxNullShare``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from kubeloop_runtime.config import ColumnExpectation, SchemaSpec
from kubeloop_runtime.errors import DatasetError, SchemaError
from kubeloop_runtime.profile import ProfileError, column_kind

_SHOWN_VALUES: Final = 5


@dataclass(frozen=True)
class Violation:
    column: str | None  # None for a rule about the whole dataset (minRows)
    rule: str
    message: str


def validate(frame: pd.DataFrame, schema: SchemaSpec, target: str | None = None) -> None:
    """Raise `SchemaError` listing every violation; return quietly when there is none."""
    violations = find_violations(frame, schema, target)
    if violations:
        messages = [violation.message for violation in violations]
        count = len(messages)
        raise SchemaError(
            f"{count} schema violation{'s' if count > 1 else ''}: " + "; ".join(messages),
            messages,
        )


def find_violations(
    frame: pd.DataFrame, schema: SchemaSpec, target: str | None = None
) -> list[Violation]:
    """Every rule the frame breaks, in schema order. ``target`` is never an extra column."""
    violations: list[Violation] = []
    rows = int(frame.shape[0])
    if schema.min_rows is not None and rows < schema.min_rows:
        violations.append(
            Violation(
                None, "minRows", f"dataset: {rows} rows, fewer than minRows {schema.min_rows}"
            )
        )
    present = {str(name) for name in frame.columns}
    for expectation in schema.columns:
        if expectation.name not in present:
            if expectation.required:
                violations.append(
                    Violation(expectation.name, "required", f"column {expectation.name!r}: missing")
                )
            continue
        violations.extend(check_column(frame[expectation.name], expectation))
    if not schema.allow_extra_columns:
        declared = {expectation.name for expectation in schema.columns}
        if target is not None:
            declared.add(target)
        for name in frame.columns:
            if str(name) not in declared:
                violations.append(
                    Violation(
                        str(name),
                        "allowExtraColumns",
                        f"column {str(name)!r}: not in the schema (allowExtraColumns is false)",
                    )
                )
    return violations


def check_column(column: pd.Series, expectation: ColumnExpectation) -> list[Violation]:
    """The violations of one present column."""
    name = expectation.name
    found: list[Violation] = []
    nulls = int(column.isna().sum())
    if expectation.max_null_share is not None and len(column) > 0:
        share = nulls / len(column)
        if share > expectation.max_null_share:
            found.append(
                Violation(
                    name,
                    "maxNullShare",
                    f"column {name!r}: null share {share:.4g} ({nulls} of {len(column)}) above "
                    f"maxNullShare {expectation.max_null_share:g}",
                )
            )
    present = column.dropna()
    type_problem = _type_problem(present, expectation.type)
    if type_problem is not None:
        found.append(Violation(name, "type", f"column {name!r}: {type_problem}"))
        numeric: np.ndarray | None = None
    else:
        numeric = _as_numbers(present)
    for rule, bound in (("min", expectation.min), ("max", expectation.max)):
        if bound is None or type_problem is not None:
            continue
        if numeric is None:
            found.append(
                Violation(name, rule, f"column {name!r}: rule {rule} needs numbers, found text")
            )
            continue
        outside = numeric < bound if rule == "min" else numeric > bound
        count = int(outside.sum())
        if count:
            worst = numeric[outside].min() if rule == "min" else numeric[outside].max()
            side = "below min" if rule == "min" else "above max"
            found.append(
                Violation(
                    name,
                    rule,
                    f"column {name!r}: {count} value{'s' if count > 1 else ''} {side} {bound:g} "
                    f"({'lowest' if rule == 'min' else 'highest'} {worst:g})",
                )
            )
    if expectation.allowed_values is not None:
        allowed_text = {_key(value) for value in expectation.allowed_values}
        unexpected = sorted({_key(value) for value in present.tolist()} - allowed_text)
        if unexpected:
            shown = ", ".join(repr(value) for value in unexpected[:_SHOWN_VALUES])
            more = len(unexpected) - _SHOWN_VALUES
            found.append(
                Violation(
                    name,
                    "allowedValues",
                    f"column {name!r}: values not in allowedValues: {shown}"
                    + (f" and {more} more" if more > 0 else ""),
                )
            )
    return found


def _type_problem(present: pd.Series, declared: str | None) -> str | None:
    """Why the non-null values do not have the declared type, or None if they do."""
    if declared is None or declared in ("category", "string"):
        return None
    dtype = present.dtype
    if declared == "boolean":
        if pd.api.types.is_bool_dtype(dtype) or set(present.tolist()) <= {True, False}:
            return None
        return f"type boolean expected, found {dtype}"
    if pd.api.types.is_bool_dtype(dtype):
        return f"type {declared} expected, found {dtype}"
    numbers = _as_numbers(present)
    if numbers is None:
        return f"type {declared} expected, found {dtype} (e.g. {_first_non_number(present)!r})"
    if declared == "integer" and not bool(
        np.all(np.isfinite(numbers) & (numbers == np.round(numbers)))
    ):
        return "type integer expected, found non-integral numbers"
    return None


def _as_numbers(present: pd.Series) -> np.ndarray | None:
    dtype = present.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return present.to_numpy(dtype=np.float64)
    return None


def _first_non_number(present: pd.Series) -> object:
    for value in present.tolist():
        try:
            float(value)
        except (TypeError, ValueError):
            return value
    return present.iloc[0] if len(present) else None


def _key(value: object) -> str:
    """Compare allowed values as text, with 1 and 1.0 the same (CSV and Parquet read ints apart)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def apply_declared_types(frame: pd.DataFrame, schema: SchemaSpec | None) -> pd.DataFrame:
    """The dataset with the columns the schema declares ``category`` or ``string`` as text.

    A numeric-looking code (a ZIP code, a store id) is a category when the schema says so, whatever
    dtype the file gave it. Nulls stay nulls. With nothing to convert, ``frame`` itself is
    returned: neither caller changes it, and a copy of the whole dataset would be wasted.
    """
    textual = [
        expectation.name
        for expectation in (schema.columns if schema is not None else ())
        if expectation.type in ("category", "string") and expectation.name in frame.columns
    ]
    if not textual:
        return frame
    typed = frame.copy()
    for name in textual:
        column = typed[name]
        typed[name] = column.astype(str).where(column.notna(), None)
    return typed


def column_type(name: str, column: pd.Series) -> str:
    """The feature type metadata.json records: ``number`` or ``category`` (profile.py's kinds)."""
    try:
        kind = column_kind(name, column)
    except ProfileError as error:
        raise SchemaError(str(error), [str(error)]) from error
    return "number" if kind == "numeric" else "category"


def feature_columns(frame: pd.DataFrame, target: str | None, uri: str) -> list[str]:
    """Every column but the target, in dataset order: the model's features.

    Refuses a named target the dataset lacks and a dataset with no column besides the target.
    """
    if target is not None and target not in frame.columns:
        raise DatasetError(
            f"dataset.target: no column {target!r} in {uri}; columns: "
            + ", ".join(str(name) for name in frame.columns)
        )
    features = [str(name) for name in frame.columns if str(name) != target]
    if not features:
        raise DatasetError(f"{uri}: no feature columns besides the target {target!r}")
    return features
