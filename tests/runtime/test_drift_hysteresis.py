"""The hysteresis state machine (kubeloop_runtime.drift.hysteresis)."""

from __future__ import annotations

from kubeloop_runtime.drift.hysteresis import (
    DriftState,
    Freshness,
    advance,
    resume,
    window_freshness,
)


def run(verdicts: list[bool], raise_after: int = 2, clear_after: int = 3) -> list[bool]:
    state = DriftState()
    seen = []
    for seq, drifted in enumerate(verdicts, start=1):
        state = advance(state, drifted, seq, raise_after=raise_after, clear_after=clear_after)
        seen.append(state.detected)
    return seen


def test_detected_only_after_consecutive_drifted_windows() -> None:
    assert run([True, False, True, False, True]) == [False] * 5  # flapping never raises
    assert run([True, True]) == [False, True]
    assert run([True], raise_after=1) == [True]


def test_cleared_only_after_consecutive_clean_windows() -> None:
    seen = run([True, True, False, False, True, False, False, False])
    assert seen == [False, True, True, True, True, True, True, False]


def test_streaks_and_counters() -> None:
    state = DriftState()
    state = advance(state, True, 10, raise_after=2, clear_after=2)
    state = advance(state, True, 20, raise_after=2, clear_after=2)
    assert (state.detected, state.streak, state.clean_streak, state.last_seq) == (True, 2, 0, 20)
    state = advance(state, False, 30, raise_after=2, clear_after=2)
    assert (state.detected, state.streak, state.clean_streak, state.verdicts) == (True, 0, 1, 3)


def test_stale_and_small_windows_give_no_verdict() -> None:
    state = DriftState(last_seq=500)
    assert window_freshness(state, seq=500, size=5000, min_samples=100) is Freshness.STALE
    assert window_freshness(state, seq=501, size=5000, min_samples=100) is Freshness.FRESH
    assert window_freshness(state, seq=900, size=99, min_samples=100) is Freshness.TOO_SMALL
    # A server restart starts seq again from zero: that window is new evidence.
    assert window_freshness(state, seq=120, size=120, min_samples=100) is Freshness.FRESH
    assert window_freshness(DriftState(), seq=0, size=100, min_samples=100) is Freshness.FRESH


def test_resume_from_own_last_report() -> None:
    report = {"color": "blue", "detected": True, "streak": 3, "checkedAt": "2026-11-23T19:00:00Z"}
    assert resume(report, "blue") == DriftState(detected=True, streak=3)
    assert resume(report, "green") == DriftState()  # a reused name of the other colour
    assert resume(None, "blue") == DriftState()
    assert resume({"color": "blue", "streak": "x"}, "blue") == DriftState()
