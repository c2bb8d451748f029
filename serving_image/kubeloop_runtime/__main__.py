"""``python -m kubeloop_runtime <command> [args]``: the image's one entry point.

Each command is a module with ``main(argv) -> int``; modules are imported only when chosen, so
``fetch`` never pays for importing the server and ``serve`` never imports scikit-learn's trainers.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Final

COMMANDS: Final[dict[str, str]] = {
    "train": "kubeloop_runtime.train",
    "profile": "kubeloop_runtime.profile_job",
    "fetch": "kubeloop_runtime.fetch",
    "serve": "kubeloop_runtime.serve",
    "drift": "kubeloop_runtime.drift",
}
USAGE: Final = (
    "usage: python -m kubeloop_runtime {" + "|".join(COMMANDS) + "} [options]\n"
    "       python -m kubeloop_runtime <command> --help"
)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if arguments else 2
    command, rest = arguments[0], arguments[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command])
    code = module.main(rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
