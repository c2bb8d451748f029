"""The InferenceService controller end to end against a real API server, with the real operator.

These run on an API-only plane (this folder's conftest picks or starts one): no kubelet runs Pods
there, so each test PLAYS THE KUBELET where Pods must become ready (`make_pods_ready` writes the
Pod status a kubelet would). The Deployment, ReplicaSet and garbage-collector controllers are
real. The smoke test needs ClusterIP routing, so it is off here; test_isvc_node.py covers it on
the real node.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from isvc_cluster import (
    condition,
    create_ready_model_version,
    deployment,
    drift,
    events,
    isvc,
    isvc_manifest,
    isvc_status,
    kubectl_wait_ready,
    make_pods_ready,
    wait_status,
)

from kubeloop.api.base import API_VERSION
from kubeloop.kube.apply import create, delete, get, list_objects, patch, patch_status
from support import eventually

pytestmark = pytest.mark.cluster


BLUE = "kubeloop.dev/inferenceservice=iris,kubeloop.dev/color=blue"
GREEN = "kubeloop.dev/inferenceservice=iris,kubeloop.dev/color=green"


def selector_color(api: Any, namespace: str, service: str) -> str:
    return str(
        get(api, "v1", "Service", namespace, service)["spec"]["selector"]["kubeloop.dev/color"]
    )


def serve_blue(api: Any, namespace: str, operator: Any, jobs: Any, **spec: Any) -> None:
    """An InferenceService serving iris-v1 from blue (the kubelet played for its Pods)."""
    operator.start()
    create_ready_model_version(api, namespace, jobs, 1)
    create(api, isvc_manifest(namespace, **spec))
    eventually(lambda: make_pods_ready(api, namespace, BLUE), timeout=30, what="blue Pods")
    wait_status(api, namespace, lambda s: s.get("phase") == "Ready", "Ready on blue")


def test_pending_names_what_it_waits_for_then_ready_and_kubectl_wait(
    api: Any, namespace: str, operator: Any, jobs: Any, kubectl: Any
) -> None:
    operator.start()
    create(api, isvc_manifest(namespace))
    pending = wait_status(api, namespace, lambda s: s.get("phase") == "Pending", "Pending")
    assert "a Ready ModelVersion of model iris" in condition(pending, "Ready")["message"]
    assert condition(pending, "Ready")["status"] == "False"

    create_ready_model_version(api, namespace, jobs, 1)
    blue = eventually(
        lambda: (
            deployment(api, namespace, "iris-blue")
            if list_objects(api, "apps/v1", "Deployment", namespace)
            else None
        ),
        timeout=30,
        what="iris-blue",
    )
    template = blue["spec"]["template"]["spec"]
    assert template["initContainers"][0]["name"] == "fetch"
    assert [c["name"] for c in template["containers"]] == ["server", "drift"]
    assert blue["metadata"]["labels"]["kubeloop.dev/model-version"] == "iris-v1"
    deploying = isvc_status(api, namespace)
    assert deploying.get("phase") in ("Deploying", "Pending")

    # Playing the kubelet: the ReplicaSet's Pod reports Running and Ready.
    eventually(lambda: make_pods_ready(api, namespace, BLUE), timeout=30, what="blue Pods")
    kubectl_wait_ready(kubectl, namespace, 60)
    status = isvc_status(api, namespace)
    assert status["activeColor"] == "blue"
    assert status["activeModelVersion"] == "iris-v1"
    assert status["url"] == f"http://iris.{namespace}.svc.cluster.local"
    assert status["previewUrl"] == f"http://iris-preview.{namespace}.svc.cluster.local"
    assert status["readyReplicas"] == 1
    assert status["observedGeneration"] == isvc(api, namespace)["metadata"]["generation"]
    assert condition(status, "Progressing")["status"] == "False"
    assert condition(status, "Degraded")["status"] == "False"
    assert condition(status, "DriftDetected")["status"] == "Unknown"
    assert [p["modelVersion"] for p in status["promotions"]] == ["iris-v1"]
    assert selector_color(api, namespace, "iris") == "blue"
    for kind, name in (("ServiceAccount", "iris-drift"), ("Service", "iris-preview")):
        assert (
            get(api, "v1", kind, namespace, name)["metadata"]["ownerReferences"][0]["name"]
            == "iris"
        )
    assert {"RolloutStarted", "Promoted"} <= set(events(api, namespace))
    assert 'kubeloop_rollouts_total{outcome="promoted"} 1.0' in operator.metrics()


def served_by(api: Any, namespace: str, model_version: str) -> list[str] | None:
    status = get(api, API_VERSION, "ModelVersion", namespace, model_version).get("status") or {}
    return status.get("servedBy")


def test_latest_rolls_out_a_new_version_blue_green_and_scales_the_old_colour_down(
    api: Any, namespace: str, operator: Any, jobs: Any
) -> None:
    serve_blue(api, namespace, operator, jobs)
    eventually(lambda: served_by(api, namespace, "iris-v1") == ["iris"], what="iris-v1 served")
    create_ready_model_version(api, namespace, jobs, 2)
    green = eventually(
        lambda: list_objects(api, "apps/v1", "Deployment", namespace, GREEN),
        timeout=30,
        what="iris-green",
    )
    assert green[0]["metadata"]["labels"]["kubeloop.dev/model-version"] == "iris-v2"
    rolling = wait_status(api, namespace, lambda s: "candidate" in s, "the candidate in status")
    assert rolling["candidate"]["modelVersion"] == "iris-v2"
    assert rolling["candidate"]["color"] == "green"
    assert selector_color(api, namespace, "iris") == "blue"
    assert selector_color(api, namespace, "iris-preview") == "green"

    eventually(lambda: make_pods_ready(api, namespace, GREEN), timeout=30, what="green Pods")
    promoted = wait_status(
        api, namespace, lambda s: s.get("activeColor") == "green", "green promoted"
    )
    assert promoted["activeModelVersion"] == "iris-v2"
    assert promoted["scaleDown"]["color"] == "blue"
    # The registry follows: the ModelVersion's status.servedBy moves with the active version.
    eventually(lambda: served_by(api, namespace, "iris-v2") == ["iris"], what="iris-v2 served")
    eventually(lambda: served_by(api, namespace, "iris-v1") is None, what="iris-v1 not served")
    assert selector_color(api, namespace, "iris") == "green"
    assert deployment(api, namespace, "iris-blue")["spec"]["replicas"] == 1  # kept for the delay
    eventually(
        lambda: deployment(api, namespace, "iris-blue")["spec"]["replicas"] == 0,
        timeout=30,
        what="blue scaled to 0",
    )
    done = wait_status(api, namespace, lambda s: "scaleDown" not in s, "scale-down recorded")
    assert [p["modelVersion"] for p in done["promotions"]] == ["iris-v2", "iris-v1"]
    assert "ScaledDown" in events(api, namespace)


def test_replicas_alone_scale_in_place(api: Any, namespace: str, operator: Any, jobs: Any) -> None:
    serve_blue(api, namespace, operator, jobs)
    patch(api, API_VERSION, "InferenceService", namespace, "iris", {"spec": {"replicas": 3}})
    eventually(
        lambda: deployment(api, namespace, "iris-blue")["spec"]["replicas"] == 3,
        timeout=30,
        what="blue at 3",
    )
    assert not list_objects(api, "apps/v1", "Deployment", namespace, GREEN)
    assert isvc_status(api, namespace)["activeColor"] == "blue"


def test_a_candidate_that_never_becomes_ready_is_aborted_and_blue_keeps_serving(
    api: Any, namespace: str, operator: Any, jobs: Any
) -> None:
    serve_blue(
        api,
        namespace,
        operator,
        jobs,
        rollout={
            "minReadySeconds": 0,
            "scaleDownDelaySeconds": 3,
            "progressDeadlineSeconds": 10,
            "smokeTest": {"enabled": False},
        },
    )
    blue_uid = deployment(api, namespace, "iris-blue")["metadata"]["uid"]
    create_ready_model_version(api, namespace, jobs, 2)
    # Nobody makes green's Pods ready: the progress deadline passes.
    aborted = wait_status(
        api,
        namespace,
        lambda s: (s.get("candidate") or {}).get("phase") == "Failed",
        "candidate Failed",
        timeout=40,
    )
    assert "ProgressDeadlineExceeded" in aborted["candidate"]["message"]
    assert aborted["activeColor"] == "blue"
    assert aborted["activeModelVersion"] == "iris-v1"
    assert aborted["phase"] == "Degraded"
    assert condition(aborted, "Degraded")["status"] == "True"
    assert condition(aborted, "Stalled")["status"] == "True"
    assert selector_color(api, namespace, "iris") == "blue"
    eventually(
        lambda: deployment(api, namespace, "iris-green")["spec"]["replicas"] == 0,
        timeout=20,
        what="green scaled to 0",
    )
    blue = deployment(api, namespace, "iris-blue")
    assert blue["metadata"]["uid"] == blue_uid  # nothing that served was deleted or replaced
    assert blue["spec"]["replicas"] == 1
    assert blue["metadata"]["labels"]["kubeloop.dev/model-version"] == "iris-v1"
    assert "RolloutAborted" in events(api, namespace)
    assert 'kubeloop_rollouts_total{outcome="aborted"} 1.0' in operator.metrics()


def test_rollback_to_the_previous_version_within_the_delay_is_immediate(
    api: Any, namespace: str, operator: Any, jobs: Any
) -> None:
    serve_blue(
        api,
        namespace,
        operator,
        jobs,
        model={"name": "iris", "version": 1},
        rollout={
            "minReadySeconds": 0,
            "scaleDownDelaySeconds": 300,
            "smokeTest": {"enabled": False},
        },
    )
    create_ready_model_version(api, namespace, jobs, 2)
    patch(
        api, API_VERSION, "InferenceService", namespace, "iris", {"spec": {"model": {"version": 2}}}
    )
    eventually(
        lambda: list_objects(api, "apps/v1", "Deployment", namespace, GREEN),
        timeout=30,
        what="iris-green",
    )
    eventually(lambda: make_pods_ready(api, namespace, GREEN), timeout=30, what="green Pods")
    wait_status(api, namespace, lambda s: s.get("activeColor") == "green", "green promoted")
    blue_pods = {p["metadata"]["name"] for p in list_objects(api, "v1", "Pod", namespace, BLUE)}

    patch(
        api, API_VERSION, "InferenceService", namespace, "iris", {"spec": {"model": {"version": 1}}}
    )
    back = wait_status(
        api, namespace, lambda s: s.get("activeColor") == "blue", "rolled back", timeout=15
    )
    assert back["activeModelVersion"] == "iris-v1"
    assert back["scaleDown"]["color"] == "green"
    assert selector_color(api, namespace, "iris") == "blue"
    # The same Pods serve again: nothing was restarted.
    assert {
        p["metadata"]["name"] for p in list_objects(api, "v1", "Pod", namespace, BLUE)
    } == blue_pods
    assert [p["modelVersion"] for p in back["promotions"]][:3] == ["iris-v1", "iris-v2", "iris-v1"]


def test_promotion_by_annotation_without_auto_promote(
    api: Any, namespace: str, operator: Any, jobs: Any
) -> None:
    serve_blue(
        api,
        namespace,
        operator,
        jobs,
        rollout={
            "autoPromote": False,
            "minReadySeconds": 0,
            "scaleDownDelaySeconds": 3,
            "smokeTest": {"enabled": False},
        },
    )
    create_ready_model_version(api, namespace, jobs, 2)
    eventually(
        lambda: list_objects(api, "apps/v1", "Deployment", namespace, GREEN),
        timeout=30,
        what="iris-green",
    )
    eventually(lambda: make_pods_ready(api, namespace, GREEN), timeout=30, what="green Pods")
    held = wait_status(
        api, namespace, lambda s: s.get("phase") == "Promoting", "awaiting promotion"
    )
    assert held["activeColor"] == "blue"
    patch(
        api,
        API_VERSION,
        "InferenceService",
        namespace,
        "iris",
        {"metadata": {"annotations": {"kubeloop.dev/promote": "true"}}},
    )
    wait_status(api, namespace, lambda s: s.get("activeColor") == "green", "promoted by annotation")
    eventually(
        lambda: (
            "kubeloop.dev/promote"
            not in (isvc(api, namespace)["metadata"].get("annotations") or {})
        ),
        timeout=10,
        what="annotation consumed",
    )


RETRAIN = {
    "enabled": True,
    "cooldown": "1h",
    "template": {
        "datasetRef": {"name": "iris"},
        "modelName": "iris",
        "estimator": "sklearn.linear_model.LogisticRegression",
    },
}


def retrain_jobs(api: Any, namespace: str) -> list[str]:
    return sorted(
        j["metadata"]["name"]
        for j in list_objects(
            api, API_VERSION, "TrainingJob", namespace, "kubeloop.dev/inferenceservice=iris"
        )
    )


def test_drift_refreshes_the_dataset_and_retrains_once_per_cooldown_and_never_while_one_runs(
    api: Any, namespace: str, operator: Any, jobs: Any
) -> None:
    create(
        api,
        {
            "apiVersion": API_VERSION,
            "kind": "Dataset",
            "metadata": {"name": "iris", "namespace": namespace},
            "spec": {"source": {"uri": "builtin://iris"}, "target": "target"},
        },
    )
    serve_blue(api, namespace, operator, jobs, retrain=RETRAIN)
    # What the drift sidecar does: a merge patch of status.drift.
    patch_status(api, API_VERSION, "InferenceService", namespace, "iris", {"drift": drift(True)})
    detected = wait_status(
        api,
        namespace,
        lambda s: condition(s, "DriftDetected").get("status") == "True",
        "DriftDetected",
    )
    assert "petal length" in condition(detected, "DriftDetected")["message"]
    dataset = eventually(
        lambda: (
            get(api, API_VERSION, "Dataset", namespace, "iris")["metadata"].get("annotations") or {}
        ).get("kubeloop.dev/refresh"),
        timeout=20,
        what="Dataset refresh requested",
    )
    assert dataset == "iris-retrain-1"
    # The Dataset re-read its source (or REFRESH_WAIT passes): the TrainingJob follows.
    patch_status(
        api,
        API_VERSION,
        "Dataset",
        namespace,
        "iris",
        {"lastCheckedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))},
    )
    eventually(
        lambda: retrain_jobs(api, namespace) == ["iris-retrain-1"],
        timeout=30,
        what="iris-retrain-1",
    )
    job = get(api, API_VERSION, "TrainingJob", namespace, "iris-retrain-1")
    assert job["spec"]["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert job["metadata"]["ownerReferences"][0]["name"] == "iris"
    last = wait_status(
        api, namespace, lambda s: s["lastRetrain"]["phase"] == "Created", "retrain recorded"
    )["lastRetrain"]
    assert last["trainingJob"] == "iris-retrain-1"
    assert "petal length" in last["reason"]
    assert "RetrainStarted" in events(api, namespace)

    # Still drifting, but the TrainingJob has not finished: no second retrain.
    patch_status(api, API_VERSION, "InferenceService", namespace, "iris", {"drift": drift(True)})
    time.sleep(3)
    assert retrain_jobs(api, namespace) == ["iris-retrain-1"]

    # It has finished (deleted here: on this plane no Job runs) but the cooldown (1h) holds.
    delete(api, API_VERSION, "TrainingJob", namespace, "iris-retrain-1")
    patch_status(api, API_VERSION, "InferenceService", namespace, "iris", {"drift": drift(True)})
    time.sleep(3)
    assert retrain_jobs(api, namespace) == []
    assert isvc_status(api, namespace)["lastRetrain"]["trainingJob"] == "iris-retrain-1"

    # A restarted operator remembers the cooldown: it is in the API, not in memory.
    operator.kill()
    operator.start()
    time.sleep(3)
    assert retrain_jobs(api, namespace) == []

    # Past the cooldown the next retrain asks the Dataset for a refresh again.
    patch(
        api,
        API_VERSION,
        "InferenceService",
        namespace,
        "iris",
        {"spec": {"retrain": {"cooldown": "1s"}}},
    )
    retrain = eventually(
        lambda: (
            (isvc_status(api, namespace).get("lastRetrain") or {}).get("trainingJob")
            == "iris-retrain-2"
        ),
        timeout=30,
        what="second retrain requested",
    )
    assert retrain
    assert (
        get(api, API_VERSION, "Dataset", namespace, "iris")["metadata"]["annotations"][
            "kubeloop.dev/refresh"
        ]
        == "iris-retrain-2"
    )


def children(api: Any, namespace: str) -> dict[str, list[str]]:
    return {
        kind: sorted(
            o["metadata"]["name"]
            for o in list_objects(
                api, version, kind, namespace, "kubeloop.dev/inferenceservice=iris"
            )
        )
        for version, kind in (
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
            ("v1", "ServiceAccount"),
            ("rbac.authorization.k8s.io/v1", "Role"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        )
    }


EXPECTED_CHILDREN = {
    "Deployment": ["iris-blue", "iris-green"],
    "Service": ["iris", "iris-preview"],
    "ServiceAccount": ["iris-drift"],
    "Role": ["iris-drift"],
    "RoleBinding": ["iris-drift"],
}


def test_sigkill_mid_rollout_and_during_the_scale_down_delay_converges_without_duplicates(
    api: Any, namespace: str, operator: Any, jobs: Any
) -> None:
    serve_blue(
        api,
        namespace,
        operator,
        jobs,
        rollout={"minReadySeconds": 0, "scaleDownDelaySeconds": 8, "smokeTest": {"enabled": False}},
    )
    create_ready_model_version(api, namespace, jobs, 2)
    # 1: killed mid-rollout, before the selector flips (green created, not yet available).
    eventually(
        lambda: list_objects(api, "apps/v1", "Deployment", namespace, GREEN),
        timeout=30,
        what="iris-green",
    )
    operator.kill()
    green_uid = deployment(api, namespace, "iris-green")["metadata"]["uid"]
    assert selector_color(api, namespace, "iris") == "blue"
    eventually(lambda: make_pods_ready(api, namespace, GREEN), timeout=30, what="green Pods")
    operator.start()
    # 2: killed right after the selector flipped, during the scale-down delay.
    wait_status(api, namespace, lambda s: s.get("activeColor") == "green", "green promoted")
    operator.kill()
    assert selector_color(api, namespace, "iris") == "green"
    assert deployment(api, namespace, "iris-blue")["spec"]["replicas"] == 1
    operator.start()
    # The restarted operator honours the deadline kept in status.
    eventually(
        lambda: deployment(api, namespace, "iris-blue")["spec"]["replicas"] == 0,
        timeout=30,
        what="blue scaled down after the restart",
    )
    final = wait_status(
        api, namespace, lambda s: "scaleDown" not in s and s.get("phase") == "Ready", "steady"
    )
    assert final["activeModelVersion"] == "iris-v2"
    assert [p["modelVersion"] for p in final["promotions"]] == ["iris-v2", "iris-v1"]
    assert children(api, namespace) == EXPECTED_CHILDREN
    assert deployment(api, namespace, "iris-green")["metadata"]["uid"] == green_uid
