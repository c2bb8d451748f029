"""Events of the objects our controllers own go to their owner's reconcile.

A Job's completion, a Pod's termination message, a Deployment's availability: each is seen as an
event of the child, and the child's controller ownerReference (a kubeloop.dev object) names the
reconcile to run. Only children with our `app.kubernetes.io/managed-by` label are watched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from kubeloop.api import GROUP
from kubeloop.builders.common import MANAGED_BY
from kubeloop.runner import Runner

OURS = {"app.kubernetes.io/managed-by": MANAGED_BY}


def controller_owner(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the kubeloop.dev controller owner in `meta`'s ownerReferences."""
    for reference in meta.get("ownerReferences") or ():
        api_version = str(reference.get("apiVersion", ""))
        if reference.get("controller") and api_version.startswith(f"{GROUP}/"):
            return str(reference["kind"]), str(reference["name"])
    return None


def route_to_owner(memo: Any, meta: Mapping[str, Any], namespace: str | None) -> None:
    """Trigger the owner's reconcile, if the owner is one of ours and has a reconcile."""
    owner = controller_owner(meta)
    runner: Runner = memo.runner
    if owner is None or namespace is None or not runner.handles(owner[0]):
        return
    runner.notify(owner[0], namespace, owner[1])


@kopf.on.event("batch", "v1", "jobs", labels=OURS)
async def job_event(memo: Any, meta: Mapping[str, Any], namespace: str | None, **_: Any) -> None:
    route_to_owner(memo, meta, namespace)
