"""The ModelVersion controller with the real operator: an operator-made version is Ready without
a Job, a hand-registered one is verified by a fetch Job (Ready, or Stalled with "digest
mismatch"), aliases move between versions with an Event on both. status.servedBy is followed
through a real blue-green rollout in played/test_isvc_operator.py."""

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
    status_of,
    training_job,
    wait_for_event,
    wait_for_phase,
)

from kubeloop.kube import apply as kube
from support import eventually

# Their Jobs' Pods run on the real node when there is one (else the test plays the kubelet).
pytestmark = pytest.mark.node


def trained_version(kubectl: Any, namespace: str, api: Any, jobs: JobRunner) -> dict[str, Any]:
    """iris-v1, registered by a TrainingJob whose artifact the hand-registered versions reuse."""
    ready_dataset(kubectl, namespace, api, jobs)
    apply(kubectl, namespace, small_trainingjob("made"))
    assert jobs.run(training_job(api, namespace, "made")) == 0
    wait_for_phase(api, "TrainingJob", namespace, "made", "Succeeded")
    wait_for_phase(api, "ModelVersion", namespace, "iris-v1", "Ready")
    return kube.get(api, API, "ModelVersion", namespace, "iris-v1")


def hand_registered(namespace: str, number: int, artifact: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": f"iris-v{number}", "namespace": namespace},
        "spec": {"modelName": "iris", "version": number, "artifact": artifact},
    }


def test_versions_are_verified_unless_their_training_job_vouches_for_them(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    made = trained_version(kubectl, namespace, api, jobs)
    status = made["status"]
    assert condition(status, "Verified")["reason"] == "RegisteredByTrainingJob"
    assert "verifyJob" not in status
    artifact = made["spec"]["artifact"]

    kubectl("apply", "-f", "-", input=json.dumps(hand_registered(namespace, 5, artifact)))
    good_job = eventually(
        lambda: status_of(api, "ModelVersion", namespace, "iris-v5").get("verifyJob"),
        what="the verify Job of iris-v5",
    )
    assert jobs.run(good_job) == 0
    kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "modelversion/iris-v5", "--timeout=60s"
    )
    assert (
        condition(status_of(api, "ModelVersion", namespace, "iris-v5"), "Verified")["reason"]
        == "Verified"
    )

    wrong = {"uri": artifact["uri"], "digest": "sha256:" + "0" * 64}
    kubectl("apply", "-f", "-", input=json.dumps(hand_registered(namespace, 6, wrong)))
    bad_job = eventually(
        lambda: status_of(api, "ModelVersion", namespace, "iris-v6").get("verifyJob"),
        what="the verify Job of iris-v6",
    )
    assert jobs.run(bad_job) == 5
    kubectl(
        "wait", "-n", namespace, "--for=condition=Stalled", "modelversion/iris-v6", "--timeout=60s"
    )
    refused = status_of(api, "ModelVersion", namespace, "iris-v6")
    assert refused["phase"] == "Failed"
    stalled = condition(refused, "Stalled")
    assert stalled["reason"] == "DigestMismatch"
    assert "digest mismatch" in stalled["message"]
    assert condition(refused, "Ready")["status"] == "False"
    wait_for_event(api, namespace, "iris-v6", "DigestMismatch")


def test_an_alias_moves_between_versions_with_an_event_on_both(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    operator.start()
    made = trained_version(kubectl, namespace, api, jobs)
    artifact = made["spec"]["artifact"]
    kubectl(
        "patch",
        "-n",
        namespace,
        "modelversion/iris-v1",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"aliases": ["champion", "stable"]}}),
    )
    eventually(
        lambda: (
            status_of(api, "ModelVersion", namespace, "iris-v1").get("aliases")
            == ["champion", "stable"]
        ),
        what="iris-v1 to hold champion",
    )
    second = hand_registered(namespace, 2, artifact)
    second["spec"]["aliases"] = ["champion"]
    kubectl("apply", "-f", "-", input=json.dumps(second))

    def moved() -> bool:
        first = kube.get(api, API, "ModelVersion", namespace, "iris-v1")
        return first["spec"].get("aliases") == ["stable"] and (first.get("status") or {}).get(
            "aliases"
        ) == ["stable"]

    eventually(moved, what="champion to leave iris-v1")
    eventually(
        lambda: status_of(api, "ModelVersion", namespace, "iris-v2").get("aliases") == ["champion"],
        what="iris-v2 to hold champion",
    )
    wait_for_event(api, namespace, "iris-v1", "AliasMoved", "alias champion moved to iris-v2")
    wait_for_event(
        api, namespace, "iris-v2", "AliasMoved", "alias champion moved here from iris-v1"
    )
    # The legacy stage still moves freely.
    kubectl(
        "patch",
        "-n",
        namespace,
        "modelversion/iris-v1",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"stage": "Archived"}}),
    )
    assert kube.get(api, API, "ModelVersion", namespace, "iris-v1")["spec"]["stage"] == "Archived"
