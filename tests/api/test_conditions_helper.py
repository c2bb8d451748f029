"""The condition helper: transitions keep their time, kstatus's three conditions stay coherent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubeloop.api.conditions import READY, RECONCILING, STALLED, Condition
from kubeloop.conditions import (
    conditions_to_wire,
    find_condition,
    is_condition_true,
    mark_ready,
    mark_reconciling,
    mark_stalled,
    parse_conditions,
    remove_condition,
    set_condition,
)

T0 = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(minutes=10)


def types(conditions: list[Condition]) -> list[str]:
    return [condition.type for condition in conditions]


def test_a_new_condition_is_appended_with_now_as_transition_time() -> None:
    got = set_condition([], READY, "False", "Pending", "waiting for data", now=T0, generation=1)
    assert got == [
        Condition(
            type=READY,
            status="False",
            reason="Pending",
            message="waiting for data",
            last_transition_time=T0,
            observed_generation=1,
        )
    ]


def test_same_status_keeps_the_transition_time_but_takes_the_new_reason_and_generation() -> None:
    first = set_condition([], READY, "False", "Pending", now=T0, generation=1)
    again = set_condition(first, READY, "False", "Profiling", "reading rows", now=T1, generation=2)
    (condition,) = again
    assert condition.last_transition_time == T0
    assert (condition.reason, condition.message, condition.observed_generation) == (
        "Profiling",
        "reading rows",
        2,
    )


def test_a_status_change_moves_the_transition_time() -> None:
    first = set_condition([], READY, "False", "Pending", now=T0)
    flipped = set_condition(first, READY, "True", "Profiled", now=T1)
    assert flipped[0].last_transition_time == T1
    assert flipped[0].status == "True"


def test_other_conditions_and_their_order_are_untouched() -> None:
    start = set_condition([], "DataValid", "True", "SchemaOk", now=T0)
    start = set_condition(start, READY, "False", "Pending", now=T0)
    updated = set_condition(start, "DataValid", "False", "SchemaError", "column x missing", now=T1)
    assert types(updated) == ["DataValid", READY]
    assert updated[1] == start[1]
    assert start[0].status == "True", "the input list must not be modified"


def test_dicts_from_an_object_status_are_accepted_and_round_trip() -> None:
    wire = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Serving",
            "message": "ok",
            "lastTransitionTime": "2026-11-23T19:00:00Z",
            "observedGeneration": 3,
        }
    ]
    parsed = parse_conditions(wire)
    assert parsed[0].last_transition_time == T0
    assert conditions_to_wire(parsed) == wire
    assert is_condition_true(wire, READY)
    assert not is_condition_true(wire, STALLED)
    assert find_condition(wire, STALLED) is None
    assert parse_conditions(None) == []


def test_mark_reconciling_is_in_progress() -> None:
    got = mark_reconciling([], "Training", "Job wine-lr-abc is running", now=T0, generation=2)
    assert types(got) == [RECONCILING, READY]
    assert [c.status for c in got] == ["True", "False"]
    assert {c.reason for c in got} == {"Training"}
    assert {c.observed_generation for c in got} == {2}


def test_mark_stalled_replaces_reconciling() -> None:
    reconciling = mark_reconciling([], "Training", now=T0)
    stalled = mark_stalled(
        reconciling, "GateMissed", "accuracy 0.71 < threshold 0.9: lower the threshold", now=T1
    )
    assert types(stalled) == [READY, STALLED]
    ready = find_condition(stalled, READY)
    assert ready is not None
    assert ready.status == "False"
    assert ready.last_transition_time == T0, "Ready stayed False: its time must not move"
    assert ready.message.startswith("accuracy 0.71")


def test_mark_ready_clears_the_abnormal_conditions() -> None:
    stalled = mark_stalled([], "SourceMissing", "no such file", now=T0)
    ready = mark_ready(stalled, "Profiled", "150 rows", now=T1, generation=4)
    assert types(ready) == [READY]
    assert ready[0].status == "True"
    assert ready[0].last_transition_time == T1
    assert ready[0].observed_generation == 4


def test_reasserting_ready_every_loop_never_flaps() -> None:
    state = mark_ready([], "Serving", now=T0)
    for when in (T1, T2):
        state = mark_ready(state, "Serving", now=when)
    assert state[0].last_transition_time == T0


def test_remove_condition_of_an_absent_type_is_a_no_op() -> None:
    state = mark_ready([], "Serving", now=T0)
    assert remove_condition(state, STALLED) == state
