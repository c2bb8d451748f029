"""The blue-green rollout of an InferenceService, as one pure decision.

`decide` takes what the controller observed (the target it resolved, the two colour
Deployments, the rollout record kept in status, the time) and returns a `RolloutPlan`: which
colour to render with the wanted template and how many replicas, which colours only to scale,
what each Service selects, the new record, the phase and conditions' inputs, the Events, and when
to look again. All state lives in the InferenceService's status (candidate, scale-down deadline,
promotion history), so a restarted operator picks up where it stopped; the plan is the same
however often it is recomputed.

Rules (docs/reference/inferenceservice.md and ISSUE 8):
- a new target or a change of the serving template goes to the idle colour, the candidate;
- it is promoted when its Deployment is fully available at its current generation (never a
  colour without a ready Pod), its smoke test passed and autoPromote or the promote annotation
  allows it; the active Service then selects it and the old colour scales to 0 after
  scaleDownDelaySeconds;
- a candidate not available within progressDeadlineSeconds, or failing its smoke test, is
  aborted: the active colour is not touched, the candidate is Failed and scaled to 0, and the
  same template is not tried again until the target or template changes;
- a change of replicas alone scales the active colour in place;
- rolling back to what the idle colour still runs (within the scale-down delay) is immediate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from kubeloop.api.inferenceservice import (
    PROMOTION_HISTORY,
    Candidate,
    Color,
    Promotion,
    RolloutSpec,
    ScaleDown,
    ServicePhase,
)
from kubeloop.builders.inferenceservice import (
    ANNOTATION_TEMPLATE_HASH,
    LABEL_MODEL_VERSION,
    other_color,
    service_url,
)
from kubeloop.builders.pods import STUCK_REASONS
from kubeloop.conditions import (
    conditions_to_wire,
    mark_ready,
    mark_reconciling,
    mark_stalled,
    set_condition,
)

# While Pods start, Deployment and Pod events wake the controller; this slow look-again only
# covers a missed watch event (the progress deadline is waited for exactly).
POLL_SECONDS = 60.0
FIRST_COLOR: Color = "blue"

EventType = Literal["Normal", "Warning"]
Counter = Literal["started", "promoted", "aborted"]


@dataclass(frozen=True, slots=True)
class ColorState:
    """One colour's Deployment as observed, plus why its Pods are not ready, if known."""

    template_hash: str | None
    model_version: str | None
    replicas: int
    generation: int
    observed_generation: int
    status_replicas: int
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    failure: str | None = None


def observe_deployment(body: Mapping[str, Any], failure: str | None = None) -> ColorState:
    """A ColorState from a Deployment as the API returns it (camelCase dict)."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return ColorState(
        template_hash=(metadata.get("annotations") or {}).get(ANNOTATION_TEMPLATE_HASH),
        model_version=(metadata.get("labels") or {}).get(LABEL_MODEL_VERSION),
        replicas=int(spec.get("replicas", 1)),
        generation=int(metadata.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        failure=failure,
    )


def deployment_essentials(body: Mapping[str, Any]) -> dict[str, Any]:
    """What `observe_deployment` reads of a Deployment, plus its identity and resourceVersion:
    what the operator keeps in memory per Deployment instead of the whole object."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return {
        "apiVersion": body.get("apiVersion", "apps/v1"),
        "kind": body.get("kind", "Deployment"),
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "resourceVersion": metadata.get("resourceVersion"),
            "generation": metadata.get("generation"),
            "labels": dict(metadata.get("labels") or {}),
            "annotations": {
                key: annotations[key] for key in (ANNOTATION_TEMPLATE_HASH,) if key in annotations
            },
        },
        "spec": {"replicas": (body.get("spec") or {}).get("replicas", 1)},
        "status": dict(body.get("status") or {}),
    }


