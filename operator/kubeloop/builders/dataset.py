"""The Dataset's profile Job and its status, decided from what was observed; no I/O.

A check is one read of the source, keyed by the generation, the refresh slot (with
`refreshInterval`, slot k starts at creation + k x interval) and the `kubeloop.dev/refresh`
annotation's token. Each attempt of a check is one Job with a deterministic name
(`<dataset>-profile-<key>-a<attempt>`), so a reconcile that crashed after creating it finds it
again. `status.check` records the key, the attempt and its result, so a restarted operator knows
what is done, even after the Job's TTL removed it.

Outcomes: the runtime's `profile` result makes the Dataset Ready with version (the content digest),
rows, features, profile, a history entry per new digest and, for a folder, the manifest of the files
that version was read from (the TrainingJob pins it, so it trains on those files). A source that
cannot be read (StorageError, or a crash) is retried with exponential backoff and the Dataset is
Reconciling; after `unreachable_timeout_seconds` it is Stalled until the spec changes, a refresh is
asked for, or the next refresh slot. Invalid data (SchemaError, DatasetError, ConfigError) is
Stalled at once, with the runtime's message naming the failing rule.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from kubeloop.api import API_VERSION, scalars
from kubeloop.builders.common import (
    child_name,
    job_manifest,
    labels,
    pvc_claims,
    pvc_volumes,
    runtime_container,
)
from kubeloop.builders.jobs import STUCK, JobOutcome
from kubeloop.builders.status import Transition, parse_time, timestamp, with_transition
from kubeloop.settings import OperatorSettings

KIND: Final = "Dataset"
CONTAINER: Final = "profile"
REFRESH_ANNOTATION: Final = "kubeloop.dev/refresh"
# Failures a retry can cure: the source could not be read, or the runtime crashed.
RETRYABLE_REASONS: Final = frozenset(
    {"StorageError", "InternalError", "DeadlineExceeded", "BackoffLimitExceeded", "JobFailed"}
)

Event = tuple[str, str, str]  # type, reason, message


def parse_duration(text: str | None) -> float | None:
    """Seconds in a duration such as `90s`, `1h30m`, `1.5h`; None for None."""
    return scalars.parse_duration(text).total_seconds() if text else None


def refresh_slot(created: datetime, now: datetime, interval: float | None) -> int:
    """Which refresh slot `now` is in (0 without an interval)."""
    if not interval:
        return 0
    return max(int((now - created).total_seconds() // interval), 0)


def check_key(generation: int, slot: int, token: str | None) -> str:
    """The key of the check the Dataset needs now."""
    key = f"g{generation}-s{slot}"
    if token:
        key += "-" + hashlib.sha256(token.encode()).hexdigest()[:8]
    return key


def profile_job_name(dataset: str, key: str, attempt: int) -> str:
    return child_name(dataset, "profile", key, f"a{attempt}")


def store_folder(store: str, *parts: str) -> str:
    """`<store>/<parts...>` with exactly one `/` between the pieces."""
    return "/".join([store.rstrip("/"), *(part.strip("/") for part in parts)])


def profile_config(spec: Mapping[str, Any], output_uri: str) -> dict[str, Any]:
    """The runtime's profile configuration: the Dataset spec passed through, and where the full
    profile goes (docs/design/contracts.md, "Runtime configuration")."""
    return {"dataset": dict(spec), "output": {"uri": output_uri}}


def build_profile_job(
    dataset: Mapping[str, Any], key: str, attempt: int, settings: OperatorSettings
) -> dict[str, Any]:
    """The profile Job of one attempt of one check."""
    meta = dataset["metadata"]
    spec = dataset["spec"]
    name = profile_job_name(meta["name"], key, attempt)
    output = store_folder(settings.artifact_store, "datasets", meta["name"], key)
    claims = pvc_claims(spec["source"]["uri"], output)
    volumes, mounts = pvc_volumes(claims)
    config = json.dumps(profile_config(spec, output), separators=(",", ":"), sort_keys=True)
    container = runtime_container(
        settings,
        name=CONTAINER,
        args=["profile"],
        env=[{"name": "KUBELOOP_CONFIG", "value": config}],
        volume_mounts=mounts,
        storage_uris=[spec["source"]["uri"], output],
    )
    job_labels = labels(
        name="dataset",
        instance=meta["name"],
        component="profile",
        extra={"dataset": meta["name"], "check": key},
    )
    return job_manifest(
        name=name,
        namespace=meta["namespace"],
        owner={"apiVersion": API_VERSION, **dataset},
        labels_=job_labels,
        container=container,
        volumes=volumes,
        backoff_limit=1,
        active_deadline_seconds=settings.profile_deadline_seconds,
        ttl_seconds_after_finished=settings.job_ttl_seconds,
        annotations={"kubeloop.dev/attempt": str(attempt)},
    )


@dataclass(frozen=True)
class DatasetObservation:
    """Everything the decision needs: the Dataset, the outcome of the Job `status.check`
    names (None when that Job does not exist), and the time."""

    dataset: Mapping[str, Any]
    job_outcome: JobOutcome | None
    now: datetime


@dataclass
class DatasetPlan:
    """What to do: a Job to create, the status to write, Events to emit, when to look again."""

    status: dict[str, Any]
    create_job: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def _features(result: Mapping[str, Any]) -> list[dict[str, str]]:
    target = result.get("target")
    return [
        {"name": str(column["name"]), "type": str(column["type"])}
        for column in result.get("columns") or ()
        if column.get("name") != target
    ]


_DIGEST: Final = re.compile(r"^sha256:[a-f0-9]{64}$")


def result_manifest(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The profile result's folder manifest for `status.manifest`, or None (not a folder, or a
    manifest the termination message trimmed past use). Entries are kept only when all are
    there; without them `uri` must be, since train needs one or the other."""
    manifest = result.get("manifest")
    if not isinstance(manifest, Mapping):
        return None
    digest, files, uri = manifest.get("digest"), manifest.get("files"), manifest.get("uri")
    if not (isinstance(digest, str) and _DIGEST.match(digest)) or not isinstance(files, int):
        return None
    entries = manifest.get("entries")
    kept: dict[str, Any] = {"digest": digest, "files": files}
    if isinstance(uri, str) and uri and not uri.endswith("…"):
        kept["uri"] = uri
    if (
        isinstance(entries, list)
        and len(entries) == files
        and all(
            isinstance(entry, Mapping)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("size"), int)
            and isinstance(entry.get("digest"), str)
            and _DIGEST.match(entry["digest"])
            for entry in entries
        )
    ):
        kept["entries"] = [
            {"path": entry["path"], "size": entry["size"], "digest": entry["digest"]}
            for entry in entries
        ]
    if "uri" not in kept and "entries" not in kept:
        return None
    return kept


