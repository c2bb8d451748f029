"""TrainingJob: wait for the Dataset → pin its version → training Job → gate → ModelVersion.

A Dataset's events wake the TrainingJobs that wait on it (an index of unfinished TrainingJobs
by Dataset); the training Job's events come through `controllers.children`.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from kubeloop import failpoints, metrics
from kubeloop.api import API_VERSION, GROUP, VERSION
from kubeloop.builders import trainingjob as builder
from kubeloop.builders.jobs import STUCK, JobOutcome, job_outcome
from kubeloop.builders.status import merge_patch
from kubeloop.conditions import find_condition
from kubeloop.kube import apply as kube
from kubeloop.kube.errors import Conflict, KubeError
from kubeloop.kube.events import emit
from kubeloop.runner import DONE, Context, Outcome

KIND = builder.KIND
ALLOCATION_ATTEMPTS = 20
logger = logging.getLogger(__name__)


def _write_status(
    context: Context, trainingjob: dict[str, Any], new_status: dict[str, Any]
) -> dict[str, Any]:
    meta = trainingjob["metadata"]
    patch = merge_patch(trainingjob.get("status"), new_status)
    if patch:
        kube.patch_status(context.api, API_VERSION, KIND, meta["namespace"], meta["name"], patch)
    trainingjob["status"] = new_status
    return patch


def model_versions_of(context: Context, namespace: str, model: str) -> list[dict[str, Any]]:
    return [
        item
        for item in kube.list_objects(context.api, API_VERSION, "ModelVersion", namespace)
        if (item.get("spec") or {}).get("modelName") == model
    ]


def allocate(context: Context, trainingjob: dict[str, Any], exclude: int | None = None) -> int:
    """This TrainingJob's version number, from the per-model counter ConfigMap, updated with
    its resourceVersion (a concurrent allocation makes the write conflict, and we read again).
    `exclude` drops an earlier allocation whose name turned out to be taken."""
    meta, model = trainingjob["metadata"], trainingjob["spec"]["modelName"]
    namespace, uid = meta["namespace"], meta["uid"]
    name = builder.counter_name(model)
    for _ in range(ALLOCATION_ATTEMPTS):
        counter = kube.get_or_none(context.api, "v1", "ConfigMap", namespace, name)
        if counter is None:
            with contextlib.suppress(Conflict):
                kube.create(context.api, builder.counter_manifest(namespace, model))
            continue
        data = dict(counter.get("data") or {})
        if exclude is not None and data.get(builder.COUNTER_ALLOCATION_PREFIX + uid) == str(
            exclude
        ):
            del data[builder.COUNTER_ALLOCATION_PREFIX + uid]
        taken = [
            int(item["spec"]["version"]) for item in model_versions_of(context, namespace, model)
        ]
        allocation = builder.allocate_version(data, uid, taken)
        if not allocation.new and exclude is None:
            return allocation.version
        try:
            kube.replace(context.api, {**counter, "data": allocation.data})
        except Conflict:
            continue
        return allocation.version
    raise KubeError(f"could not allocate a version of model {model}: the counter kept moving")


def register(context: Context, trainingjob: dict[str, Any], result: dict[str, Any]) -> str:
    """Create this run's ModelVersion once, and return its name."""
    meta = trainingjob["metadata"]
    exclude: int | None = None
    for _ in range(ALLOCATION_ATTEMPTS):
        version = allocate(context, trainingjob, exclude)
        manifest = builder.build_model_version(trainingjob, result, version, context.settings)
        name = manifest["metadata"]["name"]
        # The allocation is written down before the ModelVersion exists, so a restart reuses it.
        artifact = {"uri": result["artifact"]["uri"], "digest": result["artifact"]["digest"]}
        allocated = {"modelVersion": name, "artifact": artifact}
        _write_status(context, trainingjob, {**(trainingjob.get("status") or {}), **allocated})
        try:
            kube.create(context.api, manifest)
            failpoints.reached("trainingjob.modelversion-created")
            metrics.CHILDREN_CREATED.labels(KIND, "ModelVersion").inc()
            metrics.MODEL_VERSIONS_REGISTERED.inc()
            return str(name)
        except Conflict:
            existing = kube.get(context.api, API_VERSION, "ModelVersion", meta["namespace"], name)
            annotations = existing["metadata"].get("annotations") or {}
            if annotations.get(builder.TRAINING_JOB_UID_ANNOTATION) == meta["uid"]:
                return str(name)  # ours, from a run that stopped before writing status
            logger.warning("%s was registered by someone else; allocating another number", name)
            exclude = version
    raise KubeError(f"could not register a ModelVersion for {meta['name']}")


def reconcile(context: Context, namespace: str, name: str) -> Outcome:
    trainingjob = kube.get_or_none(context.api, API_VERSION, KIND, namespace, name)
    if trainingjob is None or trainingjob["metadata"].get("deletionTimestamp"):
        return DONE
    status = dict(trainingjob.get("status") or {})
    if status.get("phase") in builder.TERMINAL_PHASES:
        return DONE
    now = datetime.now(UTC)
    job_name = builder.training_job_name(trainingjob)
    job = kube.get_or_none(context.api, "batch/v1", "Job", namespace, job_name)
    if job is None:
        return start(context, trainingjob, job_name, now)
    pods = kube.list_objects(
        context.api, "v1", "Pod", namespace, label_selector=f"job-name={job_name}"
    )
    outcome = job_outcome(job, pods, builder.CONTAINER)
    if outcome.state == "running":
        started = (job.get("status") or {}).get("startTime")
        readiness = find_condition(status.get("conditions"), builder.DATASET_READY)
        running = builder.running_status(
            trainingjob,
            job_name,
            status.get("datasetVersion") or "",
            readiness.message if readiness else "",
            started,
            now,
            stuck=outcome.stuck,
            dataset_manifest=status.get("datasetManifest"),
        )
        was = find_condition(status.get("conditions"), "Ready")
        _write_status(context, trainingjob, running)
        now_ready = find_condition(running.get("conditions"), "Ready")
        if outcome.stuck and now_ready is not None and (was is None or was.reason != STUCK):
            emit(context.api, trainingjob, "Warning", STUCK, now_ready.message)
        return DONE
    finish(context, trainingjob, outcome, now)
    return DONE


