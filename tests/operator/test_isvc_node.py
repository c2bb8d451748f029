"""The InferenceService on the real node: real Pods of the runtime image, a real smoke test through
the preview Service's ClusterIP, the drift sidecar patching status with its own token, and the
abort paths (a failing smoke test, a crash-looping server) while the active colour keeps serving.

The artifact is trained by a Job of the runtime image onto a PersistentVolumeClaim of the default
StorageClass, and registered by hand as a ModelVersion with the digest train reported, which the
operator verifies with its fetch Job. Needs `kubeloop-runtime:dev` on the node
(`hack/devcluster.py load`); skips otherwise, naming it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from helpers_kubelet import artifact_claim
from isvc_cluster import (
    ROWS,
    condition,
    events,
    isvc_manifest,
    isvc_status,
    kubectl_wait_ready,
    predict,
    register_model_version,
    wait_model_version_ready,
    wait_status,
)

from kubeloop.api.base import API_VERSION
from kubeloop.kube.apply import create, get, list_objects, patch
from support import RESTRICTED_POD_SECURITY, eventually

pytestmark = [pytest.mark.cluster, pytest.mark.node]

IMAGE = "kubeloop-runtime:dev"
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.fixture
def runtime_image(api: Any, ready_node: str) -> str:
    node = get(api, "v1", "Node", None, ready_node)
    names = {n for image in node["status"].get("images") or () for n in image.get("names") or ()}
    if not any(name.endswith(IMAGE) for name in names):
        pytest.skip(f"{IMAGE} is not on node {ready_node}: hack/devcluster.py load {IMAGE}")
    return IMAGE


def train_artifact(api: Any, namespace: str, run: str) -> dict[str, str]:
    """Train iris with the runtime image onto the PVC; the artifact's {uri, digest}."""
    uri = f"pvc://kubeloop-artifacts/models/iris/{run}/"
    config = {
        "modelName": "iris",
        "dataset": {"uri": "builtin://iris", "target": "target"},
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 500},
        "output": {"uri": uri},
    }
    create(
        api,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"train-{run}", "namespace": namespace},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "securityContext": RESTRICTED_POD_SECURITY,
                        "containers": [
                            {
                                "name": "train",
                                "image": IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["train", "--config", json.dumps(config)],
                                "securityContext": CONTAINER_SECURITY,
                                "volumeMounts": [
                                    {"name": "tmp", "mountPath": "/tmp"},
                                    {"name": "store", "mountPath": "/mnt/pvc/kubeloop-artifacts"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "tmp", "emptyDir": {}},
                            {
                                "name": "store",
                                "persistentVolumeClaim": {"claimName": "kubeloop-artifacts"},
                            },
                        ],
                    }
                },
            },
        },
    )

    def result() -> dict[str, Any] | None:
        for pod in list_objects(api, "v1", "Pod", namespace, f"job-name=train-{run}"):
            for status in pod["status"].get("containerStatuses") or ():
                terminated = (status.get("state") or {}).get("terminated")
                if terminated:
                    return dict(json.loads(terminated.get("message") or "{}"))
        return None

    message: dict[str, Any] = eventually(result, timeout=240, interval=1, what=f"train-{run}")
    assert message.get("ok"), message
    return {"uri": message["artifact"]["uri"], "digest": message["artifact"]["digest"]}


@pytest.fixture
def serving(api: Any, namespace: str, operator: Any, kubectl: Any, runtime_image: str) -> str:
    """iris-v1 served from blue on real Pods, smoke-tested through the preview Service."""
    create(api, artifact_claim(namespace))
    artifact = train_artifact(api, namespace, "t1")
    operator.start()
    # The operator verifies the hand-registered version with its fetch Job on the node.
    name = register_model_version(api, namespace, 1, artifact)
    wait_model_version_ready(api, namespace, name, timeout=180, interval=1)
    rollout = {
        "minReadySeconds": 1,
        "scaleDownDelaySeconds": 5,
        "progressDeadlineSeconds": 180,
        "smokeTest": {"instances": ROWS, "timeoutSeconds": 30},
    }
    create(api, isvc_manifest(namespace, rollout=rollout))
    kubectl_wait_ready(kubectl, namespace, 240)
    return namespace