def _history(
    history: Sequence[Mapping[str, Any]] | None,
    version: str,
    rows: int,
    observed_at: str,
    limit: int,
) -> list[dict[str, Any]]:
    entries = [dict(item) for item in history or ()]
    if entries and entries[0].get("version") == version:
        return entries[:limit]
    return [{"version": version, "rows": rows, "observedAt": observed_at}, *entries][:limit]


def plan_dataset(observed: DatasetObservation, settings: OperatorSettings) -> DatasetPlan:
    """Decide the profile Job, the status and the Events for one Dataset."""
    dataset, now = observed.dataset, observed.now
    meta, spec = dataset["metadata"], dataset["spec"]
    status: dict[str, Any] = dict(dataset.get("status") or {})
    generation = int(meta.get("generation") or 1)
    token = (meta.get("annotations") or {}).get(REFRESH_ANNOTATION) or None
    created = parse_time(meta.get("creationTimestamp")) or now
    try:
        interval = parse_duration(spec.get("refreshInterval"))
    except ValueError as error:
        transition = Transition("Failed", "stalled", "InvalidSpec", str(error))
        return DatasetPlan(with_transition(status, transition, now=now, generation=generation))
    slot = refresh_slot(created, now, interval)
    key = check_key(generation, slot, token)
    next_slot_in = (
        (created + timedelta(seconds=interval * (slot + 1)) - now).total_seconds()
        if interval
        else None
    )
    check = dict(status.get("check") or {})
    was_ready = status.get("phase") == "Ready" and status.get("observedGeneration") == generation

    if check.get("key") != key:
        return _start_check(dataset, status, key, 1, now, generation, was_ready, settings)

    attempt = int(check.get("attempt") or 1)
    result = check.get("result")
    if result in ("Succeeded", "Failed"):
        return DatasetPlan(status, requeue_after=next_slot_in)
    outcome = observed.job_outcome
    if result == "Retrying":
        failed_at = parse_time(status.get("lastCheckedAt")) or now
        due = failed_at + timedelta(seconds=_backoff(attempt, settings))
        if now >= due:
            return _start_check(
                dataset, status, key, attempt + 1, now, generation, was_ready, settings
            )
        return DatasetPlan(status, requeue_after=(due - now).total_seconds())
    if outcome is None:
        # The Job of a running check is gone (deleted by hand): run the attempt again.
        plan = _start_check(dataset, status, key, attempt, now, generation, was_ready, settings)
        plan.status["check"]["startedAt"] = check.get(
            "startedAt", plan.status["check"]["startedAt"]
        )
        return plan
    if outcome.state == "running":
        requeue = settings.profile_deadline_seconds + 30.0
        if not outcome.stuck:
            return DatasetPlan(status, requeue_after=requeue)
        # Its Pod does not start (a missing Secret, an image not on the node): say so; the
        # Job's deadline still ends it if nobody fixes the cause.
        message = f"profile Job {check['job']} does not start: {outcome.stuck}"
        transition = Transition(status.get("phase") or "Profiling", "reconciling", STUCK, message)
        stuck = with_transition(status, transition, now=now, generation=generation)
        return DatasetPlan(stuck, events=[("Warning", STUCK, message)], requeue_after=requeue)
    done = _Finished(
        dataset=dataset,
        status=status,
        outcome=outcome,
        checked_at=outcome.finished_at or timestamp(now),
        token=token,
        now=now,
        generation=generation,
        settings=settings,
        next_slot_in=next_slot_in,
    )
    if outcome.state == "succeeded" and outcome.result.get("ok"):
        return _succeeded(done)
    return _failed(done)


