"""The operator's entry point: settings → logging → metrics → `kopf.run`.

`python -m kubeloop` and the `kubeloop-operator` script both land in `main()`. Importing
`kubeloop.controllers` registers every Kopf handler. Kopf is configured for what the issue asks
of a production operator: a liveness endpoint, namespaced or cluster-wide watching, peering for
an active/standby pair of replicas, progress kept in annotations (never in our status), and only
warnings posted as Events by Kopf (our controllers post their own, one per transition).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import sys
from typing import Any, cast

import kopf

from kubeloop import controllers
from kubeloop.kube.client import connect, credentials
from kubeloop.logs import configure_logging
from kubeloop.metrics import serve_metrics
from kubeloop.peering import PeeringGate, ensure_peering_objects
from kubeloop.runner import Context, Runner
from kubeloop.settings import OperatorSettings

logger = logging.getLogger("kubeloop")

# Kopf's own bookkeeping, if it ever writes any, goes under our domain.
ANNOTATION_PREFIX = "kubeloop.dev"


def peering_priority(settings: OperatorSettings) -> int:
    """This replica's priority: configured, else random, so that two replicas never tie (a tie
    pauses both) and the higher one is active while the other stands by."""
    if settings.peering_priority is not None:
        return settings.peering_priority
    return random.SystemRandom().randint(1, 2**31 - 1)


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: Kopf builds one (a deep copy of the body) for every event of every watched
    object, for change handlers (`on.create`/`on.update`) to diff against. The controllers use
    only `on.event` and indexes and read what they need themselves, so the copy was pure cost:
    a tenth of the operator's CPU under a burst of InferenceServices (bench/operator.py)."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def kopf_settings(settings: OperatorSettings, priority: int) -> kopf.OperatorSettings:
    """Kopf's settings from ours."""
    result = kopf.OperatorSettings()
    result.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    result.persistence.diffbase_storage = NoDiffBase()
    result.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"
    # Our controllers post one Event per transition; Kopf adds only its warnings and errors.
    result.posting.level = logging.WARNING
    result.peering.name = settings.peering_name
    result.peering.priority = priority
    result.peering.lifetime = settings.peering_lifetime_seconds
    result.peering.mandatory = not settings.standalone
    result.peering.standalone = settings.standalone
    result.peering.stealth = True
    # Events of one object that arrive this close together are handled as one.
    result.batching.batch_window = 0.05
    return result


def run(settings: OperatorSettings) -> None:
    """Run the operator until it is stopped (SIGTERM/SIGINT)."""
    api = connect(settings.kubeconfig, connections=settings.reconcile_workers)
    context = Context(api=api, settings=settings)
    priority = peering_priority(settings)
    identity = f"{socket.gethostname()}-{os.getpid()}-{priority}"
    gate = None if settings.standalone else PeeringGate(api, settings, identity, priority).open
    runner = Runner(context, gate=gate)
    controllers.register(runner)

    @kopf.on.login()
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(**credentials(api))

    @kopf.on.startup()
    def _ensure_peering(**_: Any) -> None:
        if not settings.standalone:
            ensure_peering_objects(context)

    serve_metrics(settings.metrics_port, settings.metrics_host)
    liveness = (
        f"http://{settings.health_host}:{settings.health_port}/healthz"
        if settings.health_port
        else None
    )
    logger.info(
        "starting: %s; peering %s",
        "namespaces " + ",".join(settings.namespaces) if settings.namespaces else "cluster-wide",
        "off (standalone)"
        if settings.standalone
        else f"{settings.peering_name!r} with priority {priority}",
    )
    asyncio.run(
        kopf.operator(
            settings=kopf_settings(settings, priority),
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
            identity=cast(Any, identity),
            liveness_endpoint=liveness,
            memo=kopf.Memo(runner=runner),
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the settings from the environment and run; exit 2 on invalid settings."""
    try:
        settings = OperatorSettings()
    except ValueError as error:
        print(f"kubeloop-operator: invalid settings: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    run(settings)
    return 0
