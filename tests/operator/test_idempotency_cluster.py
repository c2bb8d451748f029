"""The operator SIGKILLed at the worst lines and restarted: no duplicate Job or ModelVersion, and
the same end state. The kill points are exact (`KUBELOOP_FAILPOINTS`: the operator SIGKILLs
itself there, kubeloop/failpoints.py), so each test hits the window it names every time."""

from __future__ import annotations

from typing import Any

import pytest
from helpers_kubelet import JobRunner
from helpers_operator import OperatorProcess
from helpers_resources import (
    API,
    apply,
    example,
    profile_job,
    ready_dataset,
    small_trainingjob,
    status_of,
    training_job,
    wait_for_phase,
)

from kubeloop.kube import apply as kube
from support import eventually

# Their Jobs' Pods run on the real node when there is one (else the test plays the kubelet).
pytestmark = pytest.mark.node


def killed(operator: OperatorProcess) -> bool:
    assert operator.process is not None
    return operator.process.poll() == -9


def jobs_of(api: Any, namespace: str, selector: str) -> list[str]:
    return sorted(
        job["metadata"]["name"]
        for job in kube.list_objects(api, "batch/v1", "Job", namespace, label_selector=selector)
    )


def test_killed_after_creating_the_profile_job_before_writing_status(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start(KUBELOOP_FAILPOINTS="dataset.job-created")
    apply(kubectl, namespace, example("Dataset"))
    eventually(lambda: killed(operator), what="the operator to die at the failpoint")
    assert jobs_of(api, namespace, "kubeloop.dev/dataset=iris") == ["iris-profile-g1-s0-a1"]
    assert "check" not in status_of(api, "Dataset", namespace, "iris")  # status never written
    operator.start()
    assert jobs.run(profile_job(api, namespace, "iris")) == 0
    wait_for_phase(api, "Dataset", namespace, "iris", "Ready")
    assert jobs_of(api, namespace, "kubeloop.dev/dataset=iris") == ["iris-profile-g1-s0-a1"]


def test_killed_after_creating_the_training_job(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    ready_dataset(kubectl, namespace, api, jobs)
    operator.stop()
    operator.start(KUBELOOP_FAILPOINTS="trainingjob.job-created")
    apply(kubectl, namespace, small_trainingjob("run"))
    eventually(lambda: killed(operator), what="the operator to die at the failpoint")
    created = jobs_of(api, namespace, "kubeloop.dev/training-job=run")
    assert len(created) == 1
    operator.start()
    assert jobs.run(training_job(api, namespace, "run")) == 0
    done = wait_for_phase(api, "TrainingJob", namespace, "run", "Succeeded")
    assert done["modelVersion"] == "iris-v1"
    assert jobs_of(api, namespace, "kubeloop.dev/training-job=run") == created
    assert [
        mv["metadata"]["name"] for mv in kube.list_objects(api, API, "ModelVersion", namespace)
    ] == ["iris-v1"]


def test_killed_after_creating_the_model_version_before_writing_status(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start(KUBELOOP_FAILPOINTS="trainingjob.modelversion-created")
    ready_dataset(kubectl, namespace, api, jobs)
    apply(kubectl, namespace, small_trainingjob("run"))
    assert jobs.run(training_job(api, namespace, "run")) == 0
    eventually(lambda: killed(operator), timeout=60, what="the operator to die at the failpoint")
    interrupted = status_of(api, "TrainingJob", namespace, "run")
    assert interrupted["phase"] == "Running"  # the final status was never written
    assert interrupted["modelVersion"] == "iris-v1"  # the allocation was
    assert kube.get_or_none(api, API, "ModelVersion", namespace, "iris-v1") is not None
    assert interrupted["artifact"]["digest"].startswith("sha256:")

    for _ in range(2):  # restart twice: nothing changes the second time either
        operator.stop()
        operator.start()
        done = wait_for_phase(api, "TrainingJob", namespace, "run", "Succeeded")
    versions = kube.list_objects(api, API, "ModelVersion", namespace)
    assert [mv["metadata"]["name"] for mv in versions] == ["iris-v1"]
    assert done["modelVersion"] == "iris-v1"
    assert versions[0]["spec"]["metrics"] == done["metrics"]
    assert versions[0]["spec"]["artifact"] == done["artifact"]
    counter = kube.get(api, "v1", "ConfigMap", namespace, "kubeloop-versions-iris")
    assert counter["data"]["next"] == "2"
    assert len(jobs_of(api, namespace, "kubeloop.dev/training-job=run")) == 1
    wait_for_phase(api, "ModelVersion", namespace, "iris-v1", "Ready")
