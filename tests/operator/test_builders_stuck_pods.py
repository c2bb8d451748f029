"""A runtime Job whose Pod cannot start (no cluster): a missing Secret (the S3 store's, say) or an
image not on the node. The Job itself stays active, so its Pod's waiting state is what the
resource's status reports, in the kubelet's words, with one Warning Event `PodNotStarting`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubeloop.builders.dataset import DatasetObservation, plan_dataset
from kubeloop.builders.jobs import STUCK, JobOutcome, job_outcome
from kubeloop.builders.modelversion import plan_verification
from kubeloop.builders.trainingjob import running_status
from kubeloop.conditions import find_condition
from kubeloop.controllers.children import _not_starting, job_pod_owner
from kubeloop.settings import OperatorSettings

SETTINGS = OperatorSettings(runtime_image="kubeloop-runtime:dev")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET_MISSING = 'secret "kubeloop-s3" not found'
STUCK_TEXT = f"container profile: CreateContainerConfigError ({SECRET_MISSING})"


def pod(container: str = "profile", reason: str = "CreateContainerConfigError") -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": container,
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": reason, "message": SECRET_MISSING}},
                }
            ],
        },
    }


def test_a_running_job_whose_pod_cannot_start_says_why() -> None:
    outcome = job_outcome({"status": {"active": 1}}, [pod()], "profile")
    assert (outcome.state, outcome.stuck) == ("running", STUCK_TEXT)
    # Still pulling, or starting: nothing to say.
    assert job_outcome({"status": {}}, [pod(reason="ContainerCreating")], "profile").stuck == ""


def test_the_dataset_reports_it_once_and_keeps_waiting() -> None:
    dataset: dict[str, Any] = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "uid": "uid-1",
            "generation": 1,
            "creationTimestamp": "2026-12-01T08:00:00Z",
        },
        "spec": {"source": {"uri": "builtin://iris"}, "target": "target"},
        "status": {},
    }
    start = plan_dataset(DatasetObservation(dataset, None, NOW), SETTINGS)
    dataset["status"] = start.status
    stuck = plan_dataset(
        DatasetObservation(dataset, JobOutcome("running", stuck=STUCK_TEXT), NOW), SETTINGS
    )
    assert stuck.create_job is None
    assert stuck.status["phase"] == "Profiling"
    reconciling = find_condition(stuck.status["conditions"], "Reconciling")
    assert reconciling is not None
    assert reconciling.reason == STUCK
    assert SECRET_MISSING in reconciling.message
    assert reconciling.message.startswith(f"profile Job {start.status['check']['job']}")
    assert stuck.events == [("Warning", STUCK, reconciling.message)]
    assert stuck.requeue_after is not None  # the Job's deadline still ends it


def test_the_trainingjob_and_the_modelversion_report_it() -> None:
    trainingjob = {"metadata": {"name": "iris-rf", "generation": 1}, "status": {}}
    status = running_status(
        trainingjob, "iris-rf-train-1", "sha256:ab", "", None, NOW, stuck="x: y"
    )
    ready = find_condition(status["conditions"], "Ready")
    assert ready is not None
    assert (status["phase"], ready.reason) == ("Running", STUCK)
    assert ready.message == "train Job iris-rf-train-1 does not start: x: y"

    version: dict[str, Any] = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "iris-v1", "namespace": "ml", "uid": "u1234567", "generation": 1},
        "spec": {
            "modelName": "iris",
            "version": 1,
            "artifact": {"uri": "s3://m/iris/a/", "digest": "sha256:" + "c" * 64},
        },
        "status": {},
    }
    first = plan_verification(version, False, JobOutcome("running", stuck="z"), NOW, SETTINGS)
    assert first.status["phase"] == "Pending"
    pending = find_condition(first.status["conditions"], "Ready")
    assert pending is not None
    assert pending.reason == STUCK
    assert [event[1] for event in first.events] == [STUCK]
    version["status"] = first.status
    again = plan_verification(version, False, JobOutcome("running", stuck="z"), NOW, SETTINGS)
    assert again.events == []  # said once


def test_only_stuck_job_pods_reach_the_owners_reconcile() -> None:
    labels = {"app.kubernetes.io/name": "dataset", "app.kubernetes.io/instance": "iris"}
    assert job_pod_owner(labels) == ("Dataset", "iris")
    assert job_pod_owner({**labels, "app.kubernetes.io/name": "inferenceservice"}) is None
    assert _not_starting(pod()["status"])
    assert not _not_starting({"phase": "Running", "containerStatuses": []})
