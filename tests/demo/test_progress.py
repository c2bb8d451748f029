"""The narration: lines with times, waits that say what they wait for."""

from __future__ import annotations

import io

import pytest

from demolib.progress import Narrator, WaitTimeoutError, step_line, waiting_line


def test_lines_carry_the_time_since_the_start() -> None:
    assert step_line(12.34, "dataset profiled", took=3.21) == "[  12.3s] dataset profiled (3.2 s)"
    assert waiting_line(5, "job/x", 2.2, "phase Running") == (
        "[   5.0s]   … waiting for job/x (2 s): phase Running"
    )


def test_wait_prints_each_new_state_and_returns_the_value() -> None:
    out = io.StringIO()
    states = iter([(None, "Pending"), (None, "Pending"), (None, "Running"), ("done", "x")])
    value, waited = Narrator(out=out).wait("job/x", lambda: next(states), timeout=10, interval=0)
    assert value == "done"
    assert waited >= 0
    printed = out.getvalue().splitlines()
    assert [line.rsplit(": ", 1)[-1] for line in printed] == ["Pending", "Running"]


def test_wait_times_out_naming_what_and_the_last_state() -> None:
    narrator = Narrator(out=io.StringIO())
    with pytest.raises(WaitTimeoutError, match=r"job/x: still not there after 0 s; last: Pending"):
        narrator.wait("job/x", lambda: (None, "Pending"), timeout=0.01, interval=0.005)
