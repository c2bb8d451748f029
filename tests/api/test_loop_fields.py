"""The API fields of the closed loop: TrainingJob evaluation.compareTo, InferenceService
monitoring.capture (docs/design/contracts.md, "Data capture" and "Comparison with the serving
model")."""

from __future__ import annotations

import copy

import pytest
from api_manifests import VALID
from pydantic import ValidationError

from kubeloop.api import InferenceServiceSpec, TrainingJobSpec
from kubeloop.api.inferenceservice import INFERENCE_SERVICE
from kubeloop.crdgen import build_crd


def test_compare_to_is_unset_by_default_and_takes_serving() -> None:
    spec = VALID["TrainingJob"]["spec"]
    assert TrainingJobSpec.model_validate(spec).evaluation.compare_to is None
    chosen = copy.deepcopy(spec)
    chosen["evaluation"]["compareTo"] = "serving"
    parsed = TrainingJobSpec.model_validate(chosen)
    assert parsed.evaluation.compare_to == "serving"
    assert parsed.model_dump(by_alias=True, exclude_none=True)["evaluation"]["compareTo"] == (
        "serving"
    )
    chosen["evaluation"]["compareTo"] = "best"
    with pytest.raises(ValidationError, match="compareTo"):
        TrainingJobSpec.model_validate(chosen)


def test_capture_is_off_unless_asked_and_has_defaults() -> None:
    spec = VALID["InferenceService"]["spec"]
    assert InferenceServiceSpec.model_validate(spec).monitoring.capture is None
    asked = copy.deepcopy(spec)
    asked["monitoring"]["capture"] = {"enabled": True}
    capture = InferenceServiceSpec.model_validate(asked).monitoring.capture
    assert capture is not None
    assert (capture.enabled, capture.uri, capture.sample_rate, capture.flush_interval_seconds) == (
        True, None, 1.0, 10,
    )  # fmt: skip
    asked["monitoring"]["capture"] = {"enabled": True, "uri": "pvc://data/iris/captures/"}
    chosen = InferenceServiceSpec.model_validate(asked).monitoring.capture
    assert chosen is not None
    assert chosen.uri == "pvc://data/iris/captures/"


def test_the_crd_bounds_the_sample_rate() -> None:
    crd = build_crd(INFERENCE_SERVICE)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    capture = schema["properties"]["spec"]["properties"]["monitoring"]["properties"]["capture"]
    rate = capture["properties"]["sampleRate"]
    assert (rate["minimum"], rate["maximum"]) == (0.0, 1.0)
