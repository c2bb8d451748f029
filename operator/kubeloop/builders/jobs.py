"""What a runtime Job's observed state means: running, succeeded or failed, and its result.

The runtime reports through the container's termination message (docs/design/contracts.md,
"Termination message"): one JSON object, `ok`, `kind`, `reason`, `message` and the command's
fields. `job_outcome` reads the Job's conditions and its Pods' terminated containers and says
what happened, preferring the runtime's own words over the Job controller's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kubeloop.builders.pods import waiting_failure

JobState = Literal["running", "succeeded", "failed"]
STUCK = "PodNotStarting"
"""Condition reason and Event reason of a resource whose Job's Pod does not start."""


@dataclass(frozen=True)
class JobOutcome:
    """A Job's state; `result` is the runtime's termination message when there is one."""

    state: JobState
    result: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    message: str = ""
    finished_at: str | None = None
    exit_code: int | None = None
    stuck: str = ""
    """While running: why its Pod does not start, in the kubelet's words (e.g. `container
    train: CreateContainerConfigError (secret "kubeloop-s3" not found)`); empty otherwise."""


def _true_condition(job: Mapping[str, Any], *types: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in types and condition.get("status") == "True":
            return dict(condition)
    return None


def terminated_state(pod: Mapping[str, Any], container: str) -> dict[str, Any] | None:
    """The container's terminated state (current, else last), if it ever terminated."""
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        if status.get("name") != container:
            continue
        for key in ("state", "lastState"):
            terminated = (status.get(key) or {}).get("terminated")
            if terminated:
                return dict(terminated)
    return None


def parse_termination_message(text: str | None) -> dict[str, Any]:
    """The runtime's JSON result, or {} when the message is missing or not ours."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) and "ok" in value else {}


def latest_termination(pods: Sequence[Mapping[str, Any]], container: str) -> dict[str, Any]:
    """The most recently finished terminated state of `container` among `pods`."""
    states = [state for pod in pods if (state := terminated_state(pod, container)) is not None]
    if not states:
        return {}
    return max(states, key=lambda state: str(state.get("finishedAt") or ""))


def job_outcome(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], container: str
) -> JobOutcome:
    """What the Job's conditions and its Pods' termination messages say."""
    done = _true_condition(job, "Complete", "SuccessCriteriaMet")
    failed = _true_condition(job, "Failed", "FailureTarget")
    if done is None and failed is None:
        return JobOutcome("running", stuck=waiting_failure(pods) or "")
    terminated = latest_termination(pods, container)
    result = parse_termination_message(terminated.get("message"))
    exit_code = terminated.get("exitCode")
    finished = (
        (job.get("status") or {}).get("completionTime")
        or terminated.get("finishedAt")
        or (done or failed or {}).get("lastTransitionTime")
    )
    if done is not None and failed is None:
        return JobOutcome(
            "succeeded",
            result,
            str(result.get("reason") or ""),
            str(result.get("message") or ""),
            finished,
            exit_code,
        )
    assert failed is not None
    reason = str(result.get("reason") or failed.get("reason") or "JobFailed")
    message = str(
        result.get("message") or failed.get("message") or terminated.get("reason") or "failed"
    )
    finished = (
        finished or failed.get("lastTransitionTime") or (job.get("status") or {}).get("startTime")
    )
    return JobOutcome("failed", result, reason, message, finished, exit_code)
