"""A serving Pod killed on the real node (no grace period) is replaced by its Deployment, and the
traffic through the active Service recovers: the test counts the requests that failed meanwhile
(with the demo's one replica there is nothing else to serve them) and bounds the recovery."""

from __future__ import annotations

import time

import pytest
from e2e_kit import ISVC, Scene, isvc_state

from demolib import timeline
from demolib.load import TrafficSender

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.node, pytest.mark.timeout(900)]

RECOVERY_BOUND_SECONDS = 120  # a generous bound: the new Pod fetches, loads and turns Ready
STEADY_ROUNDS = 20  # consecutive answers after the last failure that count as recovered


def test_a_killed_serving_pod_is_replaced_and_traffic_recovers(scene: Scene) -> None:
    base = scene.baseline()
    [pod] = scene.serving_pods()
    victim = pod["metadata"]["name"]
    began = time.monotonic()

    def clock() -> float:
        return time.monotonic() - began

    sender = TrafficSender(base.url, timeline.Timeline(), clock, batch_size=5, rounds_per_second=8)
    sender.start()
    try:
        scene.wait(
            "answers before the kill",
            lambda: (sender.stats.rounds >= 5 or None, str(sender.stats)),
            timeout=30,
        )
        killed_at = clock()
        scene.kubectl("delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")

        def replaced() -> tuple[str | None, str]:
            pods = [p for p in scene.serving_pods() if p["metadata"]["name"] != victim]
            ready = [
                p["metadata"]["name"]
                for p in pods
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (p.get("status") or {}).get("conditions") or ()
                )
            ]
            return (ready[0] if ready else None), f"{len(pods)} new Pods, none Ready"

        replacement = scene.wait("a replacement Pod to be Ready", replaced, timeout=180)

        def recovered() -> tuple[bool | None, str]:
            stats = sender.stats
            last_failure = stats.failed_at[-1] if stats.failed_at else killed_at
            since = [s for s in sender.timeline.snapshot().traffic if s.t > last_failure]
            if len(since) >= STEADY_ROUNDS:
                return True, "recovered"
            return None, f"{stats.failed_rounds} failed, {len(since)} answered since the last"

        scene.wait("requests to succeed again", recovered, timeout=RECOVERY_BOUND_SECONDS)
    finally:
        sender.stop()

    stats = sender.stats
    failed = [t for t in stats.failed_at if t >= killed_at]
    assert len(failed) == stats.failed_rounds, f"requests failed before the kill: {stats}"
    recovery = (failed[-1] - killed_at) if failed else 0.0
    assert recovery < RECOVERY_BOUND_SECONDS, recovery
    # The answers after the kill come from the replacement, still iris-v1.
    after = [s for s in sender.timeline.snapshot().traffic if s.t > killed_at]
    assert after, "no answer after the kill"
    assert {timeline.version_number(s.served_by) for s in after} == {1}, after
    # The status: the same colour serves, with its one replica, from the new Pod.
    isvc = scene.isvc()
    status = isvc.get("status") or {}
    assert status.get("phase") == "Ready", isvc_state(isvc)
    assert status.get("activeModelVersion") == base.model_version
    assert status.get("readyReplicas") == 1, status
    assert [p["metadata"]["name"] for p in scene.serving_pods()] == [replacement]
    deployment = scene.cluster.deployment(scene.namespace, f"{ISVC}-{status['activeColor']}")
    assert deployment is not None
    assert deployment["status"].get("availableReplicas") == 1, deployment["status"]
    print(
        f"serving Pod killed: {len(failed)} of {stats.rounds + stats.failed_rounds} rounds failed,"
        f" the last {recovery:.1f} s after the kill (last error: {stats.last_error or '-'})"
    )
