"""The model server entry point: ``python -m kubeloop_runtime.serve``.

Reads ``KUBELOOP_*`` settings, builds the app and runs it under uvicorn (uvloop, httptools,
one worker: pods scale by replicas, not processes). Exit codes: 0 after a graceful shutdown
(SIGTERM included), 3 when the artifact is refused (digest mismatch, missing file), 2 on bad
settings. The choice to exit rather than idle unready is explained in docs/runtime.md.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from kubeloop_runtime.serve.settings import ServeSettings

EXIT_LOAD_FAILED = 3
EXIT_BAD_SETTINGS = 2


def main(argv: Sequence[str] | None = None) -> int:
    from kubeloop_runtime.serve.app import create_app

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args:
        print(f"serve takes no arguments (got {args!r}); configure it with KUBELOOP_* variables")
        return EXIT_BAD_SETTINGS
    try:
        settings = ServeSettings()
    except ValidationError as error:
        print(f"invalid KUBELOOP_* settings:\n{error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    failed: list[str] = []
    server: uvicorn.Server | None = None

    def give_up(reason: str) -> None:
        failed.append(reason)
        if server is not None and settings.exit_on_load_failure:
            server.should_exit = True

    config = uvicorn.Config(
        create_app(settings, on_load_failure=give_up),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        server_header=False,
        # Client addresses are never logged (access log off): parsing X-Forwarded-* for
        # them would be a middleware on every request for nothing.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it shut down on once it is done; without a handler of our
    # own that would end the process by the signal (exit 143) instead of a clean 0.
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    server.run()
    if failed and settings.exit_on_load_failure:
        return EXIT_LOAD_FAILED
    return 0
