"""The InferenceService ``status.drift`` body: one sidecar's report merged with everyone else's.

Pure. Every sidecar (each replica, both colours) writes its own report under its Pod's name and
recomputes the aggregate from the fresh reports of the **active** colour (``status.activeColor``)
only, so a preview colour's traffic never triggers a retrain. A report older than `STALE_INTERVALS`
check intervals belongs to a gone pod: it is set to ``null``, which a JSON merge patch deletes.
Schema: docs/design/contracts.md ("Drift status").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

STALE_INTERVALS: Final = 3
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class PodReport:
    """One sidecar's latest view: its hysteresis state and its last judged window."""

    color: str | None
    model_version: str | None
    detected: bool
    score: float | None
    drifted_features: tuple[str, ...]
    samples: int
    accuracy: float | None
    rmse: float | None
    labeled: int
    concept_drift: bool
    streak: int
    checked_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "modelVersion": self.model_version,
            "detected": self.detected,
            "score": self.score,
            "driftedFeatures": list(self.drifted_features),
            "samples": self.samples,
            "accuracy": self.accuracy,
            "rmse": self.rmse,
            "labeled": self.labeled,
            "conceptDrift": self.concept_drift,
            "checkedAt": format_time(self.checked_at),
            "streak": self.streak,
        }


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: Any) -> datetime | None:
    """Parse an RFC 3339 UTC timestamp; ``None`` for anything else."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def is_fresh(report: Any, now: datetime, interval_seconds: float) -> bool:
    """A report is fresh when it is an object whose ``checkedAt`` is at most 3 intervals old."""
    if not isinstance(report, Mapping):
        return False
    checked_at = parse_time(report.get("checkedAt"))
    if checked_at is None:
        return False
    return now - checked_at <= timedelta(seconds=STALE_INTERVALS * interval_seconds)


def build_drift_status(
    status: Mapping[str, Any] | None,
    pod_name: str,
    report: PodReport,
    *,
    now: datetime,
    interval_seconds: float,
    method: str,
    threshold: float,
) -> dict[str, Any]:
    """Return the ``status.drift`` merge-patch body for this pod's new report.

    ``status`` is the InferenceService's status as last read. The result holds this pod's report,
    ``null`` for every stale report, and the aggregate over the fresh reports of the active colour.
    """
    status = status or {}
    drift = status.get("drift")
    previous = drift.get("reports") if isinstance(drift, Mapping) else None
    reports: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
    own = report.to_json()
    reports[pod_name] = own
    patch_reports: dict[str, Any] = {pod_name: own}
    fresh: dict[str, Mapping[str, Any]] = {}
    for name, entry in reports.items():
        if is_fresh(entry, now, interval_seconds):
            fresh[name] = entry
        elif entry is not None:
            patch_reports[name] = None
    active_color = status.get("activeColor")
    active = [entry for entry in fresh.values() if entry.get("color") == active_color]
    return {
        **aggregate(active),
        "method": method,
        "threshold": threshold,
        "checkedAt": format_time(now),
        "reports": patch_reports,
    }


def aggregate(reports: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The service-wide verdict from the active colour's fresh reports."""
    scores = [number for r in reports if (number := _number(r.get("score"))) is not None]
    features = sorted(
        {
            str(name)
            for r in reports
            if isinstance(r.get("driftedFeatures"), list)
            for name in r["driftedFeatures"]
        }
    )
    return {
        "detected": any(r.get("detected") is True for r in reports),
        "score": max(scores) if scores else None,
        "driftedFeatures": features,
        "samples": sum(_count(r.get("samples")) for r in reports),
        "accuracy": _weighted_mean(reports, "accuracy"),
        "rmse": _weighted_rms(reports),
        "conceptDrift": any(r.get("conceptDrift") is True for r in reports),
        "reporters": len(reports),
    }


def _weighted_mean(reports: list[Mapping[str, Any]], key: str) -> float | None:
    pairs = [
        (value, _count(r.get("labeled")))
        for r in reports
        if (value := _number(r.get(key))) is not None and _count(r.get("labeled")) > 0
    ]
    total = sum(weight for _, weight in pairs)
    return sum(value * weight for value, weight in pairs) / total if total else None


def _weighted_rms(reports: list[Mapping[str, Any]]) -> float | None:
    pairs = [
        (value, _count(r.get("labeled")))
        for r in reports
        if (value := _number(r.get("rmse"))) is not None and _count(r.get("labeled")) > 0
    ]
    total = sum(weight for _, weight in pairs)
    if not total:
        return None
    return math.sqrt(sum(value * value * weight for value, weight in pairs) / total)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
