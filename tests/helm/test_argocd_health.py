"""The Argo CD health checks in examples/gitops/argocd/argocd-cm.yaml, run in a real Lua 5.1
interpreter (Argo CD's gopher-lua implements 5.1) on status samples of the four kinds.

The samples in testdata/health/ are live objects captured from the real operator in each state
by tests/operator/played/test_argocd_health_cluster.py (which also checks that a fresh capture
still has the committed sample's shape); here they are a fast snapshot: each says what Argo CD
reported (`expected.status`, `expected.message`) for `object`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argocd_health import (
    SAMPLES_DIR,
    STATES,
    assess,
    health_scripts,
    load_sample,
    sample_path,
)

from kubeloop.api import KINDS

SAMPLES = sorted(SAMPLES_DIR.glob("*.yaml"))
# What an Argo CD health script may return.
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
STATUS_MODELS = {kind.kind: kind.status_model for kind in KINDS}
load = load_sample


def test_every_kind_has_the_same_health_check() -> None:
    scripts = health_scripts()
    assert set(scripts) == {"Dataset", "TrainingJob", "ModelVersion", "InferenceService"}
    assert len(set(scripts.values())) == 1


def test_each_kind_has_a_captured_sample_of_each_state() -> None:
    expected = {sample_path(kind, state) for kind in STATUS_MODELS for state in STATES}
    assert set(SAMPLES) == expected
    for kind in STATUS_MODELS:
        for state, argo in STATES.items():
            case = load(sample_path(kind, state))
            assert case["object"]["kind"] == kind
            assert case["expected"]["status"] == argo, (kind, state)
            obj = case["object"]
            lagging = obj["status"].get("observedGeneration") != obj["metadata"]["generation"]
            assert lagging == (state == "lagging"), (kind, state)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_follows_the_api_model(sample: Path) -> None:
    obj = load(sample)["object"]
    STATUS_MODELS[obj["kind"]].model_validate(obj["status"])


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_health_check_reports_the_sample_right(sample: Path) -> None:
    case = load(sample)
    health = assess(health_scripts()[case["object"]["kind"]], case["object"])
    assert health["status"] == case["expected"]["status"], health
    assert health["message"] == case["expected"]["message"], health


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
    sample = load(sample_path("Dataset", "healthy"))["object"]
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
