"""The growing-folder race with the real operator (issue 10): a Dataset over a folder is profiled,
a file lands in the folder before the TrainingJob trains, and the model is trained on exactly
the pinned version's files (its rows, its digest, its lineage); a file of that version changed
in place fails the next run with DataVersionGone instead of training on other data.

The test PLAYS THE KUBELET (helpers_kubelet.py): the profile and train Jobs run as local
processes with the real runtime, the folder lives under the runner's PVC root. It writes the
folder on this machine, which a real node's Pods would not see: it lives in tests/operator/played,
whose conftest gives it a cluster without a node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers_kubelet import JobRunner
from helpers_operator import OperatorProcess
from helpers_resources import (
    API,
    apply,
    condition,
    example,
    profile_job,
    small_trainingjob,
    status_of,
    training_job,
    wait_for_phase,
)
from sklearn.datasets import load_iris

from kubeloop.kube import apply as kube

pytestmark = pytest.mark.cluster


def iris() -> pd.DataFrame:
    frame: pd.DataFrame = load_iris(as_frame=True).frame
    return frame


def config_of(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    value = next(e["value"] for e in container["env"] if e["name"] == "KUBELOOP_CONFIG")
    return dict(json.loads(value))


def local(jobs: JobRunner, uri: str) -> Path:
    """Where a `pvc://<claim>/<path>` URI is for the Jobs the test runs."""
    return jobs.pvc_root / uri.removeprefix("pvc://")


def test_a_file_added_between_profile_and_train_is_not_trained_on(
    operator: OperatorProcess, jobs: JobRunner, kubectl: Any, namespace: str, api: Any
) -> None:
    assert not jobs.real_node, "this test plays the kubelet (tests/operator/played)"
    folder = jobs.pvc_root / "data" / "iris"
    folder.mkdir(parents=True)
    frame = iris()
    frame.iloc[:100].to_csv(folder / "a.csv", index=False)
    frame.iloc[100:140].to_csv(folder / "b.csv", index=False)
    dataset = example("Dataset")
    dataset["spec"]["source"] = {"uri": "pvc://data/iris/"}
    dataset["spec"].pop("schema", None)
    operator.start()
    apply(kubectl, namespace, dataset)
    assert jobs.run(profile_job(api, namespace, "iris")) == 0
    ready = wait_for_phase(api, "Dataset", namespace, "iris", "Ready")
    version, manifest = ready["version"], ready["manifest"]
    assert ready["rows"] == 140
    assert manifest["files"] == 2
    assert [entry["path"] for entry in manifest["entries"]] == ["a.csv", "b.csv"]
    assert json.loads(local(jobs, manifest["uri"]).read_text())["files"] == manifest["entries"]

    # A capture part arrives after the profile, before the TrainingJob trains.
    frame.iloc[140:].to_csv(folder / "c.csv", index=False)
    apply(kubectl, namespace, small_trainingjob("grown"))
    job_name = training_job(api, namespace, "grown")
    running = status_of(api, "TrainingJob", namespace, "grown")
    assert (running["datasetVersion"], running["datasetManifest"]) == (version, manifest)
    dataset_config = config_of(kube.get(api, "batch/v1", "Job", namespace, job_name))["dataset"]
    assert (dataset_config["version"], dataset_config["manifest"]) == (version, manifest)
    assert jobs.run(job_name) == 0
    done = wait_for_phase(api, "TrainingJob", namespace, "grown", "Succeeded")
    assert done["datasetVersion"] == version
    model_version = kube.get(api, API, "ModelVersion", namespace, done["modelVersion"])["spec"]
    assert model_version["lineage"]["datasetVersion"] == version
    assert model_version["framework"]["name"] == "scikit-learn"
    assert model_version["framework"]["version"]
    assert len(model_version["inputExample"]) == 2
    metadata = json.loads((local(jobs, done["artifact"]["uri"]) / "metadata.json").read_text())
    assert metadata["dataset"]["digest"] == version
    assert metadata["dataset"]["rows"] == 140  # not the 150 the folder holds now
    assert metadata["evaluation"]["trainRows"] + metadata["evaluation"]["testRows"] == 140
    assert metadata["dataset"]["manifest"] == manifest["digest"]
    # The model's version counter: kept, and found by its labels (docs: notes/modelversion.md).
    counters = kube.list_objects(
        api,
        "v1",
        "ConfigMap",
        namespace,
        label_selector="app.kubernetes.io/component=version-counter,kubeloop.dev/model=iris",
    )
    assert [counter["metadata"]["name"] for counter in counters] == ["kubeloop-versions-iris"]
    assert "kubeloop.dev/purpose" in counters[0]["metadata"]["annotations"]

    # A file of the pinned version rewritten in place: the next run fails, nothing registered.
    frame.iloc[100:120].to_csv(folder / "b.csv", index=False)
    apply(kubectl, namespace, small_trainingjob("changed"))
    assert jobs.run(training_job(api, namespace, "changed")) == 4
    failed = wait_for_phase(api, "TrainingJob", namespace, "changed", "Failed")
    stalled = condition(failed, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "DataVersionGone"
    assert "b.csv: the file changed since profiling" in stalled["message"]
    assert "Refresh the Dataset" in stalled["message"]
    assert failed["datasetVersion"] == version
    assert "modelVersion" not in failed
    assert [
        mv["metadata"]["name"] for mv in kube.list_objects(api, API, "ModelVersion", namespace)
    ] == [done["modelVersion"]]
