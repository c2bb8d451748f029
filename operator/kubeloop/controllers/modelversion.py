"""ModelVersion: make aliases unique per model, verify the artifact, report who serves it.

`status.servedBy` is computed here from an index of InferenceServices by their
`status.activeModelVersion` (the InferenceService controller writes only its own status), and an
InferenceService's event triggers the versions it served before and serves now.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from kubeloop import metrics
from kubeloop.api import API_VERSION, GROUP, VERSION
from kubeloop.builders import modelversion as builder
from kubeloop.builders.jobs import job_outcome
from kubeloop.builders.status import merge_patch
from kubeloop.builders.trainingjob import TRAINING_JOB_UID_ANNOTATION
from kubeloop.kube import apply as kube
from kubeloop.kube.errors import Conflict, NotFound
from kubeloop.kube.events import emit
from kubeloop.kube.views import (
    OwnWrites,
    index_values,
    read_object,
    version_of,
    without_managed_fields,
)
from kubeloop.runner import DONE, Context, Outcome

KIND = builder.KIND
SERVED_BY_INDEX = "inference_services_by_model_version"
BODIES_INDEX = "model_version_bodies"
logger = logging.getLogger(__name__)
# Our writes that the watch-fed view of ModelVersions may not show yet (kube/views.py).
OWN_WRITES = OwnWrites()


def _read(context: Context, namespace: str, name: str) -> dict[str, Any] | None:
    """The ModelVersion from the watch (with our own latest write), else from the API."""
    index = context.indexes.get(BODIES_INDEX)
    return read_object(context.api, OWN_WRITES, index, API_VERSION, KIND, namespace, name)


def _vouched(context: Context, model_version: dict[str, Any]) -> bool:
    meta, lineage = model_version["metadata"], model_version["spec"].get("lineage") or {}
    if not (meta.get("annotations") or {}).get(TRAINING_JOB_UID_ANNOTATION):
        return False
    if not lineage.get("trainingJob"):
        return False
    trainingjob = kube.get_or_none(
        context.api, API_VERSION, "TrainingJob", meta["namespace"], lineage["trainingJob"]
    )
    return builder.vouched_by_training_job(model_version, trainingjob)


def served_by(context: Context, namespace: str, name: str) -> list[str]:
    return sorted(set(index_values(context.indexes.get(SERVED_BY_INDEX), (namespace, name))))


def move_aliases(context: Context, model_version: dict[str, Any]) -> list[str] | None:
    """Take this version's new aliases away from the others; the aliases it now holds, or None
    when a holder moved meanwhile (the reconcile runs again)."""
    meta, spec = model_version["metadata"], model_version["spec"]
    status = model_version.get("status") or {}
    if not spec.get("aliases") and not status.get("aliases"):
        return []
    others = [
        item
        for item in kube.list_objects(context.api, API_VERSION, KIND, meta["namespace"])
        if item["spec"].get("modelName") == spec["modelName"]
    ]
    for move in builder.alias_moves(model_version, others):
        holder = next(item for item in others if item["metadata"]["name"] == move.holder)
        try:
            moved = kube.patch(
                context.api,
                API_VERSION,
                KIND,
                meta["namespace"],
                move.holder,
                builder.alias_patch(move),
            )
        except (Conflict, NotFound):
            return None
        OWN_WRITES.wrote(version_of(holder), moved)
        emit(
            context.api,
            holder,
            "Normal",
            "AliasMoved",
            f"alias {move.alias} moved to {meta['name']}",
        )
        emit(
            context.api,
            model_version,
            "Normal",
            "AliasMoved",
            f"alias {move.alias} moved here from {move.holder}",
        )
    lost = builder.lost_aliases(model_version, others)
    return [alias for alias in spec.get("aliases") or () if alias not in lost]


def reconcile(context: Context, namespace: str, name: str) -> Outcome:
    model_version = _read(context, namespace, name)
    if model_version is None or model_version["metadata"].get("deletionTimestamp"):
        return DONE
    aliases = move_aliases(context, model_version)
    if aliases is None:
        return Outcome(requeue_after=0.2)
    status = model_version.get("status") or {}
    vouched = status.get("phase") is None and _vouched(context, model_version)
    outcome = None
    job_name = builder.verify_job_name(model_version)
    if not vouched and status.get("phase") not in ("Ready", "Failed"):
        job = kube.get_or_none(context.api, "batch/v1", "Job", namespace, job_name)
        if job is not None:
            pods = kube.list_objects(
                context.api, "v1", "Pod", namespace, label_selector=f"job-name={job_name}"
            )
            outcome = job_outcome(job, pods, builder.CONTAINER)
    plan = builder.plan_verification(
        model_version, vouched, outcome, datetime.now(UTC), context.settings
    )
    if plan.create_job is not None:
        try:
            kube.create(context.api, plan.create_job)
            metrics.CHILDREN_CREATED.labels(KIND, "Job").inc()
        except Conflict:
            pass
    new_status = dict(plan.status)
    new_status["aliases"] = aliases or None
    new_status["servedBy"] = served_by(context, namespace, name) or None
    new_status = {key: value for key, value in new_status.items() if value is not None}
    patch = merge_patch(status, new_status)
    if patch:
        written = kube.patch_status(context.api, API_VERSION, KIND, namespace, name, patch)
        OWN_WRITES.wrote(version_of(model_version), written)
        for type_, reason, message in plan.events:
            emit(context.api, model_version, type_, reason, message)
    return DONE


@kopf.on.event(GROUP, VERSION, "modelversions")
async def model_version_event(
    memo: Any, type: str, name: str, namespace: str | None, body: Any, **_: Any
) -> None:
    if namespace is not None:
        resource_version = body["metadata"].get("resourceVersion")
        OWN_WRITES.observed(
            (API_VERSION, KIND, namespace, name), resource_version, type == "DELETED"
        )
    memo.runner.on_event(KIND, type, namespace, name)


@kopf.index(GROUP, VERSION, "modelversions")
def model_version_bodies(
    namespace: str | None, name: str, body: Any, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """(namespace, name) → the ModelVersion as last seen (what a reconcile reads)."""
    return {(namespace, name): without_managed_fields(body)}


@kopf.index(GROUP, VERSION, "inferenceservices")
def inference_services_by_model_version(
    namespace: str | None, name: str, status: Any, **_: Any
) -> dict[tuple[str | None, str], str] | None:
    active = (status or {}).get("activeModelVersion")
    return {(namespace, str(active)): name} if active else None


# The version each InferenceService served when last seen, to update it when that changes.
_last_served: dict[tuple[str, str], str] = {}


@kopf.on.event(GROUP, VERSION, "inferenceservices")
async def inference_service_event(
    memo: Any, type: str, name: str, namespace: str | None, status: Any, **_: Any
) -> None:
    if namespace is None:
        return
    key = (namespace, name)
    before = _last_served.get(key)
    now = None if type == "DELETED" else (status or {}).get("activeModelVersion")
    if now:
        _last_served[key] = str(now)
    else:
        _last_served.pop(key, None)
    for version in {before, now} - {None}:
        memo.runner.notify(KIND, namespace, str(version))


@kopf.on.startup()
def remember_indexes(memo: Any, **kwargs: Any) -> None:
    """Give the reconciles (which run in threads, outside Kopf's handlers) the live indexes, as
    the InferenceService controller does."""
    memo.runner.context.indexes[SERVED_BY_INDEX] = kwargs[SERVED_BY_INDEX]
    memo.runner.context.indexes[BODIES_INDEX] = kwargs[BODIES_INDEX]
