"""The objects the demo makes itself, and the demo pipeline it applies (pure)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from demolib import manifests

REPO = Path(__file__).resolve().parents[2]


def test_the_namespace_enforces_the_restricted_pod_security_level() -> None:
    ns = manifests.namespace("kubeloop-demo")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_seed_job_writes_into_the_claim_it_mounts_and_is_restricted() -> None:
    job = manifests.seed_job("seed", "ns", "kubeloop-runtime:dev", "pvc://store/demo/iris/")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][-1] == "/mnt/pvc/store/demo/iris"
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "store"
    assert container["volumeMounts"][0]["mountPath"] == "/mnt/pvc/store"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["imagePullPolicy"] == "IfNotPresent"
    with pytest.raises(ValueError, match="pvc://"):
        manifests.seed_job("seed", "ns", "img", "s3://bucket/x/")


def test_the_seed_script_writes_base_csv_atomically(tmp_path: Path) -> None:
    folder = tmp_path / "iris"
    subprocess.run([sys.executable, "-c", manifests.SEED_SCRIPT, str(folder)], check=True)
    assert (folder / "captures").is_dir()
    text = (folder / "base.csv").read_text()
    assert text.count("\n") == 151
    assert text.splitlines()[1].endswith(",setosa")
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_the_demo_pipeline_closes_the_loop_on_its_own_folder() -> None:
    docs = {
        d["kind"]: d
        for d in yaml.safe_load_all((REPO / "examples/demo/iris-loop.yaml").read_text())
    }
    folder = docs["Dataset"]["spec"]["source"]["uri"]
    isvc = docs["InferenceService"]["spec"]
    assert folder.endswith("/")
    assert isvc["monitoring"]["capture"]["uri"].startswith(folder)
    assert isvc["model"] == {"name": "iris", "latest": True}
    assert isvc["retrain"]["template"]["evaluation"]["compareTo"] == "serving"
    assert isvc["retrain"]["template"]["datasetRef"]["name"] == docs["Dataset"]["metadata"]["name"]
    assert isvc["monitoring"]["minSamples"] <= isvc["monitoring"]["window"]
