"""The shared builders: names, labels, owner references, the restricted runtime container."""

from __future__ import annotations

import re

from kubeloop.builders.common import (
    child_name,
    job_manifest,
    label_value,
    labels,
    owner_reference,
    pvc_claims,
    pvc_volumes,
    runtime_container,
)
from kubeloop.settings import OperatorSettings

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
OWNER = {
    "apiVersion": "kubeloop.dev/v1alpha1",
    "kind": "Dataset",
    "metadata": {"name": "iris", "namespace": "ml", "uid": "1234-abcd"},
}


def test_child_names_are_kept_when_short_and_hashed_when_long() -> None:
    assert child_name("iris", "profile", "3") == "iris-profile-3"
    long_a = child_name("a" * 60, "profile", "1")
    long_b = child_name("a" * 60, "profile", "2")
    assert len(long_a) <= 63
    assert DNS_LABEL.match(long_a)
    assert long_a != long_b
    assert child_name("a" * 60, "profile", "1") == long_a  # deterministic


def test_labels_carry_the_recommended_and_our_own_keys() -> None:
    result = labels(name="dataset", instance="iris", component="profile", extra={"dataset": "iris"})
    assert result["app.kubernetes.io/managed-by"] == "kubeloop-operator"
    assert result["app.kubernetes.io/part-of"] == "kubeloop"
    assert result["kubeloop.dev/dataset"] == "iris"


def test_label_values_are_made_valid() -> None:
    value = label_value("sha256:" + "a" * 64)
    assert len(value) <= 63
    assert re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", value)


def test_owner_reference_is_a_controller_reference() -> None:
    assert owner_reference(OWNER) == {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "name": "iris",
        "uid": "1234-abcd",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_runtime_container_is_restricted_with_a_writable_tmp() -> None:
    settings = OperatorSettings(runtime_image="kubeloop-runtime:dev")
    container = runtime_container(settings, name="profile", args=["profile"])
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["image"] == "kubeloop-runtime:dev"
    assert container["resources"]["requests"]["memory"] == settings.default_memory_request


def test_job_fails_at_once_on_the_runtime_exit_codes() -> None:
    settings = OperatorSettings()
    container = runtime_container(settings, name="train", args=["train"])
    job = job_manifest(
        name="iris-train",
        namespace="ml",
        owner=OWNER,
        labels_={"a": "b"},
        container=container,
        backoff_limit=2,
        active_deadline_seconds=60,
    )
    spec = job["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 60
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {
        "containerName": "train",
        "operator": "In",
        "values": [2, 3, 4, 5],
    }
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "1234-abcd"


def test_pvc_uris_become_volumes_at_the_runtime_mount_point() -> None:
    claims = pvc_claims("pvc://data/iris.csv", None, "builtin://iris", "pvc://store/models/x")
    assert claims == ["data", "store"]
    volumes, mounts = pvc_volumes(claims)
    assert volumes[1] == {"name": "pvc-1", "persistentVolumeClaim": {"claimName": "store"}}
    assert mounts[0] == {"name": "pvc-0", "mountPath": "/mnt/pvc/data"}
