"""The TrainingJob controller with the real operator: waiting for the Dataset, the example to a
registered ModelVersion, a training failure (exit 4), a gate rejection, two runs of one model
finishing together. On the API-only plane the Jobs run by the test playing the kubelet with the
real runtime (helpers_kubelet.py)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers_kubelet import JobRunner
from helpers_operator import OperatorProcess
from helpers_resources import (
    API,
    apply,
    condition,
    example,
    ready_dataset,
    small_trainingjob,
    status_of,
    training_job,
    wait_for_event,
    wait_for_phase,
)

from kubeloop.kube import apply as kube

# Their Jobs' Pods run on the real node when there is one (else the test plays the kubelet).
pytestmark = pytest.mark.node


def test_example_trainingjob_waits_for_its_dataset_then_registers_a_model_version(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    apply(kubectl, namespace, example("TrainingJob"))
    waiting = wait_for_phase(api, "TrainingJob", namespace, "iris-rf", "Pending")
    dataset_ready = condition(waiting, "DatasetReady")
    assert dataset_ready["status"] == "False"
    assert dataset_ready["reason"] == "DatasetNotFound"
    assert "Dataset iris" in dataset_ready["message"]
    ready_dataset(kubectl, namespace, api, jobs)
    version = status_of(api, "Dataset", namespace, "iris")["version"]

    job_name = training_job(api, namespace, "iris-rf")
    running = status_of(api, "TrainingJob", namespace, "iris-rf")
    assert running["datasetVersion"] == version  # pinned before the Job ran
    assert condition(running, "DatasetReady")["status"] == "True"
    job = kube.get(api, "batch/v1", "Job", namespace, job_name)
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 900
    assert spec["backoffLimit"] == 1
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 3, 4, 5]
    container = spec["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["metadata"]["ownerReferences"][0]["name"] == "iris-rf"

    assert jobs.run(job_name) == 0
    kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "trainingjob/iris-rf", "--timeout=60s"
    )
    done = status_of(api, "TrainingJob", namespace, "iris-rf")
    assert done["phase"] == "Succeeded"
    assert done["modelVersion"] == "iris-v1"
    assert done["metrics"]["accuracy"] >= 0.9
    assert done["score"] == done["metrics"]["accuracy"]
    assert done["trials"] == 6
    assert set(done["bestParams"]) == {"max_depth", "min_samples_leaf"}
    assert done["artifact"]["uri"].startswith("pvc://kubeloop-artifacts/models/iris/iris-rf-")

    model_version = kube.get(api, API, "ModelVersion", namespace, "iris-v1")
    assert "ownerReferences" not in model_version["metadata"]
    mv = model_version["spec"]
    assert (mv["modelName"], mv["version"]) == ("iris", 1)
    assert mv["artifact"] == done["artifact"]
    assert mv["lineage"]["trainingJob"] == "iris-rf"
    assert mv["lineage"]["dataset"] == "iris"
    assert mv["lineage"]["datasetVersion"] == version
    assert mv["lineage"]["estimator"] == "sklearn.ensemble.RandomForestClassifier"
    assert mv["lineage"]["params"]["max_depth"] == done["bestParams"]["max_depth"]
    assert mv["lineage"]["params"]["n_estimators"] == 100
    assert mv["lineage"]["image"] == "kubeloop-runtime:dev"
    assert mv["metrics"] == done["metrics"]
    # Vouched for by the TrainingJob that wrote it: Ready without a verify Job.
    verified = wait_for_phase(api, "ModelVersion", namespace, "iris-v1", "Ready")
    assert condition(verified, "Verified")["reason"] == "RegisteredByTrainingJob"
    assert "verifyJob" not in verified
    for reason in ("WaitingForDataset", "TrainingStarted", "Registered"):
        wait_for_event(api, namespace, "iris-rf", reason)

    # Deleting the TrainingJob keeps the registry entry.
    kubectl("delete", "-n", namespace, "trainingjob/iris-rf", "--wait=true")
    assert kube.get_or_none(api, API, "ModelVersion", namespace, "iris-v1") is not None


def test_a_training_failure_exit_4_is_failed_with_the_pods_message(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    ready_dataset(kubectl, namespace, api, jobs)
    # With 2 test rows out of 150 the split lacks a class: ROC-AUC cannot be computed (exit 4).
    manifest = small_trainingjob("no-auc", testSize=0.01, metric="roc_auc", threshold=0.5)
    apply(kubectl, namespace, manifest)
    assert jobs.run(training_job(api, namespace, "no-auc")) == 4
    kubectl(
        "wait", "-n", namespace, "--for=condition=Stalled", "trainingjob/no-auc", "--timeout=60s"
    )
    failed = wait_for_phase(api, "TrainingJob", namespace, "no-auc", "Failed")
    stalled = condition(failed, "Stalled")
    assert stalled["reason"] == "TrainingError"
    assert "roc_auc could not be computed" in stalled["message"]
    assert "exit code 4" in stalled["message"]
    assert condition(failed, "Ready")["status"] == "False"
    assert "modelVersion" not in failed
    job = kube.get(api, "batch/v1", "Job", namespace, failed["jobName"])
    failed_condition = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed_condition["reason"] == "PodFailurePolicy"  # ended at once, no retry
    assert kube.list_objects(api, API, "ModelVersion", namespace) == []


def test_a_model_below_its_gate_is_rejected_and_not_registered(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    ready_dataset(kubectl, namespace, api, jobs)
    manifest = small_trainingjob("stump", threshold=0.99)
    manifest["spec"]["estimator"] = "sklearn.tree.DecisionTreeClassifier"
    manifest["spec"]["params"] = {"max_depth": 1}
    apply(kubectl, namespace, manifest)
    assert jobs.run(training_job(api, namespace, "stump")) == 3
    rejected = wait_for_phase(api, "TrainingJob", namespace, "stump", "Rejected")
    message = rejected["rejectedReason"]
    assert "accuracy 0.6" in message
    assert "below the threshold 0.99" in message
    assert condition(rejected, "Stalled")["reason"] == "GateFailed"
    assert rejected["score"] < 0.99
    assert kube.list_objects(api, API, "ModelVersion", namespace) == []
    wait_for_event(api, namespace, "stump", "Rejected", message)


def test_two_runs_of_one_model_finishing_together_get_consecutive_versions(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    ready_dataset(kubectl, namespace, api, jobs)
    apply(kubectl, namespace, small_trainingjob("first"), small_trainingjob("second"))
    runs = [jobs.execute(training_job(api, namespace, name)) for name in ("first", "second")]
    # Both Pods finish in the same instant: the two registrations race for the counter.
    assert [jobs.report(run) for run in runs] == [0, 0]
    versions = sorted(
        wait_for_phase(api, "TrainingJob", namespace, name, "Succeeded")["modelVersion"]
        for name in ("first", "second")
    )
    assert versions == ["iris-v1", "iris-v2"]
    registered = kube.list_objects(api, API, "ModelVersion", namespace)
    assert sorted(item["spec"]["version"] for item in registered) == [1, 2]
    counter = kube.get(api, "v1", "ConfigMap", namespace, "kubeloop-versions-iris")
    assert counter["data"]["next"] == "3"

    # A third run after a version registered by hand goes past it.
    hand = {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": "iris-v7", "namespace": namespace},
        "spec": {
            "modelName": "iris",
            "version": 7,
            "artifact": registered[0]["spec"]["artifact"],
        },
    }
    kube.create(api, hand)
    apply(kubectl, namespace, small_trainingjob("third"))
    assert jobs.run(training_job(api, namespace, "third")) == 0
    third = wait_for_phase(api, "TrainingJob", namespace, "third", "Succeeded")
    assert third["modelVersion"] == "iris-v8"
