"""The generator: committed files are current, schemas are structural, names do not collide."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from api_manifests import IMMUTABLE_UPDATES, INVALID_CASES
from pydantic import BaseModel, Field

from kubeloop.api import CATEGORY, KINDS, KindInfo
from kubeloop.crdgen import (
    SchemaTranslationError,
    build_crd,
    drifted_files,
    generated_files,
    iter_fields,
    main,
    model_schema,
    resource_schema,
    write_files,
)

REPO = Path(__file__).resolve().parents[2]

# Short names our users already type: built-in kinds, and the tools Kubeloop replaces or sits
# next to (KServe, Kubeflow, Argo Rollouts, Knative, Argo CD, Flux).
TAKEN_SHORT_NAMES = {
    "cm",
    "cs",
    "csr",
    "crd",
    "crds",
    "cj",
    "ds",
    "deploy",
    "ep",
    "eps",
    "ev",
    "hpa",
    "ing",
    "limits",
    "netpol",
    "no",
    "ns",
    "pc",
    "pdb",
    "po",
    "psp",
    "pv",
    "pvc",
    "quota",
    "rc",
    "rs",
    "sa",
    "sc",
    "sts",
    "svc",
    "isvc",
    "ig",
    "tm",
    "sr",
    "ro",
    "ar",
    "exp",
    "nb",
    "app",
    "apps",
    "appproj",
    "ks",
    "hr",
    "gitrepo",
    "ksvc",
    "kservice",
    "rev",
    "route",
    "cfg",
    "tfjob",
    "pytorchjob",
    "mpijob",
    "xgbjob",
    "wf",
    "cwf",
    "wftmpl",
}


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")


def test_the_committed_files_are_what_the_generator_writes() -> None:
    assert drifted_files(REPO) == [], "run `python -m kubeloop.crdgen` and commit the result"


def test_check_mode_reports_drift_and_stale_files(tmp_path: Path, capsys: Any) -> None:
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert write_files(tmp_path)
    assert main(["--root", str(tmp_path), "--check"]) == 0
    crd = tmp_path / "crds/kubeloop.dev_datasets.yaml"
    crd.write_text(crd.read_text().replace("minRows", "minimumRows"))
    stale = tmp_path / "helm/kubeloop/crds/kubeloop.dev_gadgets.yaml"
    stale.write_text("kind: CustomResourceDefinition\n")
    assert main(["--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "crds/kubeloop.dev_datasets.yaml" in err
    assert "helm/kubeloop/crds/kubeloop.dev_gadgets.yaml" in err
    assert main(["--root", str(tmp_path)]) == 0
    assert not stale.exists()
    assert main(["--root", str(tmp_path), "--check"]) == 0


def test_helm_chart_ships_the_crds(tool_path: Callable[[str], str]) -> None:
    shown = subprocess.run(
        [tool_path("helm"), "show", "crds", str(REPO / "helm/kubeloop")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    names = [doc["metadata"]["name"] for doc in yaml.safe_load_all(shown) if doc]
    peering = ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]
    assert sorted(names) == sorted([info.crd_name for info in KINDS] + peering)


def test_helm_chart_crds_mirror_crds_folder() -> None:
    files = generated_files()
    for info in KINDS:
        name = f"kubeloop.dev_{info.plural}.yaml"
        assert files[f"crds/{name}"] == files[f"helm/kubeloop/crds/{name}"]
    peering = "kopf.dev_peerings.yaml"
    assert files[f"crds/{peering}"] == files[f"helm/kubeloop/crds/{peering}"]
    chart = yaml.safe_load((REPO / "helm/kubeloop/Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"], chart["version"]) == ("v2", "kubeloop", "0.1.0")


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_schemas_are_structural(info: KindInfo) -> None:
    for path, node in walk(resource_schema(info)):
        assert not {"$ref", "allOf", "oneOf", "title", "nullable", "uniqueItems"} & node.keys(), (
            path
        )
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
        typed = "type" in node or node.get("x-kubernetes-int-or-string")
        assert typed or node.get("x-kubernetes-preserve-unknown-fields"), f"{path}: no type"
        if node.get("default") is not None and isinstance(node["default"], dict):
            assert node["default"] == {}, path


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_cel_rules_say_what_to_do(info: KindInfo) -> None:
    rules = [
        rule
        for _, node in walk(resource_schema(info))
        for rule in node.get("x-kubernetes-validations", [])
    ]
    for rule in rules:
        assert len(rule["message"]) > 20, rule
        assert rule.get("reason", "FieldValueInvalid").startswith("FieldValue"), rule


def test_every_cel_rule_is_exercised_by_the_admission_table() -> None:
    expected = {case.message for case in INVALID_CASES} | {c.message for c in IMMUTABLE_UPDATES}
    for info in KINDS:
        for path, node in walk(resource_schema(info)):
            for rule in node.get("x-kubernetes-validations", []):
                hits = [
                    fragment for fragment in expected if fragment and fragment in rule["message"]
                ]
                assert hits, f"{info.kind}{path}: no invalid case triggers {rule['message']!r}"


def test_every_spec_has_a_rule_that_spans_fields_or_guards_identity() -> None:
    for info in KINDS:
        schema = resource_schema(info)
        rules = [r for _, node in walk(schema) for r in node.get("x-kubernetes-validations", [])]
        assert rules, f"{info.kind} has no CEL rule"


def test_short_names_collide_with_nothing_users_know() -> None:
    names = [name for info in KINDS for name in info.short_names]
    assert len(set(names)) == len(names)
    assert not set(names) & TAKEN_SHORT_NAMES
    own_names = {info.plural for info in KINDS} | {info.singular for info in KINDS}
    assert not set(names) & own_names


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_crd_has_status_subresource_category_and_conventional_status(info: KindInfo) -> None:
    crd = build_crd(info)
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["categories"] == [CATEGORY]
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    fields = conditions["items"]["properties"]
    assert set(fields) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert fields["status"]["enum"] == ["True", "False", "Unknown"]


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_printer_columns_point_at_fields_that_exist(info: KindInfo) -> None:
    schema = resource_schema(info)
    known = {path for path, _ in walk(schema)}
    for column in info.printer_columns:
        plain = re.sub(r"\[\?\(.*?\)\]", "[]", column.json_path)
        assert plain in known or plain.startswith(".metadata."), column


def test_printer_columns_tell_the_story() -> None:
    names = {info.kind: [c.name for c in info.printer_columns] for info in KINDS}
    assert {"Phase", "Ready", "Age"} <= set(names["Dataset"])
    assert {"Model", "Metric", "Score", "ModelVersion"} <= set(names["TrainingJob"])
    assert {"Model", "Version", "Stage"} <= set(names["ModelVersion"])
    assert {"Ready", "Model", "Serving", "Color", "Drift"} <= set(names["InferenceService"])


def test_must_match_status_fields_of_the_inference_service() -> None:
    status = resource_schema(KINDS[3])["properties"]["status"]["properties"]
    for name in (
        "activeColor",
        "activeModelVersion",
        "candidate",
        "url",
        "previewUrl",
        "drift",
        "lastRetrain",
        "conditions",
        "observedGeneration",
    ):
        assert name in status
    assert status["activeColor"]["enum"] == ["blue", "green"]
    drift = status["drift"]["properties"]
    for name in (
        "detected",
        "score",
        "method",
        "threshold",
        "driftedFeatures",
        "samples",
        "accuracy",
        "checkedAt",
        "reports",
    ):
        assert name in drift
    # Every key the drift sidecar writes must be in the schema, or the API server prunes it.
    from datetime import UTC, datetime

    from kubeloop_runtime.drift.status import PodReport, build_drift_status

    now = datetime(2026, 1, 1, tzinfo=UTC)
    report = PodReport(
        color="blue",
        model_version="1",
        detected=True,
        score=0.5,
        drifted_features=("a",),
        samples=10,
        accuracy=0.9,
        rmse=None,
        labeled=3,
        concept_drift=False,
        streak=1,
        checked_at=now,
    )
    written = build_drift_status(
        {"activeColor": "blue"},
        "pod-1",
        report,
        now=now,
        interval_seconds=60,
        method="auto",
        threshold=0.3,
    )
    assert set(written) <= set(drift)
    report_schema = drift["reports"]["additionalProperties"]["properties"]
    assert set(written["reports"]["pod-1"]) <= set(report_schema)


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_reference_page_documents_every_field(info: KindInfo) -> None:
    page = (REPO / f"docs/reference/{info.singular}.md").read_text()
    schema = resource_schema(info)
    for section in ("spec", "status"):
        for row in iter_fields(schema["properties"][section], section):
            assert f"`{row.path}`" in page
            assert row.description, f"{row.path} has no description"


# --- the translator on small models ---------------------------------------------------------


class Inner(BaseModel):
    """An inner object."""

    size: int = Field(3, ge=1)


class Outer(BaseModel):
    name: str = Field(description="A name.", max_length=5)
    ratio: float = Field(0.5, gt=0, lt=1)
    choice: Literal["a", "b"] | None = None
    inner: Inner | None = Field(None, description="Overrides the class docstring.")
    free: dict[str, Any] | None = None
    anything: Any = None


def test_translator_inlines_refs_drops_null_and_titles_and_keeps_constraints() -> None:
    schema = model_schema(Outer)
    assert "title" not in schema
    properties = schema["properties"]
    assert schema["required"] == ["name"]
    assert properties["name"] == {"description": "A name.", "type": "string", "maxLength": 5}
    assert properties["ratio"] == {
        "type": "number",
        "default": 0.5,
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "exclusiveMaximum": True,
    }
    assert properties["choice"] == {"type": "string", "enum": ["a", "b"]}
    assert properties["inner"]["description"] == "Overrides the class docstring."
    assert properties["inner"]["properties"]["size"] == {
        "type": "integer",
        "default": 3,
        "minimum": 1,
    }
    assert properties["free"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert properties["anything"] == {"x-kubernetes-preserve-unknown-fields": True}


def test_translator_refuses_what_a_crd_cannot_say() -> None:
    class Union(BaseModel):
        value: int | list[int]

    class Unique(BaseModel):
        values: set[int]

    class ObjectDefault(BaseModel):
        inner: Inner = Inner.model_validate({})

    with pytest.raises(SchemaTranslationError, match="value: anyOf"):
        model_schema(Union)
    with pytest.raises(SchemaTranslationError, match="uniqueItems"):
        model_schema(Unique)
    with pytest.raises(SchemaTranslationError, match="object defaults"):
        model_schema(ObjectDefault)