def serving_baseline(context: Context, trainingjob: dict[str, Any]) -> builder.Baseline | None:
    """For `compareTo: serving`: the ModelVersion serving the model now (builder decides)."""
    if not builder.compares_to_serving(trainingjob):
        return None
    namespace, model = trainingjob["metadata"]["namespace"], trainingjob["spec"]["modelName"]
    services = kube.list_objects(context.api, API_VERSION, "InferenceService", namespace)
    return builder.serving_baseline(
        trainingjob, services, model_versions_of(context, namespace, model)
    )


def start(context: Context, trainingjob: dict[str, Any], job_name: str, now: datetime) -> Outcome:
    """Wait for the Dataset, pin its version, create the training Job."""
    meta, spec = trainingjob["metadata"], trainingjob["spec"]
    status = trainingjob.get("status") or {}
    dataset_name = spec["datasetRef"]["name"]
    if status.get("jobName") == job_name and status.get("phase") == "Running":
        # The Job was deleted while it ran (by hand: it has our owner reference).
        gone = JobOutcome("failed", reason="JobDeleted", message=f"Job {job_name} was deleted")
        finish(context, trainingjob, gone, now)
        return DONE
    dataset = kube.get_or_none(context.api, API_VERSION, "Dataset", meta["namespace"], dataset_name)
    readiness = builder.dataset_readiness(dataset, dataset_name)
    if not readiness[0] or dataset is None:
        waiting = builder.waiting_status(trainingjob, readiness, now)
        first = status.get("phase") != "Pending"
        _write_status(context, trainingjob, waiting)
        if first:
            emit(context.api, trainingjob, "Normal", "WaitingForDataset", readiness[2])
        return DONE
    pin = builder.pin_dataset(status, dataset)
    pinned = pin.version
    running = builder.running_status(
        trainingjob, job_name, pinned, readiness[2], None, now, dataset_manifest=pin.manifest
    )
    _write_status(context, trainingjob, running)  # the pin, before the Job exists
    baseline = serving_baseline(context, trainingjob)
    manifest = builder.build_training_job(
        trainingjob, dataset["spec"], context.settings, baseline, pin
    )
    try:
        kube.create(context.api, manifest)
        failpoints.reached("trainingjob.job-created")
        metrics.CHILDREN_CREATED.labels(KIND, "Job").inc()
        message = (
            f"training {spec['estimator']} in Job {job_name} on Dataset {dataset_name} "
            f"version {pinned}"
        )
        if builder.compares_to_serving(trainingjob):
            message += f"; {builder.baseline_message(trainingjob, baseline)}"
        emit(context.api, trainingjob, "Normal", "TrainingStarted", message)
        if builder.compares_to_serving(trainingjob) and baseline is None:
            emit(
                context.api,
                trainingjob,
                "Normal",
                "NoBaseline",
                builder.baseline_message(trainingjob, baseline),
            )
    except Conflict:
        pass
    return DONE


def finish(
    context: Context, trainingjob: dict[str, Any], outcome: JobOutcome, now: datetime
) -> None:
    """Apply the gate: register a ModelVersion on a pass; Rejected or Failed otherwise."""
    result = outcome.result
    mismatch = builder.dataset_mismatch(trainingjob, result)
    if mismatch is not None and outcome.state == "succeeded":
        outcome = JobOutcome(
            "failed",
            result=result,
            reason=builder.DATASET_VERSION_MISMATCH,
            message=mismatch,
            finished_at=outcome.finished_at,
        )
    passed = outcome.state == "succeeded" and result.get("ok") and result.get("passed", True)
    model_version = register(context, trainingjob, result) if passed else None
    plan = builder.finished_status(trainingjob, outcome, model_version, now)
    _write_status(context, trainingjob, plan.status)
    metrics.TRAINING_OUTCOMES.labels(plan.status["phase"]).inc()
    for type_, reason, message in plan.events:
        emit(context.api, trainingjob, type_, reason, message)


@kopf.index(GROUP, VERSION, "trainingjobs")
def unfinished_trainingjobs_by_dataset(
    namespace: str | None, name: str, spec: Any, status: Any, **_: Any
) -> dict[tuple[str | None, str], str] | None:
    if (status or {}).get("phase") in builder.TERMINAL_PHASES:
        return None
    return {(namespace, spec["datasetRef"]["name"]): name}


@kopf.on.event(GROUP, VERSION, "trainingjobs")
async def trainingjob_event(
    memo: Any, type: str, name: str, namespace: str | None, **_: Any
) -> None:
    memo.runner.on_event(KIND, type, namespace, name)


@kopf.on.event(GROUP, VERSION, "datasets")
async def wake_trainingjobs(memo: Any, name: str, namespace: str | None, **kwargs: Any) -> None:
    """A Dataset changed: the TrainingJobs waiting for it look again."""
    index: kopf.Index[tuple[str | None, str], str] = kwargs["unfinished_trainingjobs_by_dataset"]
    if namespace is None:
        return
    for trainingjob in list(index.get((namespace, name), ())):
        memo.runner.notify(KIND, namespace, trainingjob)
