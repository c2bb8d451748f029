"""What a Pod's container statuses say about why it does not run (pure; no I/O).

One list of the waiting reasons that mean a container will not start by itself soon (a missing
Secret or ConfigMap, an image that cannot be pulled), shared by the serving Pods' rollout
(builders.rollout.pod_failure) and the runtime Jobs' outcome (builders.jobs.job_outcome).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Container waiting reasons that mean the Pod will not become ready by itself soon.
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def waiting_failure(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """`<init container|container> <name>: <reason> (<kubelet's message>)` for the first
    container of `pods` waiting for a reason in STUCK_REASONS; None when none is."""
    for pod in pods:
        status = pod.get("status") or {}
        groups = (
            ("init container", status.get("initContainerStatuses")),
            ("container", status.get("containerStatuses")),
        )
        for what, statuses in groups:
            for container in statuses or ():
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in STUCK_REASONS:
                    detail = waiting.get("message") or ""
                    return f"{what} {container.get('name')}: {waiting['reason']}" + (
                        f" ({detail})" if detail else ""
                    )
    return None
