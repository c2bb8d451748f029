"""Merging one sidecar's report into the InferenceService status (kubeloop_runtime.drift.status)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubeloop_runtime.drift.status import PodReport, build_drift_status, format_time

NOW = datetime(2026, 11, 23, 19, 0, 0, tzinfo=UTC)
INTERVAL = 30.0


def report(color: str, detected: bool, features: tuple[str, ...] = (), **extra: Any) -> PodReport:
    fields: dict[str, Any] = {
        "color": color,
        "model_version": "3",
        "detected": detected,
        "score": len(features) / 4,
        "drifted_features": features,
        "samples": 1000,
        "accuracy": None,
        "rmse": None,
        "labeled": 0,
        "concept_drift": False,
        "streak": 2 if detected else 0,
        "checked_at": NOW,
    }
    fields.update(extra)
    return PodReport(**fields)


def merged(status: dict[str, Any], pod: str, new: PodReport) -> dict[str, Any]:
    """Apply the patch like a JSON merge patch would, and return the resulting drift object."""
    patch = build_drift_status(
        status, pod, new, now=NOW, interval_seconds=INTERVAL, method="auto", threshold=0.5
    )
    reports = dict((status.get("drift") or {}).get("reports") or {})
    for name, entry in patch["reports"].items():
        if entry is None:
            reports.pop(name, None)
        else:
            reports[name] = entry
    return {**patch, "reports": reports}


def test_two_pods_two_colours_only_the_active_colour_counts() -> None:
    status: dict[str, Any] = {"activeColor": "blue"}
    drift = merged(status, "isvc-green-1", report("green", True, ("a", "b", "c")))
    assert drift["detected"] is False  # green is the preview colour: its verdict never counts
    assert drift["reporters"] == 0
    status["drift"] = drift
    drift = merged(status, "isvc-blue-1", report("blue", False))
    assert set(drift["reports"]) == {"isvc-green-1", "isvc-blue-1"}
    assert drift["detected"] is False
    assert drift["score"] == 0.0
    status["drift"] = drift
    drift = merged(status, "isvc-blue-2", report("blue", True, ("petal length (cm)",)))
    assert drift["detected"] is True
    assert drift["score"] == 0.25
    assert drift["driftedFeatures"] == ["petal length (cm)"]
    assert drift["samples"] == 2000
    assert drift["reporters"] == 2
    assert drift["method"] == "auto"
    assert drift["threshold"] == 0.5
    assert drift["checkedAt"] == "2026-11-23T19:00:00Z"
    # After a promotion the green pod's verdict is the one that counts.
    status = {"activeColor": "green", "drift": drift}
    drift = merged(status, "isvc-green-1", report("green", True, ("a", "b", "c")))
    assert drift["detected"] is True
    assert drift["driftedFeatures"] == ["a", "b", "c"]
    assert drift["reporters"] == 1


def test_stale_and_malformed_reports_are_removed() -> None:
    old = report("blue", True, ("x",), checked_at=NOW - timedelta(seconds=3 * INTERVAL + 1))
    recent = report("blue", False, checked_at=NOW - timedelta(seconds=3 * INTERVAL))
    status = {
        "activeColor": "blue",
        "drift": {
            "reports": {
                "gone-pod": old.to_json(),
                "slow-pod": recent.to_json(),
                "broken-pod": {"color": "blue", "checkedAt": "yesterday"},
            }
        },
    }
    patch = build_drift_status(
        status,
        "me",
        report("blue", False),
        now=NOW,
        interval_seconds=INTERVAL,
        method="ks",
        threshold=0.3,
    )
    assert patch["reports"]["gone-pod"] is None
    assert patch["reports"]["broken-pod"] is None
    assert "slow-pod" not in patch["reports"]  # fresh: left as it is by the merge patch
    assert patch["reports"]["me"]["checkedAt"] == format_time(NOW)
    assert patch["detected"] is False  # the stale drifted report no longer counts
    assert patch["reporters"] == 2


def test_accuracy_is_weighted_by_labels_and_absent_until_labels() -> None:
    status: dict[str, Any] = {"activeColor": "blue"}
    drift = merged(status, "p1", report("blue", False))
    assert drift["accuracy"] is None
    status["drift"] = drift
    drift = merged(status, "p2", report("blue", False, accuracy=0.9, labeled=300))
    status["drift"] = drift
    drift = merged(
        status, "p3", report("blue", False, accuracy=0.5, labeled=100, concept_drift=True)
    )
    assert drift["accuracy"] == 0.8
    assert drift["conceptDrift"] is True


def test_no_active_colour_yet_counts_only_uncoloured_reports() -> None:
    drift = merged({}, "pod", report("blue", True, ("a",)))
    assert drift["detected"] is False
    plain = merged(
        {}, "pod", PodReport(None, None, True, 0.5, ("a",), 10, None, None, 0, False, 2, NOW)
    )
    assert plain["detected"] is True
