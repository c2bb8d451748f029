"""The models: examples parse, defaults and the allow-list match what the CRDs say."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_manifests import VALID

from kubeloop.api import KINDS, InferenceServiceSpec, KindInfo, ModelVersionSpec, TrainingJobSpec
from kubeloop.api.modelversion import model_version_name
from kubeloop.crdgen import build_crd
from kubeloop.estimators import ALLOWED_ESTIMATORS

REPO = Path(__file__).resolve().parents[2]
BY_KIND = {info.kind: info for info in KINDS}


def example_documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted((REPO / "examples").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
    ]


def test_the_examples_cover_a_classifier_and_a_regressor_pipeline() -> None:
    documents = example_documents()
    kinds = [document["kind"] for document in documents]
    assert kinds.count("Dataset") >= 2
    sources = {d["spec"]["source"]["uri"] for d in documents if d["kind"] == "Dataset"}
    assert {"builtin://iris", "builtin://diabetes"} <= sources
    iris = next(
        d for d in documents if d["kind"] == "InferenceService" and d["metadata"]["name"] == "iris"
    )
    assert iris["spec"]["monitoring"]["enabled"] is True
    assert iris["spec"]["retrain"]["enabled"] is True


@pytest.mark.parametrize("document", example_documents(), ids=lambda d: d["metadata"]["name"])
def test_every_example_parses_with_the_models(document: dict[str, Any]) -> None:
    info = BY_KIND[document["kind"]]
    assert document["apiVersion"] == "kubeloop.dev/v1alpha1"
    info.spec_model.model_validate(document["spec"])


@pytest.mark.parametrize("kind", sorted(VALID))
def test_the_valid_test_manifests_parse_too(kind: str) -> None:
    BY_KIND[kind].spec_model.model_validate(VALID[kind]["spec"])


def test_python_defaults_match_what_the_api_server_fills_in() -> None:
    spec = InferenceServiceSpec.model_validate({"model": {"name": "iris", "latest": True}})
    wire = spec.to_wire()
    assert wire["rollout"] == {
        "strategy": "BlueGreen",
        "autoPromote": True,
        "minReadySeconds": 10,
        "smokeTest": {"enabled": True, "minSuccessRatio": 1.0, "timeoutSeconds": 30},
        "scaleDownDelaySeconds": 30,
        "progressDeadlineSeconds": 600,
    }
    assert wire["monitoring"]["method"] == "auto"
    assert wire["retrain"] == {"enabled": False, "cooldown": "1h"}


def test_an_inference_service_can_follow_an_alias() -> None:
    spec = InferenceServiceSpec.model_validate({"model": {"name": "iris", "alias": "champion"}})
    assert spec.model.alias == "champion"
    assert spec.to_wire()["model"] == {"name": "iris", "alias": "champion"}


def test_snake_case_attributes_and_camel_case_wire_names() -> None:
    spec = ModelVersionSpec.model_validate(VALID["ModelVersion"]["spec"])
    assert spec.model_name == "wine"
    assert spec.lineage is not None
    assert spec.lineage.training_job == "wine-lr"
    assert (
        spec.to_wire()["artifact"]["digest"] == VALID["ModelVersion"]["spec"]["artifact"]["digest"]
    )


def test_the_models_refuse_what_the_schema_refuses() -> None:
    with pytest.raises(ValueError, match="digest"):
        ModelVersionSpec.model_validate(
            {"modelName": "m", "version": 1, "artifact": {"uri": "file:///a", "digest": "md5:x"}}
        )
    with pytest.raises(ValueError, match="testSize"):
        TrainingJobSpec.model_validate(
            {**VALID["TrainingJob"]["spec"], "evaluation": {"testSize": 1.5}}
        )


def estimator_enum(info: KindInfo) -> list[str]:
    spec = build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    enum: list[str] = spec["properties"]["estimator"]["enum"]
    return enum


def test_the_crd_enum_is_the_allow_list() -> None:
    assert estimator_enum(BY_KIND["TrainingJob"]) == list(ALLOWED_ESTIMATORS)
    assert len(set(ALLOWED_ESTIMATORS)) == len(ALLOWED_ESTIMATORS)


@pytest.mark.parametrize("path", ALLOWED_ESTIMATORS)
def test_every_allowed_estimator_is_a_scikit_learn_estimator(path: str) -> None:
    module_name, _, class_name = path.rpartition(".")
    estimator = getattr(importlib.import_module(module_name), class_name)
    assert hasattr(estimator, "fit")
    assert hasattr(estimator, "get_params")


def test_the_runtime_keeps_the_same_allow_list() -> None:
    runtime = pytest.importorskip("kubeloop_runtime.estimators")
    assert set(runtime.ALLOWED_ESTIMATORS) == set(ALLOWED_ESTIMATORS)


def test_model_version_names_follow_model_and_version() -> None:
    assert model_version_name("iris", 3) == "iris-v3"
    assert model_version_name(VALID["ModelVersion"]["spec"]["modelName"], 1) == "wine-v1"


def test_training_specs_pass_through_to_the_runtime_config_unchanged() -> None:
    # contracts.md: the operator hands the TrainingJob spec to `train` as it is; the runtime's
    # parser must accept every example, with the API server's defaults filled in.
    config = pytest.importorskip("kubeloop_runtime.config")
    documents = example_documents()
    datasets = {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "Dataset"}
    for job in (d for d in documents if d["kind"] == "TrainingJob"):
        spec = TrainingJobSpec.model_validate(job["spec"]).to_wire()
        dataset = datasets[spec["datasetRef"]["name"]]
        document = {
            **spec,
            "dataset": dataset,
            "output": {"uri": "file:///tmp/artifacts/" + job["metadata"]["name"]},
        }
        parsed = config.parse_train_config(document)
        assert parsed.estimator == spec["estimator"]
