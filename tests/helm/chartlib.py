"""What the chart's tests share besides fixtures: the chart's path and the runners' types (from
tests/incluster.py, shared with tests/e2e), `--set` arguments. A module of its own: `from conftest
import ...` picks whichever conftest pytest loaded last when several test folders are given on one
command line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

from incluster import CHART, REPO, HelmRunner, set_args

__all__ = ["CHART", "REPO", "HelmRunner", "Kubeconform", "Render", "set_args"]

Render = Callable[..., list[dict[str, Any]]]
Kubeconform = Callable[..., subprocess.CompletedProcess[str]]
