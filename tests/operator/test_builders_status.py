"""Status helpers: transitions set phase, kstatus conditions and generation; merge patches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubeloop.builders.status import (
    Transition,
    apply_merge_patch,
    merge_patch,
    parse_time,
    ready_changed,
    timestamp,
    with_transition,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def condition(status: dict[str, object], type_: str) -> dict[str, object] | None:
    conditions = status.get("conditions")
    assert isinstance(conditions, list)
    return next((item for item in conditions if item["type"] == type_), None)


def test_ready_transition_clears_the_abnormal_conditions_and_the_message() -> None:
    stalled = with_transition(
        {}, Transition("Failed", "stalled", "SchemaError", "fix it"), now=NOW, generation=1
    )
    assert stalled["message"] == "fix it"
    assert condition(stalled, "Stalled") is not None
    ready = with_transition(
        stalled, Transition("Ready", "ready", "Profiled"), now=NOW + timedelta(1), generation=2
    )
    assert ready["phase"] == "Ready"
    assert ready["observedGeneration"] == 2
    assert "message" not in ready
    assert condition(ready, "Stalled") is None
    assert condition(ready, "Ready") == {
        "type": "Ready",
        "status": "True",
        "reason": "Profiled",
        "message": "",
        "lastTransitionTime": "2026-12-02T08:00:00Z",
        "observedGeneration": 2,
    }
    assert ready_changed(stalled, ready)
    assert not ready_changed(ready, ready)


def test_reasserting_a_state_keeps_its_transition_time() -> None:
    first = with_transition(
        {}, Transition("Profiling", "reconciling", "JobRunning"), now=NOW, generation=1
    )
    again = with_transition(
        first,
        Transition("Profiling", "reconciling", "JobRunning"),
        now=NOW + timedelta(hours=1),
        generation=1,
    )
    assert again == first
    assert merge_patch(first, again) == {}


def test_merge_patch_diffs_nested_objects_and_removes_keys() -> None:
    old = {"phase": "Ready", "profile": {"a": 1, "b": 2}, "history": [1], "message": "x"}
    new = {"phase": "Ready", "profile": {"a": 1, "c": 3}, "history": [2, 1]}
    assert merge_patch(old, new) == {
        "message": None,
        "profile": {"b": None, "c": 3},
        "history": [2, 1],
    }
    assert merge_patch(None, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_apply_merge_patch_is_the_inverse_of_merge_patch() -> None:
    old = {"phase": "Ready", "profile": {"a": 1, "b": 2}, "history": [1], "message": "x"}
    new = {"phase": "Ready", "profile": {"a": 1, "c": 3}, "history": [2, 1]}
    assert apply_merge_patch(old, merge_patch(old, new)) == new
    assert apply_merge_patch(None, {"a": {"b": 1, "c": None}}) == {"a": {"b": 1}}
    assert apply_merge_patch({"a": 1}, {"a": {"b": 1}}) == {"a": {"b": 1}}
    assert old["profile"] == {"a": 1, "b": 2}  # the target is not changed in place


def test_timestamps_round_trip() -> None:
    assert timestamp(NOW) == "2026-12-01T08:00:00Z"
    assert parse_time("2026-12-01T08:00:00Z") == NOW
    assert parse_time("not a time") is None
    assert parse_time(None) is None
