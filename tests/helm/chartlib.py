"""What the chart's tests share besides fixtures: the chart's path, the runners' types, `--set`
arguments. A module of its own: `from conftest import ...` picks whichever conftest pytest loaded
last when several test folders are given on one command line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "kubeloop"
HelmRunner = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[..., list[dict[str, Any]]]
Kubeconform = Callable[..., subprocess.CompletedProcess[str]]


def set_args(values: dict[str, str] | None) -> list[str]:
    return [f"--set={key}={value}" for key, value in (values or {}).items()]
