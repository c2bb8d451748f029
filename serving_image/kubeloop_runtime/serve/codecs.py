"""Request bodies to feature matrices, predictions to response bodies.

Two wire formats: the Open Inference Protocol v2 (``/v2/models/{name}/infer``: one [N, F] tensor,
or one tensor per feature named by the feature) and the plain ``/predict`` (``{"instances":
[[...], ...]}`` or records by feature name). Everything here is pure: bytes or parsed JSON in,
numpy/pandas or bytes out, InvalidInputError naming the input, row and feature on bad values.

The hot path builds one numpy array from the parsed lists and checks it with vectorised tests;
per-value Python only runs to name the culprit once a test has failed. No value here can be
NaN or infinite: orjson refuses ``NaN``/``Infinity`` and numbers beyond float range while
parsing (a 400 naming the place), and null only becomes NaN when missing values are allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from kubeloop_runtime.serve.errors import InvalidInputError, MalformedRequestError
from kubeloop_runtime.serve.model import FeatureMatrix, ModelSchema, Prediction

_NUMERIC_KINDS = "iuf"
_INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64"})
_UINT_TYPES = frozenset({"UINT8", "UINT16", "UINT32", "UINT64"})
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
V2_DATATYPES = frozenset({"BOOL", "BYTES", *_INT_TYPES, *_UINT_TYPES, *_FLOAT_TYPES})
OUTPUT_PREDICT = "predict"
OUTPUT_PROBA = "predict_proba"


def parse_json(body: bytes) -> Any:
    if not body:
        raise MalformedRequestError("request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedRequestError(f"request body is not valid JSON: {error}") from error


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list | dict):
        return "a nested " + ("list" if isinstance(value, list) else "object")
    return repr(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bad_value(value: object, allow_missing: bool) -> str | None:
    """Why a single value cannot be a numeric feature, or None if it can."""
    if value is None:
        return None if allow_missing else "null is not allowed"
    if not _is_number(value):
        return f"{_describe(value)} is not a number"
    if not math.isfinite(value):  # type: ignore[arg-type]
        return None if allow_missing and math.isnan(value) else f"{value} is not finite"  # type: ignore[arg-type]
    return None


def _name_numeric_culprit(
    rows: list[Any], schema: ModelSchema, where: str, allow_missing: bool
) -> InvalidInputError:
    """Find the first row or value that made the vectorised check fail and name it."""
    names = schema.feature_names
    for row_number, row in enumerate(rows):
        if not isinstance(row, list):
            return InvalidInputError(
                f"{where}[{row_number}]: expected a list of {len(names)} values, "
                f"got {_describe(row)}",
                field=f"{where}[{row_number}]",
            )
        if len(row) != len(names):
            return InvalidInputError(
                f"{where}[{row_number}]: expected {len(names)} features "
                f"({', '.join(names)}), got {len(row)}",
                field=f"{where}[{row_number}]",
            )
        for column, value in enumerate(row):
            reason = _bad_value(value, allow_missing)
            if reason is not None:
                return InvalidInputError(
                    f"{where}[{row_number}][{column}] (feature {names[column]!r}): {reason}",
                    field=names[column],
                )
    return InvalidInputError(f"{where}: values are not a numeric matrix", field=where)


def numeric_rows(
    rows: list[Any], schema: ModelSchema, where: str, allow_missing: bool
) -> npt.NDArray[np.float64]:
    """A list of rows (lists of numbers in feature order) as a float64 [N, F] matrix."""
    if not rows:
        raise InvalidInputError(f"{where}: the batch is empty; send at least one row", field=where)
    width = len(schema.features)
    try:
        array = np.array(rows)
    except (ValueError, TypeError, OverflowError):
        raise _name_numeric_culprit(rows, schema, where, allow_missing) from None
    if array.ndim == 1 and width == 1 and array.dtype.kind in _NUMERIC_KINDS:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != width or array.dtype.kind not in _NUMERIC_KINDS:
        if allow_missing and array.ndim == 2 and array.shape[1] == width:
            try:
                array = np.array(rows, dtype=np.float64)  # None becomes NaN
            except (ValueError, TypeError):
                raise _name_numeric_culprit(rows, schema, where, allow_missing) from None
            if any(not (_is_number(v) or v is None) for row in rows for v in row):
                raise _name_numeric_culprit(rows, schema, where, False)
        else:
            raise _name_numeric_culprit(rows, schema, where, allow_missing)
    return np.ascontiguousarray(array, dtype=np.float64)


def _category_value(value: object, name: str, where: str, allow_missing: bool) -> object:
    if isinstance(value, str) or (_is_number(value) and isinstance(value, int)):
        return value
    if value is None and allow_missing:
        return None
    raise InvalidInputError(
        f"{where} (feature {name!r}): {_describe(value)} is not a category (string or integer)",
        field=name,
    )


def mixed_columns(
    columns: dict[str, list[Any]], schema: ModelSchema, where: str, allow_missing: bool
) -> pd.DataFrame:
    """Columns by feature name, some categorical, as the DataFrame a Pipeline takes."""
    frame: dict[str, Any] = {}
    for feature in schema.features:
        values = columns[feature.name]
        if feature.kind == "category":
            frame[feature.name] = pd.Series(
                [
                    _category_value(v, feature.name, f"{where}[{i}]", allow_missing)
                    for i, v in enumerate(values)
                ],
                dtype=object,
            )
        else:
            for row_number, value in enumerate(values):
                reason = _bad_value(value, allow_missing)
                if reason is not None:
                    raise InvalidInputError(
                        f"{where}[{row_number}] (feature {feature.name!r}): {reason}",
                        field=feature.name,
                    )
            frame[feature.name] = np.array(
                [np.nan if v is None else v for v in values], dtype=np.float64
            )
    return pd.DataFrame(frame, columns=list(schema.feature_names))


def _rows_to_columns(rows: list[Any], schema: ModelSchema, where: str) -> dict[str, list[Any]]:
    width = len(schema.features)
    for row_number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInputError(
                f"{where}[{row_number}]: expected a list of {width} values "
                f"({', '.join(schema.feature_names)})",
                field=f"{where}[{row_number}]",
            )
    return {name: [row[i] for row in rows] for i, name in enumerate(schema.feature_names)}


def _records_to_rows(records: list[Any], schema: ModelSchema, where: str) -> list[list[Any]]:
    names = schema.feature_names
    expected = set(names)
    pick = itemgetter(*names)
    rows: list[list[Any]] = []
    for row_number, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInputError(
                f"{where}[{row_number}]: records and lists cannot be mixed; "
                f"got {_describe(record)}",
                field=f"{where}[{row_number}]",
            )
        if record.keys() != expected:
            missing = [name for name in names if name not in record]
            unknown = [key for key in record if key not in expected]
            if missing:
                raise InvalidInputError(
                    f"{where}[{row_number}]: missing feature {missing[0]!r}", field=missing[0]
                )
            raise InvalidInputError(
                f"{where}[{row_number}]: unknown feature {unknown[0]!r}; expected "
                f"{', '.join(names)}",
                field=unknown[0],
            )
        picked = pick(record)
        rows.append(list(picked) if len(names) > 1 else [picked])
    return rows


@dataclass(frozen=True)
class PredictRequest:
    features: FeatureMatrix
    probabilities: bool


def decode_predict(payload: Any, schema: ModelSchema, allow_missing: bool) -> PredictRequest:
    """``{"instances": [[...], ...]}`` or ``{"instances": [{"name": value}, ...]}``."""
    if not isinstance(payload, dict):
        raise MalformedRequestError('body must be a JSON object like {"instances": [[...], ...]}')
    unknown = [key for key in payload if key not in ("instances", "probabilities")]
    if unknown:
        raise InvalidInputError(
            f"unknown field {unknown[0]!r}; expected 'instances' (and 'probabilities')",
            field=unknown[0],
        )
    if "instances" not in payload:
        raise InvalidInputError("missing field 'instances'", field="instances")
    instances = payload["instances"]
    probabilities = payload.get("probabilities", False)
    if not isinstance(probabilities, bool):
        raise InvalidInputError("'probabilities' must be true or false", field="probabilities")
    if not isinstance(instances, list):
        raise InvalidInputError(
            f"'instances' must be a list of rows, got {_describe(instances)}", field="instances"
        )
    if not instances:
        raise InvalidInputError("instances: the batch is empty; send at least one row", "instances")
    if isinstance(instances[0], dict):
        instances = _records_to_rows(instances, schema, "instances")
    if schema.all_numeric:
        return PredictRequest(
            numeric_rows(instances, schema, "instances", allow_missing), probabilities
        )
    columns = _rows_to_columns(instances, schema, "instances")
    return PredictRequest(mixed_columns(columns, schema, "instances", allow_missing), probabilities)


@dataclass(frozen=True)
class InferRequest:
    features: FeatureMatrix
    request_id: str | None
    outputs: tuple[str, ...]
    rows: int


def _shape(tensor: dict[str, Any], where: str) -> list[int]:
    shape = tensor.get("shape")
    valid = type(shape) is list and len(shape) > 0
    if valid:
        for dimension in shape:  # type: ignore[union-attr]
            if type(dimension) is not int or dimension < 0:  # bool is not int here
                valid = False
                break
    if not valid:
        raise InvalidInputError(
            f"{where}: 'shape' must be a non-empty list of non-negative integers", field=where
        )
    return shape  # type: ignore[return-value]


def _tensor_values(
    tensor: dict[str, Any], where: str, allow_missing: bool
) -> tuple[npt.NDArray[Any], list[int]]:
    """The tensor's data as a flat array whose values fit its datatype, and its checked shape."""
    datatype = tensor.get("datatype")
    if datatype not in V2_DATATYPES:
        raise InvalidInputError(
            f"{where}: datatype {datatype!r} is not one of {', '.join(sorted(V2_DATATYPES))}",
            field=where,
        )
    shape = _shape(tensor, where)
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidInputError(f"{where}: 'data' must be a list", field=where)
    try:
        values = np.array(data).ravel()
    except (ValueError, TypeError, OverflowError):
        raise InvalidInputError(
            f"{where}: 'data' is not a regular nested list", field=where
        ) from None
    expected = math.prod(shape)
    if values.size != expected:
        raise InvalidInputError(
            f"{where}: shape {shape} needs {expected} values, 'data' has {values.size}",
            field=where,
        )
    kind = values.dtype.kind
    if values.size == 0:
        return values, shape
    if datatype in _FLOAT_TYPES:
        ok = kind in _NUMERIC_KINDS or (allow_missing and kind == "O")
    elif datatype in _INT_TYPES:
        ok = kind in "iu"
    elif datatype in _UINT_TYPES:
        ok = kind == "u" or (kind == "i" and bool((values >= 0).all()))
    elif datatype == "BOOL":
        ok = kind == "b"
    else:  # BYTES
        ok = kind == "U"
    if not ok:
        first = values[0]  # a numpy scalar, or a Python object (None) in an object array
        raise InvalidInputError(
            f"{where}: datatype {datatype} does not match its data "
            f"(found {_describe(first.item() if isinstance(first, np.generic) else first)})",
            field=where,
        )
    return values, shape


