"""Reading the examples and the objects the operator writes, for the cluster tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from kubeloop.kube import apply as kube
from support import eventually

REPO = Path(__file__).resolve().parents[2]
API = "kubeloop.dev/v1alpha1"


def example(kind: str, file: str = "iris.yaml") -> dict[str, Any]:
    documents = yaml.safe_load_all((REPO / "examples" / file).read_text())
    return copy.deepcopy(next(doc for doc in documents if doc and doc["kind"] == kind))


def status_of(api: Any, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube.get(api, API, kind, namespace, name).get("status") or {})


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c["type"] == type_), None)


def events_of(api: Any, namespace: str, name: str) -> list[tuple[str, str]]:
    return [
        (event["reason"], event["message"])
        for event in kube.list_objects(api, "v1", "Event", namespace)
        if event["involvedObject"]["name"] == name
    ]


def wait_for_event(
    api: Any, namespace: str, name: str, reason: str, message: str | None = None
) -> None:
    """An Event about `name` with this reason (and message) appears (Events are written just
    after the status they report)."""

    def seen() -> bool:
        return any(
            got_reason == reason and (message is None or got_message == message)
            for got_reason, got_message in events_of(api, namespace, name)
        )

    eventually(seen, what=f"an Event {reason} on {name}")


def wait_for_phase(
    api: Any, kind: str, namespace: str, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = status_of(api, kind, namespace, name)
        return status if status.get("phase") == phase else None

    return eventually(reached, timeout=timeout, interval=0.1, what=f"{kind} {name} in {phase}")


def profile_job(api: Any, namespace: str, name: str, after: str | None = None) -> str:
    def job() -> str | None:
        check = status_of(api, "Dataset", namespace, name).get("check") or {}
        return check.get("job") if check.get("job") != after else None

    return str(eventually(job, what=f"a profile Job of Dataset {name}"))


def training_job(api: Any, namespace: str, name: str) -> str:
    def job() -> str | None:
        return status_of(api, "TrainingJob", namespace, name).get("jobName")

    return str(eventually(job, what=f"the Job of TrainingJob {name}"))


def apply(kubectl: Any, namespace: str, *manifests: dict[str, Any]) -> None:
    for manifest in manifests:
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def ready_dataset(kubectl: Any, namespace: str, api: Any, jobs: Any) -> None:
    apply(kubectl, namespace, example("Dataset"))
    assert jobs.run(profile_job(api, namespace, "iris")) == 0
    wait_for_phase(api, "Dataset", namespace, "iris", "Ready")


def unreachable_dataset(namespace: str, name: str = "remote") -> dict[str, Any]:
    """A Dataset whose source refuses connections: port 9 (discard) on loopback, where nothing
    listens. Its profile Jobs fail with exit 4 and the operator retries them with backoff."""
    return {
        "apiVersion": API,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"uri": "https://127.0.0.1:9/iris.csv"}, "target": "target"},
    }


def small_trainingjob(name: str, **evaluation: Any) -> dict[str, Any]:
    manifest = example("TrainingJob")
    manifest["metadata"]["name"] = name
    manifest["spec"].pop("search")
    manifest["spec"]["params"] = {"n_estimators": 10, "random_state": 0}
    manifest["spec"]["evaluation"].update({"threshold": 0.8, **evaluation})
    return manifest
