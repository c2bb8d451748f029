"""Smoke-test requests and judgement, and the reasons read from a colour's Pods (no cluster)."""

from __future__ import annotations

import json

from kubeloop.api.inferenceservice import SmokeTest
from kubeloop.builders.rollout import pod_failure
from kubeloop.builders.smoketest import SmokeAnswer, judge, smoke_requests

ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5}


def test_instances_become_one_predict_each_and_are_judged_by_ratio() -> None:
    test = SmokeTest.model_validate({"instances": [ROW, ROW], "minSuccessRatio": 0.5})
    requests = smoke_requests(test, "iris")
    assert [(r.method, r.path, r.body) for r in requests] == [
        ("POST", "/predict", {"instances": [ROW]}),
        ("POST", "/predict", {"instances": [ROW]}),
    ]
    good = requests[0].accepts(200, {"predictions": ["setosa"]})
    bad = requests[1].accepts(422, {"error": "feature 'x' missing"})
    assert good
    assert not bad
    answers = [
        SmokeAnswer(requests[0], 200, "", good),
        SmokeAnswer(requests[1], 422, "feature 'x' missing", bad),
    ]
    assert judge(answers, test).passed
    strict = SmokeTest.model_validate({"instances": [ROW, ROW]})
    result = judge(answers, strict)
    assert not result.passed
    assert "1/2 requests" in result.message
    assert "HTTP 422" in result.message
    assert "feature 'x' missing" in result.message


def test_without_instances_the_preview_must_route_to_the_loaded_model() -> None:
    requests = smoke_requests(SmokeTest(), "iris")
    assert [r.path for r in requests] == ["/v2/health/ready", "/v2/models/iris"]
    refused = [SmokeAnswer(r, 0, "ConnectError: refused", False) for r in requests]
    result = judge(refused, SmokeTest())
    assert not result.passed
    assert "no answer" in result.message


def pod(
    init: list[dict[str, object]] | None = None, main: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {
        "metadata": {"name": "iris-green-abc"},
        "status": {"initContainerStatuses": init or [], "containerStatuses": main or []},
    }


def test_init_container_digest_failure_is_named_with_the_runtime_message() -> None:
    message = json.dumps(
        {"ok": False, "kind": "fetch", "reason": "FetchError", "message": "digest mismatch: x"}
    )
    crashing = {
        "name": "fetch",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
        "lastState": {"terminated": {"exitCode": 5, "message": message}},
    }
    reason = pod_failure([pod(init=[crashing])])
    assert reason == (
        "init container fetch: CrashLoopBackOff (exit code 5, FetchError: digest mismatch: x)"
    )
    first_failure = {"name": "fetch", "state": {"terminated": {"exitCode": 5, "message": message}}}
    assert "FetchError: digest mismatch" in (pod_failure([pod(init=[first_failure])]) or "")


def test_server_crash_loop_and_pending_pods() -> None:
    crashing = {
        "name": "server",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 3, "message": "artifact refused"}},
    }
    assert pod_failure([pod(main=[crashing])]) == (
        "container server: CrashLoopBackOff (exit code 3, artifact refused)"
    )
    # Between two crashes the container runs again for a moment: its last exit still counts.
    restarted = {
        "name": "server",
        "ready": False,
        "restartCount": 2,
        "state": {"running": {"startedAt": "2026-12-01T08:00:00Z"}},
        "lastState": {"terminated": {"exitCode": 2, "message": "invalid settings"}},
    }
    assert pod_failure([pod(main=[restarted])]) == (
        "container server restarted 2 times, last exit code 2, invalid settings"
    )
    starting = {"name": "server", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert pod_failure([pod(main=[starting])]) is None
    unschedulable = {
        "metadata": {"name": "p"},
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "message": "0/1 nodes: Insufficient cpu",
                }
            ]
        },
    }
    assert pod_failure([unschedulable]) == "Pod p unschedulable: 0/1 nodes: Insufficient cpu"
