"""The command-line surface shared by the batch entry points (train, profile, fetch)."""

from __future__ import annotations

import argparse


def batch_argument_parser(
    command: str, description: str, *, takes_config: bool = True
) -> argparse.ArgumentParser:
    """A parser with the flags every batch entry point has: --config and --termination-log."""
    parser = argparse.ArgumentParser(
        prog=f"python -m kubeloop_runtime {command}", description=description
    )
    if takes_config:
        parser.add_argument(
            "--config",
            help="the JSON configuration, inline or a file path (default: $KUBELOOP_CONFIG)",
        )
    parser.add_argument(
        "--termination-log",
        help="where the JSON result goes "
        "(default: $KUBELOOP_TERMINATION_LOG or /dev/termination-log)",
    )
    return parser
