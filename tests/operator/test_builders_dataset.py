"""The Dataset's plan: checks keyed by generation, refresh slot and token; success, retries with
backoff then Stalled for an unreachable source, Stalled at once for invalid data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeloop.builders.dataset import (
    DatasetObservation,
    build_profile_job,
    check_key,
    parse_duration,
    plan_dataset,
    refresh_slot,
)
from kubeloop.builders.jobs import JobOutcome, job_outcome
from kubeloop.conditions import find_condition
from kubeloop.settings import OperatorSettings

SETTINGS = OperatorSettings(
    runtime_image="kubeloop-runtime:dev",
    retry_base_seconds=5,
    retry_max_seconds=60,
    unreachable_timeout_seconds=100,
)
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def dataset(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "uid": "uid-1",
            "generation": 1,
            "creationTimestamp": "2026-12-01T08:00:00Z",
            "annotations": spec.pop("annotations", {}),
        },
        "spec": {"source": {"uri": "builtin://iris"}, "target": "target", **spec},
        "status": status or {},
    }


def profile_result(digest: str = DIGEST_A, rows: int = 150) -> dict[str, Any]:
    return {
        "ok": True,
        "kind": "profile",
        "digest": digest,
        "rows": rows,
        "target": "target",
        "columns": [{"name": "x", "type": "number"}, {"name": "target", "type": "number"}],
        "profile": {"schemaVersion": 1, "rows": rows, "features": {"x": {"kind": "numeric"}}},
        "profileUri": "pvc://kubeloop-artifacts/datasets/iris/g1-s0/profile.json",
    }


def run(ds: dict[str, Any], outcome: JobOutcome | None, now: datetime) -> Any:
    plan = plan_dataset(DatasetObservation(ds, outcome, now), SETTINGS)
    ds["status"] = plan.status
    return plan


def ready(status: dict[str, Any]) -> Any:
    return find_condition(status.get("conditions"), "Ready")


def test_durations_slots_and_keys() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1.5h") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(None) is None
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1 hour")
    assert refresh_slot(T0, T0 + timedelta(minutes=59), 3600) == 0
    assert refresh_slot(T0, T0 + timedelta(minutes=61), 3600) == 1
    assert refresh_slot(T0, T0 + timedelta(days=3), None) == 0
    assert check_key(2, 0, None) == "g2-s0"
    assert check_key(2, 0, "t1") != check_key(2, 0, "t2")


def test_profile_job_passes_the_spec_through_and_mounts_claims() -> None:
    ds = dataset(source={"uri": "pvc://data/iris.csv"})
    job = build_profile_job(ds, "g1-s0", 1, SETTINGS)
    assert job["metadata"]["name"] == "iris-profile-g1-s0-a1"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["profile"]
    config = json.loads(container["env"][0]["value"])
    assert config["dataset"]["source"] == {"uri": "pvc://data/iris.csv"}
    assert config["output"] == {"uri": "pvc://kubeloop-artifacts/datasets/iris/g1-s0"}
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/mnt/pvc/data", "/mnt/pvc/kubeloop-artifacts"} <= mounts


def test_first_check_profiles_then_becomes_ready_with_history() -> None:
    ds = dataset()
    started = run(ds, None, T0)
    assert started.create_job["metadata"]["name"] == "iris-profile-g1-s0-a1"
    assert ds["status"]["phase"] == "Profiling"
    assert ds["status"]["check"]["result"] == "Running"
    # A second reconcile before the Job finished creates nothing new.
    waiting = run(ds, JobOutcome("running"), T0 + timedelta(seconds=1))
    assert waiting.create_job is None
    done = run(
        ds,
        JobOutcome("succeeded", profile_result(), finished_at="2026-12-01T08:00:05Z"),
        T0 + timedelta(seconds=6),
    )
    status = ds["status"]
    assert status["phase"] == "Ready"
    assert ready(status).status == "True"
    assert status["version"] == DIGEST_A
    assert status["features"] == [{"name": "x", "type": "number"}]
    assert status["history"] == [
        {"version": DIGEST_A, "rows": 150, "observedAt": "2026-12-01T08:00:05Z"}
    ]
    assert status["lastCheckedAt"] == "2026-12-01T08:00:05Z"
    assert status["profileUri"].endswith("profile.json")
    assert [event[1] for event in done.events] == ["Ready"]
    assert done.requeue_after is None  # read once without refreshInterval
    # Nothing left to do: the same observation plans nothing.
    again = run(ds, None, T0 + timedelta(hours=5))
    assert again.create_job is None
    assert again.events == []


def test_refresh_interval_rereads_and_records_a_new_version() -> None:
    ds = dataset(refreshInterval="1h")
    run(ds, None, T0)
    done = run(ds, JobOutcome("succeeded", profile_result(DIGEST_A)), T0 + timedelta(seconds=5))
    assert done.requeue_after == pytest.approx(3600 - 5)
    refresh = run(ds, None, T0 + timedelta(hours=1, seconds=1))
    assert refresh.create_job["metadata"]["name"] == "iris-profile-g1-s1-a1"
    assert ds["status"]["phase"] == "Ready"  # the current version stays usable meanwhile
    changed = run(
        ds,
        JobOutcome("succeeded", profile_result(DIGEST_B, 160), finished_at="2026-12-01T09:00:09Z"),
        T0 + timedelta(hours=1, seconds=10),
    )
    assert ds["status"]["version"] == DIGEST_B
    assert [entry["version"] for entry in ds["status"]["history"]] == [DIGEST_B, DIGEST_A]
    assert changed.events == [
        ("Normal", "DataVersionChanged", f"{DIGEST_A} → {DIGEST_B} (160 rows)")
    ]
    # The same digest again adds no history entry and no event.
    run(ds, None, T0 + timedelta(hours=2, seconds=1))
    same = run(
        ds,
        JobOutcome("succeeded", profile_result(DIGEST_B, 160)),
        T0 + timedelta(hours=2, seconds=5),
    )
    assert len(ds["status"]["history"]) == 2
    assert same.events == []


def test_the_refresh_annotation_starts_a_check_and_is_answered() -> None:
    ds = dataset()
    run(ds, None, T0)
    run(ds, JobOutcome("succeeded", profile_result()), T0 + timedelta(seconds=5))
    ds["metadata"]["annotations"] = {"kubeloop.dev/refresh": "retrain-1"}
    refresh = run(ds, None, T0 + timedelta(minutes=1))
    assert refresh.create_job is not None
    assert "refreshToken" not in ds["status"]
    run(ds, JobOutcome("succeeded", profile_result()), T0 + timedelta(minutes=2))
    assert ds["status"]["refreshToken"] == "retrain-1"


def test_invalid_data_stalls_at_once_with_the_failing_rule() -> None:
    ds = dataset()
    run(ds, None, T0)
    message = "column 'x': 3 values above max 10"
    plan = run(
        ds,
        JobOutcome("failed", {"ok": False, "reason": "SchemaError"}, "SchemaError", message),
        T0 + timedelta(seconds=5),
    )
    status = ds["status"]
    assert status["phase"] == "Failed"
    stalled = find_condition(status["conditions"], "Stalled")
    assert stalled is not None
    assert stalled.reason == "InvalidData"
    assert message in stalled.message
    assert ready(status).status == "False"
    assert plan.create_job is None
    assert plan.events[0][:2] == ("Warning", "InvalidData")


def test_unreachable_source_retries_with_backoff_then_stalls() -> None:
    ds = dataset(source={"uri": "https://127.0.0.1:9/iris.csv"})
    now = T0
    run(ds, None, now)
    attempts = 1
    failure = JobOutcome("failed", {"ok": False}, "StorageError", "connection refused")
    while True:
        now += timedelta(seconds=3)
        plan = run(ds, JobOutcome(**{**failure.__dict__, "finished_at": None}), now)
        if ds["status"]["phase"] == "Failed":
            break
        assert find_condition(ds["status"]["conditions"], "Reconciling").reason == (
            "SourceUnreachable"
        )
        assert plan.requeue_after == min(60, 5 * 2 ** (attempts - 1))
        ds["status"]["lastCheckedAt"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        too_early = run(ds, None, now + timedelta(seconds=1))
        assert too_early.create_job is None
        now += timedelta(seconds=plan.requeue_after)
        retry = run(ds, None, now)
        attempts += 1
        assert retry.create_job["metadata"]["name"].endswith(f"-a{attempts}")
    stalled = find_condition(ds["status"]["conditions"], "Stalled")
    assert stalled.reason == "SourceUnreachable"
    assert "connection refused" in stalled.message
    assert 3 <= attempts <= 6
    assert run(ds, None, now + timedelta(hours=1)).create_job is None  # stays Stalled


def test_job_outcome_reads_the_termination_message() -> None:
    job = {
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]
        }
    }
    message = json.dumps({"ok": False, "kind": "train", "reason": "DatasetError", "message": "no"})
    pod = {
        "status": {
            "containerStatuses": [
                {
                    "name": "train",
                    "state": {"terminated": {"exitCode": 4, "message": message, "finishedAt": "t"}},
                }
            ]
        }
    }
    outcome = job_outcome(job, [pod], "train")
    assert (outcome.state, outcome.reason, outcome.message, outcome.exit_code) == (
        "failed",
        "DatasetError",
        "no",
        4,
    )
    assert job_outcome({"status": {}}, [], "train").state == "running"
    deadline = {
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "m"}
            ]
        }
    }
    assert job_outcome(deadline, [], "train").reason == "DeadlineExceeded"
