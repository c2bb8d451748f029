"""The TrainingJob's training Job, its ModelVersion, its version number and its status; no I/O.

Order of a run, each step written down in the API before the next, so that a restart at any line
converges: wait for the Dataset to be Ready → pin its version (status.datasetVersion, and for a
folder the manifest of its files, status.datasetManifest) → create the Job `<name>-train-<uid8>` →
read the runtime's `train` result from the termination message → apply the gate (and, for
`compareTo: serving`, the comparison with the version that served the model when the Job was
created, passed in as `evaluation.baseline`) → allocate the version number (recorded in the
per-model counter ConfigMap under this TrainingJob's uid, in the same optimistic write that moves
the counter, and then in status.modelVersion) → create the ModelVersion `<model>-v<n>` (a create
that is refused when it exists: one TrainingJob never yields two) → status Succeeded.

The pin is what is trained on: the train configuration carries the version and the manifest, and
the runtime reads exactly those files or fails with `DataVersionGone` (a file changed or
vanished). So `status.datasetVersion` and the ModelVersion's lineage always name the data the
model saw; a result that reports another digest (an older runtime) fails the run instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from kubeloop.api import API_VERSION
from kubeloop.api.modelversion import model_version_name
from kubeloop.builders.common import (
    child_name,
    job_manifest,
    labels,
    pvc_claims,
    pvc_volumes,
    runtime_container,
)
from kubeloop.builders.dataset import store_folder
from kubeloop.builders.inferenceservice import LABEL_ISVC
from kubeloop.builders.jobs import STUCK, JobOutcome
from kubeloop.builders.status import Transition, timestamp, with_transition
from kubeloop.conditions import conditions_to_wire, find_condition, set_condition
from kubeloop.settings import OperatorSettings

KIND: Final = "TrainingJob"
CONTAINER: Final = "train"
DATASET_READY: Final = "DatasetReady"
TERMINAL_PHASES: Final = frozenset({"Succeeded", "Rejected", "Failed"})
COUNTER_NEXT: Final = "next"
COUNTER_ALLOCATION_PREFIX: Final = "trainingjob."
TRAINING_JOB_UID_ANNOTATION: Final = "kubeloop.dev/training-job-uid"
DATASET_VERSION_MISMATCH: Final = "DatasetVersionMismatch"
# ModelVersion spec.framework.version (api/modelversion.py): a version string, bounded.
_FRAMEWORK_VERSION: Final = re.compile(r"^[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)$")
INPUT_EXAMPLE_ROWS: Final = 5

Event = tuple[str, str, str]


def training_job_name(trainingjob: Mapping[str, Any]) -> str:
    meta = trainingjob["metadata"]
    return child_name(meta["name"], "train", meta["uid"][:8])


def artifact_uri(trainingjob: Mapping[str, Any], settings: OperatorSettings) -> str:
    """The artifact folder: the spec's `output.uri`, else under the store by model and run."""
    spec, meta = trainingjob["spec"], trainingjob["metadata"]
    output = (spec.get("output") or {}).get("uri")
    if output:
        return str(output)
    run = f"{meta['name']}-{meta['uid'][:8]}"
    return store_folder(settings.artifact_store, "models", spec["modelName"], run)


def compares_to_serving(trainingjob: Mapping[str, Any]) -> bool:
    return (trainingjob["spec"].get("evaluation") or {}).get("compareTo") == "serving"


@dataclass(frozen=True)
class Baseline:
    """The ModelVersion serving the TrainingJob's model now, and the InferenceService serving it."""

    uri: str
    digest: str
    version: str
    inference_service: str

    def to_config(self) -> dict[str, str]:
        """`evaluation.baseline` of the train configuration."""
        return {"uri": self.uri, "digest": self.digest, "version": self.version}


def serving_baseline(
    trainingjob: Mapping[str, Any],
    inference_services: Iterable[Mapping[str, Any]],
    model_versions: Iterable[Mapping[str, Any]],
) -> Baseline | None:
    """What a `compareTo: serving` run is compared with: the active ModelVersion of an
    InferenceService of this model, preferring the one that started this retrain (its label),
    else the first by name; None when no InferenceService serves a ModelVersion of the model."""
    model = trainingjob["spec"]["modelName"]
    versions = {
        item["metadata"]["name"]: item
        for item in model_versions
        if (item.get("spec") or {}).get("modelName") == model
        and ((item.get("spec") or {}).get("artifact") or {}).get("digest")
    }
    serving: list[tuple[str, Mapping[str, Any]]] = []
    for isvc in inference_services:
        if ((isvc.get("spec") or {}).get("model") or {}).get("name") != model:
            continue
        active = (isvc.get("status") or {}).get("activeModelVersion")
        if active in versions:
            serving.append((isvc["metadata"]["name"], versions[active]))
    if not serving:
        return None
    # builders/retrain.py labels the TrainingJobs an InferenceService starts with its name.
    starter = (trainingjob["metadata"].get("labels") or {}).get(LABEL_ISVC)
    serving.sort(key=lambda item: (item[0] != starter, item[0]))
    isvc_name, version = serving[0]
    artifact = version["spec"]["artifact"]
    return Baseline(
        uri=str(artifact["uri"]),
        digest=str(artifact["digest"]),
        version=str(version["metadata"]["name"]),
        inference_service=isvc_name,
    )


