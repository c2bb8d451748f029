"""Hysteresis: turn a stream of per-window verdicts into a drift state that does not flap.

Pure state machine. Drift is *detected* only after ``raise_after`` consecutive drifted windows and
*cleared* only after ``clear_after`` consecutive clean ones. A window that carries no new evidence
(too few rows, or the server's ``seq`` has not moved since the last judged window) yields no verdict
and leaves the state as it is. A ``seq`` that went backwards means the server restarted: that
window is fresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any


class Freshness(Enum):
    """Whether a window may be judged."""

    FRESH = "fresh"
    STALE = "stale"  # seq has not advanced since the last judged window
    TOO_SMALL = "too-small"  # fewer rows than the minimum


@dataclass(frozen=True, slots=True)
class DriftState:
    """What the sidecar remembers between windows."""

    detected: bool = False
    streak: int = 0  # consecutive drifted windows
    clean_streak: int = 0  # consecutive clean windows
    last_seq: int | None = None  # seq of the last judged window
    verdicts: int = 0  # windows judged so far


def window_freshness(state: DriftState, seq: int, size: int, min_samples: int) -> Freshness:
    """Decide whether a window brings new evidence."""
    if size < min_samples:
        return Freshness.TOO_SMALL
    if state.last_seq is not None and seq == state.last_seq:
        return Freshness.STALE
    return Freshness.FRESH


def advance(
    state: DriftState, drifted: bool, seq: int, *, raise_after: int, clear_after: int
) -> DriftState:
    """Apply one judged window's verdict."""
    if drifted:
        streak = state.streak + 1
        detected = state.detected or streak >= raise_after
        return replace(
            state,
            detected=detected,
            streak=streak,
            clean_streak=0,
            last_seq=seq,
            verdicts=state.verdicts + 1,
        )
    clean_streak = state.clean_streak + 1
    detected = state.detected and clean_streak < clear_after
    return replace(
        state,
        detected=detected,
        streak=0,
        clean_streak=clean_streak,
        last_seq=seq,
        verdicts=state.verdicts + 1,
    )


def resume(report: Mapping[str, Any] | None, color: str | None) -> DriftState:
    """The state a restarted sidecar picks up from its own last report in the status.

    A container restart keeps the pod name, so the report is this sidecar's own; without it every
    restart would reset the streak and delay (or drop) a detection. Only ``detected`` and the
    drifted streak are stored; a report of another colour (a reused name) is ignored.
    """
    if not isinstance(report, Mapping) or report.get("color") != color:
        return DriftState()
    streak = report.get("streak")
    return DriftState(
        detected=report.get("detected") is True,
        streak=streak if isinstance(streak, int) and not isinstance(streak, bool) else 0,
    )
