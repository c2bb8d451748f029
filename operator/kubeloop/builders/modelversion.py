"""A ModelVersion's verification Job, its alias moves and its status; no I/O.

Verification: a version the operator registered is vouched for by its TrainingJob (same uid as
the ModelVersion's `kubeloop.dev/training-job-uid` annotation, and that run's status names the
same artifact uri and digest, which the runtime computed from the bytes it wrote); it is Ready
without a Job. Any other version (registered by hand, or whose TrainingJob is gone) is verified
by a Job of the runtime's `fetch` with the spec's digest: Ready when it matches, Stalled with
"digest mismatch" when not. Only Ready versions are served.

Aliases are unique per model: an alias newly in this version's `spec.aliases` (not yet in its
`status.aliases`) moves here, and is removed from every other version of the model that holds
it, unless that one also just took it and has the higher version number (a tie the higher
version wins, whichever reconcile runs first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from kubeloop.api import API_VERSION
from kubeloop.builders.common import (
    child_name,
    job_manifest,
    labels,
    pvc_claims,
    pvc_volumes,
    runtime_container,
)
from kubeloop.builders.jobs import STUCK, JobOutcome
from kubeloop.builders.status import Transition, with_transition
from kubeloop.builders.trainingjob import TRAINING_JOB_UID_ANNOTATION
from kubeloop.conditions import conditions_to_wire, set_condition
from kubeloop.settings import OperatorSettings

KIND: Final = "ModelVersion"
CONTAINER: Final = "fetch"
VERIFIED: Final = "Verified"
VERIFY_DEST: Final = "/tmp/verify"

Event = tuple[str, str, str]


def verify_job_name(model_version: Mapping[str, Any]) -> str:
    meta = model_version["metadata"]
    return child_name(meta["name"], "verify", meta["uid"][:8])


def build_verify_job(
    model_version: Mapping[str, Any], settings: OperatorSettings
) -> dict[str, Any]:
    """A Job of the runtime's `fetch`: copy the artifact to scratch space and check its digest."""
    meta, spec = model_version["metadata"], model_version["spec"]
    artifact = spec["artifact"]
    volumes, mounts = pvc_volumes(pvc_claims(artifact["uri"]))
    for mount in mounts:
        mount["readOnly"] = True
    container = runtime_container(
        settings,
        name=CONTAINER,
        args=[
            "fetch",
            "--uri",
            artifact["uri"],
            "--dest",
            VERIFY_DEST,
            "--digest",
            artifact["digest"],
        ],
        volume_mounts=mounts,
        storage_uris=[artifact["uri"]],
    )
    return job_manifest(
        name=verify_job_name(model_version),
        namespace=meta["namespace"],
        owner={"apiVersion": API_VERSION, **model_version},
        labels_=labels(
            name="modelversion",
            instance=meta["name"],
            component="verify",
            extra={"model": spec["modelName"], "model-version": meta["name"]},
        ),
        container=container,
        volumes=volumes,
        backoff_limit=1,
        active_deadline_seconds=settings.profile_deadline_seconds,
        ttl_seconds_after_finished=settings.job_ttl_seconds,
    )


def vouched_by_training_job(
    model_version: Mapping[str, Any], trainingjob: Mapping[str, Any] | None
) -> bool:
    """Whether the TrainingJob that made this version still vouches for its artifact."""
    if trainingjob is None:
        return False
    annotations = model_version["metadata"].get("annotations") or {}
    artifact = (trainingjob.get("status") or {}).get("artifact") or {}
    return bool(
        annotations.get(TRAINING_JOB_UID_ANNOTATION) == trainingjob["metadata"]["uid"]
        and artifact.get("uri") == model_version["spec"]["artifact"]["uri"]
        and artifact.get("digest") == model_version["spec"]["artifact"]["digest"]
    )


# --- aliases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AliasMove:
    """Remove `alias` from `holder` (another version of the model), since it moved here."""

    alias: str
    holder: str
    holder_aliases: tuple[str, ...]
    resource_version: str


def alias_moves(
    model_version: Mapping[str, Any], others: Sequence[Mapping[str, Any]]
) -> list[AliasMove]:
    """The aliases to take away from the other versions of the same model."""
    meta, spec = model_version["metadata"], model_version["spec"]
    mine = set(spec.get("aliases") or ())
    acknowledged = set((model_version.get("status") or {}).get("aliases") or ())
    moves: list[AliasMove] = []
    for other in others:
        other_meta, other_spec = other["metadata"], other["spec"]
        if other_meta["name"] == meta["name"] or other_spec.get("modelName") != spec["modelName"]:
            continue
        held = list(other_spec.get("aliases") or ())
        other_acknowledged = set((other.get("status") or {}).get("aliases") or ())
        for alias in sorted(mine & set(held)):
            if _keeps(alias, other, acknowledged, other_acknowledged, spec, other_spec):
                continue
            held = [item for item in held if item != alias]
            moves.append(
                AliasMove(alias, other_meta["name"], tuple(held), other_meta["resourceVersion"])
            )
    return moves


def alias_patch(move: AliasMove) -> dict[str, Any]:
    """The conditional merge patch that takes the alias away from its holder."""
    return {
        "metadata": {"resourceVersion": move.resource_version},
        "spec": {"aliases": list(move.holder_aliases) or None},
    }


