"""Hand-written manifests for the runtime image on a real node (the operator's builders come later).

Every Pod here passes the restricted Pod Security Standard: non-root (the image's uid 65532),
read-only root filesystem with an emptyDir at /tmp, no privilege escalation, every capability
dropped, the runtime's default seccomp profile. Pure functions: a name and a few facts in, a
manifest out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

IMAGE = "kubeloop-runtime:dev"
MODEL_PATH = "iris/1"  # the session's trained artifact, pvc://artifacts/iris/1
ISVC = "iris"  # the InferenceService the sidecars report to
OTHER_ISVC = "iris-other"  # one they may not touch
SERVING = "iris"  # the Deployment and Service
DRIFT_ACCOUNT = "iris-drift"
UID = 65532
ARTIFACTS_CLAIM = "artifacts"
ARTIFACTS_MOUNT = f"/mnt/pvc/{ARTIFACTS_CLAIM}"  # where pvc://artifacts/... resolves in a pod
MODEL_DIR = "/mnt/models"
SERVER_PORT = 8080
# preStop: the old Pod keeps serving while its endpoint's removal reaches kube-proxy (about a
# second here); then SIGTERM, and the server finishes in-flight requests before exiting.
PRESTOP_SECONDS = 5

Manifest = dict[str, Any]

POD_SECURITY: Manifest = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": UID,
    "fsGroup": UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: Manifest = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
TMP_VOLUME: Manifest = {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
TMP_MOUNT: Manifest = {"name": "tmp", "mountPath": "/tmp"}
SMALL: Manifest = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def container(name: str, args: list[str], **fields: Any) -> Manifest:
    """A runtime-image container with the restricted security context and a writable /tmp."""
    mounts = [TMP_MOUNT, *fields.pop("volumeMounts", [])]
    return {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "securityContext": CONTAINER_SECURITY,
        "resources": SMALL,
        "volumeMounts": mounts,
        **fields,
    }


def pod_spec(
    containers: list[Manifest], volumes: Sequence[Manifest] = (), **fields: Any
) -> Manifest:
    return {
        "securityContext": POD_SECURITY,
        "containers": containers,
        "volumes": [TMP_VOLUME, *volumes],
        **fields,
    }


def claim(name: str = ARTIFACTS_CLAIM, size: str = "256Mi") -> Manifest:
    """A claim on the default StorageClass (no storageClassName)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


def artifacts_volume(read_only: bool = False) -> Manifest:
    return {
        "name": "artifacts",
        "persistentVolumeClaim": {"claimName": ARTIFACTS_CLAIM, "readOnly": read_only},
    }


def artifacts_mount(read_only: bool = False) -> Manifest:
    return {"name": "artifacts", "mountPath": ARTIFACTS_MOUNT, "readOnly": read_only}


def train_config(model_path: str) -> dict[str, Any]:
    """The runtime configuration of an iris random forest, written to pvc://artifacts/<path>."""
    return {
        "modelName": "iris",
        "dataset": {"uri": "builtin://iris", "target": "target"},
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 25},
        "evaluation": {"testSize": 0.25, "metric": "accuracy", "threshold": 0.8, "randomSeed": 7},
        "output": {"uri": f"pvc://{ARTIFACTS_CLAIM}/{model_path}"},
    }