@dataclass(frozen=True, slots=True)
class Desired:
    """What should serve: the resolved ModelVersion, the template's hash, the replicas."""

    model_version: str
    template_hash: str
    replicas: int


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """The rollout's memory, kept in the InferenceService status."""

    active_color: Color | None = None
    active_model_version: str | None = None
    candidate: Candidate | None = None
    scale_down: ScaleDown | None = None
    promotions: tuple[Promotion, ...] = ()

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> RolloutRecord:
        candidate = status.get("candidate")
        scale_down = status.get("scaleDown")
        return cls(
            active_color=status.get("activeColor"),
            active_model_version=status.get("activeModelVersion"),
            candidate=Candidate.model_validate(candidate) if candidate else None,
            scale_down=ScaleDown.model_validate(scale_down) if scale_down else None,
            promotions=tuple(Promotion.model_validate(p) for p in status.get("promotions") or ()),
        )

    def to_status(self) -> dict[str, Any]:
        """The status fields this record owns; None values delete them in a merge patch."""
        return {
            "activeColor": self.active_color,
            "activeModelVersion": self.active_model_version,
            "candidate": self.candidate.to_wire() if self.candidate else None,
            "scaleDown": self.scale_down.to_wire() if self.scale_down else None,
            "promotions": [p.to_wire() for p in self.promotions] or None,
        }


@dataclass(frozen=True, slots=True)
class SmokeResult:
    passed: bool
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A condition's inputs: status True/False, a CamelCase reason, a message."""

    status: bool
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class RolloutInputs:
    desired: Desired | None
    waiting_for: str  # what the target resolution waits for, when `desired` is None
    colors: Mapping[Color, ColorState]  # only the colours whose Deployment exists
    record: RolloutRecord
    rollout: RolloutSpec
    promote_requested: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    render: Mapping[Color, int]  # apply the wanted template here with these replicas
    scale: Mapping[Color, int]  # only set replicas of these (existing) Deployments
    active_service: Color  # selector of Service <name>
    preview_service: Color  # selector of Service <name>-preview
    record: RolloutRecord
    phase: ServicePhase
    ready: Verdict
    stalled: bool  # Ready=False needs a person (kstatus Failed), not time
    progressing: Verdict
    degraded: Verdict
    ready_replicas: int
    events: tuple[Event, ...] = ()
    counters: tuple[Counter, ...] = ()
    requeue_after: float | None = None
    smoke_test_due: Color | None = None  # run the smoke test here, then decide again with it
    consume_promote: bool = False  # remove the promote annotation: it was used


def availability(state: ColorState | None, desired: Desired) -> tuple[bool, str]:
    """Whether a colour fully serves `desired` at its current generation, and what it lacks."""
    if state is None:
        return False, "its Deployment does not exist yet"
    if state.template_hash != desired.template_hash:
        return False, "its Deployment still has the previous template"
    if state.observed_generation < state.generation or state.replicas != desired.replicas:
        return False, "waiting for the Deployment controller to see the new template"
    if desired.replicas == 0:
        return False, "replicas is 0: there is no Pod to switch traffic to"
    counts = (
        f"{state.available_replicas}/{desired.replicas} Pods available, "
        f"{state.updated_replicas} updated, {state.status_replicas} in total"
    )
    if (
        state.updated_replicas < desired.replicas
        or state.available_replicas < desired.replicas
        or state.status_replicas != desired.replicas
        or state.ready_replicas < 1
    ):
        return False, counts + (f"; {state.failure}" if state.failure else "")
    return True, counts