def baseline_message(trainingjob: Mapping[str, Any], baseline: Baseline | None) -> str:
    """What a `compareTo: serving` run is compared with, for its start Event."""
    model = trainingjob["spec"]["modelName"]
    if baseline is None:
        return (
            f"evaluation.compareTo is serving, but no InferenceService serves a ModelVersion of "
            f"{model} now: training without a baseline (only the gate decides)"
        )
    return (
        f"comparing with {baseline.version}, served by InferenceService "
        f"{baseline.inference_service}, on the same held-out rows"
    )


@dataclass(frozen=True)
class DatasetPin:
    """The data a run trains on: the Dataset version and, for a folder, its files' manifest."""

    version: str
    manifest: dict[str, Any] | None = None


def pin_dataset(status: Mapping[str, Any], dataset: Mapping[str, Any]) -> DatasetPin:
    """The pin of a run: the one already in the TrainingJob's status (a restart keeps it), else
    the Dataset's current version with its manifest."""
    data_status = dataset.get("status") or {}
    pinned = status.get("datasetVersion")
    if pinned:
        manifest = status.get("datasetManifest")
        if manifest is None and data_status.get("version") == pinned:
            manifest = data_status.get("manifest")  # pinned by an operator without manifests
        return DatasetPin(str(pinned), manifest)
    return DatasetPin(str(data_status["version"]), data_status.get("manifest"))


def train_config(
    trainingjob: Mapping[str, Any],
    dataset_spec: Mapping[str, Any],
    output_uri: str,
    baseline: Baseline | None = None,
    pin: DatasetPin | None = None,
) -> dict[str, Any]:
    """The runtime's train configuration: the TrainingJob spec passed through, with the Dataset's
    spec and the pinned `version` and `manifest`, the output folder and, for `compareTo:
    serving`, the serving version as `evaluation.baseline` (docs/design/contracts.md, "Runtime
    configuration")."""
    spec = {key: value for key, value in trainingjob["spec"].items() if key != "datasetRef"}
    if baseline is not None and compares_to_serving(trainingjob):
        spec["evaluation"] = {**spec["evaluation"], "baseline": baseline.to_config()}
    dataset = dict(dataset_spec)
    if pin is not None:
        dataset["version"] = pin.version
        if pin.manifest is not None:
            dataset["manifest"] = dict(pin.manifest)
    return {**spec, "dataset": dataset, "output": {"uri": output_uri}}


def build_training_job(
    trainingjob: Mapping[str, Any],
    dataset_spec: Mapping[str, Any],
    settings: OperatorSettings,
    baseline: Baseline | None = None,
    pin: DatasetPin | None = None,
) -> dict[str, Any]:
    """The batch Job that trains: resources, deadline and backoff from the spec; the runtime's
    exit codes 2 to 5 fail it at once (builders.common.job_manifest). It mounts the claims of
    the data, its manifest, the output and the baseline's artifact (each once)."""
    meta, spec = trainingjob["metadata"], trainingjob["spec"]
    output = artifact_uri(trainingjob, settings)
    config_ = train_config(trainingjob, dataset_spec, output, baseline, pin)
    config = json.dumps(config_, separators=(",", ":"), sort_keys=True)
    baseline_uri = ((config_.get("evaluation") or {}).get("baseline") or {}).get("uri")
    manifest_uri = ((pin.manifest if pin else None) or {}).get("uri")
    volumes, mounts = pvc_volumes(
        pvc_claims(dataset_spec["source"]["uri"], output, baseline_uri, manifest_uri)
    )
    container = runtime_container(
        settings,
        name=CONTAINER,
        args=["train"],
        env=[{"name": "KUBELOOP_CONFIG", "value": config}],
        resources=spec.get("resources"),
        volume_mounts=mounts,
        storage_uris=[dataset_spec["source"]["uri"], output, baseline_uri],
    )
    job_labels = labels(
        name="trainingjob",
        instance=meta["name"],
        component="train",
        extra={"training-job": meta["name"], "model": spec["modelName"]},
    )
    return job_manifest(
        name=training_job_name(trainingjob),
        namespace=meta["namespace"],
        owner={"apiVersion": API_VERSION, **trainingjob},
        labels_=job_labels,
        container=container,
        volumes=volumes,
        backoff_limit=int(spec.get("backoffLimit", 1)),
        active_deadline_seconds=spec.get("activeDeadlineSeconds"),
    )


