"""What every child object shares: labels, owner references, names, and the runtime container.

This is the one home of the restricted security context (Pod Security Standards "restricted"):
non-root, read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp
RuntimeDefault, with a writable emptyDir at /tmp (the runtime image sets HOME=/tmp). Names of
children are deterministic (`child_name`), so a reconcile that runs twice finds, and never
duplicates, what the first one made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from kubeloop.api import API_VERSION
from kubeloop.settings import OperatorSettings

PART_OF: Final = "kubeloop"
MANAGED_BY: Final = "kubeloop-operator"
LABEL_PREFIX: Final = "kubeloop.dev/"
TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
TMP_VOLUME: Final = "tmp"
RUNTIME_USER: Final = 65532
NAME_LIMIT: Final = 63

Manifest = dict[str, Any]


def child_name(*parts: str, limit: int = NAME_LIMIT) -> str:
    """`parts` joined by `-`, cut to `limit` with a short hash of the whole so it stays unique."""
    full = "-".join(part for part in parts if part)
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: limit - 9].rstrip('-.')}-{digest}"


def labels(
    *, name: str, instance: str, component: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The recommended `app.kubernetes.io/*` labels plus Kubeloop's own (`kubeloop.dev/*`)."""
    result = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    for key, value in (extra or {}).items():
        result[key if "/" in key else LABEL_PREFIX + key] = label_value(value)
    return result


def label_value(value: str) -> str:
    """A value a label accepts: at most 63 characters of [A-Za-z0-9._-], alphanumeric ends."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in value)
    return child_name(cleaned).strip("-._")[:NAME_LIMIT]


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An ownerReference to `owner` (a whole object), so the garbage collector deletes the child
    with it; `blockOwnerDeletion` lets foreground deletion wait for the child."""
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def pod_security_context() -> dict[str, Any]:
    """The restricted Pod security context."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_USER,
        "runAsGroup": RUNTIME_USER,
        "fsGroup": RUNTIME_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """The restricted container security context, with a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def tmp_volume() -> dict[str, Any]:
    """The writable scratch space a read-only root needs (HOME, joblib, staging files)."""
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "1Gi"}}


def tmp_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": "/tmp"}


def default_resources(settings: OperatorSettings) -> dict[str, Any]:
    """Resources of a child container whose resource said nothing."""
    return {
        "requests": {
            "cpu": settings.default_cpu_request,
            "memory": settings.default_memory_request,
        },
        "limits": {"memory": settings.default_memory_limit},
    }


def touches_s3(*uris: str | None) -> bool:
    """Whether any of the URIs is an `s3://` one (the runtime then needs S3 credentials)."""
    return any(uri and uri.lower().startswith("s3://") for uri in uris)


def store_credentials(
    settings: OperatorSettings, *uris: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`envFrom` and `env` that give a container handling `uris` the S3 credentials Secret and
    endpoint (`KUBELOOP_ARTIFACT_STORE_SECRET`/`_ENDPOINT`); nothing when no URI is `s3://`.

    The Secret is not optional: a Pod whose namespace lacks it does not start
    (`CreateContainerConfigError`, `secret "<name>" not found`), which the operator reports,
    rather than running without credentials and failing later with a less clear S3 error."""
    if not touches_s3(*uris):
        return [], []
    env_from = (
        [{"secretRef": {"name": settings.artifact_store_secret}}]
        if settings.artifact_store_secret
        else []
    )
    env = (
        [{"name": "AWS_ENDPOINT_URL", "value": settings.artifact_store_endpoint}]
        if settings.artifact_store_endpoint
        else []
    )
    return env_from, env


def runtime_container(
    settings: OperatorSettings,
    *,
    name: str,
    args: Sequence[str],
    env: Sequence[Mapping[str, Any]] = (),
    resources: Mapping[str, Any] | None = None,
    volume_mounts: Sequence[Mapping[str, Any]] = (),
    storage_uris: Sequence[str | None] = (),
) -> dict[str, Any]:
    """A container of the runtime image running `python -m kubeloop_runtime <args>`, with the
    termination message path the operator reads results from, and /tmp mounted writable.
    `storage_uris` are the URIs it reads or writes: an `s3://` one brings the store's
    credentials (`store_credentials`); the caller's `env` wins over the endpoint by name."""
    env_from, store_env = store_credentials(settings, *storage_uris)
    names = {item["name"] for item in env}
    container: dict[str, Any] = {
        "name": name,
        "image": settings.runtime_image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": list(args),
        "env": [dict(item) for item in env]
        + [item for item in store_env if item["name"] not in names],
        "resources": dict(resources) if resources else default_resources(settings),
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_mount(), *(dict(mount) for mount in volume_mounts)],
    }
    if env_from:
        container["envFrom"] = env_from
    return container


def pvc_claims(*uris: str | None) -> list[str]:
    """The PersistentVolumeClaims named by `pvc://<claim>/...` URIs, in first-seen order."""
    claims: list[str] = []
    for uri in uris:
        if uri and uri.startswith("pvc://"):
            claim = uri[len("pvc://") :].split("/", 1)[0]
            if claim and claim not in claims:
                claims.append(claim)
    return claims


def pvc_volumes(claims: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts for claims at `/mnt/pvc/<claim>`, where the runtime resolves
    `pvc://<claim>/...` (docs/design/contracts.md, "Storage URIs")."""
    volumes = [
        {"name": f"pvc-{index}", "persistentVolumeClaim": {"claimName": claim}}
        for index, claim in enumerate(claims)
    ]
    mounts = [
        {"name": f"pvc-{index}", "mountPath": f"/mnt/pvc/{claim}"}
        for index, claim in enumerate(claims)
    ]
    return volumes, mounts


def job_manifest(
    *,
    name: str,
    namespace: str,
    owner: Mapping[str, Any] | None,
    labels_: Mapping[str, str],
    container: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]] = (),
    backoff_limit: int = 0,
    active_deadline_seconds: int | None = None,
    ttl_seconds_after_finished: int | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """A batch/v1 Job of one runtime container. The runtime's exit codes 2 to 5 (configuration,
    gate, data, fetch) end the Job at once (`podFailurePolicy` FailJob): retrying cannot help.
    Only exit 1 (a bug) and disruptions use `backoffLimit`."""
    spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": container["name"],
                        "operator": "In",
                        "values": [2, 3, 4, 5],
                    },
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "metadata": {"labels": dict(labels_)},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": pod_security_context(),
                "containers": [dict(container)],
                "volumes": [tmp_volume(), *(dict(volume) for volume in volumes)],
            },
        },
    }
    if active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = active_deadline_seconds
    if ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = ttl_seconds_after_finished
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels_)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
