"""The children of an InferenceService: two colour Deployments, two Services, the sidecar's RBAC.

Pure functions from the spec, the resolved ModelVersion and the operator's settings (image, pull
policy, default resources) to manifests; what all children share (labels, owner references, the
restricted security context, the runtime container) is builders/common.py's. Nothing here reads
the cluster or a clock; which colour runs what, and with how many replicas, is the rollout's
decision (builders/rollout.py). Each serving Pod is:
- init container `fetch`: the runtime's `fetch` copies the artifact into an emptyDir and checks
  its digest (a mismatch exits 5 with the reason in the termination message);
- container `server`: `serve`, with the artifact mounted read-only, probes on the v2 health
  endpoints (a startup probe first, so a slow start on a busy node is not killed by liveness), a
  preStop pause so clients still routed to it finish, and a grace period above serve's own
  graceful shutdown; with `monitoring.capture` on, the capture settings and the
  capture folder's claim mounted read-write;
- container `drift` when monitoring is on: the sidecar (env per docs/design/contracts.md), which
  patches `status.drift` with the Pod's ServiceAccount `<name>-drift`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubeloop.api.base import API_VERSION, GROUP
from kubeloop.api.inferenceservice import Color, InferenceServiceSpec
from kubeloop.builders import common
from kubeloop.builders.dataset import store_folder
from kubeloop.builders.target import ServingTarget
from kubeloop.settings import OperatorSettings

COLORS: Final[tuple[Color, Color]] = ("blue", "green")
HTTP_PORT: Final = 8080
DRIFT_METRICS_PORT: Final = 9090
MODEL_DIR: Final = "/mnt/models"
PVC_ROOT: Final = "/mnt/pvc"
TERMINATION_LOG: Final = common.TERMINATION_MESSAGE_PATH
# preStop pause: kube-proxy and Service endpoints catch up while the server still answers.
PRE_STOP_SLEEP_SECONDS: Final = 5
# serve drains in-flight requests for this long after SIGTERM (its own default is 25 s) ...
GRACEFUL_SHUTDOWN_SECONDS: Final = 20
# ... and the kubelet waits for preStop + the drain, with a margin, before SIGKILL.
TERMINATION_GRACE_SECONDS: Final = PRE_STOP_SLEEP_SECONDS + GRACEFUL_SHUTDOWN_SECONDS + 5
SIDECAR_RESOURCES: Final = {"requests": {"cpu": "20m", "memory": "128Mi"}}
FETCH_RESOURCES: Final = {"requests": {"cpu": "50m", "memory": "64Mi"}}

# Server variables spec.env cannot override: the artifact's location and its digest.
PROTECTED_ENV: Final = frozenset({"KUBELOOP_MODEL_DIR", "KUBELOOP_MODEL_DIGEST"})

LABEL_ISVC: Final = f"{GROUP}/inferenceservice"
LABEL_COLOR: Final = f"{GROUP}/color"
LABEL_MODEL_VERSION: Final = f"{GROUP}/model-version"
ANNOTATION_TEMPLATE_HASH: Final = f"{GROUP}/template-hash"
ANNOTATION_PROMOTE: Final = f"{GROUP}/promote"


@dataclass(frozen=True, slots=True)
class Owner:
    """The InferenceService the children belong to (for names, labels, owner references)."""

    name: str
    namespace: str
    uid: str


def other_color(color: Color) -> Color:
    return "green" if color == "blue" else "blue"


def deployment_name(isvc: str, color: Color) -> str:
    return f"{isvc}-{color}"


def active_service_name(isvc: str) -> str:
    return isvc


def preview_service_name(isvc: str) -> str:
    return f"{isvc}-preview"


def sidecar_account_name(isvc: str) -> str:
    return f"{isvc}-drift"


def service_url(isvc: str, namespace: str, *, preview: bool = False) -> str:
    name = preview_service_name(isvc) if preview else active_service_name(isvc)
    return f"http://{name}.{namespace}.svc.cluster.local"


def labels(owner: Owner, component: str, **extra: str) -> dict[str, str]:
    """The labels every child carries; `extra` adds kubeloop.dev/color and model-version."""
    return common.labels(
        name="inferenceservice",
        instance=owner.name,
        component=component,
        extra={"inferenceservice": owner.name}
        | {key.replace("_", "-"): value for key, value in extra.items()},
    )


def owner_reference(owner: Owner, *, controller: bool = True) -> dict[str, Any]:
    body = {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": owner.name, "uid": owner.uid},
    }
    return common.owner_reference(body, controller=controller)


def _metadata(owner: Owner, name: str, labels_: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels_,
        "ownerReferences": [owner_reference(owner)],
    }


def color_selector(owner: Owner, color: Color) -> dict[str, str]:
    """What a colour's Pods are selected by (immutable on a Deployment: no model version)."""
    return {LABEL_ISVC: owner.name, LABEL_COLOR: color}


