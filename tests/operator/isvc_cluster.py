"""Helpers of the InferenceService integration tests: objects to create, and the kubelet's part.

On the API-only plane nothing runs Pods, so `make_pods_ready` plays the kubelet: it writes the
status a kubelet would write (Running, Ready, containers running) on the Pods the ReplicaSet
controller created. The Deployment and ReplicaSet controllers are real and compute availability
from it (minReadySeconds included). Tests that use it say so and live in tests/operator/played,
whose conftest gives them a cluster without a Ready node; test_isvc_node.py uses the rest.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from helpers_kubelet import JobRunner

from kubeloop.api.base import API_VERSION
from kubeloop.kube.apply import create, get, list_objects, patch_status
from support import eventually

# Two iris flowers, a setosa and a virginica: the smoke test's and the tests' requests.
ROWS = [
    {
        "sepal length (cm)": 5.1,
        "sepal width (cm)": 3.5,
        "petal length (cm)": 1.4,
        "petal width (cm)": 0.2,
    },
    {
        "sepal length (cm)": 6.7,
        "sepal width (cm)": 3.0,
        "petal length (cm)": 5.2,
        "petal width (cm)": 2.3,
    },
]


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.cache
def trained_iris() -> Path:
    """One iris artifact folder per test process, trained by the real runtime."""
    folder = Path(tempfile.mkdtemp(prefix="isvc-iris-")) / "artifact"
    config = {
        "modelName": "iris",
        "dataset": {"uri": "builtin://iris", "target": "target"},
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 500},
        "output": {"uri": f"file://{folder}"},
    }
    subprocess.run(
        [sys.executable, "-m", "kubeloop_runtime", "train", "--config", json.dumps(config)],
        check=True,
        capture_output=True,
        env={**os.environ, "KUBELOOP_TERMINATION_LOG": str(folder.parent / "termination-log")},
        timeout=120,
    )
    return folder


def create_ready_model_version(api: Any, namespace: str, jobs: JobRunner, version: int) -> str:
    """A hand-registered ModelVersion of a real iris artifact, verified by the operator's fetch
    Job (run by the kubelet played with the real runtime on the API-only plane, helpers_kubelet)."""
    artifact = trained_iris()
    shutil.copytree(
        artifact,
        jobs.pvc_root / "kubeloop-artifacts" / "models" / "iris" / f"v{version}",
        dirs_exist_ok=True,
    )
    uri = f"pvc://kubeloop-artifacts/models/iris/v{version}/"
    digest = (artifact / "model.sha256").read_text().strip()
    name = register_model_version(api, namespace, version, {"uri": uri, "digest": digest})
    verify_job = eventually(
        lambda: (get(api, API_VERSION, "ModelVersion", namespace, name).get("status") or {}).get(
            "verifyJob"
        ),
        timeout=30,
        what=f"the verify Job of {name}",
    )
    assert jobs.run(verify_job) == 0
    wait_model_version_ready(api, namespace, name)
    return name


def register_model_version(api: Any, namespace: str, version: int, artifact: dict[str, str]) -> str:
    """ModelVersion iris-v<version> of `artifact` ({uri, digest}), registered by hand: the
    operator verifies it with its fetch Job. Its name."""
    name = f"iris-v{version}"
    create(
        api,
        {
            "apiVersion": API_VERSION,
            "kind": "ModelVersion",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"modelName": "iris", "version": version, "artifact": artifact},
        },
    )
    return name


def wait_model_version_ready(
    api: Any, namespace: str, name: str, timeout: float = 30, interval: float = 0.05
) -> None:
    eventually(
        lambda: (
            (get(api, API_VERSION, "ModelVersion", namespace, name).get("status") or {}).get(
                "phase"
            )
            == "Ready"
        ),
        timeout=timeout,
        interval=interval,
        what=f"{name} Ready",
    )


def isvc_manifest(namespace: str, name: str = "iris", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": {"name": "iris", "latest": True},
        "replicas": 1,
        "rollout": {
            "minReadySeconds": 0,
            "scaleDownDelaySeconds": 3,
            "progressDeadlineSeconds": 600,
            # No ClusterIP routes on the API-only plane: the smoke test runs on the real node.
            "smokeTest": {"enabled": False},
        },
        "monitoring": {"enabled": True, "intervalSeconds": 5, "window": 100, "minSamples": 10},
    }
    body.update(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def kubectl_wait_ready(kubectl: Any, namespace: str, seconds: int, name: str = "iris") -> None:
    """`kubectl wait --for=condition=Ready` on the InferenceService, as a user would."""
    kubectl(
        "wait",
        "--for=condition=Ready",
        f"inferenceservice/{name}",
        "-n",
        namespace,
        f"--timeout={seconds}s",
        timeout=seconds + 20,
    )


def isvc(api: Any, namespace: str, name: str = "iris") -> dict[str, Any]:
    return get(api, API_VERSION, "InferenceService", namespace, name)


def isvc_status(api: Any, namespace: str, name: str = "iris") -> dict[str, Any]:
    return dict(isvc(api, namespace, name).get("status") or {})


def wait_status(
    api: Any,
    namespace: str,
    check: Callable[[dict[str, Any]], Any],
    what: str,
    timeout: float = 60,
    interval: float = 0.2,
) -> dict[str, Any]:
    """InferenceService iris's status once `check` holds for it."""

    def probe() -> dict[str, Any] | None:
        status = isvc_status(api, namespace)
        return status if check(status) else None

    result: dict[str, Any] = eventually(probe, timeout=timeout, interval=interval, what=what)
    return result


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or () if c["type"] == type_), {})


