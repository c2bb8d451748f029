"""Typed failures of the drift sidecar, each naming its source so the loop can react and count.

Kubernetes API failures have their own hierarchy in kube.py. The loop renders all of them in one
place (loop.py, `DriftChecker.run`): logged once per outage, counted in the errors metric.
"""

from __future__ import annotations

from typing import ClassVar


class DriftError(Exception):
    """A drift check could not complete."""

    source: ClassVar[str] = "internal"


class DriftInputError(DriftError, ValueError):
    """The window or the reference profile cannot be tested; the message names the feature."""

    source = "input"


class WindowError(DriftInputError):
    """The server's window does not follow the contract; the message names the field."""


class ServerUnavailableError(DriftError):
    """The model server's window could not be read (down, timing out, or answering an error)."""

    source = "server"


class ModelNotReadyError(DriftError):
    """The artifact folder has no readable metadata.json (yet): nothing to test against."""

    source = "model"


class SettingsError(DriftError):
    """The sidecar's configuration is incomplete or contradictory."""

    source = "settings"
