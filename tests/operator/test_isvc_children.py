"""The InferenceService's children as built (no cluster): Deployments, Services, sidecar RBAC."""

from __future__ import annotations

from typing import Any

from isvc_fixtures import DEFAULTS, DIGEST, OWNER, spec, target

from kubeloop.builders.inferenceservice import (
    ANNOTATION_TEMPLATE_HASH,
    build_active_service,
    build_deployment,
    build_preview_service,
    build_sidecar_rbac,
    template_hash,
)


def containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["initContainers"] + pod["containers"]}


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_deployment_fetches_the_artifact_with_its_digest_into_a_read_only_emptydir() -> None:
    deployment = build_deployment(OWNER, spec(), target(3), "green", 2, DEFAULTS)
    assert deployment["metadata"]["name"] == "iris-green"
    assert deployment["spec"]["replicas"] == 2
    fetch = containers(deployment)["fetch"]
    assert fetch["args"] == [
        "fetch",
        "--uri",
        "pvc://kubeloop-artifacts/models/iris/a/",
        "--dest",
        "/mnt/models",
        "--digest",
        DIGEST,
    ]
    assert {"name": "models", "mountPath": "/mnt/models"} in fetch["volumeMounts"]
    # The artifact's claim is mounted where the runtime looks for pvc:// URIs, read-only.
    assert {
        "name": "pvc-0",
        "mountPath": "/mnt/pvc/kubeloop-artifacts",
        "readOnly": True,
    } in fetch["volumeMounts"]
    server = containers(deployment)["server"]
    assert {"name": "models", "mountPath": "/mnt/models", "readOnly": True} in server[
        "volumeMounts"
    ]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["models"] == {"name": "models", "emptyDir": {}}
    assert volumes["pvc-0"]["persistentVolumeClaim"] == {
        "claimName": "kubeloop-artifacts",
        "readOnly": True,
    }


def test_a_non_pvc_artifact_mounts_no_claim() -> None:
    deployment = build_deployment(
        OWNER, spec(), target(1, uri="s3://bucket/iris/"), "blue", 1, DEFAULTS
    )
    names = [v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]]
    assert names == ["models", "tmp"]


