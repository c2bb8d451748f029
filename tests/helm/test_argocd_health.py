"""The Argo CD health checks in examples/gitops/argocd/argocd-cm.yaml, run in a real Lua 5.1
interpreter (Argo CD's gopher-lua implements 5.1) on status samples of the four kinds.

The samples in testdata/health/ follow the API models and kubeloop.conditions; each says what
Argo CD must report (`expected.status`, and a piece of `expected.message`) for `object`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lupa.lua51
import pytest
import yaml
from conftest import REPO

from kubeloop.api import KINDS

ARGOCD_CM = REPO / "examples" / "gitops" / "argocd" / "argocd-cm.yaml"
SAMPLES = sorted((Path(__file__).parent / "testdata" / "health").glob("*.yaml"))
KEY = "resource.customizations.health.kubeloop.dev_{kind}"
# What an Argo CD health script may return.
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
STATUS_MODELS = {kind.kind: kind.status_model for kind in KINDS}


def health_scripts() -> dict[str, str]:
    data = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    return {kind: data[KEY.format(kind=kind)] for kind in STATUS_MODELS}


def assess(script: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """What Argo CD would show: the script run with `obj` as its global, in a fresh Lua."""
    lua = lupa.lua51.LuaRuntime(unpack_returned_tuples=False)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return dict(result.items())


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def test_every_kind_has_the_same_health_check() -> None:
    scripts = health_scripts()
    assert set(scripts) == {"Dataset", "TrainingJob", "ModelVersion", "InferenceService"}
    assert len(set(scripts.values())) == 1


def test_each_kind_has_a_sample_of_each_state() -> None:
    states = {(s["object"]["kind"], s["expected"]["status"]) for s in map(load, SAMPLES)}
    for kind in STATUS_MODELS:
        assert {(kind, "Healthy"), (kind, "Progressing"), (kind, "Degraded")} <= states
    lagging = [
        s
        for s in map(load, SAMPLES)
        if s["object"]["status"].get("observedGeneration") != s["object"]["metadata"]["generation"]
    ]
    assert {s["object"]["kind"] for s in lagging} == set(STATUS_MODELS)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_follows_the_api_model(sample: Path) -> None:
    obj = load(sample)["object"]
    STATUS_MODELS[obj["kind"]].model_validate(obj["status"])


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_health_check_reports_the_sample_right(sample: Path) -> None:
    case = load(sample)
    health = assess(health_scripts()[case["object"]["kind"]], case["object"])
    assert health["status"] == case["expected"]["status"], health
    assert case["expected"]["message"] in health["message"], health


def test_an_object_without_status_is_progressing() -> None:
    obj = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "iris", "generation": 1},
        "spec": {},
    }
    health = assess(health_scripts()["Dataset"], obj)
    assert health == {
        "status": "Progressing",
        "message": "Waiting for the Kubeloop operator to write status",
    }


def test_a_ready_condition_of_an_older_generation_is_not_healthy() -> None:
    # status.observedGeneration caught up but Ready still describes the spec before.
    sample = load(REPO / "tests/helm/testdata/health/dataset-healthy.yaml")["object"]
    sample["metadata"]["generation"] = 2
    sample["status"]["observedGeneration"] = 2
    health = assess(health_scripts()["Dataset"], sample)
    assert health["status"] == "Progressing"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_health_is_one_argo_cd_knows(sample: Path) -> None:
    case = load(sample)
    assert assess(health_scripts()[case["object"]["kind"]], case["object"])["status"] in (
        ARGO_STATUSES
    )
