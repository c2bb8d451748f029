"""The capture part file: what a serving pod writes, and how a Dataset reads it back.

Layout and schema: docs/design/contracts.md, "Data capture". A part holds two kinds of records:
``prediction`` records (the input row, the prediction, and the label when it arrived before the
part was written) and ``feedback`` records (a label for a prediction written in an earlier part).
Reading joins them by prediction id over all parts of a folder, so a late label still counts, and
gives back what training needs: the labelled rows, as the model's feature columns and its target.

This module only builds and parses tables; writing and queueing are serve/capture.py's job,
listing folders is datasets.py's.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubeloop_runtime.errors import DatasetError

RECORD: Final = "kubeloop.record"
ID: Final = "kubeloop.id"
TIME: Final = "kubeloop.time"
MODEL_VERSION: Final = "kubeloop.modelVersion"
PREDICTION: Final = "kubeloop.prediction"
RESERVED_PREFIX: Final = "kubeloop."
METADATA_KEY: Final = b"kubeloop.capture"
SCHEMA_VERSION: Final = 1
PREDICTION_RECORD: Final = "prediction"
FEEDBACK_RECORD: Final = "feedback"
PART_SUFFIX: Final = ".parquet"
PART_NAME: Final = re.compile(r"^(?P<time>\d{8}T\d{12}Z)-(?P<pod>.+)-(?P<seq>\d{6,})\.parquet$")
_TIME_TYPE: Final = pa.timestamp("us", tz="UTC")

FeatureKind = Literal["number", "category"]


def part_name(now: datetime, pod: str, seq: int) -> str:
    """``<UTC time>-<pod>-<seq>.parquet``: lexical order is time order."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{pod}-{seq:06d}{PART_SUFFIX}"


def target_type(values: Sequence[Any] | None, task: str) -> pa.DataType:
    """The Arrow type of the target (and prediction) column: that of the model's target values."""
    if task == "regression" or values is None:
        return pa.float64()
    if values and all(isinstance(value, bool) for value in values):
        return pa.bool_()
    if values and all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return pa.int64()
    if values and all(isinstance(value, float) for value in values):
        return pa.float64()
    return pa.string()


@dataclass(frozen=True)
class CaptureSchema:
    """What a part's columns are: fixed per served model."""

    model: str
    model_version: str
    pod: str
    task: str
    features: tuple[tuple[str, FeatureKind], ...]
    target: str
    target_type: pa.DataType

    def reserved_clash(self) -> str | None:
        """A feature or target name the capture columns would shadow, if any."""
        for name in (*(name for name, _ in self.features), self.target):
            if name.startswith(RESERVED_PREFIX):
                return name
        if self.target in {name for name, _ in self.features}:
            return self.target
        return None

    def arrow_schema(self) -> pa.Schema:
        fields = [
            pa.field(RECORD, pa.string(), nullable=False),
            pa.field(ID, pa.string(), nullable=False),
            pa.field(TIME, _TIME_TYPE, nullable=False),
            pa.field(MODEL_VERSION, pa.string(), nullable=False),
            *(
                pa.field(name, pa.float64() if kind == "number" else pa.string())
                for name, kind in self.features
            ),
            pa.field(PREDICTION, self.target_type),
            pa.field(self.target, self.target_type),
        ]
        description = {
            "schemaVersion": SCHEMA_VERSION,
            "model": self.model,
            "modelVersion": self.model_version,
            "pod": self.pod,
            "task": self.task,
            "target": self.target,
            "features": [name for name, _ in self.features],
        }
        return pa.schema(fields, metadata={METADATA_KEY: json.dumps(description).encode()})


@dataclass
class PartColumns:
    """The records of one part, column by column, before they become a table.

    Prediction records come first (``seqs`` … ``labels``, aligned), then the feedback records.
    ``features`` holds one array or list per feature; ``predictions`` is the class position per
    row (classification, looked up in ``class_values``) or the predicted value (regression).
    ``labels`` is None when no prediction record has a label yet.
    """

    instance: str  # the prediction-id prefix of this process
    seqs: npt.NDArray[np.int64]
    times: npt.NDArray[np.float64]  # seconds since the epoch
    features: list[Any]
    predictions: npt.NDArray[Any]
    labels: list[Any] | None
    feedback_seqs: list[int]
    feedback_times: list[float]
    feedback_labels: list[Any]


def _ids(instance: str, seqs: npt.NDArray[np.int64] | list[int]) -> pa.Array:
    numbers = pc.cast(pa.array(seqs, pa.int64()), pa.string())
    return pc.binary_join_element_wise(instance, numbers, "-")


def _times(seconds: npt.NDArray[np.float64] | list[float]) -> pa.Array:
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1_000_000).astype(np.int64)
    return pa.array(micros, pa.int64()).cast(_TIME_TYPE)


