"""The S3 artifact store end to end, against an S3 EMULATOR: moto's server on 127.0.0.1 stands in
for S3 (no S3 service can be reached here). The operator's builders make the profile, train and
verify containers for an `s3://` store; each runs the real runtime as the kubelet would, with
its `env` and the credentials Secret its `envFrom` names, and nothing else: no AWS variables or
files of the machine, instance metadata off. So the store is read and written with credentials
that come only from what the operator put in the container.

Needs the `kubeloop[s3]` extra and `moto[server]`, neither in `dev` (botocore caps
python-dateutil below what kubernetes 37 wants): the module skips without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kubeloop.builders.dataset import build_profile_job
from kubeloop.builders.modelversion import build_verify_job
from kubeloop.builders.trainingjob import build_training_job
from kubeloop.settings import OperatorSettings
from support import free_port

pytest.importorskip("s3fs", reason="the kubeloop[s3] extra")
moto_server = pytest.importorskip("moto.server", reason="moto[server], the S3 emulator")
boto3 = pytest.importorskip("boto3", reason="moto[server], the S3 emulator")

BUCKET = "kubeloop-models"
# The Secret the user creates in the namespace, as the kubelet hands it to envFrom.
SECRETS = {
    "kubeloop-s3": {
        "AWS_ACCESS_KEY_ID": "emulator-key",
        "AWS_SECRET_ACCESS_KEY": "emulator-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
}
DATASET = {"source": {"uri": "builtin://iris"}, "target": "target"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        client(url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


def client(url: str) -> Any:
    credentials = SECRETS["kubeloop-s3"]
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=credentials["AWS_DEFAULT_REGION"],
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
    )


def keys(url: str, prefix: str) -> set[str]:
    listed = client(url).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"][len(prefix) :] for item in listed.get("Contents", ())}


def settings(url: str) -> OperatorSettings:
    return OperatorSettings(
        runtime_image="kubeloop-runtime:dev",
        artifact_store=f"s3://{BUCKET}/store",
        artifact_store_secret="kubeloop-s3",
        artifact_store_endpoint=url,
    )


def run(job: Mapping[str, Any], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """Run the Job's one container like a kubelet: envFrom's Secret, then env, then nothing of
    this machine's but PATH (no ~/.aws, no AWS_* variables, no instance metadata)."""
    [container] = job["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        env.update(SECRETS[source["secretRef"]["name"]])
    env.update({item["name"]: str(item["value"]) for item in container["env"]})
    log = tmp_path / f"{job['metadata']['name']}.termination-log"
    env |= {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "KUBELOOP_TERMINATION_LOG": str(log),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "kubeloop_runtime", *container["args"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    result = json.loads(log.read_text()) if log.exists() else {"stderr": completed.stderr}
    return completed.returncode, result


def trainingjob() -> dict[str, Any]:
    return {
        "kind": "TrainingJob",
        "metadata": {"name": "iris-lr", "namespace": "ml", "uid": "5b0e6c1e-aaaa", "generation": 1},
        "spec": {
            "datasetRef": {"name": "iris"},
            "modelName": "iris",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"max_iter": 500},
        },
    }


def test_profile_train_and_verify_read_and_write_the_store_with_the_secret_alone(
    endpoint: str, tmp_path: Path
) -> None:
    store = settings(endpoint)
    dataset = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "uid-1", "generation": 1},
        "spec": DATASET,
    }
    code, result = run(build_profile_job(dataset, "g1-s0", 1, store), tmp_path)
    assert code == 0, result
    assert keys(endpoint, "store/datasets/iris/g1-s0/"), "no profile in the store"

    code, result = run(build_training_job(trainingjob(), DATASET, store), tmp_path)
    assert code == 0, result
    artifact = result["artifact"]
    assert artifact["uri"].startswith(f"s3://{BUCKET}/store/models/iris/iris-lr-5b0e6c1e")
    written = keys(endpoint, artifact["uri"].removeprefix(f"s3://{BUCKET}/").rstrip("/") + "/")
    assert {"model.joblib", "model.sha256"} <= written, written

    version = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "iris-v1", "namespace": "ml", "uid": "uid-10000000", "generation": 1},
        "spec": {"modelName": "iris", "version": 1, "artifact": dict(artifact)},
    }
    code, result = run(build_verify_job(version, store), tmp_path)
    assert code == 0, result
    version["spec"]["artifact"]["digest"] = "sha256:" + "0" * 64
    code, result = run(build_verify_job(version, store), tmp_path)
    assert code != 0
    assert "digest mismatch" in json.dumps(result)


def test_without_the_secret_the_runtime_cannot_write_the_store(
    endpoint: str, tmp_path: Path
) -> None:
    job = build_training_job(trainingjob(), DATASET, settings(endpoint))
    job["spec"]["template"]["spec"]["containers"][0].pop("envFrom")
    code, result = run(job, tmp_path)
    assert code != 0
    assert "cannot write (NoCredentialsError" in result["message"], result
