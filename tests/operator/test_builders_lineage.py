"""Data lineage as built (no cluster): a folder Dataset records the manifest of its version, the
TrainingJob pins version and manifest and passes both to train, its status keeps the pin, a
result on other data fails the run; the ModelVersion gets the framework and input example, and
the smoke test predicts that example when it has no instances of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from test_builders_dataset import dataset, profile_result, run
from test_builders_trainingjob import config_of, trainingjob

from kubeloop.api.dataset import DatasetStatus
from kubeloop.api.inferenceservice import SmokeTest
from kubeloop.api.modelversion import ModelVersionSpec
from kubeloop.api.trainingjob import TrainingJobStatus
from kubeloop.builders.dataset import result_manifest
from kubeloop.builders.jobs import JobOutcome
from kubeloop.builders.smoketest import smoke_requests
from kubeloop.builders.target import to_target
from kubeloop.builders.trainingjob import (
    DatasetPin,
    allocate_version,
    build_model_version,
    build_training_job,
    counter_manifest,
    dataset_mismatch,
    finished_status,
    pin_dataset,
    running_status,
)
from kubeloop.settings import OperatorSettings

SETTINGS = OperatorSettings(runtime_image="kubeloop-runtime:dev")
NOW = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
VERSION = "sha256:" + "a" * 64
OTHER = "sha256:" + "c" * 64
FOLDER = {"source": {"uri": "pvc://data/iris/"}, "target": "target"}
ENTRIES = [
    {"path": "a.csv", "size": 100, "digest": "sha256:" + "1" * 64},
    {"path": "b.csv", "size": 200, "digest": "sha256:" + "2" * 64},
]
MANIFEST_URI = "pvc://store/datasets/iris/g1-s0/manifest.json"
MANIFEST = {"digest": "sha256:" + "d" * 64, "files": 2, "uri": MANIFEST_URI, "entries": ENTRIES}


def folder_result() -> dict[str, Any]:
    return profile_result(VERSION) | {"format": "folder", "files": 2, "manifest": MANIFEST}


def test_a_folder_datasets_status_records_the_manifest_of_its_version() -> None:
    ds = dataset()
    run(ds, None, NOW)
    run(ds, JobOutcome("succeeded", folder_result()), NOW + timedelta(seconds=5))
    status = ds["status"]
    assert (status["version"], status["manifest"]) == (VERSION, MANIFEST)
    DatasetStatus.model_validate(status)


def test_a_manifest_trimmed_by_the_termination_message_keeps_only_what_is_whole() -> None:
    cut = {**MANIFEST, "entries": [ENTRIES[0], "…1 more"]}
    assert result_manifest({"manifest": cut}) == {
        "digest": MANIFEST["digest"],
        "files": 2,
        "uri": MANIFEST_URI,
    }
    no_uri = {key: value for key, value in cut.items() if key != "uri"}
    assert result_manifest({"manifest": no_uri}) is None  # train could not find the files
    assert result_manifest({"manifest": {**MANIFEST, "digest": "sha256:ab…"}}) is None
    assert result_manifest(profile_result()) is None  # one file, builtin: no manifest


def ready_folder_dataset(version: str = VERSION) -> dict[str, Any]:
    return {"spec": FOLDER, "status": {"version": version, "manifest": MANIFEST}}


def test_the_pin_is_the_datasets_version_and_manifest_and_a_restart_keeps_it() -> None:
    pin = pin_dataset({}, ready_folder_dataset())
    assert pin == DatasetPin(VERSION, MANIFEST)
    # Pinned before a restart, while the Dataset moved on: the run keeps its own pin.
    kept = {"datasetVersion": VERSION, "datasetManifest": MANIFEST}
    assert pin_dataset(kept, ready_folder_dataset(OTHER)) == DatasetPin(VERSION, MANIFEST)
    # Pinned by an operator without manifests: the Dataset's manifest only if still that version.
    assert pin_dataset({"datasetVersion": VERSION}, ready_folder_dataset()).manifest == MANIFEST
    assert pin_dataset({"datasetVersion": VERSION}, ready_folder_dataset(OTHER)).manifest is None


def test_train_gets_the_pinned_version_and_manifest_and_its_claims() -> None:
    pin = DatasetPin(VERSION, MANIFEST)
    job = build_training_job(trainingjob(compare=False), FOLDER, SETTINGS, None, pin)
    dataset_config = config_of(job)["dataset"]
    assert dataset_config["source"] == FOLDER["source"]
    assert dataset_config["version"] == VERSION
    assert dataset_config["manifest"] == MANIFEST
    claims = [
        volume["persistentVolumeClaim"]["claimName"]
        for volume in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in volume
    ]
    assert claims == ["data", "kubeloop-artifacts", "store"]  # data, output, manifest
    single = build_training_job(
        trainingjob(compare=False),
        {"source": {"uri": "builtin://iris"}},
        SETTINGS,
        None,
        DatasetPin(VERSION),
    )
    assert config_of(single)["dataset"] == {"source": {"uri": "builtin://iris"}, "version": VERSION}


def passing_result(digest: str) -> dict[str, Any]:
    return {
        "ok": True,
        "kind": "train",
        "passed": True,
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "metrics": {"accuracy": 0.95},
        "gate": {"metric": "accuracy", "value": 0.95, "threshold": 0.8, "passed": True},
        "artifact": {"uri": "pvc://kubeloop-artifacts/models/iris/x/", "digest": VERSION},
        "dataset": {"uri": "pvc://data/iris/", "digest": digest, "rows": 140},
        "framework": {"name": "scikit-learn", "version": "1.9.1", "pythonVersion": "3.11.7"},
        "inputExample": [{"x": 5.1, "kind": "a"}, {"x": 4.9, "kind": "b"}],
        "params": {"n_estimators": 10},
    }


def pinned_trainingjob() -> dict[str, Any]:
    tj = trainingjob(compare=False)
    tj["status"] = running_status(
        tj, "iris-train-abc", VERSION, "ready", None, NOW, dataset_manifest=MANIFEST
    )
    return tj


def test_the_status_keeps_the_pin_and_a_run_on_other_data_is_refused() -> None:
    tj = pinned_trainingjob()
    assert tj["status"]["datasetManifest"] == MANIFEST
    done = finished_status(tj, JobOutcome("succeeded", passing_result(VERSION)), "iris-v1", NOW)
    assert done.status["datasetVersion"] == VERSION
    TrainingJobStatus.model_validate(done.status)
    assert dataset_mismatch(tj, passing_result(VERSION)) is None
    # An older runtime that read the grown folder reports another digest: never registered.
    message = dataset_mismatch(tj, passing_result(OTHER))
    assert message is not None
    assert f"trained on dataset version {OTHER}, not the pinned version {VERSION}" in message
    failed = JobOutcome("failed", passing_result(OTHER), "DatasetVersionMismatch", message)
    status = finished_status(tj, failed, None, NOW).status
    assert (status["phase"], status["datasetVersion"]) == ("Failed", VERSION)
    assert "modelVersion" not in status


def test_the_model_version_records_pinned_lineage_framework_and_input_example() -> None:
    manifest = build_model_version(pinned_trainingjob(), passing_result(VERSION), 1, SETTINGS)
    spec = manifest["spec"]
    assert spec["lineage"]["datasetVersion"] == VERSION
    assert spec["framework"] == {"name": "scikit-learn", "version": "1.9.1"}
    assert spec["inputExample"] == [{"x": 5.1, "kind": "a"}, {"x": 4.9, "kind": "b"}]
    ModelVersionSpec.model_validate(spec)
    # An older runtime's result: no framework, no example, and the spec stays valid.
    old = {
        key: value
        for key, value in passing_result(VERSION).items()
        if key not in ("framework", "inputExample")
    }
    bare = build_model_version(pinned_trainingjob(), old, 1, SETTINGS)["spec"]
    assert "framework" not in bare
    assert "inputExample" not in bare
    odd = passing_result(VERSION) | {"framework": {"name": "scikit-learn", "version": "dev build"}}
    assert "framework" not in build_model_version(pinned_trainingjob(), odd, 1, SETTINGS)["spec"]


def ready_model_version(example: list[dict[str, Any]] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "modelName": "iris",
        "version": 1,
        "artifact": {"uri": "pvc://a/x/", "digest": VERSION},
    }
    if example is not None:
        spec["inputExample"] = example
    return {"metadata": {"name": "iris-v1"}, "spec": spec, "status": {"phase": "Ready"}}


def test_the_smoke_test_predicts_the_input_example_when_it_has_no_instances() -> None:
    target = to_target(ready_model_version([{"x": 5.1}, {"x": 4.9}]))
    requests = smoke_requests(SmokeTest(), "iris", target.input_example)
    assert [(r.method, r.path, r.body) for r in requests] == [
        ("GET", "/v2/health/ready", None),
        ("GET", "/v2/models/iris", None),
        ("POST", "/predict", {"instances": [{"x": 5.1}]}),
        ("POST", "/predict", {"instances": [{"x": 4.9}]}),
    ]
    assert requests[2].accepts(200, {"predictions": [0]})
    assert not requests[2].accepts(422, {"error": "bad row"})
    # The user's instances win; without either, readiness and metadata as before.
    own = smoke_requests(SmokeTest(instances=[{"x": 1.0}]), "iris", target.input_example)
    assert [r.body for r in own] == [{"instances": [{"x": 1.0}]}]
    bare = smoke_requests(SmokeTest(), "iris", to_target(ready_model_version(None)).input_example)
    assert [(r.method, r.path) for r in bare] == [
        ("GET", "/v2/health/ready"),
        ("GET", "/v2/models/iris"),
    ]


def test_the_version_counter_is_labelled_for_selection_and_says_what_it_is() -> None:
    counter = counter_manifest("ml", "iris")
    meta = counter["metadata"]
    assert meta["name"] == "kubeloop-versions-iris"
    assert meta["labels"]["app.kubernetes.io/component"] == "version-counter"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "kubeloop-operator"
    assert meta["labels"]["kubeloop.dev/model"] == "iris"
    assert "ownerReferences" not in meta  # outlives TrainingJobs; goes with the namespace
    assert (
        "numbers of deleted ModelVersions be given again"
        in meta["annotations"]["kubeloop.dev/purpose"]
    )
    # Without the counter (deleted), numbers still move past every existing ModelVersion.
    assert allocate_version(None, "uid-1", taken=[1, 2, 5]).version == 6