def test_real_pods_serve_after_a_smoke_test_and_the_sidecar_reports_drift_status(
    api: Any, serving: str
) -> None:
    namespace = serving
    status = isvc_status(api, namespace)
    assert status["activeColor"] == "blue"
    assert status["activeModelVersion"] == "iris-v1"
    assert status["readyReplicas"] == 1
    assert {"RolloutStarted", "SmokeTestPassed", "Promoted"} <= set(events(api, namespace))
    assert predict(api, namespace, "iris") == ["setosa", "virginica"]
    # The drift sidecar patched status.drift with its own ServiceAccount's token.
    reported = wait_status(
        api,
        namespace,
        lambda s: bool((s.get("drift") or {}).get("reports")),
        "a drift report from the sidecar",
        timeout=60,
        interval=0.5,
    )
    (pod,) = reported["drift"]["reports"]
    assert pod.startswith("iris-blue-")
    assert reported["drift"]["reports"][pod]["color"] == "blue"
    assert condition(reported, "DriftDetected")["status"] in ("True", "False", "Unknown")


def test_a_failing_smoke_test_aborts_and_blue_keeps_serving(api: Any, serving: str) -> None:
    namespace = serving
    # A new template (env) whose candidate is asked for a feature the model does not have.
    bad_rows = [{"not a feature": 1.0}]
    patch(
        api,
        API_VERSION,
        "InferenceService",
        namespace,
        "iris",
        {
            "spec": {
                "env": [{"name": "KUBELOOP_MAX_BATCH_ROWS", "value": "64"}],
                "rollout": {"smokeTest": {"instances": bad_rows, "timeoutSeconds": 10}},
            }
        },
    )
    aborted = wait_status(
        api,
        namespace,
        lambda s: (s.get("candidate") or {}).get("phase") == "Failed",
        "the candidate Failed",
        timeout=180,
        interval=0.5,
    )
    assert "SmokeTestFailed" in aborted["candidate"]["message"]
    assert "HTTP 422" in aborted["candidate"]["message"]
    assert aborted["activeColor"] == "blue"
    assert aborted["phase"] == "Degraded"
    assert condition(aborted, "Degraded")["status"] == "True"
    assert "SmokeTestFailed" in events(api, namespace)
    assert predict(api, namespace, "iris") == ["setosa", "virginica"]
    eventually(
        lambda: get(api, "apps/v1", "Deployment", namespace, "iris-green")["spec"]["replicas"] == 0,
        timeout=30,
        what="green scaled to 0",
    )


def test_a_crash_looping_candidate_is_aborted_with_its_last_message(api: Any, serving: str) -> None:
    namespace = serving
    patch(
        api,
        API_VERSION,
        "InferenceService",
        namespace,
        "iris",
        {
            "spec": {
                "env": [{"name": "KUBELOOP_PORT", "value": "not-a-port"}],
                "rollout": {"progressDeadlineSeconds": 40},
            }
        },
    )
    started = time.monotonic()
    aborted = wait_status(
        api,
        namespace,
        lambda s: (s.get("candidate") or {}).get("phase") == "Failed",
        "the candidate Failed",
        timeout=120,
        interval=0.5,
    )
    assert time.monotonic() - started >= 30  # the deadline, not a first crash, aborts it
    message = aborted["candidate"]["message"]
    assert "ProgressDeadlineExceeded" in message
    assert "container server" in message
    assert "exit code 2" in message
    assert aborted["activeColor"] == "blue"
    assert predict(api, namespace, "iris") == ["setosa", "virginica"]
