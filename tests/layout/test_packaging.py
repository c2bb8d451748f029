"""The distribution's layout: `operator/` is a folder, never the stdlib module's shadow."""

from __future__ import annotations

import importlib
import operator
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_stdlib_operator_is_not_shadowed() -> None:
    assert operator.__file__ is not None
    assert Path(operator.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
    assert operator.itemgetter(1)([0, 1]) == 1


def test_both_packages_import_from_their_folders() -> None:
    for package, folder in (("kubeloop", "operator"), ("kubeloop_runtime", "serving_image")):
        module = importlib.import_module(package)
        assert module.__file__ is not None
        assert Path(module.__file__).resolve().parent == REPO / folder / package


def test_gitignore_keeps_caches_out() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert ".cache/" in ignored
