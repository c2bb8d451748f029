"""kubectl, the way the node tests use it: apply manifests, read JSON, wait for Jobs and Pods."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from support import eventually

Runner = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Trained:
    """What the train Job's termination message said."""

    result: dict[str, Any]
    digest: str


@dataclass(frozen=True)
class Serving:
    """The serving Deployment and its Service."""

    namespace: str
    name: str
    cluster_ip: str
    digest: str


class Kube:
    def __init__(self, kubectl: Runner) -> None:
        self._kubectl = kubectl

    def run(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self._kubectl(*args, **options)

    def apply(self, namespace: str, manifests: Sequence[dict[str, Any]]) -> None:
        document = {"apiVersion": "v1", "kind": "List", "items": list(manifests)}
        self.run("apply", "-n", namespace, "-f", "-", input=json.dumps(document))

    def get_json(
        self, kind: str, name: str | None = None, namespace: str | None = None, selector: str = ""
    ) -> dict[str, Any]:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        return dict(json.loads(self.run(*args).stdout))

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return list(self.get_json("pods", namespace=namespace, selector=selector)["items"])

    def wait_for_default_service_account(self, namespace: str) -> None:
        eventually(
            lambda: self.run("get", "sa", "default", "-n", namespace, check=False).returncode == 0,
            timeout=30,
            interval=0.2,
            what=f"the default ServiceAccount of {namespace}",
        )

    def wait_for_job_pod(self, namespace: str, job: str, timeout: float) -> dict[str, Any]:
        """Wait until the Job completes or fails and return its (only) Pod."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get_json("job", job, namespace=namespace).get("status", {})
            finished = {
                c["type"]
                for c in status.get("conditions", [])
                if c["type"] in ("Complete", "Failed") and c["status"] == "True"
            }
            if finished:
                break
            if time.monotonic() > deadline:
                pods = self.pods(namespace, f"job-name={job}")
                pytest.fail(f"job {job} not finished after {timeout}s: {describe(pods)}")
            time.sleep(0.5)
        pods = self.pods(namespace, f"job-name={job}")
        assert len(pods) == 1, describe(pods)
        return pods[0]

    def wait_for_pod(
        self, namespace: str, name: str, done: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """Poll a Pod until `done(pod)`; return it."""
        deadline = time.monotonic() + timeout
        while True:
            pod = self.get_json("pod", name, namespace=namespace)
            if done(pod):
                return pod
            if time.monotonic() > deadline:
                pytest.fail(f"pod {name} did not get there in {timeout}s: {describe([pod])}")
            time.sleep(0.5)


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def container_status(pod: dict[str, Any], container: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in pod.get("status", {}).get(key, []):
        if status["name"] == container:
            return dict(status)
    raise AssertionError(f"pod {pod['metadata']['name']} has no status for {container}")


def termination_message(pod: dict[str, Any], container: str, init: bool = False) -> dict[str, Any]:
    """The JSON a batch command wrote to its termination log, as the kubelet reports it."""
    state = container_status(pod, container, init)["state"]
    assert "terminated" in state, f"{container} has not terminated: {state}"
    return dict(json.loads(state["terminated"]["message"]))


def describe(pods: list[dict[str, Any]]) -> str:
    """Enough of each Pod's status to see why a wait failed."""
    return json.dumps(
        [
            {
                "name": p["metadata"]["name"],
                "phase": p.get("status", {}).get("phase"),
                "conditions": p.get("status", {}).get("conditions"),
                "init": p.get("status", {}).get("initContainerStatuses"),
                "containers": p.get("status", {}).get("containerStatuses"),
            }
            for p in pods
        ],
        indent=1,
    )[:4000]
