"""The base of every API model and the description of a kind's CRD beyond its schema.

`ApiModel` fixes the wire conventions (camelCase keys, snake_case attributes). `KindInfo`
carries what the CRD needs besides the OpenAPI schema: names, printer columns, root-level CEL
rules. Helpers here build the `x-kubernetes-*` extras the models attach to their fields, so the
models stay the one place where an admission rule is written down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

GROUP = "kubeloop.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "kubeloop"

CelReason = Literal["FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden"]


class ApiModel(BaseModel):
    """A part of a spec or status: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict the API server expects (camelCase, unset optionals left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


_Model = TypeVar("_Model", bound=ApiModel)


def all_defaults(model: type[_Model]) -> Callable[[], _Model]:
    """A `default_factory` building `model` from its field defaults."""
    return lambda: model.model_validate({})


def cel(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: CelReason | None = None,
) -> dict[str, str]:
    """One `x-kubernetes-validations` entry; `field_path` points the error at a child field."""
    entry = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """A `json_schema_extra` carrying CEL rules."""
    return {"x-kubernetes-validations": list(rules)}


def immutable(what: str) -> dict[str, str]:
    """A transition rule that refuses any change after creation."""
    return cel("self == oldSelf", f"{what} is immutable: create a new object instead of editing it")


# The schema of a free-form value: kept as written, not pruned by the API server.
FREE_FORM: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
# An object default of `{}`: the API server then fills in the nested defaults.
EMPTY_OBJECT_DEFAULT: dict[str, Any] = {"default": {}}


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of `kubectl get`."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


READY_COLUMN = PrinterColumn(
    "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready condition"
)
AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class KindInfo:
    """Everything the generator needs to write one kind's CRD and reference page."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec_model: type[ApiModel]
    status_model: type[ApiModel]
    summary: str
    printer_columns: tuple[PrinterColumn, ...] = ()
    # Rules on the whole object, for what spans metadata and spec (e.g. name length).
    root_validations: tuple[dict[str, str], ...] = field(default_factory=tuple)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"
