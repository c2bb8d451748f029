"""Loop steps from resource timestamps (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from demolib import steps

T0 = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_parse_time_reads_the_api_servers_forms() -> None:
    assert steps.parse_time("2026-12-01T08:00:00Z") == T0
    assert steps.parse_time("2026-12-01T08:00:00.250000Z") == T0 + timedelta(seconds=0.25)
    assert steps.parse_time(None) is None
    assert steps.parse_time("") is None


def test_spans_add_up_to_the_total_and_fold_unobserved_steps_into_the_next() -> None:
    milestones = [
        steps.Milestone("detect", T0 + timedelta(seconds=10)),
        steps.Milestone("profile", None),
        steps.Milestone("train", T0 + timedelta(seconds=25)),
        steps.Milestone("switch", T0 + timedelta(seconds=24)),  # 1-s resolution: never negative
    ]
    spans = steps.spans(T0, milestones)
    assert [(s.step, s.seconds, s.merged) for s in spans] == [
        ("detect", 10.0, ()),
        ("train", 15.0, ("profile",)),
        ("switch", 0.0, ()),
    ]
    assert steps.total_seconds(T0, milestones) == 24.0
    assert steps.total_seconds(T0, [steps.Milestone("x", None)]) is None
    text = steps.format_spans("drift → serving", T0, milestones)
    assert text == "drift → serving: 24.0 s = detect 10.0 + profile+train 15.0 + switch 0.0"


def resources() -> dict[str, dict]:
    return {
        "isvc": {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": at(1)},
                    {"type": "DriftDetected", "status": "True", "lastTransitionTime": at(12)},
                ],
                "lastRetrain": {"trainingJob": "iris-retrain-1", "at": at(13)},
                "promotions": [
                    {"modelVersion": "iris-v2", "color": "green", "at": at(40)},
                    {"modelVersion": "iris-v1", "color": "blue", "at": at(-60)},
                ],
            }
        },
        "dataset": {
            "status": {
                "history": [
                    {"version": "sha256:new", "rows": 8300, "observedAt": at(18)},
                    {"version": "sha256:old", "rows": 150, "observedAt": at(-100)},
                ]
            }
        },
        "tj": {
            "metadata": {"creationTimestamp": at(13)},
            "status": {
                "datasetVersion": "sha256:new",
                "startTime": at(19),
                "completionTime": at(27),
            },
        },
        "mv": {"metadata": {"name": "iris-v2", "creationTimestamp": at(28)}},
    }


def test_drift_to_serving_reads_each_milestone_from_its_resource() -> None:
    r = resources()
    milestones = steps.drift_to_serving(
        T0,
        isvc=r["isvc"],
        dataset=r["dataset"],
        training_job=r["tj"],
        model_version=r["mv"],
        serving_seen=T0 + timedelta(seconds=41.5),
        detected=steps.condition_time(r["isvc"], "DriftDetected"),
    )
    assert [(s.step, s.seconds) for s in steps.spans(T0, milestones)] == [
        ("detect", 12.0),
        ("profile", 6.0),
        ("train", 9.0),
        ("register", 1.0),
        ("roll out", 12.0),
        ("switch", 1.5),
    ]


def test_detect_falls_back_to_the_retrain_time_without_the_detection_time() -> None:
    r = resources()
    milestones = steps.drift_to_serving(
        T0,
        isvc=r["isvc"],
        dataset=r["dataset"],
        training_job=r["tj"],
        model_version=r["mv"],
        serving_seen=None,
    )
    assert milestones[0] == steps.Milestone("detect", T0 + timedelta(seconds=13))
    assert milestones[-1].at is None


def test_trainingjob_to_serving_starts_at_the_trainingjobs_creation() -> None:
    r = resources()
    created, milestones = steps.trainingjob_to_serving(
        isvc=r["isvc"], training_job=r["tj"], model_version=r["mv"], serving_seen=None
    )
    assert created == T0 + timedelta(seconds=13)
    assert [m.step for m in milestones] == ["start", "train", "register", "roll out", "switch"]
    assert steps.promoted_at(r["isvc"], "iris-v9") is None


def test_profile_ends_at_the_refresh_check_when_the_data_did_not_change() -> None:
    r = resources()
    r["tj"]["status"]["datasetVersion"] = "sha256:old"
    r["dataset"]["status"]["lastCheckedAt"] = at(17)
    assert steps.data_checked_at(r["dataset"], "sha256:old", T0) == T0 + timedelta(seconds=17)
    assert steps.data_checked_at(r["dataset"], "sha256:new", T0) == T0 + timedelta(seconds=18)
    del r["dataset"]["status"]["lastCheckedAt"]
    assert steps.data_checked_at(r["dataset"], "sha256:old", T0) == T0 - timedelta(seconds=100)
