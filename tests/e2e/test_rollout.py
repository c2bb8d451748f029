"""Blue-green rollouts on the real node, with the operator in-cluster: a switch under continuous
load loses no request, a candidate whose artifact does not match its digest is never promoted,
and an operator killed mid-rollout converges to the same end state without duplicates.

The new version is iris-v2, registered by hand (verified by the operator's Job) on iris-v1's
artifact, or on a tampered copy of it: the server names the version it serves in every answer
(`modelVersion`), so the answers tell which colour served them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from e2e_kit import ISVC, LABEL_ISVC, MODEL, Scene, claim_path, condition_of, isvc_state

from demolib import timeline
from demolib.load import TrafficSender

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.node, pytest.mark.timeout(900)]

NEW = f"{MODEL}-v2"
COPY_SCRIPT = """
import shutil, sys
shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True)
print("copied", sys.argv[1], "to", sys.argv[2])
"""
TAMPER_SCRIPT = """
import os, sys
path = os.path.join(sys.argv[1], "model.joblib")
with open(path, "ab") as model:
    model.write(b"tampered after verification")
print("appended to", path)
"""


def start_load(scene: Scene, url: str, rate: float = 8.0) -> tuple[TrafficSender, Any]:
    """Base rows through the active Service's ClusterIP, a fresh connection per round."""
    began = time.monotonic()

    def clock() -> float:
        return time.monotonic() - began

    sender = TrafficSender(url, timeline.Timeline(), clock, batch_size=5, rounds_per_second=rate)
    sender.start()
    scene.wait(
        "the first answers under load",
        lambda: (len(sender.timeline.snapshot().traffic) >= 3 or None, str(sender.stats)),
        timeout=30,
    )
    return sender, clock


def versions(sender: TrafficSender) -> list[int | None]:
    return [timeline.version_number(s.served_by) for s in sender.timeline.snapshot().traffic]


def patch_isvc(scene: Scene, patch: dict[str, Any]) -> None:
    scene.kubectl("patch", "inferenceservice", ISVC, "--type=merge", "-p", json.dumps(patch))


def owned_by(items: list[dict[str, Any]], owner: str) -> list[str]:
    return sorted(
        item["metadata"]["name"]
        for item in items
        if any(ref.get("name") == owner for ref in item["metadata"].get("ownerReferences") or ())
    )


def children(scene: Scene) -> dict[str, list[str]]:
    """Everything the operator made for the InferenceService and the registry, by kind."""
    ns, selector = scene.namespace, f"{LABEL_ISVC}={ISVC}"
    apps, core, batch = scene.cluster.apps, scene.cluster.core, scene.cluster.batch
    plain = scene.cluster.plain
    deployments = [plain(d) for d in apps.list_namespaced_deployment(ns).items]
    replica_sets = [plain(r) for r in apps.list_namespaced_replica_set(ns).items]
    found = {
        "deployments": sorted(d["metadata"]["name"] for d in deployments),
        "services": sorted(
            s.metadata.name for s in core.list_namespaced_service(ns, label_selector=selector).items
        ),
        "serviceaccounts": sorted(
            s.metadata.name
            for s in core.list_namespaced_service_account(ns, label_selector=selector).items
        ),
        "jobs": sorted(j.metadata.name for j in batch.list_namespaced_job(ns).items),
        "trainingjobs": scene.names("TrainingJob"),
        "modelversions": scene.names("ModelVersion"),
        "inferenceservices": scene.names("InferenceService"),
    }
    for deployment in found["deployments"]:
        found[f"replicasets of {deployment}"] = owned_by(replica_sets, deployment)
    return found


