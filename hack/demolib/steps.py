"""The loop's steps as time spans between milestones read from the resources (pure).

A milestone is a named moment: drift injected (the client's clock), the DriftDetected condition's
lastTransitionTime, a Dataset version's observedAt, a TrainingJob's startTime / completionTime, a
ModelVersion's creationTimestamp, a promotion's time, the first answer of the new version seen
through the Service. Steps are the spans between consecutive milestones, so they add up to the
total; a milestone that was not observed folds its span into the next step's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Milestone:
    """A step's end: the step named `step` ends at `at` (None when it was not observed)."""

    step: str
    at: datetime | None


@dataclass(frozen=True)
class Span:
    """One step and how long it took (seconds); `merged` names steps folded into it."""

    step: str
    seconds: float
    merged: tuple[str, ...] = ()


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time as the API server writes it (`2026-12-01T08:00:00Z`, with or without a
    fraction), or None."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def spans(start: datetime, milestones: Sequence[Milestone]) -> list[Span]:
    """The steps from `start` through each observed milestone, in order. A milestone earlier than
    the previous one (timestamps have one-second resolution) gives a zero span, never a negative
    one."""
    result: list[Span] = []
    previous = start
    pending: list[str] = []
    for milestone in milestones:
        if milestone.at is None:
            pending.append(milestone.step)
            continue
        seconds = max(0.0, (milestone.at - previous).total_seconds())
        result.append(Span(milestone.step, seconds, tuple(pending)))
        pending = []
        previous = max(previous, milestone.at)
    return result


def total_seconds(start: datetime, milestones: Sequence[Milestone]) -> float | None:
    """Seconds from `start` to the last milestone, None when it was not observed."""
    if not milestones or milestones[-1].at is None:
        return None
    return (milestones[-1].at - start).total_seconds()


def condition_time(resource: Mapping[str, Any], kind: str, status: str = "True") -> datetime | None:
    """lastTransitionTime of the condition `kind` when it has `status`."""
    for condition in resource.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == status:
            return parse_time(condition.get("lastTransitionTime"))
    return None


def version_observed_at(dataset: Mapping[str, Any], version: str) -> datetime | None:
    """When the Dataset first saw `version` (its history entry)."""
    for entry in dataset.get("status", {}).get("history") or []:
        if entry.get("version") == version:
            return parse_time(entry.get("observedAt"))
    return None


def data_checked_at(dataset: Mapping[str, Any], version: str, after: datetime) -> datetime | None:
    """When the Dataset's refresh for a retrain ended: the new version's observedAt, or, when
    the refresh found the old version again (no new data), its lastCheckedAt."""
    observed = version_observed_at(dataset, version)
    if observed is not None and observed >= after:
        return observed
    checked = parse_time(dataset.get("status", {}).get("lastCheckedAt"))
    return checked if checked is not None and checked >= after else observed


def promoted_at(isvc: Mapping[str, Any], model_version: str) -> datetime | None:
    """When the active Service switched to `model_version` (status.promotions, newest first)."""
    for promotion in isvc.get("status", {}).get("promotions") or []:
        if promotion.get("modelVersion") == model_version:
            return parse_time(promotion.get("at"))
    return None


def drift_to_serving(
    injected: datetime,
    *,
    isvc: Mapping[str, Any],
    dataset: Mapping[str, Any],
    training_job: Mapping[str, Any],
    model_version: Mapping[str, Any],
    serving_seen: datetime | None,
    detected: datetime | None = None,
) -> list[Milestone]:
    """Milestones from drift injected to the retrained version answering through the Service.
    `detected` is the DriftDetected condition's time as seen when drift was reported: read at the
    end, the condition may have flipped again since (on the new version); without it, the
    retrain's start (`status.lastRetrain.at`) marks the detection."""
    tj_status = training_job.get("status", {})
    version_name = model_version.get("metadata", {}).get("name", "")
    retrain_at = parse_time(isvc.get("status", {}).get("lastRetrain", {}).get("at"))
    return [
        Milestone("detect", detected or retrain_at),
        Milestone(
            "profile", data_checked_at(dataset, tj_status.get("datasetVersion", ""), injected)
        ),
        Milestone("train", parse_time(tj_status.get("completionTime"))),
        Milestone(
            "register", parse_time(model_version.get("metadata", {}).get("creationTimestamp"))
        ),
        Milestone("roll out", promoted_at(isvc, version_name)),
        Milestone("switch", serving_seen),
    ]


def trainingjob_to_serving(
    *,
    isvc: Mapping[str, Any],
    training_job: Mapping[str, Any],
    model_version: Mapping[str, Any],
    serving_seen: datetime | None,
) -> tuple[datetime | None, list[Milestone]]:
    """The TrainingJob's creation and the milestones to its model answering through the Service
    (its Dataset already profiled)."""
    tj_status = training_job.get("status", {})
    created = parse_time(training_job.get("metadata", {}).get("creationTimestamp"))
    version_name = model_version.get("metadata", {}).get("name", "")
    return created, [
        Milestone("start", parse_time(tj_status.get("startTime"))),
        Milestone("train", parse_time(tj_status.get("completionTime"))),
        Milestone(
            "register", parse_time(model_version.get("metadata", {}).get("creationTimestamp"))
        ),
        Milestone("roll out", promoted_at(isvc, version_name)),
        Milestone("switch", serving_seen),
    ]


def format_spans(title: str, start: datetime, milestones: Sequence[Milestone]) -> str:
    """`title: 41.2 s = detect 11.0 + profile 5.0 + ...`; unobserved steps are named."""
    total = total_seconds(start, milestones)
    parts = []
    for span in spans(start, milestones):
        name = "+".join([*span.merged, span.step]) if span.merged else span.step
        parts.append(f"{name} {span.seconds:.1f}")
    head = f"{title}: {total:.1f} s" if total is not None else f"{title}: not reached"
    return f"{head} = {' + '.join(parts)}" if parts else head
