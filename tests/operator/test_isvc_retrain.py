"""Drift → retrain decisions (builders/retrain.py), without a cluster."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from isvc_fixtures import NOW, OWNER, spec

from kubeloop.builders.retrain import (
    REFRESH_WAIT,
    build_refresh_patch,
    build_retrain_training_job,
    decide_retrain,
    parse_duration,
)

DRIFT = {"detected": True, "score": 0.75, "driftedFeatures": ["petal length (cm)"]}
TEMPLATE = {
    "datasetRef": {"name": "iris"},
    "modelName": "iris",
    "estimator": "sklearn.linear_model.LogisticRegression",
}
RETRAINING = spec(retrain={"enabled": True, "cooldown": "30m", "template": TEMPLATE})


def job(name: str, phase: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": phase} if phase else {}}


def test_parse_duration() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")


def test_drift_refreshes_the_dataset_first_and_claims_the_cooldown() -> None:
    decision = decide_retrain(OWNER, RETRAINING, DRIFT, None, [], None, NOW)
    assert decision.action == "refresh"
    assert decision.dataset == "iris"
    assert decision.training_job == "iris-retrain-1"
    assert decision.last_retrain is not None
    assert decision.last_retrain.at == NOW
    assert decision.last_retrain.phase == "RefreshingData"
    assert "petal length" in (decision.last_retrain.reason or "")
    assert build_refresh_patch("iris-retrain-1") == {
        "metadata": {"annotations": {"kubeloop.dev/refresh": "iris-retrain-1"}}
    }


def test_a_retrain_for_concept_drift_says_so_in_its_reason() -> None:
    concept = {"detected": True, "score": 0.0, "conceptDrift": True, "accuracy": 0.02}
    decision = decide_retrain(OWNER, RETRAINING, concept, None, [], None, NOW)
    assert decision.last_retrain is not None
    reason = decision.last_retrain.reason or ""
    assert "features: none named" in reason
    assert "concept drift on feedback (accuracy 0.02" in reason
    job = build_retrain_training_job(OWNER, RETRAINING, "iris-retrain-1", reason)
    assert "concept drift" in job["metadata"]["annotations"]["kubeloop.dev/retrain-reason"]
    data_only = decide_retrain(OWNER, RETRAINING, DRIFT, None, [], None, NOW).last_retrain
    assert data_only is not None
    assert "concept" not in (data_only.reason or "")


def test_the_training_job_starts_once_the_dataset_has_re_read_its_source() -> None:
    first = decide_retrain(OWNER, RETRAINING, DRIFT, None, [], None, NOW)
    assert first.last_retrain is not None
    last = first.last_retrain.to_wire()
    stale = {"status": {"lastCheckedAt": "2026-12-01T07:00:00Z"}}
    waiting = decide_retrain(OWNER, RETRAINING, DRIFT, last, [], stale, NOW + timedelta(seconds=5))
    assert waiting.action == "none"
    assert "waiting for Dataset iris" in waiting.message
    by_token = {
        "status": {"lastCheckedAt": "2026-12-01T07:00:00Z", "refreshToken": "iris-retrain-1"}
    }
    assert (
        decide_retrain(
            OWNER, RETRAINING, DRIFT, last, [], by_token, NOW + timedelta(seconds=5)
        ).action
        == "create"
    )
    fresh = {"status": {"lastCheckedAt": "2026-12-01T08:00:03Z"}}
    create = decide_retrain(OWNER, RETRAINING, DRIFT, last, [], fresh, NOW + timedelta(seconds=5))
    assert create.action == "create"
    assert create.training_job == "iris-retrain-1"
    assert create.last_retrain is not None
    assert create.last_retrain.phase == "Created"
    # A Dataset that never answers does not hold the retrain forever.
    late = decide_retrain(OWNER, RETRAINING, DRIFT, last, [], stale, NOW + REFRESH_WAIT)
    assert late.action == "create"
    # Created before a restart, status not yet written: nothing is created twice.
    exists = decide_retrain(
        OWNER, RETRAINING, DRIFT, last, [job("iris-retrain-1", None)], fresh, NOW
    )
    assert exists.action == "none"
    assert exists.last_retrain is not None
    assert exists.last_retrain.phase == "Created"


def test_no_retrain_while_one_runs_or_within_the_cooldown() -> None:
    created = {"trainingJob": "iris-retrain-1", "at": "2026-12-01T08:00:00Z", "phase": "Created"}
    running = decide_retrain(
        OWNER,
        RETRAINING,
        DRIFT,
        created,
        [job("iris-retrain-1", "Running")],
        None,
        NOW + timedelta(hours=2),
    )
    assert running.action == "none"
    assert "iris-retrain-1 is still running" in running.message
    done = [job("iris-retrain-1", "Succeeded")]
    cooling = decide_retrain(
        OWNER, RETRAINING, DRIFT, created, done, None, NOW + timedelta(minutes=10)
    )
    assert cooling.action == "none"
    assert "cooldown" in cooling.message
    assert cooling.requeue_after == pytest.approx(20 * 60)
    after = decide_retrain(
        OWNER, RETRAINING, DRIFT, created, done, None, NOW + timedelta(minutes=31)
    )
    assert after.action == "refresh"
    assert after.training_job == "iris-retrain-2"


def test_nothing_without_drift_or_with_retraining_off() -> None:
    assert (
        decide_retrain(OWNER, RETRAINING, {"detected": False}, None, [], None, NOW).action == "none"
    )
    assert decide_retrain(OWNER, RETRAINING, None, None, [], None, NOW).action == "none"
    off = spec(retrain={"enabled": False, "template": TEMPLATE})
    assert decide_retrain(OWNER, off, DRIFT, None, [], None, NOW).action == "none"


def test_the_training_job_comes_from_the_template_and_links_back() -> None:
    manifest = build_retrain_training_job(OWNER, RETRAINING, "iris-retrain-3", "drift")
    assert manifest["kind"] == "TrainingJob"
    assert manifest["metadata"]["name"] == "iris-retrain-3"
    assert manifest["metadata"]["labels"]["kubeloop.dev/inferenceservice"] == "iris"
    assert manifest["metadata"]["ownerReferences"][0]["name"] == "iris"
    assert manifest["spec"]["datasetRef"] == {"name": "iris"}
    assert manifest["spec"]["estimator"] == "sklearn.linear_model.LogisticRegression"


def test_a_retrain_compares_with_the_serving_version_by_default() -> None:
    manifest = build_retrain_training_job(OWNER, RETRAINING, "iris-retrain-3", "drift")
    assert manifest["spec"]["evaluation"]["compareTo"] == "serving"
    # The template's own evaluation settings are kept.
    template = TEMPLATE | {"evaluation": {"metric": "f1", "threshold": 0.8, "testSize": 0.3}}
    strict = spec(retrain={"enabled": True, "template": template})
    evaluation = build_retrain_training_job(OWNER, strict, "iris-retrain-4", "drift")["spec"][
        "evaluation"
    ]
    assert evaluation["metric"] == "f1"
    assert evaluation["threshold"] == 0.8
    assert evaluation["testSize"] == 0.3
    assert evaluation["compareTo"] == "serving"