# --- version numbers ------------------------------------------------------------------------


def counter_name(model: str) -> str:
    """The ConfigMap that allocates the version numbers of one model in a namespace."""
    return child_name("kubeloop-versions", model, limit=253)


COUNTER_COMPONENT: Final = "version-counter"
COUNTER_ANNOTATION: Final = "kubeloop.dev/purpose"


def counter_manifest(namespace: str, model: str) -> dict[str, Any]:
    """The counter of one model's version numbers. It is kept, never pruned: like MLflow, a
    number is never given twice, also after its ModelVersion was deleted. No owner (it outlives
    every TrainingJob); the namespace's deletion removes it. Labelled, so that all counters (or
    one model's) can be listed and deleted by selector."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": counter_name(model),
            "namespace": namespace,
            "labels": labels(
                name="modelversion",
                instance=model,
                component=COUNTER_COMPONENT,
                extra={"model": model},
            ),
            "annotations": {
                COUNTER_ANNOTATION: (
                    f"Kubeloop's version counter of model {model}: data.next is the next "
                    "ModelVersion number. Deleting it lets numbers of deleted ModelVersions be "
                    "given again (docs/reference/notes/modelversion.md)."
                )
            },
        },
        "data": {COUNTER_NEXT: "1"},
    }


@dataclass(frozen=True)
class Allocation:
    """The version number of one TrainingJob and the counter data that records it."""

    version: int
    data: dict[str, str]
    new: bool


def allocate_version(
    counter_data: Mapping[str, str] | None, uid: str, taken: Iterable[int]
) -> Allocation:
    """This TrainingJob's number: the one already recorded under its uid, else the counter's
    next, moved past every number already taken (versions registered by hand). The caller
    writes `data` with the counter's resourceVersion, so two allocations never get one number."""
    data = dict(counter_data or {})
    key = COUNTER_ALLOCATION_PREFIX + uid
    if key in data:
        return Allocation(int(data[key]), data, new=False)
    number = max([int(data.get(COUNTER_NEXT, "1")), *(version + 1 for version in taken)])
    data[key] = str(number)
    data[COUNTER_NEXT] = str(number + 1)
    return Allocation(number, data, new=True)


# --- the ModelVersion -----------------------------------------------------------------------


