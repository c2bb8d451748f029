"""`evaluation.compareTo: serving` with the real operator: without a serving version the run
trains without a baseline (and says so); with an InferenceService serving iris-v1 the train Job
gets it as `evaluation.baseline`, and a candidate that scores worse is Rejected with both scores.
The test plays the kubelet, on an API-only plane (this folder's conftest): the serving Pods are
marked Ready by hand and the Jobs run with the real runtime (helpers_kubelet.py,
isvc_cluster.make_pods_ready)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers_kubelet import JobRunner
from helpers_operator import OperatorProcess
from helpers_resources import (
    API,
    apply,
    condition,
    ready_dataset,
    small_trainingjob,
    training_job,
    wait_for_event,
    wait_for_phase,
)
from isvc_cluster import (
    create_ready_model_version,
    isvc_manifest,
    isvc_status,
    make_pods_ready,
)

from kubeloop.kube import apply as kube
from support import eventually

pytestmark = pytest.mark.cluster
BLUE = "kubeloop.dev/inferenceservice=iris,kubeloop.dev/color=blue"


def train_config(jobs: JobRunner, job_name: str) -> dict[str, Any]:
    # status.jobName is written (the pin) just before the Job is created: wait for the Job.
    job = jobs.wait_for_job(job_name)
    container = job["spec"]["template"]["spec"]["containers"][0]
    value = next(e["value"] for e in container["env"] if e["name"] == "KUBELOOP_CONFIG")
    return dict(json.loads(value))


def test_a_candidate_worse_than_the_serving_version_is_rejected_with_both_scores(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    ready_dataset(kubectl, namespace, api, jobs)

    # Nothing serves iris yet: the run trains without a baseline and an Event says so.
    apply(kubectl, namespace, small_trainingjob("alone", compareTo="serving"))
    alone = training_job(api, namespace, "alone")
    assert "baseline" not in train_config(jobs, alone)["evaluation"]
    wait_for_event(api, namespace, "alone", "NoBaseline")

    # iris-v1 (logistic regression, accuracy about 0.97) serves from InferenceService iris.
    create_ready_model_version(api, namespace, jobs, 1)
    kube.create(api, isvc_manifest(namespace))
    eventually(lambda: make_pods_ready(api, namespace, BLUE), timeout=30, what="blue Pods")
    eventually(
        lambda: isvc_status(api, namespace).get("activeModelVersion") == "iris-v1",
        timeout=60,
        what="iris-v1 serving",
    )

    # A one-split tree passes its gate of 0.5 but scores worse than iris-v1 on the same rows.
    stump = small_trainingjob("stump", threshold=0.5, compareTo="serving")
    stump["spec"]["estimator"] = "sklearn.tree.DecisionTreeClassifier"
    stump["spec"]["params"] = {"max_depth": 1}
    apply(kubectl, namespace, stump)
    job_name = training_job(api, namespace, "stump")
    baseline = train_config(jobs, job_name)["evaluation"]["baseline"]
    mv = kube.get(api, API, "ModelVersion", namespace, "iris-v1")
    assert baseline == {
        "uri": mv["spec"]["artifact"]["uri"],
        "digest": mv["spec"]["artifact"]["digest"],
        "version": "iris-v1",
    }
    assert jobs.run(job_name) == 3
    rejected = wait_for_phase(api, "TrainingJob", namespace, "stump", "Rejected")
    comparison = rejected["comparison"]
    assert comparison["baselineVersion"] == "iris-v1"
    assert comparison["passed"] is False
    assert comparison["candidate"] < comparison["baseline"]
    assert condition(rejected, "Stalled")["reason"] == "ComparisonFailed"
    message = rejected["rejectedReason"]
    assert f"accuracy {comparison['candidate']:.4g} is worse than" in message
    assert f"{comparison['baseline']:.4g} of the serving version iris-v1" in message
    assert [
        m["metadata"]["name"] for m in kube.list_objects(api, API, "ModelVersion", namespace)
    ] == ["iris-v1"]
    wait_for_event(api, namespace, "stump", "Rejected", message)
