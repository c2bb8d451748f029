"""The drift-checker sidecar: ``python -m kubeloop_runtime drift`` (or ``main(argv)``).

Reads the model server's window every interval, tests it against the reference profile in the
artifact's metadata.json, and merges its verdict into the InferenceService ``status.drift``.
Configuration: `DriftSettings` (``KUBELOOP_`` environment variables, docs/design/contracts.md).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from pydantic import ValidationError

from kubeloop_runtime.drift.errors import SettingsError
from kubeloop_runtime.drift.loop import DriftChecker
from kubeloop_runtime.drift.settings import DriftSettings

__all__ = ["DriftChecker", "DriftSettings", "main"]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_SETTINGS = 2


def load_settings() -> DriftSettings:
    """Settings from the environment; `SettingsError` names the variable at fault."""
    try:
        settings = DriftSettings()
    except ValidationError as error:
        problems = "; ".join(
            f"KUBELOOP_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise SettingsError(f"invalid drift settings: {problems}") from error
    if settings.isvc_name and not settings.isvc_namespace:
        raise SettingsError(
            "KUBELOOP_ISVC_NAMESPACE is required with KUBELOOP_ISVC_NAME outside a pod"
        )
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubeloop_runtime drift", description="Drift-checker sidecar."
    )
    parser.add_argument("--once", action="store_true", help="check one window, then exit")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"drift: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    checker = DriftChecker(settings)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("kubeloop_runtime.drift").info("signal %d: stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    try:
        if args.once:
            failures = checker.run(stop, max_checks=1)
            return EXIT_CHECK_FAILED if failures else EXIT_OK
        if settings.drift_metrics_port:
            try:
                checker.metrics.serve(settings.drift_metrics_port, settings.drift_metrics_host)
            except OSError as error:  # checks matter more than their metrics: keep going
                logging.getLogger("kubeloop_runtime.drift").error(
                    "metrics port %s:%d unavailable (%s); running without metrics",
                    settings.drift_metrics_host,
                    settings.drift_metrics_port,
                    error,
                )
        checker.run(stop)
        return EXIT_OK
    finally:
        checker.close()