# --- the serving Pod ---------------------------------------------------------------------------


def _env(values: Mapping[str, str | int | float]) -> list[dict[str, Any]]:
    return [{"name": f"KUBELOOP_{key}", "value": str(value)} for key, value in values.items()]


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _probe(path: str, period: int, failures: int, timeout: int = 2) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


# Start-up (imports, the digest check, loading the model) can take tens of seconds on a busy
# node: the startup probe holds liveness (and readiness) off until the server answers, for up to
# this long, so a slow start is never killed as if it had hung.
STARTUP_SECONDS: Final = 300


def capture_uri(owner: Owner, spec: InferenceServiceSpec, settings: OperatorSettings) -> str | None:
    """Where the serving Pods write captured rows: `capture.uri`, else the artifact store's
    `captures/<namespace>/<name>/`; None when capture is off."""
    capture = spec.monitoring.capture
    if capture is None or not capture.enabled:
        return None
    if capture.uri:
        return str(capture.uri)
    return store_folder(settings.artifact_store, "captures", owner.namespace, owner.name) + "/"


@dataclass(frozen=True, slots=True)
class ClaimVolumes:
    """The PVCs a serving Pod uses, one volume each, and who mounts which at /mnt/pvc/<claim>."""

    volumes: list[dict[str, Any]]
    fetch_mounts: list[dict[str, Any]]
    """The artifact's claim, read-only: fetch copies from it."""
    server_mounts: list[dict[str, Any]]
    """The capture folder's claim, read-write: the server writes part files into it."""


def claim_volumes(target: ServingTarget, capture: str | None) -> ClaimVolumes:
    """A claim only read is a read-only volume; one capture writes to (even the artifact's own
    claim, the default store) is writable, since a readOnly volume refuses every mount's writes."""
    artifact_claims = common.pvc_claims(target.artifact_uri)
    capture_claims = common.pvc_claims(capture)
    claims = common.pvc_claims(target.artifact_uri, capture)
    volumes, mounts = common.pvc_volumes(claims)
    for claim, volume in zip(claims, volumes, strict=True):
        if claim not in capture_claims:
            volume["persistentVolumeClaim"]["readOnly"] = True
    by_claim = dict(zip(claims, mounts, strict=True))
    return ClaimVolumes(
        volumes=volumes,
        fetch_mounts=[by_claim[claim] | {"readOnly": True} for claim in artifact_claims],
        server_mounts=[by_claim[claim] for claim in capture_claims],
    )


def _capture_env(spec: InferenceServiceSpec, uri: str | None) -> dict[str, str | int | float]:
    """The serve settings of the data capture (docs/design/contracts.md, "Data capture");
    KUBELOOP_POD_NAME comes from the downward API and KUBELOOP_MODEL_VERSION is already set."""
    capture = spec.monitoring.capture
    if uri is None or capture is None:
        return {}
    return {
        "CAPTURE_URI": uri,
        "CAPTURE_SAMPLE_RATE": capture.sample_rate,
        "CAPTURE_FLUSH_SECONDS": capture.flush_interval_seconds,
        "PVC_ROOT": PVC_ROOT,
    }


