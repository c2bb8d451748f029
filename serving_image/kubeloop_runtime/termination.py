"""The termination message: one compact JSON result per batch run, under the kubelet's size limit.

The kubelet keeps at most 4096 bytes of a container's termination message, and the operator reads
the result from there (docs/design/contracts.md, "Termination message"). A result that is too
long is trimmed, never refused: the fields in `DROP_FIRST` go first, then long strings and lists
are shortened, then the largest optional top-level fields are dropped (all dropped fields are named
in ``dropped``), and ``"truncated": true`` says it happened. The fields that tell success from
failure (``ok``, ``kind``, ``reason``, ``message``, ``passed``) are kept to the end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from kubeloop_runtime.errors import EXIT_INTERNAL, RuntimeJobError, SchemaError

MESSAGE_LIMIT_BYTES: Final = 4096
DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"
TERMINATION_LOG_ENV: Final = "KUBELOOP_TERMINATION_LOG"
ESSENTIAL_FIELDS: Final = ("ok", "kind", "reason", "message", "passed", "truncated", "dropped")
# Detail that is dropped whole before anything else is shortened: the per-feature profile summary
# (the full one is in profile.json), the violation list (the message repeats it), the parameters,
# the input example (metadata.json keeps it).
DROP_FIRST: Final = ("profile", "violations", "params", "inputExample")
_ELLIPSIS: Final = "…"


def to_plain(value: Any) -> Any:
    """Return ``value`` as plain JSON types: numpy scalars unwrapped, NaN and infinities as null."""
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_plain(item) for item in value]
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def render_message(payload: Mapping[str, Any], limit: int = MESSAGE_LIMIT_BYTES) -> str:
    """Return ``payload`` as compact JSON of fewer than ``limit`` bytes, trimming if needed."""
    result: dict[str, Any] = to_plain(payload)
    if _size(result) < limit:
        return _dump(result)
    result["truncated"] = True
    dropped: list[str] = []
    for key in DROP_FIRST:
        if key in result and _size(result) >= limit:
            del result[key]
            dropped.append(key)
            result["dropped"] = dropped
    if _size(result) < limit:
        return _dump(result)
    for longest in (1024, 256, 64):
        result = {
            key: item if key in ESSENTIAL_FIELDS else _shorten(item, longest)
            for key, item in result.items()
        }
        if _size(result) < limit:
            return _dump(result)
    while _size(result) >= limit:
        optional = [key for key in result if key not in ESSENTIAL_FIELDS]
        if not optional:
            break
        largest = max(optional, key=lambda key: _size(result[key]))
        del result[largest]
        dropped.append(largest)
        result["dropped"] = dropped
    for longest in (2048, 1024, 512, 256, 128, 64, 16):
        if _size(result) < limit:
            break
        # Only the essential fields are left and still too long: cut them, the message included.
        result = {key: _shorten(item, longest) for key, item in result.items()}
    return _dump(result)


def termination_log_path(flag_value: str | None) -> Path:
    """The termination log path: the flag, else ``$KUBELOOP_TERMINATION_LOG``, else the default."""
    return Path(flag_value or os.environ.get(TERMINATION_LOG_ENV) or DEFAULT_TERMINATION_LOG)


def report(path: Path, payload: Mapping[str, Any]) -> str:
    """Write the result to the termination log and to stdout (for ``kubectl logs``).

    A termination log that cannot be written (outside Kubernetes, ``/dev/termination-log`` usually
    does not exist) is a warning, not a failure: the result must not turn a success into an error.
    """
    message = render_message(payload)
    try:
        path.write_text(message)
    except OSError as error:
        print(f"warning: cannot write the termination log {path}: {error}", file=sys.stderr)
    # stdout may be closed (a pipe reader gone); the termination log already holds the result.
    with contextlib.suppress(OSError):
        print(message, flush=True)
    return message


def _shorten(value: Any, longest: int) -> Any:
    if isinstance(value, str) and len(value) > longest:
        return value[:longest] + _ELLIPSIS
    if isinstance(value, list):
        keep = max(longest // 32, 1)
        items = [_shorten(item, longest) for item in value[:keep]]
        if len(value) > keep:
            items.append(f"{_ELLIPSIS}{len(value) - keep} more")
        return items
    if isinstance(value, dict):
        return {key: _shorten(item, longest) for key, item in value.items()}
    return value


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _size(value: Any) -> int:
    return len(_dump(value).encode("utf-8"))


def failure_payload(kind: str, error: BaseException) -> dict[str, Any]:
    """The result of a failed run: typed errors give their reason, anything else is internal."""
    if isinstance(error, RuntimeJobError):
        payload: dict[str, Any] = {
            "ok": False,
            "kind": kind,
            "reason": error.reason,
            "message": str(error),
        }
        if isinstance(error, SchemaError):
            payload["violations"] = error.violations
        return payload
    return {
        "ok": False,
        "kind": kind,
        "reason": "InternalError",
        "message": f"{type(error).__name__}: {error}",
    }


def run_batch(kind: str, log_path: Path, work: Callable[[], tuple[dict[str, Any], int]]) -> int:
    """Run one batch job, report its result or its failure, and return the exit code.

    This is the one place a batch failure is rendered: a typed error becomes its reason and exit
    code; anything unexpected is reported as ``InternalError`` (exit 1), traceback on stderr.
    """
    try:
        payload, exit_code = work()
    except RuntimeJobError as error:
        print(f"error: {kind}: {error.reason}: {error}", file=sys.stderr)
        report(log_path, failure_payload(kind, error))
        return error.exit_code
    except Exception as error:
        traceback.print_exc()
        report(log_path, failure_payload(kind, error))
        return EXIT_INTERNAL
    report(log_path, payload)
    return exit_code