def decode_infer(payload: Any, schema: ModelSchema, allow_missing: bool) -> InferRequest:
    """An Open Inference Protocol v2 request: one [N, F] tensor, or one tensor per feature."""
    if not isinstance(payload, dict):
        raise MalformedRequestError('body must be a JSON object like {"inputs": [...]}')
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError("'id' must be a string", field="id")
    outputs = _requested_outputs(payload.get("outputs"), schema)
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError("'inputs' must be a non-empty list of tensors", field="inputs")
    tensors: list[tuple[str, dict[str, Any]]] = []
    for position, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidInputError(
                f"inputs[{position}]: a tensor needs a string 'name'", field=f"inputs[{position}]"
            )
        tensors.append((tensor["name"], tensor))
    only = tensors[0][0] if len(tensors) == 1 else None
    if only is not None and (only not in schema.feature_set or len(schema.features) == 1):
        features = _matrix_tensor(tensors[0][0], tensors[0][1], schema, allow_missing)
    else:
        features = _feature_tensors(tensors, schema, allow_missing)
    return InferRequest(features, request_id, outputs, len(features))


def _requested_outputs(raw: Any, schema: ModelSchema) -> tuple[str, ...]:
    if raw is None:
        return (OUTPUT_PREDICT,)
    allowed = (
        (OUTPUT_PREDICT, OUTPUT_PROBA) if schema.task == "classification" else (OUTPUT_PREDICT,)
    )
    if not isinstance(raw, list):
        raise InvalidInputError("'outputs' must be a list of {\"name\": ...}", field="outputs")
    names: list[str] = []
    for position, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in allowed:
            raise InvalidInputError(
                f"outputs[{position}]: unknown output {name!r}; this model has "
                f"{', '.join(allowed)}",
                field=f"outputs[{position}].name",
            )
        names.append(str(name))
    return tuple(names) or (OUTPUT_PREDICT,)


