"""Admission against a real API server: the CRDs install, the examples apply, the printer columns
show, and every invalid manifest in the table is refused with a message naming the field."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_manifests import IMMUTABLE_UPDATES, INVALID_CASES, VALID, InvalidCase, UpdateCase

REPO = Path(__file__).resolve().parents[2]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.cluster


def create(
    kubectl: Kubectl, namespace: str, manifest: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)


def test_crds_are_established_with_names_and_category(
    kubectl: Kubectl, kubeloop_crds: list[str]
) -> None:
    for plural in ("datasets", "trainingjobs", "modelversions", "inferenceservices"):
        crd = json.loads(kubectl("get", "crd", f"{plural}.kubeloop.dev", "-o", "json").stdout)
        assert crd["spec"]["names"]["categories"] == ["kubeloop"]
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
        assert f"customresourcedefinition.apiextensions.k8s.io/{plural}.kubeloop.dev" in (
            kubeloop_crds
        )
    resources = kubectl("api-resources", "--api-group=kubeloop.dev", "-o", "wide").stdout
    for short_name in ("dset", "tjob", "mver", "infsvc"):
        assert f" {short_name} " in resources
    # Our short names must not shadow any other resource the server knows.
    listing = kubectl("api-resources", "--no-headers").stdout.splitlines()
    others = [line.split() for line in listing if "kubeloop.dev" not in line]
    taken = {name for row in others for name in row[1].split(",") if len(row) > 4}
    assert not {"dset", "tjob", "mver", "infsvc"} & taken


def test_every_example_applies_and_get_kubeloop_shows_the_columns(
    kubectl: Kubectl, kubeloop_crds: list[str], namespace: str
) -> None:
    examples = sorted((REPO / "examples").glob("*.yaml"))
    assert examples, "examples/ is empty"
    for example in examples:
        kubectl("apply", "-n", namespace, "-f", str(example))
    names = {
        (doc["kind"], doc["metadata"]["name"])
        for example in examples
        for doc in yaml.safe_load_all(example.read_text())
    }
    shown = kubectl("get", "kubeloop", "-n", namespace).stdout
    for kind, name in names:
        assert f"{kind.lower()}.kubeloop.dev/{name}" in shown
    for header in (
        "PHASE",
        "READY",
        "ROWS",
        "MODEL",
        "METRIC",
        "SCORE",
        "SERVING",
        "COLOR",
        "DRIFT",
    ):
        assert header in shown, f"column {header} missing from `kubectl get kubeloop`:\n{shown}"
    # Defaults were applied by the API server, not only accepted.
    spec = json.loads(kubectl("get", "infsvc", "iris", "-n", namespace, "-o", "json").stdout)[
        "spec"
    ]
    assert spec["rollout"]["smokeTest"]["enabled"] is True
    assert spec["retrain"]["template"]["evaluation"]["testSize"] == 0.2


def test_status_subresource_columns_and_kubectl_wait(
    kubectl: Kubectl, kubeloop_crds: list[str], namespace: str
) -> None:
    assert create(kubectl, namespace, VALID["InferenceService"]).returncode == 0
    status = {
        "status": {
            "phase": "Ready",
            "activeColor": "green",
            "activeModelVersion": "wine-v1",
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Serving",
                    "message": "wine-v1 serves from green",
                    "lastTransitionTime": "2026-11-23T19:00:00Z",
                    "observedGeneration": 1,
                }
            ],
            "drift": {
                "detected": True,
                "score": 0.5,
                "reports": {"wine-green-abc": {"color": "green", "detected": True, "streak": 2}},
            },
        }
    }
    kubectl(
        "patch",
        "infsvc",
        "wine",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    kubectl("wait", "--for=condition=Ready", "infsvc/wine", "-n", namespace, "--timeout=10s")
    row = kubectl("get", "infsvc", "wine", "-n", namespace, "--no-headers").stdout.split()
    assert row[:6] == ["wine", "True", "Ready", "wine", "wine-v1", "green"]
    assert "true" in row
    # A spec write through the main resource cannot touch status.
    kubectl(
        "patch",
        "infsvc",
        "wine",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"status": {"activeColor": "blue"}}),
    )
    got = kubectl("get", "infsvc", "wine", "-n", namespace, "-o", "jsonpath={.status.activeColor}")
    assert got.stdout == "green"


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda case: case.id)
def test_invalid_manifest_is_refused_naming_the_field(
    kubectl: Kubectl, kubeloop_crds: list[str], namespace: str, case: InvalidCase
) -> None:
    result = create(kubectl, namespace, case.manifest())
    assert result.returncode != 0, f"{case.id}: the API server accepted it:\n{result.stdout}"
    assert case.field_path in result.stderr, result.stderr
    assert case.message in result.stderr, result.stderr


def test_the_valid_bases_of_the_invalid_table_are_accepted(
    kubectl: Kubectl, kubeloop_crds: list[str], namespace: str
) -> None:
    for kind, manifest in VALID.items():
        result = create(kubectl, namespace, manifest)
        assert result.returncode == 0, f"{kind}: {result.stderr}"


@pytest.mark.parametrize("case", IMMUTABLE_UPDATES, ids=lambda case: case.id)
def test_model_version_identity_is_immutable(
    kubectl: Kubectl, kubeloop_crds: list[str], namespace: str, case: UpdateCase
) -> None:
    assert create(kubectl, namespace, VALID["ModelVersion"]).returncode == 0
    result = kubectl(
        "patch",
        "mver",
        "wine-v1",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(case.patch),
        check=False,
    )
    assert result.returncode != 0, f"{case.id}: the update was accepted"
    assert case.field_path in result.stderr, result.stderr
    assert case.message in result.stderr, result.stderr


def test_model_version_stage_can_move(
    kubectl: Kubectl, kubeloop_crds: list[str], namespace: str
) -> None:
    assert create(kubectl, namespace, VALID["ModelVersion"]).returncode == 0
    kubectl(
        "patch",
        "mver",
        "wine-v1",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"stage": "Production", "description": "promoted"}}),
    )
    got = kubectl("get", "mver", "wine-v1", "-n", namespace, "-o", "jsonpath={.spec.stage}")
    assert got.stdout == "Production"
