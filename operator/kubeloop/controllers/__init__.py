"""Kopf handlers, one module per kind; importing this package registers them all with Kopf.

Each kind module has `KIND`, a synchronous `reconcile(context, namespace, name) -> Outcome`, and
an `@kopf.on.event` handler that hands the object to the `Runner` in Kopf's memo. `register`
tells the runner which reconcile belongs to which kind. `children` routes the events of child
objects (Jobs, and whatever other kinds add) to their owner's reconcile.
"""

from __future__ import annotations

from types import ModuleType

from kubeloop.controllers import children, dataset, inferenceservice, modelversion, trainingjob
from kubeloop.runner import Runner

KIND_MODULES: tuple[ModuleType, ...] = (dataset, trainingjob, modelversion, inferenceservice)


def register(runner: Runner) -> None:
    """Register every kind's reconcile with the runner."""
    for module in KIND_MODULES:
        runner.register(module.KIND, module.reconcile)


__all__ = [
    "KIND_MODULES",
    "children",
    "dataset",
    "inferenceservice",
    "modelversion",
    "register",
    "trainingjob",
]
