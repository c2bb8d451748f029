"""The TrainingJob's train Job and terminal status as built (no cluster): the baseline for
`evaluation.compareTo: serving` and a lost comparison's Rejected status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kubeloop.api.trainingjob import TrainingJobStatus
from kubeloop.builders.jobs import JobOutcome
from kubeloop.builders.trainingjob import (
    Baseline,
    baseline_message,
    build_training_job,
    finished_status,
    serving_baseline,
)
from kubeloop.settings import OperatorSettings

SETTINGS = OperatorSettings(runtime_image="kubeloop-runtime:dev")
NOW = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64
DATASET = {"source": {"uri": "pvc://data/iris.csv", "format": "csv"}, "target": "target"}


def trainingjob(compare: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    evaluation: dict[str, Any] = {"metric": "accuracy", "threshold": 0.8, "testSize": 0.2}
    if compare:
        evaluation["compareTo"] = "serving"
    return {
        "kind": "TrainingJob",
        "metadata": {
            "name": "iris-retrain-2",
            "namespace": "ml",
            "uid": "abcdef12-3456",
            "generation": 1,
            "labels": labels or {},
        },
        "spec": {
            "datasetRef": {"name": "iris"},
            "modelName": "iris",
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "evaluation": evaluation,
        },
    }


def model_version(name: str, uri: str, model: str = "iris") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"modelName": model, "artifact": {"uri": uri, "digest": DIGEST}},
    }


def isvc(name: str, active: str | None, model: str = "iris") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"model": {"name": model}},
        "status": {"activeModelVersion": active} if active else {},
    }


VERSIONS = [
    model_version("iris-v1", "pvc://kubeloop-artifacts/models/iris/a/"),
    model_version("iris-v3", "pvc://old-store/models/iris/c/"),
    model_version("wine-v1", "pvc://kubeloop-artifacts/models/wine/a/", model="wine"),
]


def config_of(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    value = next(e["value"] for e in container["env"] if e["name"] == "KUBELOOP_CONFIG")
    return dict(json.loads(value))


def test_the_serving_version_becomes_the_baseline_and_its_claim_is_mounted() -> None:
    tj = trainingjob()
    baseline = serving_baseline(tj, [isvc("iris", "iris-v3")], VERSIONS)
    assert baseline == Baseline(
        uri="pvc://old-store/models/iris/c/",
        digest=DIGEST,
        version="iris-v3",
        inference_service="iris",
    )
    job = build_training_job(tj, DATASET, SETTINGS, baseline)
    evaluation = config_of(job)["evaluation"]
    assert evaluation["compareTo"] == "serving"
    assert evaluation["baseline"] == {
        "uri": "pvc://old-store/models/iris/c/",
        "digest": DIGEST,
        "version": "iris-v3",
    }
    pod = job["spec"]["template"]["spec"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["data", "kubeloop-artifacts", "old-store"]
    mounts = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    assert "/mnt/pvc/old-store" in mounts
    assert baseline_message(tj, baseline) == (
        "comparing with iris-v3, served by InferenceService iris, on the same held-out rows"
    )


def test_a_baseline_on_the_output_claim_mounts_it_once() -> None:
    tj = trainingjob()
    baseline = serving_baseline(tj, [isvc("iris", "iris-v1")], VERSIONS)
    assert baseline is not None
    pod = build_training_job(tj, DATASET, SETTINGS, baseline)["spec"]["template"]["spec"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["data", "kubeloop-artifacts"]


def test_the_inference_service_that_started_a_retrain_is_preferred() -> None:
    services = [isvc("a-canary", "iris-v1"), isvc("iris", "iris-v3")]
    started = trainingjob(labels={"kubeloop.dev/inferenceservice": "iris"})
    preferred = serving_baseline(started, services, VERSIONS)
    assert preferred is not None
    assert preferred.version == "iris-v3"
    # Otherwise the first by name, so the choice does not depend on the list order.
    first = serving_baseline(trainingjob(), services[::-1], VERSIONS)
    assert first is not None
    assert first.version == "iris-v1"


def test_nothing_serving_means_no_baseline_and_the_message_says_so() -> None:
    tj = trainingjob()
    services = [
        isvc("pending", None),  # no active version yet
        isvc("gone", "iris-v9"),  # names a ModelVersion that does not exist
        isvc("wine", "wine-v1", model="wine"),  # another model
    ]
    assert serving_baseline(tj, services, VERSIONS) is None
    job = build_training_job(tj, DATASET, SETTINGS, None)
    evaluation = config_of(job)["evaluation"]
    assert evaluation["compareTo"] == "serving"
    assert "baseline" not in evaluation
    message = baseline_message(tj, None)
    assert "no InferenceService serves a ModelVersion of iris" in message
    assert "without a baseline" in message


def test_without_compare_to_no_baseline_is_passed() -> None:
    tj = trainingjob(compare=False)
    baseline = Baseline("pvc://old-store/m/", DIGEST, "iris-v3", "iris")
    job = build_training_job(tj, DATASET, SETTINGS, baseline)
    assert "baseline" not in config_of(job)["evaluation"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert "old-store" not in claims


COMPARISON = {
    "metric": "accuracy",
    "candidate": 0.8125,
    "baseline": 0.9333,
    "baselineVersion": "iris-v3",
    "passed": False,
    "testRows": 30,
}


def result(gate_passed: bool, comparison: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "kind": "train",
        "passed": False,
        "reason": "GateFailed" if not gate_passed else "ComparisonFailed",
        "message": "runtime's own message",
        "metrics": {"accuracy": comparison["candidate"]},
        "gate": {
            "metric": "accuracy",
            "value": comparison["candidate"],
            "threshold": 0.8 if gate_passed else 0.9,
            "passed": gate_passed,
        },
        "comparison": comparison,
        "artifact": {"uri": "pvc://kubeloop-artifacts/models/iris/x/", "digest": DIGEST},
    }


def test_a_lost_comparison_is_rejected_with_both_scores() -> None:
    outcome = JobOutcome(
        "failed", result=result(True, COMPARISON), reason="ComparisonFailed", exit_code=3
    )
    plan = finished_status(trainingjob(), outcome, None, NOW)
    status = plan.status
    assert status["phase"] == "Rejected"
    message = status["rejectedReason"]
    assert "accuracy 0.8125 is worse than 0.9333 of the serving version iris-v3" in message
    assert "30 held-out rows" in message
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "ComparisonFailed"
    assert stalled["message"] == message
    assert status["comparison"] == COMPARISON
    assert plan.events == [("Warning", "Rejected", message)]
    TrainingJobStatus.model_validate(status)  # the CRD's status schema accepts it


def test_a_missed_gate_that_also_lost_names_both() -> None:
    outcome = JobOutcome("failed", result=result(False, COMPARISON), reason="GateFailed")
    status = finished_status(trainingjob(), outcome, None, NOW).status
    assert status["phase"] == "Rejected"
    assert "below the threshold 0.9" in status["rejectedReason"]
    assert "worse than 0.9333 of the serving version iris-v3" in status["rejectedReason"]
    assert next(c for c in status["conditions"] if c["type"] == "Stalled")["reason"] == (
        "GateFailed"
    )


def test_a_won_comparison_without_baseline_is_kept_in_a_registered_status() -> None:
    alone = {
        "metric": "accuracy",
        "candidate": 0.95,
        "baseline": None,
        "baselineVersion": None,
        "passed": True,
        "testRows": 30,
    }
    passing = result(True, alone) | {"passed": True, "reason": ""}
    outcome = JobOutcome("succeeded", result=passing)
    status = finished_status(trainingjob(), outcome, "iris-v4", NOW).status
    assert status["phase"] == "Succeeded"
    assert status["comparison"] == {
        "metric": "accuracy",
        "candidate": 0.95,
        "passed": True,
        "testRows": 30,
    }
    TrainingJobStatus.model_validate(status)