def build_model_version(
    trainingjob: Mapping[str, Any],
    result: Mapping[str, Any],
    version: int,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The ModelVersion a passing run registers, with its full lineage and no owner (deleting
    the TrainingJob keeps the registry)."""
    meta, spec = trainingjob["metadata"], trainingjob["spec"]
    model = spec["modelName"]
    dataset = result.get("dataset") or {}
    artifact = result["artifact"]
    pinned = (trainingjob.get("status") or {}).get("datasetVersion")
    lineage: dict[str, Any] = {
        "trainingJob": meta["name"],
        "dataset": spec["datasetRef"]["name"],
        "datasetVersion": pinned or dataset.get("digest"),
        "estimator": result.get("estimator") or spec["estimator"],
        "params": result.get("params") if "params" in result else spec.get("params"),
        "image": settings.runtime_image,
    }
    metrics = {
        name: float(value)
        for name, value in (result.get("metrics") or {}).items()
        if isinstance(value, int | float)
    }
    framework = result_framework(result)
    example = result_input_example(result)
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": model_version_name(model, version),
            "namespace": meta["namespace"],
            "labels": labels(
                name="modelversion",
                instance=model,
                component="registry",
                extra={"model": model, "training-job": meta["name"]},
            ),
            "annotations": {TRAINING_JOB_UID_ANNOTATION: meta["uid"]},
        },
        "spec": {
            "modelName": model,
            "version": version,
            "artifact": {"uri": artifact["uri"], "digest": artifact["digest"]},
            "metrics": metrics,
            "lineage": {key: value for key, value in lineage.items() if value is not None},
            **({"framework": framework} if framework else {}),
            **({"inputExample": example} if example else {}),
        },
    }


def result_framework(result: Mapping[str, Any]) -> dict[str, str] | None:
    """`spec.framework` from the train result's `framework` (None from an older runtime)."""
    framework = result.get("framework") or {}
    name, version = framework.get("name"), framework.get("version")
    if name != "scikit-learn" or not isinstance(version, str) or len(version) > 64:
        return None
    if not _FRAMEWORK_VERSION.match(version):
        return None
    return {"name": name, "version": version}


def result_input_example(result: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """`spec.inputExample`: the train result's example rows, when they are `{feature: value}`."""
    rows = result.get("inputExample")
    if not isinstance(rows, list) or not rows:
        return None
    if not all(isinstance(row, dict) and row for row in rows):
        return None
    return [dict(row) for row in rows[:INPUT_EXAMPLE_ROWS]]


def dataset_mismatch(trainingjob: Mapping[str, Any], result: Mapping[str, Any]) -> str | None:
    """Why a finished run's data is not the pinned version (the result names another digest),
    or None. The runtime refuses other data itself; this catches an older runtime image."""
    pinned = (trainingjob.get("status") or {}).get("datasetVersion")
    trained = (result.get("dataset") or {}).get("digest")
    if not pinned or not trained or pinned == trained:
        return None
    return (
        f"the run trained on dataset version {trained}, not the pinned version {pinned}: the "
        "data changed after the Dataset was profiled. No ModelVersion was registered; refresh "
        "the Dataset and create a new TrainingJob"
    )


# --- status ---------------------------------------------------------------------------------


def dataset_condition(
    status: Mapping[str, Any],
    ready: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[dict[str, Any]]:
    return conditions_to_wire(
        set_condition(
            status.get("conditions"),
            DATASET_READY,
            "True" if ready else "False",
            reason,
            message,
            now=now,
            generation=generation,
        )
    )


def dataset_readiness(dataset: Mapping[str, Any] | None, name: str) -> tuple[bool, str, str]:
    """(ready, reason, message) of the referenced Dataset."""
    if dataset is None:
        return False, "DatasetNotFound", f"waiting for Dataset {name}: it does not exist"
    status = dataset.get("status") or {}
    ready = find_condition(status.get("conditions"), "Ready")
    if ready is None or ready.status != "True" or not status.get("version"):
        why = f": {ready.message}" if ready is not None and ready.message else ""
        phase = status.get("phase") or "Pending"
        return False, "DatasetNotReady", f"waiting for Dataset {name} to be Ready ({phase}{why})"
    return True, "DatasetReady", f"Dataset {name} is Ready at version {status['version']}"


@dataclass
class TrainingPlan:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)


def waiting_status(
    trainingjob: Mapping[str, Any], readiness: tuple[bool, str, str], now: datetime
) -> dict[str, Any]:
    """Pending: the Dataset is not Ready yet, and the conditions say which and why."""
    status = dict(trainingjob.get("status") or {})
    generation = int(trainingjob["metadata"].get("generation") or 1)
    _, reason, message = readiness
    status["conditions"] = dataset_condition(status, False, reason, message, now, generation)
    transition = Transition("Pending", "reconciling", "WaitingForDataset", message)
    return with_transition(status, transition, now=now, generation=generation, message_field=False)


def running_status(
    trainingjob: Mapping[str, Any],
    job_name: str,
    dataset_version: str,
    readiness_message: str,
    started: str | None,
    now: datetime,
    *,
    stuck: str = "",
    dataset_manifest: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Running in `job_name`; `stuck` (JobOutcome.stuck) says why its Pod does not start."""
    status = dict(trainingjob.get("status") or {})
    generation = int(trainingjob["metadata"].get("generation") or 1)
    status["conditions"] = dataset_condition(
        status, True, "DatasetReady", readiness_message, now, generation
    )
    status.update(jobName=job_name, datasetVersion=dataset_version)
    if dataset_manifest is not None:
        status["datasetManifest"] = dict(dataset_manifest)
    if started:
        status["startTime"] = started
    message = f"training in Job {job_name} on dataset version {dataset_version}"
    transition = Transition("Running", "reconciling", "Training", message)
    if stuck:
        transition = Transition(
            "Running", "reconciling", STUCK, f"train Job {job_name} does not start: {stuck}"
        )
    return with_transition(status, transition, now=now, generation=generation, message_field=False)


def _result_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    metrics = result.get("metrics")
    if isinstance(metrics, dict):
        fields["metrics"] = {
            key: float(value) for key, value in metrics.items() if isinstance(value, int | float)
        }
    gate = result.get("gate") or {}
    if isinstance(gate.get("value"), int | float):
        fields["score"] = float(gate["value"])
    search = result.get("search") or {}
    if search:
        fields["bestParams"] = search.get("bestParams")
        fields["trials"] = search.get("trials")
    artifact = result.get("artifact") or {}
    if artifact.get("uri") and artifact.get("digest"):
        fields["artifact"] = {"uri": artifact["uri"], "digest": artifact["digest"]}
    # status.datasetVersion is the pin, written before the Job ran: never the result's word.
    comparison = result.get("comparison")
    if isinstance(comparison, dict) and {"metric", "candidate", "passed"} <= comparison.keys():
        keys = ("metric", "candidate", "baseline", "baselineVersion", "passed", "testRows")
        fields["comparison"] = {
            key: comparison[key] for key in keys if comparison.get(key) is not None
        }
    return {key: value for key, value in fields.items() if value is not None}


def gate_message(result: Mapping[str, Any]) -> str:
    """`<metric> <value> is below|above the threshold <t>`: what the gate said."""
    gate = result.get("gate") or {}
    if {"metric", "value", "threshold"} <= gate.keys():
        lower = gate["metric"] in ("rmse", "mae")
        side = "above" if lower else "below"
        return f"{gate['metric']} {gate['value']:.4g} is {side} the threshold {gate['threshold']:g}"
    return str(result.get("message") or "the model missed its gate")


def comparison_message(result: Mapping[str, Any]) -> str:
    """`<metric> <candidate> is worse than <baseline> of the serving version <v> on the same
    <n> held-out rows`: what the comparison said."""
    comparison = result.get("comparison") or {}
    if {"metric", "candidate", "baseline"} <= comparison.keys() and isinstance(
        comparison["baseline"], int | float
    ):
        version = comparison.get("baselineVersion") or "serving now"
        rows = comparison.get("testRows")
        where = f" on the same {rows} held-out rows" if rows is not None else ""
        return (
            f"{comparison['metric']} {comparison['candidate']:.4g} is worse than "
            f"{comparison['baseline']:.4g} of the serving version {version}{where}"
        )
    return str(result.get("message") or "the model scored worse than the serving version")


def finished_status(
    trainingjob: Mapping[str, Any],
    outcome: JobOutcome,
    model_version: str | None,
    now: datetime,
) -> TrainingPlan:
    """The terminal status of a finished run: Succeeded (registered), Rejected or Failed."""
    status = dict(trainingjob.get("status") or {})
    generation = int(trainingjob["metadata"].get("generation") or 1)
    result = outcome.result
    status.update(_result_fields(result))
    status["completionTime"] = outcome.finished_at or timestamp(now)
    if model_version is not None:
        status["modelVersion"] = model_version
        gate = gate_message(result) if result.get("gate") else "no gate"
        metric = (result.get("gate") or {}).get("metric")
        score = f" ({metric} {status['score']:.4g})" if metric and "score" in status else ""
        message = f"registered ModelVersion {model_version}{score}"
        transition = Transition("Succeeded", "ready", "Registered", message)
        events: list[Event] = [("Normal", "Registered", f"{message}; gate: {gate}")]
    elif outcome.reason == "ComparisonFailed" or (
        result.get("passed") is False
        and (result.get("gate") or {}).get("passed", True)
        and (result.get("comparison") or {}).get("passed") is False
    ):
        message = (
            f"{comparison_message(result)}: no ModelVersion was registered. The serving version "
            "stays; improve the model (data, estimator, params) in a new TrainingJob"
        )
        status["rejectedReason"] = message
        transition = Transition("Rejected", "stalled", "ComparisonFailed", message)
        events = [("Warning", "Rejected", message)]
    elif outcome.reason == "GateFailed" or result.get("passed") is False:
        missed = gate_message(result)
        if (result.get("comparison") or {}).get("passed") is False:
            missed += f"; {comparison_message(result)}"
        message = (
            f"{missed}: no ModelVersion was registered. Improve the model "
            "(data, estimator, params) or lower the threshold in a new TrainingJob"
        )
        status["rejectedReason"] = message
        transition = Transition("Rejected", "stalled", "GateFailed", message)
        events = [("Warning", "Rejected", message)]
    else:
        reason = outcome.reason or "JobFailed"
        message = f"{reason}: {outcome.message}"
        if outcome.exit_code is not None:
            message += f" (exit code {outcome.exit_code})"
        transition = Transition("Failed", "stalled", reason, message)
        events = [("Warning", "TrainingFailed", message)]
    status = with_transition(
        status, transition, now=now, generation=generation, message_field=False
    )
    return TrainingPlan(status, events)
