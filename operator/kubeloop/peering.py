"""The peering objects Kopf's replicas meet in: one KopfPeering per watched namespace, or one
ClusterKopfPeering when watching the whole cluster.

Kopf does not create them (its CRDs are in crds/kopf.dev_peerings.yaml); the operator does at
startup, so a fresh install needs nothing else. Each replica writes a keep-alive with its
priority into the object's status; the one with the highest priority works, the others pause,
and a standby takes over when the active replica's record expires.

Kopf pauses only what it runs (its watches) in an outranked replica; the Runner's timed requeues
run outside it. `PeeringGate` tells the Runner whether this replica may reconcile, by the rule
Kopf applies to the same records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client as k8s

from kubeloop.kube.apply import create, get_or_none
from kubeloop.kube.errors import Conflict, KubeError
from kubeloop.runner import PAUSED_RECHECK_SECONDS, Context
from kubeloop.settings import OperatorSettings

PEERING_API_VERSION = "kopf.dev/v1"
logger = logging.getLogger(__name__)


def peering_objects(name: str, namespaces: list[str]) -> list[dict[str, Any]]:
    """The peering objects for these namespaces (cluster-wide when empty)."""
    meta_labels = {
        "app.kubernetes.io/part-of": "kubeloop",
        "app.kubernetes.io/managed-by": "kubeloop-operator",
    }
    if not namespaces:
        return [
            {
                "apiVersion": PEERING_API_VERSION,
                "kind": "ClusterKopfPeering",
                "metadata": {"name": name, "labels": meta_labels},
            }
        ]
    return [
        {
            "apiVersion": PEERING_API_VERSION,
            "kind": "KopfPeering",
            "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        }
        for namespace in namespaces
    ]


def ensure_peering_objects(context: Context) -> None:
    """Create the peering objects that do not exist yet (an existing one is left as it is)."""
    settings = context.settings
    for manifest in peering_objects(settings.peering_name, settings.namespaces):
        try:
            create(context.api, manifest)
            logger.info("created %s %s", manifest["kind"], manifest["metadata"]["name"])
        except Conflict:
            pass
        except KubeError as error:
            logger.warning(
                "cannot create %s %s (install crds/kopf.dev_peerings.yaml or run standalone): %s",
                manifest["kind"],
                manifest["metadata"]["name"],
                error,
            )


def outranking_peers(
    peerings: Iterable[Mapping[str, Any]], identity: str, priority: int, now: datetime
) -> list[str]:
    """The live peers other than `identity` that make Kopf pause a replica of `priority`: a
    higher priority, or the same one (Kopf pauses both of a tie). A record is live until its
    `lastseen` plus `lifetime`; a record without `lastseen` counts as just seen, as in Kopf."""
    found = []
    for peering in peerings:
        for peer, record in (peering.get("status") or {}).items():
            if peer == identity or not isinstance(record, Mapping):
                continue
            seen = record.get("lastseen")
            last = datetime.fromisoformat(seen) if isinstance(seen, str) else now
            if last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            if last + timedelta(seconds=int(record.get("lifetime", 60))) <= now:
                continue
            if int(record.get("priority", 0)) >= priority:
                found.append(peer)
    return sorted(found)


class PeeringGate:
    """Whether this replica may reconcile now: not while a live peer outranks it.

    Reads the peering objects at most once per `ttl` seconds (reconciles in worker threads share
    one read); when they cannot be read, the last answer stands (at first: open).
    """

    def __init__(
        self,
        api: k8s.ApiClient,
        settings: OperatorSettings,
        identity: str,
        priority: int,
        ttl: float = PAUSED_RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api, self._identity, self._priority = api, identity, priority
        self._objects = peering_objects(settings.peering_name, settings.namespaces)
        self._ttl, self._clock = ttl, clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._outranked_by: list[str] = []

    def open(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self._ttl:
                self._checked_at = now
                self._refresh()
            return not self._outranked_by

    def _refresh(self) -> None:
        try:
            bodies = [
                get_or_none(
                    self._api,
                    PEERING_API_VERSION,
                    item["kind"],
                    item["metadata"].get("namespace"),
                    item["metadata"]["name"],
                )
                for item in self._objects
            ]
        except KubeError as error:
            logger.warning("cannot read the peering objects, reconciling on: %s", error)
            return
        found = outranking_peers(
            [body for body in bodies if body is not None],
            self._identity,
            self._priority,
            datetime.now(UTC),
        )
        if found != self._outranked_by:
            if found:
                logger.info("reconciles paused: outranked by %s", ", ".join(found))
            else:
                logger.info("reconciles resumed: no live peer outranks this replica")
        self._outranked_by = found