@dataclass(frozen=True)
class _Finished:
    """A check whose Job ended: what `_succeeded` and `_failed` decide from."""

    dataset: Mapping[str, Any]
    status: dict[str, Any]
    outcome: JobOutcome
    checked_at: str
    token: str | None
    now: datetime
    generation: int
    settings: OperatorSettings
    next_slot_in: float | None


def _backoff(attempt: int, settings: OperatorSettings) -> float:
    return float(min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempt - 1)))


def _start_check(
    dataset: Mapping[str, Any],
    status: dict[str, Any],
    key: str,
    attempt: int,
    now: datetime,
    generation: int,
    was_ready: bool,
    settings: OperatorSettings,
) -> DatasetPlan:
    job = build_profile_job(dataset, key, attempt, settings)
    previous = dict(status.get("check") or {})
    started_at = previous.get("startedAt") if previous.get("key") == key else None
    new_status = dict(status)
    new_status["check"] = {
        "key": key,
        "job": job["metadata"]["name"],
        "attempt": attempt,
        "result": "Running",
        "startedAt": started_at or timestamp(now),
    }
    message = f"profiling the source in Job {job['metadata']['name']}"
    events: list[Event] = [("Normal", "ProfileStarted", message)]
    if not was_ready:
        reason = "Profiling" if attempt == 1 else "RetryingSource"
        transition = Transition("Profiling", "reconciling", reason, message)
        new_status = with_transition(new_status, transition, now=now, generation=generation)
    return DatasetPlan(new_status, create_job=job, events=events)


def _succeeded(done: _Finished) -> DatasetPlan:
    status, generation, checked_at = done.status, done.generation, done.checked_at
    result = done.outcome.result
    version = str(result["digest"])
    rows = int(result.get("rows") or 0)
    previous = status.get("version")
    new_status = dict(status)
    new_status.update(
        version=version,
        rows=rows,
        features=_features(result),
        profile=result.get("profile"),
        profileUri=result.get("profileUri"),
        manifest=result_manifest(result),
        history=_history(
            status.get("history"), version, rows, checked_at, done.settings.history_limit
        ),
        lastCheckedAt=checked_at,
        refreshToken=done.token,
    )
    new_status["check"] = {**dict(status["check"]), "result": "Succeeded"}
    message = f"{rows} rows, version {version}"
    transition = Transition("Ready", "ready", "Profiled", message)
    new_status = with_transition(new_status, transition, now=done.now, generation=generation)
    events: list[Event] = []
    if previous and previous != version:
        events.append(("Normal", "DataVersionChanged", f"{previous} → {version} ({rows} rows)"))
    if status.get("phase") != "Ready" or status.get("observedGeneration") != generation:
        events.append(("Normal", "Ready", message))
    return DatasetPlan(new_status, events=events, requeue_after=done.next_slot_in)


def _failed(done: _Finished) -> DatasetPlan:
    status, outcome, now, generation = done.status, done.outcome, done.now, done.generation
    check = dict(status["check"])
    uri = done.dataset["spec"]["source"]["uri"]
    new_status = dict(status)
    new_status["lastCheckedAt"] = done.checked_at
    reason = outcome.reason or "JobFailed"
    if reason in RETRYABLE_REASONS:
        started = parse_time(check.get("startedAt")) or now
        waited = (now - started).total_seconds()
        attempt = int(check.get("attempt") or 1)
        if waited < done.settings.unreachable_timeout_seconds:
            delay = _backoff(attempt, done.settings)
            new_status["check"] = {**check, "result": "Retrying"}
            message = (
                f"cannot read {uri} (attempt {attempt}): {outcome.message}; retrying in "
                f"{delay:.0f}s"
            )
            transition = Transition("Profiling", "reconciling", "SourceUnreachable", message)
            new_status = with_transition(new_status, transition, now=now, generation=generation)
            events: list[Event] = [("Warning", "SourceUnreachable", message)]
            return DatasetPlan(new_status, events=events, requeue_after=delay)
        message = (
            f"cannot read {uri} after {attempt} attempts over {math.floor(waited)}s: "
            f"{outcome.message}. Fix the source, then edit the spec or set the "
            f"{REFRESH_ANNOTATION} annotation to a new value to try again"
        )
        stalled_reason = "SourceUnreachable"
    else:
        message = (
            f"{reason}: {outcome.message}. Fix the data or the schema; the Dataset is checked "
            f"again when the spec changes, at the next refresh, or when {REFRESH_ANNOTATION} is set"
        )
        stalled_reason = "InvalidData" if reason in ("SchemaError", "DatasetError") else reason
    new_status["check"] = {**check, "result": "Failed"}
    new_status["refreshToken"] = done.token
    transition = Transition("Failed", "stalled", stalled_reason, message)
    new_status = with_transition(new_status, transition, now=now, generation=generation)
    return DatasetPlan(
        new_status, events=[("Warning", stalled_reason, message)], requeue_after=done.next_slot_in
    )