def _fetch_container(
    target: ServingTarget, claims: ClaimVolumes, settings: OperatorSettings
) -> dict[str, Any]:
    return common.runtime_container(
        settings,
        name="fetch",
        args=[
            "fetch",
            "--uri",
            target.artifact_uri,
            "--dest",
            MODEL_DIR,
            "--digest",
            target.digest,
        ],
        env=_env({"PVC_ROOT": PVC_ROOT}),
        resources=FETCH_RESOURCES,
        volume_mounts=[{"name": "models", "mountPath": MODEL_DIR}, *claims.fetch_mounts],
        storage_uris=[target.artifact_uri],
    )


def _server_container(
    spec: InferenceServiceSpec,
    target: ServingTarget,
    capture: str | None,
    claims: ClaimVolumes,
    settings: OperatorSettings,
) -> dict[str, Any]:
    values: dict[str, str | int | float] = {
        "MODEL_DIR": MODEL_DIR,
        "MODEL_NAME": target.model_name,
        "MODEL_VERSION": target.version,
        "MODEL_DIGEST": target.digest,
        "PORT": HTTP_PORT,
        "WINDOW_SIZE": spec.monitoring.window,
        "GRACEFUL_SHUTDOWN_SECONDS": GRACEFUL_SHUTDOWN_SECONDS,
        "TERMINATION_LOG": TERMINATION_LOG,
    }
    env = _env(values | _capture_env(spec, capture))
    if capture is not None:
        # Names this Pod's part files; retention applies to its own parts only.
        env.append(_field_env("KUBELOOP_POD_NAME", "metadata.name"))
    # `spec.env` overrides what the operator sets, by name, except where the artifact comes from
    # and the digest it must have: those are the ModelVersion's, not the user's to change.
    extra = {var.name: var.value for var in spec.env or () if var.name not in PROTECTED_ENV}
    env = [item for item in env if item["name"] not in extra]
    env += [{"name": name, "value": value} for name, value in extra.items()]
    container = common.runtime_container(
        settings,
        name="server",
        args=["serve"],
        env=env,
        resources=spec.resources.to_wire() if spec.resources is not None else None,
        volume_mounts=[
            {"name": "models", "mountPath": MODEL_DIR, "readOnly": True},
            *claims.server_mounts,
        ],
        storage_uris=[capture],
    )
    container |= {
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "startupProbe": _probe("/v2/health/live", period=1, failures=STARTUP_SECONDS),
        "readinessProbe": _probe("/v2/health/ready", period=2, failures=2),
        # Once started, a loaded node may answer slowly: a kill drops in-flight requests.
        "livenessProbe": _probe("/v2/health/live", period=10, failures=3, timeout=5),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
    }
    return container


def _drift_container(
    owner: Owner,
    spec: InferenceServiceSpec,
    target: ServingTarget,
    color: Color,
    settings: OperatorSettings,
) -> dict[str, Any]:
    monitoring = spec.monitoring
    env = [
        *_env(
            {
                "SERVER_URL": f"http://127.0.0.1:{HTTP_PORT}",
                "MODEL_DIR": MODEL_DIR,
                "ISVC_NAME": owner.name,
                "COLOR": color,
                "DRIFT_METHOD": monitoring.method,
                "DRIFT_THRESHOLD": monitoring.threshold,
                "DRIFT_INTERVAL_SECONDS": monitoring.interval_seconds,
                "DRIFT_MIN_SAMPLES": monitoring.min_samples,
                "DRIFT_METRICS_PORT": DRIFT_METRICS_PORT,
            }
        ),
        _field_env("KUBELOOP_ISVC_NAMESPACE", "metadata.namespace"),
        _field_env("KUBELOOP_POD_NAME", "metadata.name"),
    ]
    container = common.runtime_container(
        settings,
        name="drift",
        args=["drift"],
        env=env,
        resources=SIDECAR_RESOURCES,
        volume_mounts=[{"name": "models", "mountPath": MODEL_DIR, "readOnly": True}],
    )
    container["ports"] = [{"name": "drift-metrics", "containerPort": DRIFT_METRICS_PORT}]
    return container


