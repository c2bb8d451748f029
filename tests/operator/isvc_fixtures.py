"""Shared inputs of the InferenceService builder tests: a spec, a target, observed Deployments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubeloop.api.inferenceservice import InferenceServiceSpec
from kubeloop.builders.inferenceservice import Owner
from kubeloop.builders.rollout import ColorState
from kubeloop.builders.target import ServingTarget
from kubeloop.settings import OperatorSettings

OWNER = Owner(name="iris", namespace="ml", uid="1234-uid")
DEFAULTS = OperatorSettings(runtime_image="kubeloop-runtime:dev")
NOW = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def spec(**changes: Any) -> InferenceServiceSpec:
    body: dict[str, Any] = {"model": {"name": "iris", "latest": True}, "replicas": 2}
    body.update(changes)
    return InferenceServiceSpec.model_validate(body)


def target(version: int = 1, uri: str = "pvc://kubeloop-artifacts/models/iris/a/") -> ServingTarget:
    return ServingTarget(
        model_version=f"iris-v{version}",
        model_name="iris",
        version=version,
        artifact_uri=uri,
        digest=DIGEST,
    )


def model_version(
    version: int, *, ready: bool = True, stage: str = "None", aliases: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"iris-v{version}"},
        "spec": {
            "modelName": "iris",
            "version": version,
            "artifact": {
                "uri": f"pvc://kubeloop-artifacts/models/iris/v{version}/",
                "digest": DIGEST,
            },
            "stage": stage,
            "aliases": list(aliases),
        },
        "status": {"phase": "Ready" if ready else "Pending"},
    }


def color(
    template_hash: str,
    *,
    replicas: int = 2,
    available: int | None = None,
    generation: int = 1,
    observed: int | None = None,
    failure: str | None = None,
) -> ColorState:
    ready = replicas if available is None else available
    return ColorState(
        template_hash=template_hash,
        model_version=None,
        replicas=replicas,
        generation=generation,
        observed_generation=generation if observed is None else observed,
        status_replicas=replicas,
        updated_replicas=replicas,
        ready_replicas=ready,
        available_replicas=ready,
        failure=failure,
    )
