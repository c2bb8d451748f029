"""The Dataset controller with the real operator: from `kubectl apply` to Ready, a refresh asked
for by annotation, invalid data, an unreachable source. On the API-only plane the Jobs are run by
the test playing the kubelet with the real runtime (helpers_kubelet.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers_kubelet import JobRunner
from helpers_operator import OperatorProcess
from helpers_resources import (
    condition,
    example,
    profile_job,
    status_of,
    unreachable_dataset,
    wait_for_event,
)

from kubeloop.kube import apply as kube
from support import eventually

# Their Jobs' Pods run on the real node when there is one (else the test plays the kubelet).
pytestmark = pytest.mark.node


def dataset_status(api: Any, namespace: str, name: str) -> dict[str, Any]:
    return status_of(api, "Dataset", namespace, name)


def current_job(api: Any, namespace: str, name: str, after: str | None = None) -> str:
    return profile_job(api, namespace, name, after)


def test_example_dataset_becomes_ready_and_kubectl_wait_sees_it(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    manifest = example("Dataset")
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    job = current_job(api, namespace, "iris")
    assert dataset_status(api, namespace, "iris")["phase"] == "Profiling"
    assert jobs.run(job) == 0
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "dataset/iris", "--timeout=60s")
    status = dataset_status(api, namespace, "iris")
    assert status["version"].startswith("sha256:")
    assert status["rows"] == 150
    assert [feature["name"] for feature in status["features"]][:1] == ["sepal length (cm)"]
    assert status["profile"]["features"]["petal width (cm)"]["kind"] == "numeric"
    assert status["history"][0]["version"] == status["version"]
    assert status["observedGeneration"] == 1
    assert status["lastCheckedAt"]
    job_object = kube.get(api, "batch/v1", "Job", namespace, job)
    assert job_object["metadata"]["ownerReferences"][0]["kind"] == "Dataset"
    wait_for_event(api, namespace, "iris", "Ready", f"150 rows, version {status['version']}")
    metrics = operator.metrics()
    assert 'kubeloop_children_created_total{child="Job",kind="Dataset"} 1.0' in metrics
    assert 'kubeloop_reconciles_total{kind="Dataset"}' in metrics

    # A refresh asked for by annotation (the retrain's way) re-reads the source.
    kubectl("annotate", "-n", namespace, "dataset/iris", "kubeloop.dev/refresh=token-1")
    refresh = current_job(api, namespace, "iris", after=job)
    assert jobs.run(refresh) == 0
    eventually(
        lambda: dataset_status(api, namespace, "iris").get("refreshToken") == "token-1",
        what="the refresh to be answered",
    )
    refreshed = dataset_status(api, namespace, "iris")
    assert refreshed["version"] == status["version"]  # same bytes, same version
    assert len(refreshed["history"]) == 1


def test_invalid_data_is_stalled_with_the_failing_rule(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    manifest = example("Dataset")
    manifest["metadata"]["name"] = "strict"
    manifest["spec"]["schema"]["columns"][0]["max"] = 5  # iris has sepal lengths up to 7.9
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    assert jobs.run(current_job(api, namespace, "strict")) == 4
    kubectl("wait", "-n", namespace, "--for=condition=Stalled", "dataset/strict", "--timeout=60s")
    status = dataset_status(api, namespace, "strict")
    assert status["phase"] == "Failed"
    assert condition(status, "Ready")["status"] == "False"
    stalled = condition(status, "Stalled")
    assert stalled["reason"] == "InvalidData"
    assert "sepal length (cm)" in stalled["message"]
    assert "above max 5" in stalled["message"]


def test_unreachable_source_is_retried_with_backoff_then_stalled(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    # Backoff 0.5, 1, 2, 4, 4, ... s: about six attempts before Stalled at 20 s.
    operator.start(KUBELOOP_UNREACHABLE_TIMEOUT_SECONDS="20", KUBELOOP_RETRY_MAX_SECONDS="4")
    kubectl("apply", "-f", "-", input=json.dumps(unreachable_dataset(namespace)))
    attempts: list[str] = []
    while not condition(dataset_status(api, namespace, "remote"), "Stalled"):
        assert len(attempts) < 20, attempts  # retried without end: the timeout is ignored
        job = current_job(api, namespace, "remote", after=attempts[-1] if attempts else None)
        attempts.append(job)
        assert jobs.run(job) == 4

        def retrying_or_stalled() -> bool:
            status = dataset_status(api, namespace, "remote")
            found = condition(status, "Reconciling") or condition(status, "Stalled")
            return bool(found and found["reason"] == "SourceUnreachable")

        eventually(retrying_or_stalled, what="Reconciling (retrying) or Stalled")
    assert len(attempts) >= 2, "the source was not retried"
    # Each retry is a new Job with the next attempt number. On a real node a quick retry can run
    # and fail between two polls, so the test may not see every attempt: only their order.
    numbers = [int(job.rsplit("-", 1)[1].removeprefix("a")) for job in attempts]
    assert numbers[0] == 1, attempts
    assert numbers == sorted(set(numbers)), attempts
    kubectl("wait", "-n", namespace, "--for=condition=Stalled", "dataset/remote", "--timeout=5s")
    stalled = condition(dataset_status(api, namespace, "remote"), "Stalled")
    assert stalled["reason"] == "SourceUnreachable"
    assert "127.0.0.1:9" in stalled["message"]
    wait_for_event(api, namespace, "remote", "SourceUnreachable")
