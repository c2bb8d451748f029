"""The Argo CD health checks we ship, on live objects of the real operator.

Each test drives the real operator (a subprocess, tests/operator/conftest.py) until an object of
one kind is in each state a user sees, captures it from the API server, and runs the argocd-cm
Lua from examples/gitops/ on it (tests/argocd_health.py): Healthy when Ready, Progressing while it
works (profiling, training, verifying, rolling out), Degraded when Stalled or Failed (invalid
data, a gate rejection, a wrong digest, a candidate that never became ready), and Progressing
while status.observedGeneration lags metadata.generation (the operator stopped, the spec edited).

Each capture must keep the shape of its committed sample in tests/helm/testdata/health/ (the fast
unit test's snapshot); `KUBELOOP_REFRESH_HEALTH_SAMPLES=1` rewrites the samples instead.

These tests PLAY THE KUBELET (the Jobs' Pods with the real runtime, helpers_kubelet.py; the
serving Pods' readiness, `make_pods_ready`), so they run on an API-only plane (played/conftest.py).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from argocd_health import (
    REFRESH_ENV,
    STATES,
    assess,
    clean,
    health_scripts,
    load_sample,
    sample_path,
    sample_shape,
    write_sample,
)
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
from isvc_cluster import (
    create_ready_model_version,
    isvc_manifest,
    make_pods_ready,
    trained_iris,
)

from kubeloop.kube import apply as kube
from support import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.node]

BLUE = "kubeloop.dev/inferenceservice=iris,kubeloop.dev/color=blue"


def capture(api: Any, namespace: str, kind: str, name: str, state: str) -> None:
    """Run the shipped health check on the live object; check Argo's verdict and the sample."""
    obj = clean(kube.get(api, API, kind, namespace, name), namespace)
    health = assess(health_scripts()[kind], obj)
    assert health["status"] == STATES[state], (kind, state, health, obj.get("status"))
    if os.environ.get(REFRESH_ENV) == "1":
        write_sample(kind, state, obj, health)
        return
    committed = load_sample(sample_path(kind, state))
    live, kept = sample_shape(obj, health), sample_shape(committed["object"], committed["expected"])
    assert live == kept, (
        f"{sample_path(kind, state).name} no longer matches the live object: refresh it with "
        f"{REFRESH_ENV}=1 (live {live}, committed {kept}; live status {obj.get('status')})"
    )


def lag(
    api: Any, operator: OperatorProcess, namespace: str, kind: str, name: str, spec: Any
) -> None:
    """Edit the spec while the operator is stopped: the status still describes the last one."""
    operator.stop()
    before = kube.get(api, API, kind, namespace, name)["metadata"]["generation"]
    kube.patch(api, API, kind, namespace, name, {"spec": spec})
    assert kube.get(api, API, kind, namespace, name)["metadata"]["generation"] == before + 1
    capture(api, namespace, kind, name, "lagging")