def deployment(api: Any, namespace: str, name: str) -> dict[str, Any]:
    return get(api, "apps/v1", "Deployment", namespace, name)


def make_pods_ready(api: Any, namespace: str, selector: str) -> int:
    """Play the kubelet (API-only plane): mark the selected Pods Running and Ready."""
    now = stamp()
    count = 0
    for pod in list_objects(api, "v1", "Pod", namespace, selector):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        containers = [c["name"] for c in pod["spec"]["containers"]]
        patch_status(
            api,
            "v1",
            "Pod",
            namespace,
            pod["metadata"]["name"],
            {
                "phase": "Running",
                "conditions": [
                    {"type": cond, "status": "True", "lastTransitionTime": now}
                    for cond in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
                "containerStatuses": [
                    {
                        "name": c,
                        "ready": True,
                        "restartCount": 0,
                        "image": "kubeloop-runtime:dev",
                        "imageID": "",
                        "started": True,
                        "state": {"running": {"startedAt": now}},
                    }
                    for c in containers
                ],
            },
        )
        count += 1
    return count


def drift(detected: bool) -> dict[str, Any]:
    """A `status.drift` as the drift sidecar patches it."""
    return {
        "detected": detected,
        "score": 0.75 if detected else 0.0,
        "driftedFeatures": ["petal length (cm)"] if detected else [],
        "reporters": 1,
        "checkedAt": stamp(),
    }


def events(api: Any, namespace: str, name: str = "iris") -> list[str]:
    return [
        e["reason"]
        for e in list_objects(api, "v1", "Event", namespace)
        if e["involvedObject"]["name"] == name and e["involvedObject"]["kind"] == "InferenceService"
    ]


def predict(api: Any, namespace: str, service: str) -> list[Any]:
    address = get(api, "v1", "Service", namespace, service)["spec"]["clusterIP"]

    def attempt() -> list[Any] | None:
        try:
            answer = httpx.post(f"http://{address}/predict", json={"instances": ROWS}, timeout=5)
        except httpx.HTTPError:
            return None  # kube-proxy can lag the endpoints by a second
        return list(answer.json()["predictions"]) if answer.status_code == 200 else None

    result: list[Any] = eventually(attempt, timeout=30, interval=0.5, what=f"{service} predicts")
    return result
