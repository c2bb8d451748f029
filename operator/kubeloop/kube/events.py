"""Kubernetes Events about our objects (`kubectl describe` and `kubectl get events` show them).

`emit` never raises: an Event is a report, and a reconcile must not fail because the report
could not be written (the failure is logged instead).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes import client as k8s

from kubeloop.kube.apply import create
from kubeloop.kube.errors import KubeError

EventType = Literal["Normal", "Warning"]
COMPONENT = "kubeloop-operator"
MESSAGE_LIMIT = 1024

logger = logging.getLogger(__name__)


def build_event(
    involved: Mapping[str, Any],
    type_: EventType | str,
    reason: str,
    message: str,
    *,
    now: datetime,
    suffix: str,
) -> dict[str, Any]:
    """A core/v1 Event about `involved` (a whole object: apiVersion, kind, metadata)."""
    meta = involved["metadata"]
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def emit(
    api: k8s.ApiClient,
    involved: Mapping[str, Any],
    type_: EventType | str,
    reason: str,
    message: str,
) -> None:
    """Record an Event about `involved`; log (never raise) when it cannot be written."""
    event = build_event(
        involved, type_, reason, message, now=datetime.now(UTC), suffix=uuid.uuid4().hex[:16]
    )
    try:
        create(api, event)
    except KubeError as error:
        name = involved["metadata"]["name"]
        logger.warning("cannot record event %s on %s: %s", reason, name, error)
