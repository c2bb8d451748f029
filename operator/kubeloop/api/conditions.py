"""Status conditions in the Kubernetes shape (metav1.Condition) and the types Kubeloop uses.

`Ready` answers `kubectl wait --for=condition=Ready`; `Reconciling` and `Stalled` are kstatus's
abnormal-true conditions that Flux and Argo CD read as InProgress and Failed. Setting them is
the job of `kubeloop.conditions`; this module only says what they look like.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from kubeloop.api.base import ApiModel

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

ConditionStatus = Literal["True", "False", "Unknown"]

REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)


class Condition(ApiModel):
    """One observation of the object's state, as in metav1.Condition."""

    type: str = Field(
        pattern=CONDITION_TYPE_PATTERN,
        max_length=316,
        description="Kind of condition: `Ready`, `Reconciling`, `Stalled`, or a kind-specific one.",
    )
    status: ConditionStatus = Field(description="`True`, `False` or `Unknown`.")
    reason: str = Field(
        pattern=REASON_PATTERN,
        min_length=1,
        max_length=1024,
        description="CamelCase reason for the last transition, for machines.",
    )
    message: str = Field(
        "", max_length=32768, description="What happened and what to do about it, for people."
    )
    last_transition_time: datetime = Field(
        description="When the status last changed (not when it was last checked)."
    )
    observed_generation: int | None = Field(
        None, ge=0, description="`metadata.generation` this condition was computed from."
    )


Conditions = Annotated[
    list[Condition],
    Field(
        max_length=32,
        description=(
            "Current conditions: `Ready`, plus `Reconciling` while work is in progress and "
            "`Stalled` when only a person can unblock it."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    ),
]

ObservedGeneration = Annotated[
    int | None,
    Field(
        None,
        ge=0,
        description="`metadata.generation` of the spec this status describes.",
    ),
]