def _matrix_tensor(
    name: str, tensor: dict[str, Any], schema: ModelSchema, allow_missing: bool
) -> FeatureMatrix:
    where = f"input {name!r}"
    width = len(schema.features)
    values, shape = _tensor_values(tensor, where, allow_missing)
    if not (len(shape) == 2 and shape[1] == width) and not (len(shape) == 1 and width == 1):
        raise InvalidInputError(
            f"{where}: shape {shape} does not fit this model; expected [N, {width}] "
            f"({', '.join(schema.feature_names)})",
            field=name,
        )
    rows = shape[0]
    if rows == 0:
        raise InvalidInputError(f"{where}: the batch is empty; send at least one row", field=name)
    if schema.all_numeric:
        if values.dtype.kind not in _NUMERIC_KINDS:
            if values.dtype.kind == "O" and allow_missing:
                matrix = numeric_rows(
                    values.reshape(rows, width).tolist(), schema, where, allow_missing
                )
                return matrix
            raise InvalidInputError(
                f"{where}: datatype {tensor.get('datatype')} cannot feed numeric features; "
                "use FP32/FP64 or INT*",
                field=name,
            )
        return np.ascontiguousarray(values.reshape(rows, width), dtype=np.float64)
    grid = values.reshape(rows, width).tolist()
    return mixed_columns(_rows_to_columns(grid, schema, where), schema, where, allow_missing)