def pod_template(
    owner: Owner,
    spec: InferenceServiceSpec,
    target: ServingTarget,
    color: Color,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The serving Pod template of one colour."""
    capture = capture_uri(owner, spec, settings)
    claims = claim_volumes(target, capture)
    containers = [_server_container(spec, target, capture, claims, settings)]
    if spec.monitoring.enabled:
        containers.append(_drift_container(owner, spec, target, color, settings))
    volumes: list[dict[str, Any]] = [
        {"name": "models", "emptyDir": {}},
        common.tmp_volume(),
        *claims.volumes,
    ]
    return {
        "metadata": {
            "labels": labels(owner, "predictor", color=color, model_version=target.model_version)
        },
        "spec": {
            "serviceAccountName": sidecar_account_name(owner.name),
            # Only the drift sidecar talks to the API server.
            "automountServiceAccountToken": spec.monitoring.enabled,
            "securityContext": common.pod_security_context(),
            "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
            "initContainers": [_fetch_container(target, claims, settings)],
            "containers": containers,
            "volumes": volumes,
        },
    }


def template_hash(
    owner: Owner, spec: InferenceServiceSpec, target: ServingTarget, settings: OperatorSettings
) -> str:
    """A digest of what a colour would serve (model, image, resources, env, monitoring and its
    data capture: all rendered into the template).

    It is the same for both colours (the template is hashed as rendered for blue), so the rollout
    can tell that the idle colour still runs exactly what is wanted (an immediate rollback). A
    change of replicas is not in it: that scales in place.
    """
    rendered = pod_template(owner, spec, target, "blue", settings)
    text = json.dumps(rendered, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_deployment(
    owner: Owner,
    spec: InferenceServiceSpec,
    target: ServingTarget,
    color: Color,
    replicas: int,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """Deployment `<name>-<color>` serving `target` with `replicas` Pods."""
    metadata = _metadata(
        owner,
        deployment_name(owner.name, color),
        labels(owner, "predictor", color=color, model_version=target.model_version),
    )
    metadata["annotations"] = {
        ANNOTATION_TEMPLATE_HASH: template_hash(owner, spec, target, settings)
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": color_selector(owner, color)},
            # Honoured by availableReplicas, which the promotion waits for.
            "minReadySeconds": spec.rollout.min_ready_seconds,
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "revisionHistoryLimit": 2,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": pod_template(owner, spec, target, color, settings),
        },
    }


def build_replicas_patch(replicas: int) -> dict[str, Any]:
    """A merge patch that scales a colour without touching its template."""
    return {"spec": {"replicas": replicas}}


def _service(owner: Owner, name: str, component: str, color: Color) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, labels(owner, component, color=color)),
        "spec": {
            "type": "ClusterIP",
            "selector": color_selector(owner, color),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_active_service(owner: Owner, color: Color) -> dict[str, Any]:
    """Service `<name>`: the traffic, on the active colour."""
    return _service(owner, active_service_name(owner.name), "active", color)


def build_preview_service(owner: Owner, color: Color) -> dict[str, Any]:
    """Service `<name>-preview`: the candidate (or idle) colour, for the smoke test and people."""
    return _service(owner, preview_service_name(owner.name), "preview", color)


def build_sidecar_rbac(owner: Owner) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding: get this InferenceService, patch only its status."""
    name = sidecar_account_name(owner.name)
    meta = _metadata(owner, name, labels(owner, "drift"))
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["inferenceservices"],
                    "resourceNames": [owner.name],
                    "verbs": ["get"],
                },
                {
                    "apiGroups": [GROUP],
                    "resources": ["inferenceservices/status"],
                    "resourceNames": [owner.name],
                    "verbs": ["get", "patch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
        },
    ]
