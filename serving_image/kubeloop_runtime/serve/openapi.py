"""JSON schemas of the request bodies the hot endpoints parse by hand, for the OpenAPI document.

Those endpoints read raw bytes (orjson, straight to numpy) instead of a pydantic model, so
FastAPI cannot infer their bodies; these schemas describe them, so that clients, docs and the
fuzzer see the real request shapes. Validation itself lives in ``codecs``.
"""

from __future__ import annotations

from typing import Any

from kubeloop_runtime.serve.codecs import V2_DATATYPES

ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
    "required": ["error", "field"],
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/json": {"schema": ERROR}}}
    for status, description in {
        400: "Malformed JSON",
        404: "Unknown model, version or prediction id",
        413: "Body too large",
        415: "Content type other than JSON",
        422: "Input does not fit the model or the protocol",
        503: "Model not loaded (yet, or refused)",
    }.items()
}

_SCALAR: dict[str, Any] = {"type": ["number", "string", "boolean", "null"]}

TENSOR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": sorted(V2_DATATYPES)},
        "data": {"type": "array", "items": {"anyOf": [_SCALAR, {"type": "array"}]}},
        "parameters": {"type": "object"},
    },
    "required": ["name", "shape", "datatype", "data"],
}

INFER_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": TENSOR},
        "outputs": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    },
    "required": ["inputs"],
}

PREDICT_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "instances": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "array", "items": _SCALAR},
                    {"type": "object", "additionalProperties": _SCALAR},
                ]
            },
        },
        "probabilities": {"type": "boolean"},
    },
    "required": ["instances"],
}

_FEEDBACK_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "label": {"type": ["string", "number"]}},
    "required": ["id", "label"],
}
FEEDBACK_REQUEST: dict[str, Any] = {
    "anyOf": [_FEEDBACK_ITEM, {"type": "array", "items": _FEEDBACK_ITEM}]
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a JSON body of this schema itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
