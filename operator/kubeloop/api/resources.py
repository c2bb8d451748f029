"""Compute resources in the shape of Kubernetes' core/v1 ResourceRequirements."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from kubeloop.api.base import ApiModel

# The API server's own Quantity pattern (resource.Quantity), so `2Gi`, `500m` and `1` pass.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]

_RESOURCE_MAP: dict[str, Any] = {"maxProperties": 16}


class ResourceRequirements(ApiModel):
    """CPU, memory and other resources for a container, as in a Pod spec."""

    limits: dict[str, Quantity] | None = Field(
        None,
        description="Most a container may use, e.g. `{cpu: '1', memory: 1Gi}`.",
        json_schema_extra=_RESOURCE_MAP,
    )
    requests: dict[str, Quantity] | None = Field(
        None,
        description="What the scheduler reserves, e.g. `{cpu: 250m, memory: 256Mi}`.",
        json_schema_extra=_RESOURCE_MAP,
    )
