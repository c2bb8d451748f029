"""Target resolution: version, latest, stage or alias → a Ready ModelVersion, or what it awaits."""

from __future__ import annotations

from isvc_fixtures import model_version

from kubeloop.api.inferenceservice import ModelSelector
from kubeloop.builders.target import resolve_target

REGISTRY = [
    model_version(1, stage="Production", aliases=("champion",)),
    model_version(2, stage="Staging"),
    model_version(3, ready=False, aliases=("challenger",)),
]


def pick(**selector: object) -> str | None:
    chosen = resolve_target(ModelSelector.model_validate({"name": "iris", **selector}), REGISTRY)
    return chosen.target.model_version if chosen.target else chosen.waiting_for


def test_latest_is_the_highest_ready_version() -> None:
    assert pick(latest=True) == "iris-v2"


def test_version_stage_and_alias() -> None:
    assert pick(version=1) == "iris-v1"
    assert pick(stage="Production") == "iris-v1"
    assert pick(stage="Staging") == "iris-v2"
    assert pick(alias="champion") == "iris-v1"


def test_without_a_ready_match_it_names_what_it_waits_for() -> None:
    assert pick(version=3) == "ModelVersion iris-v3 to be Ready (it is Pending)"
    assert pick(version=9) == "ModelVersion iris-v9 to exist"
    assert pick(alias="challenger") == "a Ready ModelVersion of model iris with alias challenger"
    assert pick(stage="Archived") == "a Ready ModelVersion of model iris in stage Archived"
    other = resolve_target(ModelSelector(name="wine", latest=True), REGISTRY)
    assert other.target is None
    assert other.waiting_for == "a Ready ModelVersion of model wine"


def test_a_version_being_deleted_is_not_served() -> None:
    leaving = model_version(4)
    leaving["metadata"]["deletionTimestamp"] = "2026-12-01T08:00:00Z"
    chosen = resolve_target(ModelSelector(name="iris", latest=True), [*REGISTRY, leaving])
    assert chosen.target is not None
    assert chosen.target.model_version == "iris-v2"
    assert chosen.target.digest.startswith("sha256:")