def lost_aliases(model_version: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> set[str]:
    """Aliases in this version's spec that another version of the model took after it (the
    other's reconcile removes them here; until then they do not count as this version's)."""
    meta, spec = model_version["metadata"], model_version["spec"]
    mine = set(spec.get("aliases") or ())
    acknowledged = set((model_version.get("status") or {}).get("aliases") or ())
    lost: set[str] = set()
    for other in others:
        other_spec = other["spec"]
        if (
            other["metadata"]["name"] == meta["name"]
            or other_spec.get("modelName") != spec["modelName"]
        ):
            continue
        other_acknowledged = set((other.get("status") or {}).get("aliases") or ())
        for alias in mine & set(other_spec.get("aliases") or ()):
            if _keeps(alias, other, acknowledged, other_acknowledged, spec, other_spec):
                lost.add(alias)
    return lost


def _keeps(
    alias: str,
    other: Mapping[str, Any],
    acknowledged: set[str],
    other_acknowledged: set[str],
    spec: Mapping[str, Any],
    other_spec: Mapping[str, Any],
) -> bool:
    """Whether `other` keeps an alias both versions' specs hold: the one that took it last
    (not yet acknowledged in its status) keeps it; if neither or both did, the higher version."""
    mine_new, other_new = alias not in acknowledged, alias not in other_acknowledged
    if mine_new != other_new:
        return other_new
    return int(other_spec["version"]) > int(spec["version"])


# --- status ---------------------------------------------------------------------------------


@dataclass
class VersionPlan:
    status: dict[str, Any]
    create_job: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)


def plan_verification(
    model_version: Mapping[str, Any],
    vouched: bool,
    outcome: JobOutcome | None,
    now: datetime,
    settings: OperatorSettings,
) -> VersionPlan:
    """The verification step: trusted, Job to create, running, verified, or refused."""
    status = dict(model_version.get("status") or {})
    generation = int(model_version["metadata"].get("generation") or 1)
    digest = model_version["spec"]["artifact"]["digest"]
    was = status.get("phase")

    def conclude(transition: Transition, verified: bool, verified_reason: str) -> dict[str, Any]:
        result = with_transition(status, transition, now=now, generation=generation)
        result["conditions"] = conditions_to_wire(
            set_condition(
                result.get("conditions"),
                VERIFIED,
                "True" if verified else "False",
                verified_reason,
                transition.message,
                now=now,
                generation=generation,
            )
        )
        return result

    if was in ("Ready", "Failed") and status.get("observedGeneration") is not None:
        # Verification is once per version (the artifact is immutable); keep the verdict.
        kept = _kept_transition(status)
        return VersionPlan(conclude(kept, was == "Ready", _verified_reason(status)))
    if vouched:
        message = f"artifact {digest} vouched for by TrainingJob (digest computed when written)"
        transition = Transition("Ready", "ready", "RegisteredByTrainingJob", message)
        new = conclude(transition, True, "RegisteredByTrainingJob")
        return VersionPlan(new, events=[("Normal", "Ready", message)])
    job = build_verify_job(model_version, settings)
    job_name = job["metadata"]["name"]
    if outcome is None or outcome.state == "running":
        message = f"verifying the artifact's digest in Job {job_name}"
        reason = "Verifying"
        events: list[Event] = []
        if outcome is not None and outcome.stuck:
            reason, message = STUCK, f"verify Job {job_name} does not start: {outcome.stuck}"
            ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
            if not ready or ready[0].get("reason") != STUCK:
                events.append(("Warning", STUCK, message))
        transition = Transition("Pending", "reconciling", reason, message)
        new = conclude(transition, False, reason)
        new["verifyJob"] = job_name
        create = None
        if outcome is None:
            create = job
            events.append(("Normal", "Verifying", message))
        return VersionPlan(new, create, events)
    if outcome.state == "succeeded" and outcome.result.get("ok"):
        message = f"artifact fetched and its digest {digest} checked by Job {job_name}"
        transition = Transition("Ready", "ready", "Verified", message)
        return VersionPlan(
            conclude(transition, True, "Verified"), events=[("Normal", "Ready", message)]
        )
    if "digest mismatch" in outcome.message:
        reason = "DigestMismatch"
        message = (
            f"digest mismatch: {outcome.message}. This version is never served; register the "
            "artifact's real digest in a new ModelVersion"
        )
    else:
        reason = "ArtifactUnavailable"
        message = f"{outcome.reason}: {outcome.message}. This version is never served"
    transition = Transition("Failed", "stalled", reason, message)
    return VersionPlan(conclude(transition, False, reason), events=[("Warning", reason, message)])


def _kept_transition(status: Mapping[str, Any]) -> Transition:
    ready = (
        next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None) or {}
    )
    phase = str(status["phase"])
    return Transition(
        phase,
        "ready" if phase == "Ready" else "stalled",
        str(ready.get("reason") or "Verified"),
        str(ready.get("message") or status.get("message") or ""),
    )


def _verified_reason(status: Mapping[str, Any]) -> str:
    verified = (
        next((c for c in status.get("conditions") or () if c.get("type") == VERIFIED), None) or {}
    )
    return str(verified.get("reason") or "Verified")


def alias_holder(versions: Sequence[Mapping[str, Any]], alias: str) -> Mapping[str, Any] | None:
    """The version an alias points at, by the rule the operator moves it with: among versions
    whose `spec.aliases` hold it, the one that took it last (not yet in its `status.aliases`),
    else the highest version. For resolvers of `model.alias`: right during a move, too."""
    holders = [item for item in versions if alias in (item["spec"].get("aliases") or ())]
    winner: Mapping[str, Any] | None = None
    for candidate in holders:
        if winner is None:
            winner = candidate
            continue
        mine = set((winner.get("status") or {}).get("aliases") or ())
        theirs = set((candidate.get("status") or {}).get("aliases") or ())
        if _keeps(alias, candidate, mine, theirs, winner["spec"], candidate["spec"]):
            winner = candidate
    return winner
