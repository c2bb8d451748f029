"""Events of the objects our controllers own go to their owner's reconcile.

A Job's completion, a Pod's termination message, a Deployment's availability: each is seen as an
event of the child, and the child's controller ownerReference (a kubeloop.dev object) names the
reconcile to run. Only children with our `app.kubernetes.io/managed-by` label are watched. A
runtime Job's Pod that cannot start (its waiting reason) goes to the resource its Job's labels
name: the Job itself does not change then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from kubeloop.api import GROUP
from kubeloop.builders.common import MANAGED_BY
from kubeloop.builders.pods import waiting_failure
from kubeloop.runner import Runner

OURS = {"app.kubernetes.io/managed-by": MANAGED_BY}
# A runtime Job's Pod: its `app.kubernetes.io/name` is the kind, `instance` the object's name.
JOB_POD_KINDS = {"dataset": "Dataset", "trainingjob": "TrainingJob", "modelversion": "ModelVersion"}


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


def job_pod_owner(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """(kind, name) of the resource whose runtime Job a Pod runs, from the Job's labels."""
    kind = JOB_POD_KINDS.get(labels.get("app.kubernetes.io/name", ""))
    name = labels.get("app.kubernetes.io/instance")
    return (kind, name) if kind and name else None


def _not_starting(status: Mapping[str, Any], **_: Any) -> bool:
    return waiting_failure([{"status": status}]) is not None


# A Job does not change when its Pod cannot start (a missing Secret, an image not on the node),
# so the Pod's own event tells the resource's reconcile, which reports it (JobOutcome.stuck).
@kopf.on.event("v1", "pods", labels={**OURS, "job-name": kopf.PRESENT}, when=_not_starting)
async def job_pod_event(
    memo: Any, labels: Mapping[str, str], namespace: str | None, **_: Any
) -> None:
    owner = job_pod_owner(labels)
    runner: Runner = memo.runner
    if owner is None or namespace is None or not runner.handles(owner[0]):
        return
    runner.notify(owner[0], namespace, owner[1])
