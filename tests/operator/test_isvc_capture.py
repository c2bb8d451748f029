"""Data capture on the serving Pods as built (no cluster): env, the capture claim, the hash."""

from __future__ import annotations

from typing import Any

from isvc_fixtures import DEFAULTS, OWNER, spec, target

from kubeloop.builders.inferenceservice import build_deployment, template_hash
from kubeloop.settings import OperatorSettings


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"])


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    pod_spec = pod(deployment)
    return next(c for c in pod_spec["initContainers"] + pod_spec["containers"] if c["name"] == name)


def env(item: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in item["env"]}


def capture(**fields: Any) -> dict[str, Any]:
    return {"monitoring": {"capture": {"enabled": True, **fields}}}


def test_capture_sets_the_contract_env_on_the_server_only() -> None:
    deployment = build_deployment(
        OWNER,
        spec(**capture(uri="s3://bucket/iris/captures/", sampleRate=0.25, flushIntervalSeconds=30)),
        target(3),
        "blue",
        1,
        DEFAULTS,
    )
    values = env(container(deployment, "server"))
    assert values["KUBELOOP_CAPTURE_URI"] == "s3://bucket/iris/captures/"
    assert values["KUBELOOP_CAPTURE_SAMPLE_RATE"] == "0.25"
    assert values["KUBELOOP_CAPTURE_FLUSH_SECONDS"] == "30"
    assert values["KUBELOOP_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Every record carries the version served.
    assert values["KUBELOOP_MODEL_VERSION"] == "3"
    assert not any(
        name.startswith("KUBELOOP_CAPTURE") for name in env(container(deployment, "drift"))
    )
    # An s3:// folder needs no claim; the artifact's stays read-only.
    volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
    assert sorted(volumes) == ["models", "pvc-0", "tmp"]
    assert volumes["pvc-0"]["persistentVolumeClaim"]["readOnly"] is True


def test_default_capture_uri_is_under_the_artifact_store_by_namespace_and_name() -> None:
    settings = OperatorSettings(runtime_image="kubeloop-runtime:dev", artifact_store="pvc://store")
    deployment = build_deployment(OWNER, spec(**capture()), target(1), "green", 1, settings)
    values = env(container(deployment, "server"))
    assert values["KUBELOOP_CAPTURE_URI"] == "pvc://store/captures/ml/iris/"
    assert values["KUBELOOP_CAPTURE_SAMPLE_RATE"] == "1.0"
    assert values["KUBELOOP_CAPTURE_FLUSH_SECONDS"] == "10"


def test_a_pvc_capture_folder_mounts_its_claim_read_write_in_the_server() -> None:
    deployment = build_deployment(
        OWNER, spec(**capture(uri="pvc://captures/iris/")), target(1), "blue", 1, DEFAULTS
    )
    volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
    assert volumes["pvc-0"]["persistentVolumeClaim"] == {
        "claimName": "kubeloop-artifacts",
        "readOnly": True,
    }
    assert volumes["pvc-1"]["persistentVolumeClaim"] == {"claimName": "captures"}
    server = container(deployment, "server")
    assert {"name": "pvc-1", "mountPath": "/mnt/pvc/captures"} in server["volumeMounts"]
    assert all(m["name"] != "pvc-0" for m in server["volumeMounts"])
    fetch = container(deployment, "fetch")
    assert [m for m in fetch["volumeMounts"] if m["name"].startswith("pvc-")] == [
        {"name": "pvc-0", "mountPath": "/mnt/pvc/kubeloop-artifacts", "readOnly": True}
    ]
    # Writable by the image's user: the pod's fsGroup, and the container stays restricted.
    assert pod(deployment)["securityContext"]["fsGroup"] == 65532
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert server["securityContext"]["allowPrivilegeEscalation"] is False


def test_capture_into_the_artifacts_own_claim_makes_that_one_volume_writable() -> None:
    # The default store is the artifact's claim: one volume, fetch reads it, the server writes.
    deployment = build_deployment(OWNER, spec(**capture()), target(1), "blue", 1, DEFAULTS)
    volumes = [v for v in pod(deployment)["volumes"] if v["name"].startswith("pvc-")]
    assert volumes == [
        {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "kubeloop-artifacts"}}
    ]
    fetch_mounts = container(deployment, "fetch")["volumeMounts"]
    assert {"name": "pvc-0", "mountPath": "/mnt/pvc/kubeloop-artifacts", "readOnly": True} in (
        fetch_mounts
    )
    server_mounts = container(deployment, "server")["volumeMounts"]
    assert {"name": "pvc-0", "mountPath": "/mnt/pvc/kubeloop-artifacts"} in server_mounts
    assert env(container(deployment, "server"))["KUBELOOP_CAPTURE_URI"] == (
        "pvc://kubeloop-artifacts/captures/ml/iris/"
    )


def test_capture_off_or_disabled_sets_nothing() -> None:
    for body in ({}, {"monitoring": {"capture": {"enabled": False, "uri": "pvc://captures/x/"}}}):
        deployment = build_deployment(OWNER, spec(**body), target(1), "blue", 1, DEFAULTS)
        values = env(container(deployment, "server"))
        assert not any(name.startswith("KUBELOOP_CAPTURE") for name in values)
        assert "KUBELOOP_POD_NAME" not in values
        assert [v["name"] for v in pod(deployment)["volumes"]] == ["models", "tmp", "pvc-0"]


def test_capture_settings_change_the_template_hash() -> None:
    base = template_hash(OWNER, spec(), target(1), DEFAULTS)
    on = template_hash(OWNER, spec(**capture()), target(1), DEFAULTS)
    rate = template_hash(OWNER, spec(**capture(sampleRate=0.5)), target(1), DEFAULTS)
    flush = template_hash(OWNER, spec(**capture(flushIntervalSeconds=60)), target(1), DEFAULTS)
    assert len({base, on, rate, flush}) == 4
