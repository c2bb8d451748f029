"""The S3 artifact store on the real node: the operator (on the host, watching the test's
namespace) with `KUBELOOP_ARTIFACT_STORE=s3://...`, its Jobs and serving Pods from the runtime
image on the real kubelet, and an S3 EMULATOR standing in for S3, which cannot be reached from
here: moto's server on the node's bridge address, where the Pods reach it.

The runtime containers get their credentials only from what the operator gives them: the
Secret `KUBELOOP_ARTIFACT_STORE_SECRET` names (envFrom) and the endpoint
(`AWS_ENDPOINT_URL`). The Dataset's profile, the trained model and its verification, and the
serving Pods' fetch all go through the store; a version whose digest does not match what the
store holds is refused while the good one keeps serving.

moto runs from its own virtualenv (`make s3-emulator`, tests/s3-emulator.txt): its botocore caps
python-dateutil below what kubernetes 37, in .venv, needs. Only the local node's Pods can reach
the emulator on the host, so on another cluster (kind) the module skips, saying so.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers_operator import OperatorProcess
from helpers_resources import (
    API,
    apply,
    condition,
    example,
    small_trainingjob,
    status_of,
    wait_for_phase,
)
from isvc_cluster import ROWS, isvc_manifest, kubectl_wait_ready, predict, register_model_version

from devnode import GATEWAY
from incluster import REPO, is_local_node
from kubeloop.kube import apply as kube
from support import eventually, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.node]

EMULATOR_PYTHON = REPO / ".cache" / "s3-emulator" / "bin" / "python"
BUCKET = "kubeloop-models"
SECRET = "kubeloop-s3"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "emulator-key",
    "AWS_SECRET_ACCESS_KEY": "emulator-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
S3_XML = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def s3_endpoint(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on the node's bridge address with the bucket made; its URL."""
    if not is_local_node(kubeconfig):
        pytest.skip("the S3 emulator runs on the local node's bridge, out of this cluster's reach")
    if not EMULATOR_PYTHON.exists():
        pytest.skip(f"no S3 emulator at {EMULATOR_PYTHON}: make s3-emulator")
    port = free_port(GATEWAY)
    url = f"http://{GATEWAY}:{port}"
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(EMULATOR_PYTHON), "-m", "moto.server", "-H", GATEWAY, "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:

        def answers() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(answers, timeout=60, interval=0.2, what=f"the S3 emulator at {url}")
        # moto checks no signatures: a plain PUT makes the bucket.
        httpx.put(f"{url}/{BUCKET}", timeout=5).raise_for_status()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def keys(endpoint: str, prefix: str) -> set[str]:
    """The object keys under `prefix` in the bucket, relative to it (ListObjectsV2)."""
    listed = httpx.get(
        f"{endpoint}/{BUCKET}", params={"list-type": "2", "prefix": prefix}, timeout=5
    )
    listed.raise_for_status()
    root = ET.fromstring(listed.content)
    return {
        element.text.removeprefix(prefix)
        for element in root.iter(f"{S3_XML}Key")
        if element.text is not None
    }


def test_the_pipeline_trains_serves_and_verifies_through_an_s3_store(
    s3_endpoint: str,
    operator: OperatorProcess,
    kubectl: Any,
    namespace: str,
    api: Any,
    node_images: set[str],
) -> None:
    kube.create(
        api,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": namespace},
            "stringData": CREDENTIALS,
        },
    )
    operator.start(
        KUBELOOP_ARTIFACT_STORE=f"s3://{BUCKET}/store",
        KUBELOOP_ARTIFACT_STORE_SECRET=SECRET,
        KUBELOOP_ARTIFACT_STORE_ENDPOINT=s3_endpoint,
    )

    apply(kubectl, namespace, example("Dataset"))
    dataset = wait_for_phase(api, "Dataset", namespace, "iris", "Ready", timeout=240)
    assert dataset["rows"] == 150
    assert keys(s3_endpoint, "store/datasets/iris/"), f"no profile: {keys(s3_endpoint, '')}"

    apply(kubectl, namespace, small_trainingjob("iris-rf"))
    trained = wait_for_phase(api, "TrainingJob", namespace, "iris-rf", "Succeeded", timeout=300)
    artifact = trained["artifact"]
    assert artifact["uri"].startswith(f"s3://{BUCKET}/store/models/iris/iris-rf-"), artifact
    written = keys(s3_endpoint, artifact["uri"].removeprefix(f"s3://{BUCKET}/").rstrip("/") + "/")
    assert {"model.joblib", "model.sha256", "metadata.json"} <= written, written
    wait_for_phase(api, "ModelVersion", namespace, "iris-v1", "Ready", timeout=60)

    # The serving Pods' init container fetches the model from the store (digest checked).
    rollout = {
        "minReadySeconds": 1,
        "scaleDownDelaySeconds": 5,
        "progressDeadlineSeconds": 240,
        "smokeTest": {"instances": ROWS, "timeoutSeconds": 30},
    }
    kube.create(api, isvc_manifest(namespace, rollout=rollout))
    kubectl_wait_ready(kubectl, namespace, 300)
    assert predict(api, namespace, "iris") == ["setosa", "virginica"]

    # The same artifact registered with a digest the store's bytes do not have: the operator's
    # verify Job reads the store and refuses it; iris-v1 keeps serving.
    register_model_version(
        api, namespace, 2, {"uri": artifact["uri"], "digest": "sha256:" + "0" * 64}
    )

    def refused() -> dict[str, Any] | None:
        found = condition(status_of(api, "ModelVersion", namespace, "iris-v2"), "Stalled")
        return found if found and found["status"] == "True" else None

    stalled = eventually(refused, timeout=240, interval=1, what="iris-v2 Stalled")
    assert stalled["reason"] == "DigestMismatch", stalled
    served = kube.get(api, API, "InferenceService", namespace, "iris")["status"]
    assert served["activeModelVersion"] == "iris-v1", served
    assert predict(api, namespace, "iris") == ["setosa", "virginica"]