def _feature_tensors(
    tensors: list[tuple[str, dict[str, Any]]], schema: ModelSchema, allow_missing: bool
) -> FeatureMatrix:
    names = schema.feature_names
    by_name = dict(tensors)
    for name, _ in tensors:
        if name not in names:
            raise InvalidInputError(
                f"input {name!r} is not a feature of this model; expected one [N, "
                f"{len(names)}] tensor or one tensor per feature ({', '.join(names)})",
                field=name,
            )
    if len(by_name) != len(tensors):
        raise InvalidInputError("each feature may be sent only once", field="inputs")
    for name in names:
        if name not in by_name:
            raise InvalidInputError(f"missing input for feature {name!r}", field=name)
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for feature in schema.features:
        where = f"input {feature.name!r}"
        tensor = by_name[feature.name]
        values, shape = _tensor_values(tensor, where, allow_missing)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidInputError(
                f"{where}: shape {shape} must be [N] or [N, 1] for a per-feature tensor",
                field=feature.name,
            )
        if rows is None:
            rows = shape[0]
        elif shape[0] != rows:
            raise InvalidInputError(
                f"{where}: has {shape[0]} rows, the other inputs have {rows}",
                field=feature.name,
            )
        numeric_ok = values.dtype.kind in _NUMERIC_KINDS or (
            allow_missing and values.dtype.kind == "O"
        )
        if feature.kind == "number" and not numeric_ok:
            raise InvalidInputError(
                f"{where}: datatype {tensor.get('datatype')} cannot feed a numeric feature",
                field=feature.name,
            )
        columns[feature.name] = values.tolist()
    if not rows:
        raise InvalidInputError("inputs: the batch is empty; send at least one row", field="inputs")
    if schema.all_numeric:
        return np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in names])
    return mixed_columns(columns, schema, "inputs", allow_missing)


def _labels_json(prediction: Prediction) -> list[Any]:
    labels: list[Any] = prediction.labels.tolist()
    return labels


def encode_predict(
    prediction: Prediction, ids: list[str], model_name: str, model_version: str
) -> bytes:
    body: dict[str, Any] = {
        "model": model_name,
        "modelVersion": model_version,
        "predictions": _labels_json(prediction),
        "ids": ids,
    }
    if prediction.probabilities is not None:
        body["probabilities"] = prediction.probabilities
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_infer(
    prediction: Prediction,
    ids: list[str],
    request: InferRequest,
    model_name: str,
    model_version: str,
) -> bytes:
    rows = request.rows
    outputs: list[dict[str, Any]] = []
    for name in request.outputs:
        if name == OUTPUT_PROBA and prediction.probabilities is not None:
            probabilities = prediction.probabilities
            outputs.append(
                {
                    "name": OUTPUT_PROBA,
                    "datatype": "FP64",
                    "shape": [rows, probabilities.shape[1]],
                    "data": probabilities.ravel(),
                }
            )
        elif name == OUTPUT_PREDICT:
            classification = prediction.class_index is not None
            outputs.append(
                {
                    "name": OUTPUT_PREDICT,
                    "datatype": "BYTES" if classification else "FP64",
                    "shape": [rows],
                    "data": _labels_json(prediction) if classification else prediction.labels,
                }
            )
    body: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": outputs,
        "parameters": {"prediction_ids": ids},
    }
    if request.request_id is not None:
        body["id"] = request.request_id
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
