"""The blue-green state machine (builders/rollout.py), step by step, without a cluster.

Each test feeds `decide` what a controller would observe, then feeds the plan's record back in
as the next status, the way the real loop does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from isvc_fixtures import NOW, color

from kubeloop.api.conditions import READY, STALLED
from kubeloop.api.inferenceservice import Color, RolloutSpec
from kubeloop.builders.rollout import (
    ColorState,
    Desired,
    RolloutInputs,
    RolloutPlan,
    RolloutRecord,
    SmokeResult,
    decide,
    deployment_essentials,
    observe_deployment,
    status_patch,
)

V1 = Desired("iris-v1", "hash1", 2)
V2 = Desired("iris-v2", "hash2", 2)
PASSED = SmokeResult(True, "2/2 predictions")


def rollout(**changes: Any) -> RolloutSpec:
    return RolloutSpec.model_validate(changes)


def inputs(
    desired: Desired | None,
    colors: Mapping[Color, ColorState],
    record: RolloutRecord,
    *,
    at: timedelta = timedelta(0),
    spec: RolloutSpec | None = None,
    promote: bool = False,
) -> RolloutInputs:
    return RolloutInputs(
        desired=desired,
        waiting_for="a Ready ModelVersion of model iris",
        colors=colors,
        record=record,
        rollout=spec or rollout(),
        promote_requested=promote,
        now=NOW + at,
    )


def run(inp: RolloutInputs, smoke: SmokeResult | None = PASSED) -> RolloutPlan:
    """One reconcile: decide, and when a smoke test is due, decide again with its result."""
    plan = decide(inp)
    if plan.smoke_test_due is not None and smoke is not None:
        plan = decide(inp, smoke)
    return plan


def serving_v1_on_blue() -> RolloutRecord:
    first = run(inputs(V1, {"blue": color("hash1")}, RolloutRecord()))
    assert first.record.active_color == "blue"
    return first.record


def test_no_target_is_pending_and_names_what_it_waits_for() -> None:
    plan = decide(inputs(None, {}, RolloutRecord()))
    assert plan.phase == "Pending"
    assert plan.render == {}
    assert not plan.ready.status
    assert "waiting for a Ready ModelVersion of model iris" in plan.ready.message


def test_first_deployment_goes_to_blue_and_is_promoted_once_available_and_smoke_tested() -> None:
    start = decide(inputs(V1, {}, RolloutRecord()))
    assert start.render == {"blue": 2}
    assert start.active_service == "blue"
    assert start.preview_service == "blue"
    assert start.phase == "Deploying"
    assert start.counters == ("started",)
    assert start.record.candidate is not None
    assert start.record.candidate.phase == "Deploying"
    assert start.requeue_after is not None

    # The Deployment exists but only one Pod is available: still deploying, same candidate.
    half = decide(
        inputs(V1, {"blue": color("hash1", available=1)}, start.record, at=timedelta(seconds=5))
    )
    assert half.phase == "Deploying"
    assert half.counters == ()
    assert half.record.candidate is not None
    assert half.record.candidate.since == NOW

    # Fully available: a smoke test is due first, then the promotion.
    due = decide(inputs(V1, {"blue": color("hash1")}, half.record))
    assert due.smoke_test_due == "blue"
    assert due.record.active_color is None
    done = decide(inputs(V1, {"blue": color("hash1")}, half.record), PASSED)
    assert done.record.active_color == "blue"
    assert done.record.active_model_version == "iris-v1"
    assert done.phase == "Ready"
    assert done.ready.status
    assert done.counters == ("promoted",)
    assert [p.model_version for p in done.record.promotions] == ["iris-v1"]
    assert done.record.scale_down is None


def test_a_stale_generation_or_missing_ready_pod_is_not_available() -> None:
    record = decide(inputs(V1, {}, RolloutRecord())).record
    lagging = decide(inputs(V1, {"blue": color("hash1", generation=2, observed=1)}, record))
    assert lagging.smoke_test_due is None
    assert lagging.record.active_color is None
    zero = Desired("iris-v1", "hash1", 0)
    nothing = decide(inputs(zero, {"blue": color("hash1", replicas=0)}, record))
    assert nothing.record.active_color is None
    assert "no Pod" in (nothing.record.candidate.message or "")  # type: ignore[union-attr]


def test_new_version_rolls_out_to_the_idle_colour_and_the_old_one_scales_down_later() -> None:
    record = serving_v1_on_blue()
    colors: dict[Color, ColorState] = {"blue": color("hash1")}
    start = decide(inputs(V2, colors, record))
    assert start.render == {"green": 2}  # the active colour is not touched
    assert start.scale == {}
    assert start.active_service == "blue"
    assert start.preview_service == "green"
    assert start.ready.message.endswith("blue keeps serving iris-v1")

    colors["green"] = color("hash2")
    promoted = run(inputs(V2, colors, start.record, at=timedelta(seconds=20)))
    assert promoted.record.active_color == "green"
    assert promoted.active_service == "green"
    assert promoted.scale == {}  # blue stays up for the scale-down delay
    assert promoted.record.scale_down is not None
    assert promoted.record.scale_down.color == "blue"
    assert promoted.record.scale_down.at == NOW + timedelta(seconds=50)
    assert [p.model_version for p in promoted.record.promotions] == ["iris-v2", "iris-v1"]

    early = decide(inputs(V2, colors, promoted.record, at=timedelta(seconds=40)))
    assert early.scale == {}
    assert early.requeue_after == 10
    late = decide(inputs(V2, colors, promoted.record, at=timedelta(seconds=51)))
    assert late.scale == {"blue": 0}
    assert late.record.scale_down is None
    assert [e.reason for e in late.events] == ["ScaledDown"]
    assert late.record.candidate is None  # steady again


def test_replicas_alone_scale_the_active_colour_in_place() -> None:
    record = serving_v1_on_blue()
    more = replace(V1, replicas=4)
    plan = decide(inputs(more, {"blue": color("hash1")}, record))
    assert plan.render == {"blue": 4}
    assert plan.counters == ()
    assert plan.record.candidate is None
    assert [e.reason for e in plan.events] == ["Scaled"]


def test_a_candidate_that_never_becomes_ready_is_aborted_and_the_active_keeps_serving() -> None:
    record = serving_v1_on_blue()
    spec = rollout(progressDeadlineSeconds=60)
    start = decide(inputs(V2, {"blue": color("hash1")}, record, spec=spec))
    stuck = {
        "blue": color("hash1"),
        "green": color("hash2", available=0, failure="init container fetch: digest mismatch"),
    }
    waiting = decide(inputs(V2, stuck, start.record, spec=spec, at=timedelta(seconds=30)))
    assert waiting.phase == "Deploying"
    assert "digest mismatch" in (waiting.record.candidate.message or "")  # type: ignore[union-attr]
    aborted = decide(inputs(V2, stuck, waiting.record, spec=spec, at=timedelta(seconds=61)))
    assert aborted.record.candidate is not None
    assert aborted.record.candidate.phase == "Failed"
    assert "ProgressDeadlineExceeded" in (aborted.record.candidate.message or "")
    assert "digest mismatch" in (aborted.record.candidate.message or "")
    assert aborted.scale == {"green": 0}
    assert "blue" not in aborted.render
    assert "blue" not in aborted.scale
    assert aborted.active_service == "blue"
    assert aborted.record.active_model_version == "iris-v1"
    assert aborted.phase == "Degraded"
    assert aborted.stalled
    assert aborted.degraded.status
    assert aborted.counters == ("aborted",)
    assert [e.type for e in aborted.events] == ["Warning"]

    # Recomputed later: no retry of the same template, no new Events.
    again = decide(
        inputs(
            V2,
            {"blue": color("hash1"), "green": color("hash2", replicas=0)},
            aborted.record,
            spec=spec,
            at=timedelta(seconds=90),
        )
    )
    assert again.render == {}
    assert again.scale == {}
    assert again.events == ()
    assert again.phase == "Degraded"

    # A new target tries again.
    v3 = Desired("iris-v3", "hash3", 2)
    retry = decide(
        inputs(
            v3,
            {"blue": color("hash1"), "green": color("hash2", replicas=0)},
            again.record,
            spec=spec,
            at=timedelta(seconds=100),
        )
    )
    assert retry.render == {"green": 2}
    assert retry.counters == ("started",)


def test_a_failing_smoke_test_aborts() -> None:
    record = serving_v1_on_blue()
    start = decide(inputs(V2, {"blue": color("hash1")}, record))
    colors = {"blue": color("hash1"), "green": color("hash2")}
    plan = run(inputs(V2, colors, start.record), SmokeResult(False, "0/2 predictions: HTTP 503"))
    assert plan.record.candidate is not None
    assert plan.record.candidate.phase == "Failed"
    assert "SmokeTestFailed" in (plan.record.candidate.message or "")
    assert "HTTP 503" in (plan.record.candidate.message or "")
    assert plan.scale == {"green": 0}
    assert plan.active_service == "blue"


def test_without_auto_promote_it_waits_for_the_annotation() -> None:
    spec = rollout(autoPromote=False)
    record = run(inputs(V1, {"blue": color("hash1")}, RolloutRecord(), spec=spec)).record
    assert record.active_color == "blue"  # the first deployment needs no promotion
    start = decide(inputs(V2, {"blue": color("hash1")}, record, spec=spec))
    colors = {"blue": color("hash1"), "green": color("hash2")}
    held = run(inputs(V2, colors, start.record, spec=spec))
    assert held.phase == "Promoting"
    assert held.record.active_color == "blue"
    assert "kubeloop.dev/promote" in held.ready.message
    promoted = run(inputs(V2, colors, held.record, spec=spec, promote=True))
    assert promoted.record.active_color == "green"
    assert promoted.consume_promote


def test_rollback_within_the_scale_down_delay_is_immediate() -> None:
    record = serving_v1_on_blue()
    start = decide(inputs(V2, {"blue": color("hash1")}, record))
    colors = {"blue": color("hash1"), "green": color("hash2")}
    on_v2 = run(inputs(V2, colors, start.record, at=timedelta(seconds=5))).record
    assert on_v2.active_color == "green"
    back = decide(inputs(V1, colors, on_v2, at=timedelta(seconds=10)))
    assert back.smoke_test_due is None
    assert back.record.active_color == "blue"
    assert back.record.active_model_version == "iris-v1"
    assert back.record.scale_down is not None
    assert back.record.scale_down.color == "green"
    assert [e.reason for e in back.events] == ["RolloutStarted", "Promoted"]
    assert "rolled back" in back.events[-1].message
    assert [p.model_version for p in back.record.promotions] == ["iris-v1", "iris-v2", "iris-v1"]


def test_rollback_after_the_old_colour_scaled_down_is_a_normal_rollout() -> None:
    record = serving_v1_on_blue()
    start = decide(inputs(V2, {"blue": color("hash1")}, record))
    colors = {"blue": color("hash1"), "green": color("hash2")}
    on_v2 = run(inputs(V2, colors, start.record)).record
    scaled = decide(inputs(V2, colors, on_v2, at=timedelta(seconds=31))).record
    colors["blue"] = color("hash1", replicas=0)
    back = decide(inputs(V1, colors, scaled, at=timedelta(seconds=40)))
    assert back.record.active_color == "green"
    assert back.render == {"blue": 2}
    assert back.record.candidate is not None
    assert back.record.candidate.phase == "Deploying"


def test_reverting_mid_rollout_cancels_the_candidate() -> None:
    record = serving_v1_on_blue()
    start = decide(inputs(V2, {"blue": color("hash1")}, record))
    colors = {"blue": color("hash1"), "green": color("hash2", available=0)}
    back = decide(inputs(V1, colors, start.record))
    assert back.record.candidate is None
    assert back.scale == {"green": 0}
    assert [e.reason for e in back.events] == ["RolloutCancelled"]


def test_the_same_observation_gives_the_same_plan() -> None:
    record = serving_v1_on_blue()
    start = decide(inputs(V2, {"blue": color("hash1")}, record))
    colors = {"blue": color("hash1"), "green": color("hash2", available=1)}
    one = decide(inputs(V2, colors, start.record, at=timedelta(seconds=3)))
    two = decide(inputs(V2, colors, one.record, at=timedelta(seconds=3)))
    assert one.render == two.render
    assert one.record == two.record
    assert two.counters == ()


def test_record_round_trips_through_status_and_conditions_follow_kstatus() -> None:
    record = serving_v1_on_blue()
    start = decide(inputs(V2, {"blue": color("hash1")}, record))
    patch = status_patch(start, previous={}, name="iris", namespace="ml", generation=3, now=NOW)
    assert RolloutRecord.from_status(patch) == start.record
    conditions = {c["type"]: c for c in patch["conditions"]}
    assert conditions[READY]["status"] == "False"
    assert conditions["Reconciling"]["status"] == "True"
    assert conditions["Progressing"]["status"] == "True"
    assert conditions["DriftDetected"]["status"] == "Unknown"
    assert patch["url"] == "http://iris.ml.svc.cluster.local"
    assert patch["previewUrl"] == "http://iris-preview.ml.svc.cluster.local"
    assert patch["observedGeneration"] == 3

    colors = {"blue": color("hash1"), "green": color("hash2", available=0)}
    aborted = decide(inputs(V2, colors, start.record, at=timedelta(seconds=601)))
    drift = {"detected": True, "score": 0.5, "driftedFeatures": ["petal length (cm)"]}
    patch = status_patch(
        aborted, previous={"drift": drift}, name="iris", namespace="ml", generation=3, now=NOW
    )
    conditions = {c["type"]: c for c in patch["conditions"]}
    assert conditions[STALLED]["status"] == "True"
    assert conditions["Degraded"]["status"] == "True"
    assert conditions["DriftDetected"]["status"] == "True"
    assert "petal length" in conditions["DriftDetected"]["message"]


def test_observe_deployment_reads_the_api_shape() -> None:
    state = observe_deployment(
        {
            "metadata": {
                "generation": 4,
                "annotations": {"kubeloop.dev/template-hash": "h"},
                "labels": {"kubeloop.dev/model-version": "iris-v2"},
            },
            "spec": {"replicas": 3},
            "status": {"observedGeneration": 4, "replicas": 3, "readyReplicas": 2},
        }
    )
    assert state.template_hash == "h"
    assert state.model_version == "iris-v2"
    assert (state.replicas, state.ready_replicas, state.available_replicas) == (3, 2, 0)


def test_what_the_operator_keeps_of_a_deployment_observes_the_same() -> None:
    """deployment_essentials is what the watch-fed index holds per Deployment: observing it
    must give what observing the whole object gives."""
    full = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web-blue",
            "namespace": "ns",
            "resourceVersion": "42",
            "generation": 4,
            "annotations": {"kubeloop.dev/template-hash": "h", "deployment.kubernetes.io/x": "1"},
            "labels": {"kubeloop.dev/model-version": "iris-v2", "kubeloop.dev/color": "blue"},
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "server"}]}}},
        "status": {"observedGeneration": 4, "replicas": 3, "readyReplicas": 3},
    }
    kept = deployment_essentials(full)
    assert observe_deployment(kept) == observe_deployment(full)
    assert kept["metadata"]["resourceVersion"] == "42"
    assert "managedFields" not in kept["metadata"]
    assert "template" not in kept["spec"]


def test_a_lost_active_deployment_is_replaced_through_the_idle_colour_not_in_place() -> None:
    record = serving_v1_on_blue()
    plan = decide(inputs(V1, {}, record))
    assert "blue" not in plan.render
    assert plan.render == {"green": 2}
    assert plan.active_service == "blue"
    assert plan.record.candidate is not None
    assert plan.record.candidate.color == "green"