def assert_promoted_end_state(scene: Scene, version: str, old: str) -> dict[str, Any]:
    """What an uninterrupted blue-green rollout of `version` ends with: the new colour active
    and Ready, the old one scaled to 0, one promotion each, the conditions settled."""

    def settled() -> tuple[dict[str, Any] | None, str]:
        isvc = scene.isvc()
        status = isvc.get("status") or {}
        blue = scene.cluster.deployment(scene.namespace, f"{ISVC}-blue") or {}
        gone = (blue.get("spec") or {}).get("replicas") == 0 and not scene.serving_pods("blue")
        if status.get("activeModelVersion") == version and status.get("phase") == "Ready" and gone:
            return isvc, "settled"
        return None, f"{isvc_state(isvc)}; blue replicas {(blue.get('spec') or {}).get('replicas')}"

    isvc = scene.wait(f"{version} active and the old colour scaled to 0", settled, timeout=180)
    status = isvc["status"]
    assert status["activeColor"] == "green", status
    # The candidate record is dropped once the old colour is scaled down (steady again).
    candidate = status.get("candidate")
    assert candidate is None or candidate["phase"] == "Promoted", candidate
    assert [p["modelVersion"] for p in status["promotions"]] == [version, old], status
    assert status["readyReplicas"] == 1, status
    for kind, wanted in (("Ready", "True"), ("Progressing", "False"), ("Degraded", "False")):
        assert condition_of(isvc, kind).get("status") == wanted, (kind, status["conditions"])
    registered = scene.status("ModelVersion", version)
    assert registered.get("phase") == "Ready", registered
    return isvc


def test_zero_failed_requests_while_blue_green_switches_under_load(scene: Scene) -> None:
    base = scene.baseline()
    sender, clock = start_load(scene, base.url)
    try:
        scene.register(2, base.artifact, description="iris-v1's artifact, a new version")
        scene.wait_serving(NEW, timeout=300)
        promoted_at = clock()
        scene.wait(
            f"answers from {NEW} through the Service",
            lambda: (timeline.first_answer_from(sender.timeline.snapshot().traffic, NEW), ""),
            timeout=60,
        )
        # Keep the load on until the old colour's Pods are gone: scale-down is where a careless
        # rollout drops the requests still routed to them.
        assert_promoted_end_state(scene, NEW, base.model_version)
        time.sleep(2)
    finally:
        sender.stop()
    stats = sender.stats
    seen = versions(sender)
    assert stats.failed_rounds == 0, (
        f"{stats.failed_rounds} of {stats.rounds + stats.failed_rounds} rounds failed "
        f"(last: {stats.last_error}) at {stats.failed_at} s; promoted at {promoted_at:.1f} s"
    )
    assert stats.rounds >= 50, stats
    # Old answers, then new ones, never back: the switch is one step for new connections.
    assert seen[0] == 1, seen
    assert seen[-1] == 2, seen
    first_new = seen.index(2)
    assert all(v == 1 for v in seen[:first_new]), seen
    assert all(v == 2 for v in seen[first_new:]), seen
    print(f"switch under load: {stats.rounds} rounds, 0 failed; {first_new} answered by v1")


def test_a_candidate_whose_artifact_digest_does_not_match_is_never_promoted(
    scene: Scene,
) -> None:
    base = scene.baseline()
    # Pin what serves (the same target: no rollout) and give the candidate a short deadline.
    patch_isvc(
        scene,
        {
            "spec": {
                "model": {"latest": None, "version": 1},
                "rollout": {"progressDeadlineSeconds": 30},
            }
        },
    )
    copy_uri = base.artifact["uri"].rstrip("/") + "-copy/"
    scene.claim_job(
        "e2e-copy-artifact", COPY_SCRIPT, claim_path(base.artifact["uri"]), claim_path(copy_uri)
    )
    # The registry verifies the copy (identical bytes): iris-v2 is Ready ...
    scene.register(2, {**base.artifact, "uri": copy_uri}, description="a copy, then tampered")
    scene.wait(
        f"modelversion/{NEW} to be verified Ready",
        lambda: (
            scene.status("ModelVersion", NEW).get("phase") == "Ready" or None,
            str(scene.status("ModelVersion", NEW)),
        ),
        timeout=120,
        focus=(("ModelVersion", NEW),),
    )
    # ... and then its bytes change on the claim, after verification, before serving.
    scene.claim_job("e2e-tamper-artifact", TAMPER_SCRIPT, claim_path(copy_uri))
    sender, _ = start_load(scene, base.url, rate=4.0)
    try:
        patch_isvc(scene, {"spec": {"model": {"version": 2}}})

        def aborted() -> tuple[dict[str, Any] | None, str]:
            isvc = scene.isvc()
            candidate = (isvc.get("status") or {}).get("candidate") or {}
            if candidate.get("modelVersion") == NEW and candidate.get("phase") == "Failed":
                return isvc, "aborted"
            return None, isvc_state(isvc)

        isvc = scene.wait(f"the rollout of {NEW} to be aborted", aborted, timeout=180)
        time.sleep(5)  # answers after the abort, too
    finally:
        sender.stop()
    status = isvc["status"]
    candidate = status["candidate"]
    assert "digest mismatch" in candidate["message"], candidate
    assert candidate["color"] == "green", candidate
    assert status["phase"] == "Degraded", status
    assert status["activeModelVersion"] == base.model_version, status
    assert [p["modelVersion"] for p in status["promotions"]] == [base.model_version], status
    degraded = condition_of(isvc, "Degraded")
    assert degraded.get("status") == "True", degraded
    assert "digest mismatch" in degraded["message"], degraded
    assert condition_of(isvc, "Ready").get("status") == "False"
    green = scene.cluster.deployment(scene.namespace, f"{ISVC}-green") or {}
    assert green["spec"]["replicas"] == 0, green["spec"]
    # The answers: all from iris-v1, none failed, before, during and after the abort.
    stats = sender.stats
    assert stats.failed_rounds == 0, (stats.failed_rounds, stats.last_error)
    assert stats.rounds >= 20, stats
    assert set(versions(sender)) == {1}, versions(sender)
    # The Pod said why: fetch exited 5 with the mismatch in its termination message.
    assert "exit code 5" in candidate["message"], candidate


