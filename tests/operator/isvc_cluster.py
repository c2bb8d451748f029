"""Helpers of the InferenceService integration tests: objects to create, and the kubelet's part.

On the API-only plane nothing runs Pods, so `make_pods_ready` plays the kubelet: it writes the
status a kubelet would write (Running, Ready, containers running) on the Pods the ReplicaSet
controller created. The Deployment and ReplicaSet controllers are real and compute availability
from it (minReadySeconds included). Tests that use it say so; on the real node they are not used.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers_kubelet import JobRunner

from kubeloop.api.base import API_VERSION
from kubeloop.kube.apply import create, get, list_objects, patch_status
from support import eventually


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
    name = f"iris-v{version}"
    artifact = trained_iris()
    shutil.copytree(
        artifact,
        jobs.pvc_root / "kubeloop-artifacts" / "models" / "iris" / f"v{version}",
        dirs_exist_ok=True,
    )
    digest = (artifact / "model.sha256").read_text().strip()
    create(
        api,
        {
            "apiVersion": API_VERSION,
            "kind": "ModelVersion",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "modelName": "iris",
                "version": version,
                "artifact": {
                    "uri": f"pvc://kubeloop-artifacts/models/iris/v{version}/",
                    "digest": digest,
                },
            },
        },
    )
    verify_job = eventually(
        lambda: (get(api, API_VERSION, "ModelVersion", namespace, name).get("status") or {}).get(
            "verifyJob"
        ),
        timeout=30,
        what=f"the verify Job of {name}",
    )
    assert jobs.run(verify_job) == 0
    eventually(
        lambda: (
            (get(api, API_VERSION, "ModelVersion", namespace, name).get("status") or {}).get(
                "phase"
            )
            == "Ready"
        ),
        timeout=30,
        what=f"{name} Ready",
    )
    return name


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


def isvc(api: Any, namespace: str, name: str = "iris") -> dict[str, Any]:
    return get(api, API_VERSION, "InferenceService", namespace, name)


def isvc_status(api: Any, namespace: str, name: str = "iris") -> dict[str, Any]:
    return dict(isvc(api, namespace, name).get("status") or {})


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or () if c["type"] == type_), {})


def deployment(api: Any, namespace: str, name: str) -> dict[str, Any]:
    return get(api, "apps/v1", "Deployment", namespace, name)


def api_only_plane(api: Any) -> None:
    """Skip a test that plays the kubelet when the cluster has a real one (a Ready node would
    fight over the Pods' status); test_isvc_node.py covers those paths with real Pods."""
    for node in list_objects(api, "v1", "Node", None):
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in node.get("status", {}).get("conditions") or ()
        ):
            pytest.skip(
                f"plays the kubelet; the cluster has a Ready node {node['metadata']['name']}"
            )


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


def events(api: Any, namespace: str, name: str = "iris") -> list[str]:
    return [
        e["reason"]
        for e in list_objects(api, "v1", "Event", namespace)
        if e["involvedObject"]["name"] == name and e["involvedObject"]["kind"] == "InferenceService"
    ]