def job(name: str, args: list[str], volumes: list[Manifest], mounts: list[Manifest]) -> Manifest:
    """A one-shot Job of the runtime image; its result is the Pod's termination message."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": pod_spec(
                    [
                        container(
                            name,
                            args,
                            volumeMounts=mounts,
                            terminationMessagePath="/dev/termination-log",
                        )
                    ],
                    volumes,
                    restartPolicy="Never",
                ),
            },
        },
    }


def train_job(name: str, model_path: str) -> Manifest:
    return job(
        name,
        ["train", "--config", json.dumps(train_config(model_path))],
        [artifacts_volume()],
        [artifacts_mount()],
    )


def fetch_container(model_path: str, digest: str) -> Manifest:
    """The storage initializer: copies the artifact from the claim into the models emptyDir."""
    return container(
        "fetch",
        [
            "fetch",
            f"--uri=pvc://{ARTIFACTS_CLAIM}/{model_path}",
            f"--dest={MODEL_DIR}",
            f"--digest={digest}",
        ],
        volumeMounts=[artifacts_mount(read_only=True), {"name": "models", "mountPath": MODEL_DIR}],
    )


def serving_pod_spec(
    model_path: str, digest: str, isvc: str, service_account: str, **fields: Any
) -> Manifest:
    """fetch (init) → server + drift sidecar, the model read-only in both."""
    models_read_only = {"name": "models", "mountPath": MODEL_DIR, "readOnly": True}
    probe_port = {"port": SERVER_PORT}
    server = container(
        "server",
        ["serve"],
        env=[
            {"name": "KUBELOOP_MODEL_DIGEST", "value": digest},
            {"name": "KUBELOOP_GRACEFUL_SHUTDOWN_SECONDS", "value": "10"},
        ],
        ports=[{"name": "http", "containerPort": SERVER_PORT}],
        readinessProbe={
            "httpGet": {"path": "/v2/health/ready", **probe_port},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
        livenessProbe={
            "httpGet": {"path": "/v2/health/live", **probe_port},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        lifecycle={"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
        volumeMounts=[models_read_only],
    )
    field_env = [
        {"name": env, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for env, path in (
            ("KUBELOOP_POD_NAME", "metadata.name"),
            ("KUBELOOP_ISVC_NAMESPACE", "metadata.namespace"),
        )
    ]
    drift = container(
        "drift",
        ["drift"],
        env=[
            {"name": "KUBELOOP_SERVER_URL", "value": f"http://127.0.0.1:{SERVER_PORT}"},
            {"name": "KUBELOOP_MODEL_DIR", "value": MODEL_DIR},
            {"name": "KUBELOOP_ISVC_NAME", "value": isvc},
            {"name": "KUBELOOP_COLOR", "value": "blue"},
            {"name": "KUBELOOP_DRIFT_INTERVAL_SECONDS", "value": "2"},
            {"name": "KUBELOOP_DRIFT_MIN_SAMPLES", "value": "20"},
            {"name": "KUBELOOP_DRIFT_METRICS_PORT", "value": "0"},
            *field_env,
        ],
        volumeMounts=[models_read_only],
    )
    return pod_spec(
        [server, drift],
        [artifacts_volume(read_only=True), {"name": "models", "emptyDir": {"sizeLimit": "64Mi"}}],
        initContainers=[fetch_container(model_path, digest)],
        serviceAccountName=service_account,
        terminationGracePeriodSeconds=PRESTOP_SECONDS + 15,
        **fields,
    )


def serving_deployment(
    name: str, model_path: str, digest: str, isvc: str, service_account: str, replicas: int = 2
) -> Manifest:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            # One new Pod at a time, never fewer ready than asked for.
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": serving_pod_spec(model_path, digest, isvc, service_account),
            },
        },
    }


def service(name: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": SERVER_PORT}],
        },
    }


def drift_rbac(service_account: str, isvc: str) -> list[Manifest]:
    """The sidecar's identity: get one InferenceService, patch that one's status, nothing else."""
    rules = [
        {
            "apiGroups": ["kubeloop.dev"],
            "resources": ["inferenceservices"],
            "resourceNames": [isvc],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["kubeloop.dev"],
            "resources": ["inferenceservices/status"],
            "resourceNames": [isvc],
            "verbs": ["patch"],
        },
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": service_account}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": service_account},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": service_account},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": service_account,
            },
            "subjects": [{"kind": "ServiceAccount", "name": service_account}],
        },
    ]


def inference_service(name: str) -> Manifest:
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"model": {"name": "iris", "version": 1}},
    }


def python_pod(
    name: str,
    code: str,
    volumes: Sequence[Manifest] = (),
    mounts: Sequence[Manifest] = (),
    **spec_fields: Any,
) -> Manifest:
    """A Pod of the runtime image that runs `code` once (restartPolicy Never); what the code
    writes to /dev/termination-log is its result."""
    runner = container(name, ["-c", code], volumeMounts=list(mounts))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": pod_spec(
            [{**runner, "command": ["python"]}], volumes, restartPolicy="Never", **spec_fields
        ),
    }