def test_dataset_states(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    strict = example("Dataset")
    strict["metadata"]["name"] = "strict"
    strict["spec"]["schema"]["columns"][0]["max"] = 5  # iris has sepal lengths up to 7.9
    apply(kubectl, namespace, example("Dataset"), strict)
    job = profile_job(api, namespace, "iris")
    wait_for_phase(api, "Dataset", namespace, "iris", "Profiling")
    capture(api, namespace, "Dataset", "iris", "progressing")
    assert jobs.run(job) == 0
    wait_for_phase(api, "Dataset", namespace, "iris", "Ready")
    capture(api, namespace, "Dataset", "iris", "healthy")
    assert jobs.run(profile_job(api, namespace, "strict")) == 4
    wait_for_phase(api, "Dataset", namespace, "strict", "Failed")
    capture(api, namespace, "Dataset", "strict", "degraded")
    lag(api, operator, namespace, "Dataset", "iris", {"schema": {"minRows": 120}})


def test_trainingjob_and_modelversion_states(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    ready_dataset(kubectl, namespace, api, jobs)
    apply(
        kubectl, namespace, small_trainingjob("iris-rf"), small_trainingjob("stump", threshold=0.99)
    )
    job = training_job(api, namespace, "iris-rf")
    wait_for_phase(api, "TrainingJob", namespace, "iris-rf", "Running")
    # The sample has the Job's startTime, which the next reconcile copies from the Job: the
    # capture waits for it, or its shape depends on the race.
    eventually(
        lambda: status_of(api, "TrainingJob", namespace, "iris-rf").get("startTime"),
        what="iris-rf's startTime",
    )
    capture(api, namespace, "TrainingJob", "iris-rf", "progressing")
    assert jobs.run(job) == 0
    wait_for_phase(api, "TrainingJob", namespace, "iris-rf", "Succeeded")
    capture(api, namespace, "TrainingJob", "iris-rf", "healthy")
    # The version the run registered, vouched for by its TrainingJob.
    version = status_of(api, "TrainingJob", namespace, "iris-rf")["modelVersion"]
    wait_for_phase(api, "ModelVersion", namespace, version, "Ready")
    capture(api, namespace, "ModelVersion", version, "healthy")
    # The gate: a 10-tree forest on a quarter of iris does not reach 0.99.
    assert jobs.run(training_job(api, namespace, "stump")) != 0
    wait_for_phase(api, "TrainingJob", namespace, "stump", "Rejected")
    capture(api, namespace, "TrainingJob", "stump", "degraded")

    # A hand-registered version is verified by a fetch Job: Pending while it runs, Failed when
    # the registered digest is not the artifact's.
    artifact = trained_iris()
    shutil.copytree(artifact, jobs.pvc_root / "kubeloop-artifacts" / "models" / "iris" / "hand")
    kube.create(
        api,
        {
            "apiVersion": API,
            "kind": "ModelVersion",
            "metadata": {"name": "iris-v9", "namespace": namespace},
            "spec": {
                "modelName": "iris",
                "version": 9,
                "artifact": {
                    "uri": "pvc://kubeloop-artifacts/models/iris/hand/",
                    "digest": "sha256:" + "0" * 64,
                },
            },
        },
    )
    verify = eventually(
        lambda: status_of(api, "ModelVersion", namespace, "iris-v9").get("verifyJob"),
        what="the verify Job of iris-v9",
    )
    capture(api, namespace, "ModelVersion", "iris-v9", "progressing")
    assert jobs.run(verify) != 0
    wait_for_phase(api, "ModelVersion", namespace, "iris-v9", "Failed")
    capture(api, namespace, "ModelVersion", "iris-v9", "degraded")

    lag(api, operator, namespace, "TrainingJob", "iris-rf", {"activeDeadlineSeconds": 600})
    lag(api, operator, namespace, "ModelVersion", version, {"aliases": ["champion"]})


def test_inferenceservice_states(
    operator: OperatorProcess, jobs: JobRunner, namespace: str, api: Any
) -> None:
    operator.start()
    create_ready_model_version(api, namespace, jobs, 1)
    rollout = {
        "minReadySeconds": 0,
        "scaleDownDelaySeconds": 3,
        "progressDeadlineSeconds": 10,
        "smokeTest": {"enabled": False},
    }
    kube.create(api, isvc_manifest(namespace, rollout=rollout))
    wait_for_phase(api, "InferenceService", namespace, "iris", "Deploying")
    capture(api, namespace, "InferenceService", "iris", "progressing")
    eventually(lambda: make_pods_ready(api, namespace, BLUE), timeout=30, what="blue Pods")
    wait_for_phase(api, "InferenceService", namespace, "iris", "Ready")

    def settled() -> bool:
        # Ready comes with the promotion; the reconcile after it tidies the candidate away.
        status = kube.get(api, API, "InferenceService", namespace, "iris").get("status") or {}
        progressing = [c for c in status.get("conditions") or () if c["type"] == "Progressing"]
        return (
            "candidate" not in status and bool(progressing) and progressing[0]["reason"] == "Idle"
        )

    eventually(settled, timeout=30, what="the promoted candidate tidied away (Progressing: Idle)")
    capture(api, namespace, "InferenceService", "iris", "healthy")
    # A new version whose Pods nobody makes ready: the candidate fails its progress deadline.
    create_ready_model_version(api, namespace, jobs, 2)
    wait_for_phase(api, "InferenceService", namespace, "iris", "Degraded", timeout=60)
    capture(api, namespace, "InferenceService", "iris", "degraded")
    lag(api, operator, namespace, "InferenceService", "iris", {"replicas": 2})
