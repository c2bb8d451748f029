"""Pure helpers that set status conditions the way kstatus, Argo CD and `kubectl wait` read them.

`set_condition` changes one condition and keeps `lastTransitionTime` when the status did not
change, so a reconcile loop that re-asserts the same state does not make the condition flap.
`mark_ready`, `mark_reconciling` and `mark_stalled` keep the three kstatus conditions coherent:
- Ready=True, no Reconciling, no Stalled   → Current
- Reconciling=True, Ready=False            → InProgress (work under way, will finish by itself)
- Stalled=True, Ready=False                → Failed (stuck until a person changes something)
The abnormal-true conditions (Reconciling, Stalled) are removed rather than set to False, as
kstatus recommends. Nothing here reads a clock or the API: callers pass `now` and `generation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubeloop.api.conditions import READY, RECONCILING, STALLED, Condition, ConditionStatus

ConditionLike = Condition | Mapping[str, Any]


def parse_conditions(conditions: Iterable[ConditionLike] | None) -> list[Condition]:
    """Conditions as models, from models or from the camelCase dicts of an object's status."""
    return [
        item if isinstance(item, Condition) else Condition.model_validate(item)
        for item in conditions or ()
    ]


def find_condition(conditions: Iterable[ConditionLike] | None, type_: str) -> Condition | None:
    """The condition of this type, if present."""
    return next((item for item in parse_conditions(conditions) if item.type == type_), None)


def is_condition_true(conditions: Iterable[ConditionLike] | None, type_: str) -> bool:
    found = find_condition(conditions, type_)
    return found is not None and found.status == "True"


def set_condition(
    conditions: Iterable[ConditionLike] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    *,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """A new list with `type_` set; other conditions and their order are kept.

    `lastTransitionTime` moves to `now` only when the status changes (or the condition is new);
    a change of reason, message or generation alone keeps the old time.
    """
    current = parse_conditions(conditions)
    previous = next((item for item in current if item.type == type_), None)
    transitioned = previous is None or previous.status != status
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now
        if transitioned or previous is None
        else previous.last_transition_time,
        observed_generation=generation,
    )
    if previous is None:
        return [*current, updated]
    return [updated if item.type == type_ else item for item in current]


def remove_condition(conditions: Iterable[ConditionLike] | None, type_: str) -> list[Condition]:
    """A new list without `type_`."""
    return [item for item in parse_conditions(conditions) if item.type != type_]


def mark_ready(
    conditions: Iterable[ConditionLike] | None,
    reason: str,
    message: str = "",
    *,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Ready=True; Reconciling and Stalled removed (kstatus: Current)."""
    updated = set_condition(
        conditions, READY, "True", reason, message, now=now, generation=generation
    )
    return remove_condition(remove_condition(updated, RECONCILING), STALLED)


def mark_reconciling(
    conditions: Iterable[ConditionLike] | None,
    reason: str,
    message: str = "",
    *,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Reconciling=True and Ready=False with the same reason; Stalled removed (InProgress)."""
    updated = set_condition(
        conditions, RECONCILING, "True", reason, message, now=now, generation=generation
    )
    updated = set_condition(
        updated, READY, "False", reason, message, now=now, generation=generation
    )
    return remove_condition(updated, STALLED)


def mark_stalled(
    conditions: Iterable[ConditionLike] | None,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Stalled=True and Ready=False with the same reason; Reconciling removed (Failed).

    The message should tell a person what to change: nothing will happen until they do.
    """
    updated = set_condition(
        conditions, STALLED, "True", reason, message, now=now, generation=generation
    )
    updated = set_condition(
        updated, READY, "False", reason, message, now=now, generation=generation
    )
    return remove_condition(updated, RECONCILING)


def conditions_to_wire(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    """The camelCase dicts to put in `status.conditions`."""
    return [condition.to_wire() for condition in conditions]
