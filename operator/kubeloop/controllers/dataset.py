"""Dataset: observe the Dataset and its current profile Job → plan → create the Job → status.

Events of the profile Jobs reach this reconcile through `controllers.children`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from kubeloop import failpoints, metrics
from kubeloop.api import API_VERSION, GROUP, VERSION
from kubeloop.builders import dataset as builder
from kubeloop.builders.jobs import JobOutcome, job_outcome
from kubeloop.builders.status import merge_patch
from kubeloop.kube import apply as kube
from kubeloop.kube.errors import Conflict
from kubeloop.kube.events import emit
from kubeloop.runner import DONE, Context, Outcome

KIND = builder.KIND
logger = logging.getLogger(__name__)


def observe_job(
    context: Context, namespace: str, job_name: str, container: str
) -> JobOutcome | None:
    """The outcome of a runtime Job (None when the Job does not exist)."""
    job = kube.get_or_none(context.api, "batch/v1", "Job", namespace, job_name)
    if job is None:
        return None
    pods = kube.list_objects(
        context.api, "v1", "Pod", namespace, label_selector=f"job-name={job_name}"
    )
    return job_outcome(job, pods, container)


def reconcile(context: Context, namespace: str, name: str) -> Outcome:
    dataset = kube.get_or_none(context.api, API_VERSION, KIND, namespace, name)
    if dataset is None or dataset["metadata"].get("deletionTimestamp"):
        return DONE
    check = (dataset.get("status") or {}).get("check") or {}
    outcome = (
        observe_job(context, namespace, check["job"], builder.CONTAINER)
        if check.get("job")
        else None
    )
    observed = builder.DatasetObservation(dataset, outcome, datetime.now(UTC))
    plan = builder.plan_dataset(observed, context.settings)
    if plan.create_job is not None:
        try:
            kube.create(context.api, plan.create_job)
            failpoints.reached("dataset.job-created")
            metrics.CHILDREN_CREATED.labels(KIND, "Job").inc()
        except Conflict:
            pass  # made by an earlier run that did not get to write status
    patch = merge_patch(dataset.get("status"), plan.status)
    if patch:
        kube.patch_status(context.api, API_VERSION, KIND, namespace, name, patch)
        for type_, reason, message in plan.events:
            emit(context.api, dataset, type_, reason, message)
    return Outcome(plan.requeue_after)


@kopf.on.event(GROUP, VERSION, "datasets")
async def dataset_event(memo: Any, type: str, name: str, namespace: str | None, **_: Any) -> None:
    memo.runner.on_event(KIND, type, namespace, name)
