"""The demo's thin edge to the cluster: reads with the Kubernetes client, applies and installs with
kubectl and helm (what a person would type), and the text that says where a failure's logs are.

No decisions here: the driver (hack/demo.py) and the benchmark (bench/loop.py) decide.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP = "kubeloop.dev"
VERSION = "v1alpha1"
PLURALS = {
    "Dataset": "datasets",
    "TrainingJob": "trainingjobs",
    "ModelVersion": "modelversions",
    "InferenceService": "inferenceservices",
}


class CommandError(Exception):
    """kubectl or helm exited non-zero; the message holds the command and its stderr."""


@dataclass
class Cluster:
    """One cluster, reached through `kubeconfig` (kubectl and helm found on `path`)."""

    kubeconfig: Path
    path: str

    def __post_init__(self) -> None:
        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.api = api

    # --- commands -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": self.path}

    def run(self, argv: Sequence[str], *, stdin: str | None = None) -> str:
        """Run kubectl/helm/make with this cluster's KUBECONFIG; stdout, or CommandError."""
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, env=self.env(), timeout=600
        )
        if done.returncode != 0:
            raise CommandError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.run(["kubectl", *args], stdin=stdin)

    def apply(self, manifest: str, namespace: str | None = None) -> str:
        """Server-side apply of YAML/JSON text."""
        ns = ["-n", namespace] if namespace else []
        return self.kubectl(
            "apply",
            "--server-side",
            "--field-manager=kubeloop-demo",
            "--force-conflicts",
            *ns,
            "-f",
            "-",
            stdin=manifest,
        )

    # --- reads --------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A Kubeloop resource as a dict, or None when it does not exist."""
        try:
            found: Any = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(found)

    def items(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        """Kubeloop resources of one kind, as dicts."""
        found: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], label_selector=selector
        )
        return [dict(item) for item in found.get("items", [])]

    def plain(self, obj: Any) -> dict[str, Any]:
        """A client model object as the API's JSON (camelCase keys)."""
        return dict(self.api.sanitize_for_serialization(obj))

    def core_get(self, read: Any, namespace: str, name: str) -> dict[str, Any] | None:
        """`read(name, namespace)` (e.g. core.read_namespaced_service) as a dict, None on 404."""
        try:
            return self.plain(read(name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = self.core.list_namespaced_pod(namespace, label_selector=selector)
        return [self.plain(pod) for pod in found.items]

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.core_get(self.batch.read_namespaced_job, namespace, name)

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.core_get(self.apps.read_namespaced_deployment, namespace, name)

    def service_ip(self, namespace: str, name: str) -> str | None:
        service = self.core_get(self.core.read_namespaced_service, namespace, name)
        ip = ((service or {}).get("spec") or {}).get("clusterIP")
        return str(ip) if ip and ip != "None" else None

    def termination_message(self, namespace: str, job: str) -> dict[str, Any] | None:
        """The newest parsed JSON termination message of the Job's Pods, if any."""
        newest: tuple[str, dict[str, Any]] | None = None
        for pod in self.pods(namespace, f"job-name={job}"):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                try:
                    message = json.loads(terminated.get("message") or "")
                except ValueError:
                    continue
                finished = str(terminated.get("finishedAt") or "")
                if isinstance(message, dict) and (newest is None or finished > newest[0]):
                    newest = (finished, message)
        return newest[1] if newest else None

    def events_for(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Events about the object `name`, oldest first."""
        found = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        events = [self.plain(event) for event in found.items]
        return sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime")))


def condition(resource: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for found in (resource or {}).get("status", {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return None


def state_of(resource: Mapping[str, Any] | None) -> str:
    """`phase Running; Ready=False: waiting for …`: what a waiting line shows."""
    if resource is None:
        return "not created yet"
    status = resource.get("status") or {}
    parts = [f"phase {status.get('phase') or '(none)'}"]
    ready = condition(resource, "Ready")
    if ready:
        message = ready.get("message") or ready.get("reason") or ""
        parts.append(f"Ready={ready.get('status')}" + (f": {message}" if message else ""))
    elif status.get("message"):
        parts.append(str(status["message"]))
    return "; ".join(parts)


def logs_hint(kind: str, namespace: str, resource: Mapping[str, Any] | None) -> str:
    """The kubectl commands that show why a resource failed (the demo's operator Deployment is
    named after its namespace)."""
    name = (resource or {}).get("metadata", {}).get("name", "?")
    status = (resource or {}).get("status") or {}
    hints = [f"kubectl -n {namespace} describe {kind.lower()} {name}"]
    if status.get("jobName"):
        hints.append(f"kubectl -n {namespace} logs job/{status['jobName']}")
    if kind == "InferenceService":
        hints.append(
            f"kubectl -n {namespace} logs -l kubeloop.dev/inferenceservice={name} --all-containers"
        )
    hints.append(f"kubectl -n {namespace} logs deploy/{namespace} (the operator)")
    return "; ".join(hints)
