"""Status helpers over `kubeloop.conditions`: one call sets the phase, the kstatus conditions and
`observedGeneration` together, and `merge_patch` turns old and new status into the smallest JSON
merge patch (None removes a key), so writing an unchanged status writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from kubeloop.conditions import (
    conditions_to_wire,
    find_condition,
    mark_ready,
    mark_reconciling,
    mark_stalled,
)

Health = Literal["ready", "reconciling", "stalled"]
Status = dict[str, Any]


@dataclass(frozen=True)
class Transition:
    """Where a reconcile left the object: its phase and kstatus health, with a reason and a
    message for people (`message` should say what to do when it is not Ready)."""

    phase: str
    health: Health
    reason: str
    message: str = ""


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second, as Kubernetes writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """A Kubernetes timestamp as an aware datetime; None for None or garbage."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def with_transition(
    status: Mapping[str, Any] | None,
    transition: Transition,
    *,
    now: datetime,
    generation: int | None,
    message_field: bool = True,
) -> Status:
    """`status` with phase, conditions and observedGeneration set by `transition`; `message`
    (when the kind has one) carries the reason a non-Ready object gives."""
    result: Status = dict(status or {})
    marks = {"ready": mark_ready, "reconciling": mark_reconciling, "stalled": mark_stalled}
    conditions = marks[transition.health](
        result.get("conditions"),
        transition.reason,
        transition.message,
        now=now,
        generation=generation,
    )
    result["phase"] = transition.phase
    result["conditions"] = conditions_to_wire(conditions)
    result["observedGeneration"] = generation
    if message_field:
        result["message"] = None if transition.health == "ready" else transition.message or None
    return {key: value for key, value in result.items() if value is not None}


def ready_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether the Ready condition's status or reason differs between two statuses."""
    before = find_condition((old or {}).get("conditions"), "Ready")
    after = find_condition(new.get("conditions"), "Ready")
    if before is None or after is None:
        return before is not after
    return (before.status, before.reason) != (after.status, after.reason)


def merge_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: changed keys, removed keys
    as None, nested objects diffed key by key, lists replaced whole. Empty when equal."""
    old = old or {}
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch


def apply_merge_patch(target: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> dict[str, Any]:
    """`target` with the JSON merge patch (RFC 7386) applied, as the API server applies one: None
    removes a key, objects merge key by key, anything else replaces."""
    result = dict(target or {})
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            before = result.get(key)
            result[key] = apply_merge_patch(before if isinstance(before, Mapping) else {}, value)
        else:
            result[key] = value
    return result