@dataclass
class _Draft:
    """The plan under construction (mutable inside `decide` only)."""

    inputs: RolloutInputs
    record: RolloutRecord
    render: dict[Color, int] = field(default_factory=dict)
    scale: dict[Color, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    counters: list[Counter] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def wait(self, seconds: float) -> None:
        self.waits.append(max(seconds, 0.5))

    def scale_to_zero(self, color: Color) -> None:
        state = self.inputs.colors.get(color)
        if state is not None and state.replicas != 0 and color not in self.render:
            self.scale[color] = 0

    def plan(
        self,
        *,
        phase: ServicePhase,
        ready: Verdict,
        progressing: Verdict,
        degraded: Verdict,
        stalled: bool = False,
        smoke_test_due: Color | None = None,
        consume_promote: bool = False,
    ) -> RolloutPlan:
        self._due_scale_down()
        record = self.record
        active = record.active_color
        candidate = record.candidate
        in_flight = candidate is not None and candidate.phase not in ("Promoted", "Failed")
        idle: Color = other_color(active) if active else FIRST_COLOR
        preview = candidate.color if in_flight and candidate and candidate.color else idle
        active_state = self.inputs.colors.get(active) if active else None
        return RolloutPlan(
            render=dict(self.render),
            scale=dict(self.scale),
            # Before the first promotion the active Service already selects the first colour:
            # there is nothing else to serve, as with Argo Rollouts' first ReplicaSet.
            active_service=active or preview,
            preview_service=preview,
            record=record,
            phase=phase,
            ready=ready,
            stalled=stalled,
            progressing=progressing,
            degraded=degraded,
            ready_replicas=active_state.ready_replicas if active_state else 0,
            events=tuple(self.events),
            counters=tuple(self.counters),
            requeue_after=min(self.waits) if self.waits else None,
            smoke_test_due=smoke_test_due,
            consume_promote=consume_promote,
        )

    def _due_scale_down(self) -> None:
        pending = self.record.scale_down
        if pending is None:
            return
        if pending.color == self.record.active_color or pending.color in self.render:
            self.record = replace(self.record, scale_down=None)  # it serves again
            return
        left = (pending.at - self.inputs.now).total_seconds()
        if left > 0:
            self.wait(left)
            return
        self.scale_to_zero(pending.color)
        self.event("Normal", "ScaledDown", f"scaled the previous colour {pending.color} to 0")
        self.record = replace(self.record, scale_down=None)


NOT_DEGRADED = Verdict(False, "AsExpected", "")
IDLE = Verdict(False, "Idle", "no rollout in progress")


def decide(inputs: RolloutInputs, smoke: SmokeResult | None = None) -> RolloutPlan:
    """The rollout step for what was observed; pass `smoke` once the plan asked for it."""
    draft = _Draft(inputs, inputs.record)
    desired = inputs.desired
    record = inputs.record
    active = record.active_color
    if desired is None:
        return _no_target(draft)
    active_state = inputs.colors.get(active) if active else None
    if (
        active is not None
        and active_state is not None
        and active_state.template_hash == desired.template_hash
    ):
        return _steady(draft, active, desired)
    # Also when the active colour's Deployment is gone: the wanted template goes through the
    # idle colour and every gate, never straight into the colour the active Service selects.
    return _rollout(draft, desired, smoke)


def _no_target(draft: _Draft) -> RolloutPlan:
    inputs, record = draft.inputs, draft.record
    waiting = f"waiting for {inputs.waiting_for}"
    if record.active_color is None:
        return draft.plan(
            phase="Pending",
            ready=Verdict(False, "WaitingForModelVersion", waiting),
            progressing=Verdict(False, "WaitingForModelVersion", waiting),
            degraded=NOT_DEGRADED,
        )
    message = f"{waiting}; still serving {record.active_model_version}"
    return draft.plan(
        phase="Degraded",
        ready=Verdict(False, "TargetUnavailable", message),
        progressing=IDLE,
        degraded=Verdict(True, "TargetUnavailable", message),
    )


def _steady(draft: _Draft, active: Color, desired: Desired) -> RolloutPlan:
    """The active colour runs the wanted template: keep it, scale it, tidy up the other one."""
    record, inputs = draft.record, draft.inputs
    # The same template as running: applying it restarts nothing.
    draft.render[active] = desired.replicas
    state = inputs.colors.get(active)
    if state is not None and state.replicas != desired.replicas:
        draft.event(
            "Normal", "Scaled", f"scaling {active} from {state.replicas} to {desired.replicas}"
        )
    candidate = record.candidate
    if candidate is not None:
        if candidate.phase not in ("Promoted", "Failed") and candidate.color != active:
            draft.event(
                "Normal",
                "RolloutCancelled",
                f"{candidate.model_version} is no longer wanted; {active} keeps serving "
                f"{desired.model_version}",
            )
        draft.record = replace(record, candidate=None, active_model_version=desired.model_version)
    idle = other_color(active)
    pending = draft.record.scale_down
    if pending is None or pending.color != idle:
        draft.scale_to_zero(idle)
    ok, detail = availability(state, desired)
    if ok or (desired.replicas == 0 and state is not None):
        return draft.plan(
            phase="Ready",
            ready=Verdict(True, "Serving", f"serving {desired.model_version} from {active}"),
            progressing=IDLE,
            degraded=NOT_DEGRADED,
        )
    draft.wait(POLL_SECONDS)
    message = f"{active} serving {desired.model_version}: {detail}"
    ready_pods = state.ready_replicas if state is not None else 0
    return draft.plan(
        phase="Ready" if ready_pods > 0 else "Degraded",
        ready=Verdict(False, "ReplicasUnavailable", message),
        progressing=Verdict(True, "ScalingReplicas", message),
        degraded=Verdict(ready_pods == 0, "NoReadyPods" if ready_pods == 0 else "AsExpected", ""),
    )


def _rollout(draft: _Draft, desired: Desired, smoke: SmokeResult | None) -> RolloutPlan:
    inputs, record = draft.inputs, draft.record
    now, spec = inputs.now, inputs.rollout
    active = record.active_color
    idle: Color = other_color(active) if active else FIRST_COLOR
    candidate = record.candidate
    fresh = (
        candidate is None
        or candidate.template_hash != desired.template_hash
        or candidate.color != idle
    )
    if fresh:
        if candidate is not None and candidate.phase not in ("Promoted", "Failed"):
            draft.event(
                "Normal",
                "RolloutSuperseded",
                f"{candidate.model_version} superseded by {desired.model_version}",
            )
        candidate = Candidate(
            model_version=desired.model_version,
            color=idle,
            phase="Deploying",
            message=f"starting {desired.model_version} in {idle}",
            since=now,
            template_hash=desired.template_hash,
        )
        draft.event("Normal", "RolloutStarted", f"rolling out {desired.model_version} to {idle}")
        draft.counters.append("started")
    assert candidate is not None
    draft.record = replace(record, candidate=candidate)
    serving = (
        f"; {active} keeps serving {record.active_model_version}" if active is not None else ""
    )
    if candidate.phase == "Failed":
        # Aborted before: this template is not tried again until the target or template changes.
        draft.scale_to_zero(idle)
        return _aborted_plan(draft, candidate.message or "the rollout was aborted", serving)

    draft.render[idle] = desired.replicas
    ok, detail = availability(inputs.colors.get(idle), desired)
    if not ok:
        assert candidate.since is not None
        deadline = candidate.since + timedelta(seconds=spec.progress_deadline_seconds)
        if now >= deadline:
            return _abort(
                draft,
                candidate,
                "ProgressDeadlineExceeded",
                f"{desired.model_version} in {idle} was not available within "
                f"{spec.progress_deadline_seconds}s: {detail}",
                serving,
            )
        draft.record = replace(
            draft.record, candidate=candidate.model_copy(update={"message": detail})
        )
        draft.wait(min(POLL_SECONDS, (deadline - now).total_seconds()))
        message = f"{desired.model_version} deploying in {idle}: {detail}"
        return draft.plan(
            phase="Deploying",
            ready=Verdict(False, "RollingOut", message + serving),
            progressing=Verdict(True, "Deploying", message),
            degraded=NOT_DEGRADED,
        )

    # Available. Rolling back to what the previous colour still runs within its scale-down
    # delay is immediate (no smoke test, no promotion gate): it served this template moments ago.
    pending = record.scale_down
    immediate = fresh and pending is not None and pending.color == idle
    if spec.smoke_test.enabled and not immediate:
        if smoke is None:
            draft.record = replace(
                draft.record,
                candidate=candidate.model_copy(
                    update={"phase": "SmokeTesting", "message": "smoke test through the preview"}
                ),
            )
            return draft.plan(
                phase="Deploying",
                ready=Verdict(False, "SmokeTesting", f"smoke-testing {desired.model_version}"),
                progressing=Verdict(True, "SmokeTesting", f"smoke-testing {desired.model_version}"),
                degraded=NOT_DEGRADED,
                smoke_test_due=idle,
            )
        if not smoke.passed:
            return _abort(
                draft, candidate, "SmokeTestFailed", f"smoke test failed: {smoke.message}", serving
            )
    allowed = spec.auto_promote or inputs.promote_requested or active is None or immediate
    if not allowed:
        message = (
            f"{desired.model_version} is ready in {idle}; annotate the InferenceService with "
            "kubeloop.dev/promote=true to switch traffic"
        )
        draft.record = replace(
            draft.record,
            candidate=candidate.model_copy(update={"phase": "Ready", "message": message}),
        )
        return draft.plan(
            phase="Promoting",
            ready=Verdict(False, "AwaitingPromotion", message + serving),
            progressing=Verdict(True, "AwaitingPromotion", message),
            degraded=NOT_DEGRADED,
        )
    return _promote(draft, candidate, desired, idle, immediate)


def _promote(
    draft: _Draft, candidate: Candidate, desired: Desired, color: Color, immediate: bool
) -> RolloutPlan:
    inputs, record = draft.inputs, draft.record
    now, spec = inputs.now, inputs.rollout
    old = record.active_color
    how = "rolled back to" if immediate else "promoted"
    promotions = (
        Promotion(model_version=desired.model_version, color=color, at=now),
        *record.promotions,
    )[:PROMOTION_HISTORY]
    scale_down = record.scale_down
    if old is not None:
        if spec.scale_down_delay_seconds == 0:
            draft.scale_to_zero(old)
            scale_down = None
        else:
            scale_down = ScaleDown(
                color=old, at=now + timedelta(seconds=spec.scale_down_delay_seconds)
            )
    draft.record = RolloutRecord(
        active_color=color,
        active_model_version=desired.model_version,
        candidate=candidate.model_copy(
            update={"phase": "Promoted", "message": f"{how} {desired.model_version} in {color}"}
        ),
        scale_down=scale_down,
        promotions=promotions,
    )
    previous = f" (was {record.active_model_version} in {old})" if old else ""
    draft.event("Normal", "Promoted", f"{how} {desired.model_version} in {color}{previous}")
    draft.counters.append("promoted")
    # The next reconcile tidies the promoted candidate away (Progressing: Idle); ask for it rather
    # than wait for an event that a first rollout, with no old colour to scale down, may not get.
    draft.wait(0)
    return draft.plan(
        phase="Ready",
        ready=Verdict(True, "Serving", f"serving {desired.model_version} from {color}"),
        progressing=Verdict(False, "RolloutComplete", f"{how} {desired.model_version}"),
        degraded=NOT_DEGRADED,
        consume_promote=inputs.promote_requested,
    )


def _abort(
    draft: _Draft, candidate: Candidate, reason: str, message: str, serving: str
) -> RolloutPlan:
    color = candidate.color
    assert color is not None
    failed = candidate.model_copy(update={"phase": "Failed", "message": f"{reason}: {message}"})
    draft.record = replace(draft.record, candidate=failed)
    draft.render.pop(color, None)
    draft.scale_to_zero(color)
    draft.event("Warning", "RolloutAborted", f"{reason}: {message}{serving}")
    draft.counters.append("aborted")
    return _aborted_plan(draft, f"{reason}: {message}", serving)


def _aborted_plan(draft: _Draft, message: str, serving: str) -> RolloutPlan:
    reason = "RolloutAborted"
    has_active = draft.record.active_color is not None
    return draft.plan(
        phase="Degraded" if has_active else "Failed",
        ready=Verdict(False, reason, message + serving),
        stalled=True,
        progressing=Verdict(False, reason, message),
        degraded=Verdict(True, reason, message + serving),
    )


DRIFT_DETECTED = "DriftDetected"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"


def drift_verdict(
    drift: Mapping[str, Any] | None,
) -> tuple[Literal["True", "False", "Unknown"], str, str]:
    """The DriftDetected condition from the sidecars' `status.drift` aggregate."""
    if not drift or drift.get("detected") is None:
        return "Unknown", "NotChecked", "no drift report from the active colour yet"
    features = ", ".join(drift.get("driftedFeatures") or ())
    score = drift.get("score")
    if drift.get("detected"):
        concept = "; concept drift on feedback" if drift.get("conceptDrift") else ""
        return "True", "DriftDetected", f"drift score {score}, features: {features or '-'}{concept}"
    return "False", "NoDrift", f"drift score {score} over {drift.get('reporters') or 0} reports"


def status_patch(
    plan: RolloutPlan,
    *,
    previous: Mapping[str, Any],
    name: str,
    namespace: str,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """The merge patch of `status` for this plan (drift and lastRetrain are not touched)."""
    conditions = previous.get("conditions")
    if plan.ready.status:
        conditions = mark_ready(
            conditions, plan.ready.reason, plan.ready.message, now=now, generation=generation
        )
    elif plan.stalled:
        conditions = mark_stalled(
            conditions, plan.ready.reason, plan.ready.message, now=now, generation=generation
        )
    else:
        conditions = mark_reconciling(
            conditions, plan.ready.reason, plan.ready.message, now=now, generation=generation
        )
    for type_, verdict in ((PROGRESSING, plan.progressing), (DEGRADED, plan.degraded)):
        conditions = set_condition(
            conditions,
            type_,
            "True" if verdict.status else "False",
            verdict.reason,
            verdict.message,
            now=now,
            generation=generation,
        )
    drift_status, drift_reason, drift_message = drift_verdict(previous.get("drift"))
    conditions = set_condition(
        conditions,
        DRIFT_DETECTED,
        drift_status,
        drift_reason,
        drift_message,
        now=now,
        generation=generation,
    )
    has_active = plan.record.active_color is not None
    return {
        **plan.record.to_status(),
        "phase": plan.phase,
        "url": service_url(name, namespace) if has_active else None,
        "previewUrl": service_url(name, namespace, preview=True),
        "readyReplicas": plan.ready_replicas,
        "conditions": conditions_to_wire(conditions),
        "observedGeneration": generation,
    }


def _termination_text(terminated: Mapping[str, Any] | None) -> str:
    """The runtime's termination message (its `message` field when JSON), else the reason."""
    if not terminated:
        return ""
    text = str(terminated.get("message") or "").strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, dict) and parsed.get("message"):
                text = f"{parsed.get('reason', 'error')}: {parsed['message']}"
        except ValueError:
            pass
    exit_code = terminated.get("exitCode")
    return f"exit code {exit_code}" + (f", {text}" if text else "")


def pod_failure(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a colour's Pods are not ready, in words, from their container statuses; None if the
    Pods merely have not started yet."""
    for pod in pods:
        status = pod.get("status") or {}
        for condition in status.get("conditions") or ():
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return f"Pod {pod['metadata']['name']} unschedulable: {condition.get('message')}"
        groups = (
            ("init container", status.get("initContainerStatuses")),
            ("container", status.get("containerStatuses")),
        )
        for what, statuses in groups:
            for container in statuses or ():
                state = container.get("state") or {}
                waiting = state.get("waiting") or {}
                last = (container.get("lastState") or {}).get("terminated")
                terminated = state.get("terminated")
                name = container.get("name")
                if waiting.get("reason") in STUCK_REASONS:
                    detail = _termination_text(last) or waiting.get("message") or ""
                    return f"{what} {name}: {waiting['reason']}" + (
                        f" ({detail})" if detail else ""
                    )
                if terminated and terminated.get("exitCode") not in (0, None):
                    return f"{what} {name} failed: {_termination_text(terminated)}"
                restarts = int(container.get("restartCount") or 0)
                failed_before = last is not None and last.get("exitCode") not in (0, None)
                if not container.get("ready") and restarts and failed_before:
                    return (
                        f"{what} {name} restarted {restarts} times, last {_termination_text(last)}"
                    )
    return None
