"""Typed failures of the batch entry points (train, profile, fetch).

Each error carries a ``reason`` (a stable CamelCase word the operator can match on, written into the
termination message) and an ``exit_code`` (the process exit status, documented in docs/runtime.md).
Errors are raised where the problem is found and rendered once, by the entry point's ``main``.
"""

from __future__ import annotations

from typing import ClassVar

# Process exit codes. 3 is kept for a model that trained but failed its gate or lost the
# comparison with the serving model (not an error: see train.py), so that a Job's
# podFailurePolicy can tell it from a crash.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_GATE_FAILED = 3
EXIT_DATA = 4
EXIT_ARTIFACT = 5


class RuntimeJobError(Exception):
    """A failure the user can act on; the message names the field, column or file at fault."""

    reason: ClassVar[str] = "Error"
    exit_code: ClassVar[int] = EXIT_INTERNAL


class ConfigError(RuntimeJobError):
    """The runtime configuration (JSON document or flags) is invalid."""

    reason = "ConfigError"
    exit_code = EXIT_CONFIG


class EstimatorError(RuntimeJobError):
    """The estimator is not allow-listed, or its parameters or search space are invalid."""

    reason = "EstimatorError"
    exit_code = EXIT_CONFIG


class StorageError(RuntimeJobError):
    """A URI cannot be read or written (unknown scheme, missing file, missing optional package)."""

    reason = "StorageError"
    exit_code = EXIT_DATA


class MissingFileError(StorageError):
    """The file a URI names does not exist (as opposed to a storage that cannot be reached)."""


class DatasetError(RuntimeJobError):
    """The dataset cannot be loaded or used (unknown format, unparsable file, missing target)."""

    reason = "DatasetError"
    exit_code = EXIT_DATA


class DataVersionError(DatasetError):
    """The pinned data version cannot be read any more: a file of it changed or vanished, or the
    source's content now has another digest."""

    reason = "DataVersionGone"


class SchemaError(RuntimeJobError):
    """The dataset violates its schema expectations; every violation is listed."""

    reason = "SchemaError"
    exit_code = EXIT_DATA

    def __init__(self, message: str, violations: list[str] | None = None) -> None:
        super().__init__(message)
        self.violations: list[str] = list(violations or [])


class TrainingError(RuntimeJobError):
    """Fitting or evaluating the model failed (for example NaN values the estimator rejects)."""

    reason = "TrainingError"
    exit_code = EXIT_DATA


class FetchError(RuntimeJobError):
    """An artifact folder could not be copied or did not verify; nothing was left at the target."""

    reason = "FetchError"
    exit_code = EXIT_ARTIFACT


class BaselineError(RuntimeJobError):
    """The serving model to compare with cannot be used: unreadable, digest mismatch, or its
    task or features do not fit the new data."""

    reason = "BaselineError"
    exit_code = EXIT_ARTIFACT
