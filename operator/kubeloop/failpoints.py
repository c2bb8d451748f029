"""Crash points for the idempotency tests: the process SIGKILLs itself at a named line.

`KUBELOOP_FAILPOINTS=trainingjob.modelversion-created` makes the operator die exactly after it
created the ModelVersion and before it wrote the TrainingJob's status, the window a test cannot
hit by killing from outside. Unset (always, outside tests), `reached` does nothing.
"""

from __future__ import annotations

import os
import signal

ENV = "KUBELOOP_FAILPOINTS"


def reached(name: str) -> None:
    """Die here, with SIGKILL (no cleanup, no final writes), if `name` is armed."""
    armed = os.environ.get(ENV)
    if armed and name in {point.strip() for point in armed.split(",")}:
        os.kill(os.getpid(), signal.SIGKILL)