def build_part(
    schema: CaptureSchema, columns: PartColumns, class_values: Sequence[Any] | None
) -> bytes:
    """The Parquet bytes of one part (one row group). Vectorised: no Python loop per row."""
    predictions = len(columns.seqs)
    feedback = len(columns.feedback_seqs)
    arrow = schema.arrow_schema()

    def padded(head: pa.Array, kind: pa.DataType) -> pa.Array:
        return pa.concat_arrays([head, pa.nulls(feedback, type=kind)]) if feedback else head

    arrays: list[pa.Array] = [
        pa.concat_arrays(
            [
                pa.repeat(pa.scalar(PREDICTION_RECORD), predictions),
                pa.repeat(pa.scalar(FEEDBACK_RECORD), feedback),
            ]
        ),
        pa.concat_arrays(
            [_ids(columns.instance, columns.seqs), _ids(columns.instance, columns.feedback_seqs)]
        ),
        pa.concat_arrays([_times(columns.times), _times(columns.feedback_times)]),
        pa.repeat(pa.scalar(schema.model_version), predictions + feedback),
    ]
    for position, values in enumerate(columns.features):
        kind = arrow.field(4 + position).type
        # numbers arrive as float64 arrays (NaN for a missing value), categories as lists
        arrays.append(padded(pa.array(values, type=kind), kind))
    target = schema.target_type
    if class_values is not None:
        positions = pa.array(np.asarray(columns.predictions, dtype=np.int64))
        outcome = pc.take(pa.array(list(class_values), target), positions)
    else:
        outcome = pa.array(columns.predictions, target)
    arrays.append(padded(outcome, target))
    if columns.labels is None:
        own = pa.nulls(predictions, type=target)
    else:
        own = pa.array(columns.labels, type=target)
    arrays.append(pa.concat_arrays([own, pa.array(columns.feedback_labels, type=target)]))
    table = pa.Table.from_arrays(arrays, schema=arrow)
    strings = [field.name for field in arrow if pa.types.is_string(field.type) and field.name != ID]
    sink = io.BytesIO()
    # Dictionary encoding only where values repeat (record kind, version, categories): on
    # float columns it costs five times the write for nothing.
    pq.write_table(table, sink, compression="snappy", use_dictionary=strings)
    return sink.getvalue()


# -- reading ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CapturePart:
    """A capture part read back: its table and what its schema metadata says."""

    uri: str
    table: pa.Table
    features: tuple[str, ...]
    target: str

    @property
    def columns(self) -> list[str]:
        """The columns the part contributes to a Dataset: features, then the target."""
        return [*self.features, self.target]


def read_capture_part(data: bytes, uri: str) -> CapturePart | None:
    """Parse Parquet bytes as a capture part; None when the file is no capture part."""
    try:
        schema = pq.read_schema(io.BytesIO(data))
    except Exception:  # not Parquet after all: the ordinary parser reports it
        return None
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        return None
    try:
        description = json.loads(raw)
        features = tuple(str(name) for name in description["features"])
        target = str(description["target"])
        table = pq.read_table(io.BytesIO(data))
    except Exception as error:
        raise DatasetError(
            f"{uri}: unreadable capture part ({type(error).__name__}: {error})"
        ) from error
    missing = [name for name in (RECORD, ID, *features, target) if name not in table.column_names]
    if missing:
        raise DatasetError(f"{uri}: capture part lacks the columns {missing}")
    return CapturePart(uri, table, features, target)


def join_labels(parts: Sequence[CapturePart]) -> dict[str, Any]:
    """Prediction id -> label, over all parts in order; the last label seen wins.

    Within a part the prediction records' own labels come before its feedback records.
    """
    labels: dict[str, Any] = {}
    for part in parts:
        records = part.table.column(RECORD).to_pylist()
        ids = part.table.column(ID).to_pylist()
        values = part.table.column(part.target).to_pylist()
        for wanted in (PREDICTION_RECORD, FEEDBACK_RECORD):
            for record, prediction_id, value in zip(records, ids, values, strict=True):
                if record == wanted and value is not None:
                    labels[prediction_id] = value
    return labels


def labelled_rows(part: CapturePart, labels: dict[str, Any]) -> pd.DataFrame:
    """The part's prediction records that have a label, as feature columns plus the target."""
    table = part.table
    predictions = table.filter(pc.equal(table.column(RECORD), PREDICTION_RECORD))
    ids = predictions.column(ID).to_pylist()
    field = predictions.schema.field(part.target)
    try:
        joined = pa.array([labels.get(prediction_id) for prediction_id in ids], type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DatasetError(
            f"{part.uri}: a label joined from another capture part does not fit the target "
            f"column {part.target!r} ({field.type}): {error}"
        ) from error
    position = predictions.schema.get_field_index(part.target)
    predictions = predictions.set_column(position, field, joined)
    predictions = predictions.filter(pc.is_valid(predictions.column(part.target)))
    frame: pd.DataFrame = predictions.select(part.columns).to_pandas()
    return frame
