"""Running the operator's Jobs: on a real node the kubelet does it; on the API-only plane the test
plays the kubelet, SAYING SO: it runs the Job's own container command (`python -m
kubeloop_runtime ...` with the Job's env) as a local process with the real runtime, then writes
what a kubelet would into the Pod's status: the terminated state with the exit code and the
termination message. The Job controller (running in the plane) then completes or fails the Job
by its podFailurePolicy, as it would on a node.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubeloop.kube import apply as kube
from support import eventually


def has_ready_node(api: Any) -> bool:
    nodes = kube.list_objects(api, "v1", "Node", None)
    return any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for node in nodes
        for condition in (node.get("status") or {}).get("conditions") or ()
    )


def artifact_claim(namespace: str) -> dict[str, Any]:
    """The default artifact store, `pvc://kubeloop-artifacts/`, on the default StorageClass (the
    real node's Jobs and Pods mount it; the played ones use a local folder instead)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "kubeloop-artifacts", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


@dataclass
class JobRunner:
    """Makes a Job's Pod run: nothing to do on a real node; played on the API-only plane."""

    api: Any
    namespace: str
    pvc_root: Path
    real_node: bool

    def wait_for_job(self, name: str, timeout: float = 30) -> dict[str, Any]:
        return eventually(
            lambda: kube.get_or_none(self.api, "batch/v1", "Job", self.namespace, name),
            timeout=timeout,
            what=f"Job {name}",
        )

    def run(self, name: str, *, override_exit: tuple[int, str] | None = None) -> int:
        """Run Job `name`'s container and report it as the kubelet would; the exit code.

        `override_exit` replaces the real run by a given exit code and message (a crash the
        runtime cannot be made to have on purpose, e.g. an OOM kill)."""
        return self.report(self.execute(name, override_exit=override_exit))

    def execute(self, name: str, *, override_exit: tuple[int, str] | None = None) -> dict[str, Any]:
        """Run the container now; `report` tells the API later (two Jobs can finish at once)."""
        job = self.wait_for_job(name)
        if self.real_node:
            return {"job": name, "real": True}
        container = job["spec"]["template"]["spec"]["containers"][0]
        pod = eventually(self._pod_of(name), timeout=30, what=f"the Pod of Job {name}")
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if override_exit is not None:
            exit_code, message = override_exit
        else:
            exit_code, message = self._run_locally(container, name)
        finished = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "message": message,
            "startedAt": started,
            "finishedAt": finished,
        }
        status = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"terminated": terminated},
                }
            ],
        }
        return {"job": name, "pod": pod["metadata"]["name"], "status": status, "exit": exit_code}

    def report(self, run: dict[str, Any]) -> int:
        """Write the Pod status a kubelet would have written (nothing on a real node, where the
        exit code is read back from the Pod)."""
        if run.get("real"):
            return self._real_exit(run["job"])
        kube.patch_status(self.api, "v1", "Pod", self.namespace, run["pod"], run["status"])
        return int(run["exit"])

    def _real_exit(self, job_name: str) -> int:
        def terminated() -> dict[str, Any] | None:
            pods = kube.list_objects(
                self.api, "v1", "Pod", self.namespace, label_selector=f"job-name={job_name}"
            )
            for pod in pods:
                for status in (pod.get("status") or {}).get("containerStatuses") or ():
                    state = (status.get("state") or {}).get("terminated")
                    if state:
                        return dict(state)
            return None

        state = eventually(terminated, timeout=240, interval=0.5, what=f"Job {job_name}'s Pod")
        return int(state["exitCode"])

    def _pod_of(self, job_name: str) -> Any:
        def find() -> dict[str, Any] | None:
            pods = kube.list_objects(
                self.api, "v1", "Pod", self.namespace, label_selector=f"job-name={job_name}"
            )
            pending = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Pending"]
            return pending[0] if pending else None

        return find

    def _run_locally(self, container: dict[str, Any], job_name: str) -> tuple[int, str]:
        log = self.pvc_root.parent / f"{job_name}.termination-log"
        env = {
            **os.environ,
            **{item["name"]: item["value"] for item in container.get("env") or ()},
            "KUBELOOP_TERMINATION_LOG": str(log),
            "KUBELOOP_PVC_ROOT": str(self.pvc_root),
        }
        completed = subprocess.run(
            [sys.executable, "-m", "kubeloop_runtime", *container["args"]],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        message = log.read_text() if log.exists() else completed.stderr[-2000:]
        return completed.returncode, message
