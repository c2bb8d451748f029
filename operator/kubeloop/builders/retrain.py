"""Drift → retrain, as one pure decision, and the TrainingJob it creates.

A retrain starts when all hold: `status.drift.detected`, `spec.retrain.enabled` with a template,
no TrainingJob of this InferenceService still running (nor a retrain waiting for its data), and
`spec.retrain.cooldown` passed since the last one. It runs in two steps so that it trains on the
newest data: first the Dataset is asked to re-read its source and `status.lastRetrain` is written
(phase `RefreshingData`: this claims the cooldown slot in the API, so a restarted operator never
starts a second one); then, once the Dataset has checked its source again (its
`status.refreshToken` is the token we set, the TrainingJob's name; or after `REFRESH_WAIT`; or at
once when the Dataset does not exist, since the TrainingJob waits for it), the TrainingJob is
created from `retrain.template` under the name recorded in step one (phase `Created`). Names are
`<isvc>-retrain-<n>`, n counting up per InferenceService.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from kubeloop.api.base import API_VERSION, GROUP
from kubeloop.api.inferenceservice import InferenceServiceSpec, LastRetrain
from kubeloop.api.scalars import parse_duration
from kubeloop.builders.inferenceservice import LABEL_ISVC, Owner, labels, owner_reference

# How long the TrainingJob waits for the Dataset to re-read its source before it starts anyway.
REFRESH_WAIT: Final = timedelta(minutes=2)
ANNOTATION_REFRESH: Final = f"{GROUP}/refresh"
ANNOTATION_RETRAIN_REASON: Final = f"{GROUP}/retrain-reason"
TERMINAL_TRAINING_PHASES: Final = frozenset({"Succeeded", "Rejected", "Failed"})


def retrain_name(isvc: str, number: int) -> str:
    return f"{isvc}-retrain-{number}"


def _number(name: str | None, isvc: str) -> int:
    prefix = f"{isvc}-retrain-"
    if name and name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    return 0


Action = Literal["none", "refresh", "create"]


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    action: Action
    message: str  # why (not), for logs and Events
    last_retrain: LastRetrain | None = None  # to write into status, when it changes
    training_job: str | None = None  # the TrainingJob's name for refresh / create
    dataset: str | None = None  # the Dataset to refresh
    requeue_after: float | None = None


def is_running(training_job: Mapping[str, Any]) -> bool:
    return (training_job.get("status") or {}).get("phase") not in TERMINAL_TRAINING_PHASES


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def decide_retrain(
    owner: Owner,
    spec: InferenceServiceSpec,
    drift: Mapping[str, Any] | None,
    last_retrain: Mapping[str, Any] | None,
    training_jobs: Iterable[Mapping[str, Any]],
    dataset: Mapping[str, Any] | None,
    now: datetime,
) -> RetrainDecision:
    """What to do about drift now. `training_jobs` are those labelled with this InferenceService."""
    jobs = list(training_jobs)
    last = LastRetrain.model_validate(last_retrain) if last_retrain else None
    template = spec.retrain.template
    if last is not None and last.phase == "RefreshingData" and template is not None:
        # Step two of a retrain already decided (possibly before a restart).
        assert last.training_job is not None
        assert last.at is not None
        if any(job["metadata"]["name"] == last.training_job for job in jobs):
            return RetrainDecision(
                "none",
                f"{last.training_job} exists",
                last_retrain=last.model_copy(update={"phase": "Created"}),
            )
        data_status = (dataset or {}).get("status") or {}
        checked = _parse_time(data_status.get("lastCheckedAt"))
        refreshed = data_status.get("refreshToken") == last.training_job or (
            checked is not None and checked >= last.at
        )
        waited = now - last.at
        if dataset is None or refreshed or waited >= REFRESH_WAIT:
            return RetrainDecision(
                "create",
                f"Dataset {template.dataset_ref.name} re-read; starting {last.training_job}",
                last_retrain=last.model_copy(update={"phase": "Created"}),
                training_job=last.training_job,
            )
        return RetrainDecision(
            "none",
            f"waiting for Dataset {template.dataset_ref.name} to re-read its source",
            requeue_after=min(5.0, (REFRESH_WAIT - waited).total_seconds()),
        )
    if not (drift or {}).get("detected"):
        return RetrainDecision("none", "no drift detected")
    if not spec.retrain.enabled or template is None:
        return RetrainDecision("none", "drift detected, but retraining is not enabled")
    running = sorted(job["metadata"]["name"] for job in jobs if is_running(job))
    if running:
        return RetrainDecision("none", f"drift detected; {running[0]} is still running")
    cooldown = parse_duration(spec.retrain.cooldown)
    if last is not None and last.at is not None and now < last.at + cooldown:
        left = last.at + cooldown - now
        return RetrainDecision(
            "none",
            f"drift detected; cooldown {spec.retrain.cooldown} since {last.training_job} has "
            f"{int(left.total_seconds())}s left",
            requeue_after=left.total_seconds(),
        )
    number = 1 + max(
        [_number(last.training_job if last else None, owner.name)]
        + [_number(job["metadata"]["name"], owner.name) for job in jobs]
    )
    name = retrain_name(owner.name, number)
    score = (drift or {}).get("score")
    reason = drift_reason(drift or {})
    return RetrainDecision(
        "refresh",
        f"{reason}: refreshing Dataset {template.dataset_ref.name}, then {name}",
        last_retrain=LastRetrain(
            training_job=name,
            reason=reason[:1024],
            drift_score=score if isinstance(score, int | float) else None,
            at=now,
            phase="RefreshingData",
        ),
        training_job=name,
        dataset=template.dataset_ref.name,
        requeue_after=1.0,
    )


def drift_reason(drift: Mapping[str, Any]) -> str:
    """Why a retrain starts, from `status.drift`: the drifted features, and concept drift (the
    feedback metric fell below the model's own) when the sidecars saw it; concept drift alone
    has no drifted feature, and the reason must not read as if nothing had happened."""
    features = ", ".join(drift.get("driftedFeatures") or ()) or "none named"
    reason = f"drift detected (score {drift.get('score')}, features: {features})"
    if drift.get("conceptDrift"):
        metric = next(
            (f"{key} {drift[key]}" for key in ("accuracy", "rmse") if drift.get(key) is not None),
            "the feedback metric",
        )
        reason += f"; concept drift on feedback ({metric} below the model's held-out score)"
    return reason


def build_refresh_patch(token: str) -> dict[str, Any]:
    """The Dataset metadata patch that asks it to re-read its source (token: a new value)."""
    return {"metadata": {"annotations": {ANNOTATION_REFRESH: token}}}


def build_retrain_training_job(
    owner: Owner, spec: InferenceServiceSpec, name: str, reason: str
) -> dict[str, Any]:
    """The TrainingJob `name` from `spec.retrain.template`, labelled and owned by the service."""
    template = spec.retrain.template
    if template is None:
        raise ValueError("retrain.template is not set")
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": labels(owner, "retrain"),
            "annotations": {ANNOTATION_RETRAIN_REASON: reason[:1024]},
            "ownerReferences": [owner_reference(owner, controller=False)],
        },
        "spec": with_serving_comparison(template.to_wire()),
    }


def with_serving_comparison(spec: dict[str, Any]) -> dict[str, Any]:
    """A retrain replaces what serves: unless the template says otherwise, it must score no
    worse than the serving version (`evaluation.compareTo: serving`)."""
    evaluation = dict(spec.get("evaluation") or {})
    evaluation.setdefault("compareTo", "serving")
    return {**spec, "evaluation": evaluation}


def retrain_selector(owner: Owner) -> str:
    """The label selector of this InferenceService's TrainingJobs."""
    return f"{LABEL_ISVC}={owner.name}"
