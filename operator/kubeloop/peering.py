"""The peering objects Kopf's replicas meet in: one KopfPeering per watched namespace, or one
ClusterKopfPeering when watching the whole cluster.

Kopf does not create them (its CRDs are in crds/kopf.dev_peerings.yaml); the operator does at
startup, so a fresh install needs nothing else. Each replica writes a keep-alive with its
priority into the object's status; the one with the highest priority works, the others pause,
and a standby takes over when the active replica's record expires.
"""

from __future__ import annotations

import logging
from typing import Any

from kubeloop.kube.apply import create
from kubeloop.kube.errors import Conflict, KubeError
from kubeloop.runner import Context

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