def test_server_has_probes_prestop_grace_and_the_serve_env() -> None:
    deployment = build_deployment(OWNER, spec(), target(3), "blue", 2, DEFAULTS)
    server = containers(deployment)["server"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # Liveness waits for the startup probe: a start slower than liveness's failure budget
    # (a busy node) must not be killed (the e2e tests saw exit 137 before the server listened).
    startup = server["startupProbe"]
    assert startup["httpGet"]["path"] == "/v2/health/live"
    liveness = server["livenessProbe"]
    budget = liveness["periodSeconds"] * liveness["failureThreshold"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 10 * budget
    assert server["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    pod = deployment["spec"]["template"]["spec"]
    values = env(server)
    shutdown = int(values["KUBELOOP_GRACEFUL_SHUTDOWN_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > (
        server["lifecycle"]["preStop"]["sleep"]["seconds"] + shutdown
    )
    assert values["KUBELOOP_MODEL_DIGEST"] == DIGEST
    assert values["KUBELOOP_MODEL_VERSION"] == "3"
    assert values["KUBELOOP_MODEL_NAME"] == "iris"
    assert values["KUBELOOP_WINDOW_SIZE"] == "5000"


def test_every_container_is_restricted() -> None:
    deployment = build_deployment(OWNER, spec(), target(), "blue", 1, DEFAULTS)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in containers(deployment).values():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_drift_sidecar_env_follows_the_contract() -> None:
    monitored = spec(
        monitoring={"method": "ks", "threshold": 0.5, "intervalSeconds": 30, "minSamples": 200}
    )
    deployment = build_deployment(OWNER, monitored, target(), "green", 1, DEFAULTS)
    values = env(containers(deployment)["drift"])
    assert values["KUBELOOP_ISVC_NAME"] == "iris"
    assert values["KUBELOOP_COLOR"] == "green"
    assert values["KUBELOOP_DRIFT_METHOD"] == "ks"
    assert values["KUBELOOP_DRIFT_THRESHOLD"] == "0.5"
    assert values["KUBELOOP_DRIFT_INTERVAL_SECONDS"] == "30"
    assert values["KUBELOOP_DRIFT_MIN_SAMPLES"] == "200"
    assert values["KUBELOOP_SERVER_URL"] == "http://127.0.0.1:8080"
    assert values["KUBELOOP_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert values["KUBELOOP_ISVC_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "iris-drift"
    assert pod["automountServiceAccountToken"] is True


def test_without_monitoring_there_is_no_sidecar_and_no_token() -> None:
    deployment = build_deployment(
        OWNER, spec(monitoring={"enabled": False}), target(), "blue", 1, DEFAULTS
    )
    assert set(containers(deployment)) == {"fetch", "server"}
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_labels_selector_and_owner() -> None:
    deployment = build_deployment(OWNER, spec(), target(2), "blue", 1, DEFAULTS)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["kubeloop.dev/inferenceservice"] == "iris"
    assert labels["kubeloop.dev/color"] == "blue"
    assert labels["kubeloop.dev/model-version"] == "iris-v2"
    assert labels["app.kubernetes.io/instance"] == "iris"
    assert labels["app.kubernetes.io/managed-by"] == "kubeloop-operator"
    # The selector is immutable on a Deployment: it must not carry the model version.
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "kubeloop.dev/inferenceservice": "iris",
        "kubeloop.dev/color": "blue",
    }
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert owner["uid"] == "1234-uid"
    assert owner["controller"] is True


def test_template_hash_changes_with_what_is_served_not_with_colour_or_replicas() -> None:
    base = template_hash(OWNER, spec(), target(1), DEFAULTS)
    assert base == template_hash(OWNER, spec(replicas=5), target(1), DEFAULTS)
    blue = build_deployment(OWNER, spec(), target(1), "blue", 1, DEFAULTS)
    green = build_deployment(OWNER, spec(), target(1), "green", 3, DEFAULTS)
    assert blue["metadata"]["annotations"][ANNOTATION_TEMPLATE_HASH] == base
    assert green["metadata"]["annotations"][ANNOTATION_TEMPLATE_HASH] == base
    changed = [
        template_hash(OWNER, spec(), target(2), DEFAULTS),
        template_hash(OWNER, spec(resources={"limits": {"memory": "1Gi"}}), target(1), DEFAULTS),
        template_hash(
            OWNER,
            spec(env=[{"name": "KUBELOOP_MAX_BATCH_ROWS", "value": "8"}]),
            target(1),
            DEFAULTS,
        ),
        template_hash(OWNER, spec(monitoring={"enabled": False}), target(1), DEFAULTS),
        template_hash(
            OWNER, spec(), target(1), DEFAULTS.model_copy(update={"runtime_image": "other:1"})
        ),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_services_select_their_colours() -> None:
    active = build_active_service(OWNER, "green")
    preview = build_preview_service(OWNER, "blue")
    assert active["metadata"]["name"] == "iris"
    assert preview["metadata"]["name"] == "iris-preview"
    assert active["spec"]["selector"] == {
        "kubeloop.dev/inferenceservice": "iris",
        "kubeloop.dev/color": "green",
    }
    assert preview["spec"]["selector"]["kubeloop.dev/color"] == "blue"
    assert active["spec"]["ports"][0]["targetPort"] == "http"


def test_sidecar_role_gets_this_service_and_patches_only_its_status() -> None:
    account, role, binding = build_sidecar_rbac(OWNER)
    assert account["kind"] == "ServiceAccount"
    assert account["metadata"]["name"] == "iris-drift"
    rules = {tuple(rule["resources"]): rule for rule in role["rules"]}
    assert set(rules) == {("inferenceservices",), ("inferenceservices/status",)}
    assert rules[("inferenceservices",)]["verbs"] == ["get"]
    assert "patch" in rules[("inferenceservices/status",)]["verbs"]
    for rule in role["rules"]:
        assert rule["resourceNames"] == ["iris"]
        assert rule["apiGroups"] == ["kubeloop.dev"]
    assert binding["roleRef"]["name"] == "iris-drift"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "iris-drift", "namespace": "ml"}
    ]


def test_spec_env_overrides_the_operator_by_name_but_not_the_artifact_or_its_digest() -> None:
    custom = spec(
        env=[
            {"name": "KUBELOOP_PORT", "value": "9000"},
            {"name": "KUBELOOP_MODEL_DIGEST", "value": "sha256:" + "b" * 64},
            {"name": "KUBELOOP_MODEL_DIR", "value": "/elsewhere"},
            {"name": "EXTRA", "value": "1"},
        ]
    )
    server = containers(build_deployment(OWNER, custom, target(), "blue", 1, DEFAULTS))["server"]
    names = [e["name"] for e in server["env"]]
    assert len(names) == len(set(names))  # server-side apply refuses duplicate names
    values = env(server)
    assert values["KUBELOOP_PORT"] == "9000"
    assert values["EXTRA"] == "1"
    assert values["KUBELOOP_MODEL_DIGEST"] == DIGEST
    assert values["KUBELOOP_MODEL_DIR"] == "/mnt/models"
