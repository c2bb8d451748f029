"""Which ModelVersion an InferenceService serves: its `spec.model` against the registry.

Pure: the caller lists the ModelVersions of the namespace and passes them in as API objects
(dicts). A version counts only when it is Ready (its digest was verified) and not being deleted;
with none, the result says in words what the InferenceService waits for, so `Pending` can name it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeloop.api.inferenceservice import ModelSelector
from kubeloop.api.modelversion import model_version_name
from kubeloop.conditions import is_condition_true


@dataclass(frozen=True, slots=True)
class ServingTarget:
    """A Ready ModelVersion, reduced to what a serving Pod needs."""

    model_version: str  # the ModelVersion's name, e.g. iris-v3
    model_name: str
    version: int
    artifact_uri: str
    digest: str
    # spec.inputExample: rows the smoke test predicts when it has no instances (not identity).
    input_example: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class TargetResolution:
    """The target, or why there is none yet (`waiting_for`, a phrase for a person)."""

    target: ServingTarget | None
    waiting_for: str = ""


def is_ready_model_version(body: Mapping[str, Any]) -> bool:
    status = body.get("status") or {}
    if body.get("metadata", {}).get("deletionTimestamp"):
        return False
    return status.get("phase") == "Ready" or is_condition_true(status.get("conditions"), "Ready")


def to_target(body: Mapping[str, Any]) -> ServingTarget:
    spec = body["spec"]
    return ServingTarget(
        model_version=body["metadata"]["name"],
        model_name=spec["modelName"],
        version=int(spec["version"]),
        artifact_uri=spec["artifact"]["uri"],
        digest=spec["artifact"]["digest"],
        input_example=tuple(
            dict(row) for row in spec.get("inputExample") or () if isinstance(row, Mapping)
        ),
    )


def resolve_target(
    selector: ModelSelector, model_versions: Iterable[Mapping[str, Any]]
) -> TargetResolution:
    """The ModelVersion `selector` picks among `model_versions` (any model, any state)."""
    of_model = [mv for mv in model_versions if mv.get("spec", {}).get("modelName") == selector.name]
    ready = sorted(
        (mv for mv in of_model if is_ready_model_version(mv)),
        key=lambda mv: int(mv["spec"]["version"]),
        reverse=True,
    )
    if selector.version is not None:
        wanted = model_version_name(selector.name, selector.version)
        for mv in of_model:
            if int(mv["spec"]["version"]) == selector.version:
                if is_ready_model_version(mv):
                    return TargetResolution(to_target(mv))
                phase = (mv.get("status") or {}).get("phase") or "not verified yet"
                return TargetResolution(None, f"ModelVersion {wanted} to be Ready (it is {phase})")
        return TargetResolution(None, f"ModelVersion {wanted} to exist")
    if selector.stage is not None:
        chosen = [mv for mv in ready if mv["spec"].get("stage", "None") == selector.stage]
        what = f"a Ready ModelVersion of model {selector.name} in stage {selector.stage}"
    elif selector.alias is not None:
        chosen = [mv for mv in ready if selector.alias in (mv["spec"].get("aliases") or ())]
        what = f"a Ready ModelVersion of model {selector.name} with alias {selector.alias}"
    else:
        chosen = ready
        what = f"a Ready ModelVersion of model {selector.name}"
    if chosen:
        return TargetResolution(to_target(chosen[0]))
    return TargetResolution(None, what)