def test_the_operator_killed_mid_rollout_converges_without_duplicates(scene: Scene) -> None:
    base = scene.baseline()
    patch_isvc(scene, {"spec": {"rollout": {"scaleDownDelaySeconds": 3}}})
    before = children(scene)
    scene.register(2, base.artifact, description="iris-v1's artifact, a new version")

    def deploying() -> tuple[bool | None, str]:
        isvc = scene.isvc()
        candidate = (isvc.get("status") or {}).get("candidate") or {}
        green = scene.cluster.deployment(scene.namespace, f"{ISVC}-green")
        if candidate.get("modelVersion") == NEW and candidate.get("phase") == "Deploying" and green:
            return True, "deploying"
        return None, isvc_state(isvc)

    scene.wait(f"the rollout of {NEW} to be under way", deploying, timeout=120)
    stack = scene.stack
    [pod] = stack.cluster.pods(stack.namespace, stack.selector)
    killed = pod["metadata"]["uid"]
    stack.kubectl(
        "delete",
        "pod",
        "-n",
        stack.namespace,
        pod["metadata"]["name"],
        "--grace-period=0",
        "--force",
        "--wait=false",
    )

    def replaced() -> tuple[str | None, str]:
        pods = stack.cluster.pods(stack.namespace, stack.selector)
        ready = [
            p
            for p in pods
            if p["metadata"]["uid"] != killed
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or ()
            )
        ]
        return (ready[0]["metadata"]["name"] if ready else None), f"{len(pods)} operator Pods"

    scene.wait("a new operator Pod to be Ready", replaced, timeout=180)
    assert_promoted_end_state(scene, NEW, base.model_version)
    scene.wait(
        f"an answer from {NEW}",
        lambda: _answer_from(scene, base.url, 2),
        timeout=60,
    )

    after = children(scene)
    assert after["deployments"] == [f"{ISVC}-blue", f"{ISVC}-green"], after
    assert after["services"] == [ISVC, f"{ISVC}-preview"], after
    assert after["serviceaccounts"] == before["serviceaccounts"], (before, after)
    for color in ("blue", "green"):
        assert len(after[f"replicasets of {ISVC}-{color}"]) == 1, after
    assert after["trainingjobs"] == before["trainingjobs"] == ["iris-rf"], after
    assert after["modelversions"] == ["iris-v1", NEW], after
    assert after["inferenceservices"] == [ISVC], after
    new_jobs = sorted(set(after["jobs"]) - set(before["jobs"]))
    assert len(new_jobs) == 1, (before, after)
    assert new_jobs[0].startswith(f"{NEW}-verify"), (before, after)
    assert len(scene.serving_pods("green")) == 1


def _answer_from(scene: Scene, url: str, version: int) -> tuple[Any, str]:
    from demolib import traffic

    answer, text = scene.try_predict(url, traffic.draw(1, shifted=False, seed=7))
    if answer is not None and timeline.version_number(answer.model_version) == version:
        return (answer, text), "answered"
    return None, f"{text}: {answer}"
