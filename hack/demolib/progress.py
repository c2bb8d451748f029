"""Narration: timed step lines and a waiting line that says what it waits for.

The formatting is pure; `Narrator` writes it. On a terminal the waiting line is rewritten in place
each second; otherwise (make in CI, a pipe) a fresh line is printed when the state changes or every
`PLAIN_EVERY_SECONDS`, so no wait is silent for long.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO, TypeVar

T = TypeVar("T")
PLAIN_EVERY_SECONDS = 5.0


class WaitTimeoutError(Exception):
    """A wait ran out of time; the message names what was awaited and its last state."""


def clock(seconds: float) -> str:
    """`[  12.3s]`: time since the demo started."""
    return f"[{seconds:6.1f}s]"


def step_line(elapsed: float, text: str, took: float | None = None) -> str:
    suffix = f" ({took:.1f} s)" if took is not None else ""
    return f"{clock(elapsed)} {text}{suffix}"


def waiting_line(elapsed: float, what: str, waited: float, state: str) -> str:
    return f"{clock(elapsed)}   … waiting for {what} ({waited:.0f} s): {state}"


@dataclass
class Narrator:
    """Prints the demo's story with times since `started`."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    started: float = field(default_factory=time.monotonic)
    _open_line: bool = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _close_line(self) -> None:
        if self._open_line:
            self.out.write("\n")
            self._open_line = False

    def say(self, text: str, took: float | None = None) -> None:
        self._close_line()
        self.out.write(step_line(self.elapsed(), text, took) + "\n")
        self.out.flush()

    def wait(
        self,
        what: str,
        probe: Callable[[], tuple[T | None, str]],
        *,
        timeout: float,
        interval: float = 1.0,
    ) -> tuple[T, float]:
        """Call `probe` until it returns a value (not None); print what is awaited and the state
        it reports meanwhile. Returns the value and the seconds waited; WaitTimeoutError after
        `timeout`."""
        began = time.monotonic()
        tty = self.out.isatty()
        last_state, last_print = "", 0.0
        while True:
            value, state = probe()
            waited = time.monotonic() - began
            if value is not None:
                if self._open_line:
                    self.out.write("\r\033[K")
                    self._open_line = False
                return value, waited
            if waited > timeout:
                self._close_line()
                raise WaitTimeoutError(
                    f"{what}: still not there after {timeout:.0f} s; last: {state}"
                )
            line = waiting_line(self.elapsed(), what, waited, state)
            if tty:
                self.out.write("\r\033[K" + line)
                self._open_line = True
                self.out.flush()
            elif state != last_state or waited - last_print >= PLAIN_EVERY_SECONDS:
                self.out.write(line + "\n")
                self.out.flush()
                last_state, last_print = state, waited
            time.sleep(interval)
