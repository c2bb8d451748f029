"""The S3 artifact store's credentials as built (no cluster): every runtime container that reads
or writes an `s3://` URI loads the Secret `KUBELOOP_ARTIFACT_STORE_SECRET` names (envFrom) and
gets the endpoint as `AWS_ENDPOINT_URL`; containers that touch no `s3://` URI get neither."""

from __future__ import annotations

from typing import Any

from isvc_fixtures import DIGEST, OWNER, spec, target

from kubeloop.builders.common import runtime_container, store_credentials, touches_s3
from kubeloop.builders.dataset import build_profile_job
from kubeloop.builders.inferenceservice import build_deployment
from kubeloop.builders.modelversion import build_verify_job
from kubeloop.builders.rollout import pod_failure
from kubeloop.builders.trainingjob import build_training_job
from kubeloop.settings import OperatorSettings

S3 = OperatorSettings(
    runtime_image="kubeloop-runtime:dev",
    artifact_store="s3://models/prod",
    artifact_store_secret="kubeloop-s3",
    artifact_store_endpoint="http://minio.storage:9000",
)
PVC = OperatorSettings(
    runtime_image="kubeloop-runtime:dev",
    artifact_store_secret="kubeloop-s3",
    artifact_store_endpoint="http://minio.storage:9000",
)
SECRET_REF = [{"secretRef": {"name": "kubeloop-s3"}}]
ENDPOINT = {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage:9000"}


def job_container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def pod_containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["initContainers"] + pod["containers"]}


def has_credentials(container: dict[str, Any]) -> bool:
    with_secret = container.get("envFrom") == SECRET_REF
    assert with_secret == (ENDPOINT in container["env"]), container["name"]
    return with_secret


def dataset(uri: str = "builtin://iris") -> dict[str, Any]:
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "uid-1", "generation": 1},
        "spec": {"source": {"uri": uri}, "target": "target"},
    }


def trainingjob() -> dict[str, Any]:
    return {
        "kind": "TrainingJob",
        "metadata": {"name": "iris-rf", "namespace": "ml", "uid": "abcdef12-3456", "generation": 1},
        "spec": {
            "datasetRef": {"name": "iris"},
            "modelName": "iris",
            "estimator": "sklearn.ensemble.RandomForestClassifier",
        },
    }


def model_version(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "iris-v1", "namespace": "ml", "uid": "uid-10000000", "generation": 1},
        "spec": {"modelName": "iris", "version": 1, "artifact": {"uri": uri, "digest": DIGEST}},
    }


def test_only_s3_uris_need_the_store_credentials() -> None:
    assert touches_s3(None, "pvc://a/b", "S3://bucket/key")
    assert not touches_s3(None, "builtin://iris", "pvc://a/b", "https://x/y.csv")
    assert store_credentials(S3, "pvc://a/b") == ([], [])
    assert store_credentials(S3, "s3://bucket/x") == (SECRET_REF, [ENDPOINT])


def test_without_a_secret_or_endpoint_the_runtime_uses_its_own_credential_chain() -> None:
    bare = OperatorSettings(runtime_image="kubeloop-runtime:dev", artifact_store="s3://models/")
    container = runtime_container(bare, name="x", args=["profile"], storage_uris=["s3://m/x"])
    assert "envFrom" not in container
    assert container["env"] == []


def test_the_profile_job_writing_to_an_s3_store_gets_the_credentials() -> None:
    # The source is builtin, but the full profile goes to <store>/datasets/...
    assert has_credentials(job_container(build_profile_job(dataset(), "g1-s0", 1, S3)))
    # A pvc store and a pvc source: no S3, so no Secret the namespace would have to hold.
    assert not has_credentials(
        job_container(build_profile_job(dataset("pvc://data/iris.csv"), "g1-s0", 1, PVC))
    )
    # An s3:// source with a pvc store still needs them to read the data.
    assert has_credentials(
        job_container(build_profile_job(dataset("s3://data/iris.csv"), "g1-s0", 1, PVC))
    )


def test_the_train_job_gets_them_for_an_s3_output_or_source() -> None:
    assert has_credentials(job_container(build_training_job(trainingjob(), dataset()["spec"], S3)))
    assert not has_credentials(
        job_container(build_training_job(trainingjob(), dataset()["spec"], PVC))
    )


def test_the_verify_job_gets_them_for_an_s3_artifact() -> None:
    assert has_credentials(job_container(build_verify_job(model_version("s3://m/iris/a/"), S3)))
    assert not has_credentials(
        job_container(build_verify_job(model_version("pvc://kubeloop-artifacts/a/"), S3))
    )


def test_serving_pods_fetch_and_capture_with_them_the_drift_sidecar_never() -> None:
    # The sidecar reads the reference profile from the fetched artifact (/mnt/models), not the
    # store, so it holds no credentials.
    capture = {"monitoring": {"capture": {"enabled": True}}}
    deployment = build_deployment(
        OWNER, spec(**capture), target(1, uri="s3://models/prod/iris/a/"), "blue", 1, S3
    )
    containers = pod_containers(deployment)
    assert has_credentials(containers["fetch"])
    assert has_credentials(containers["server"])  # capture goes to s3://models/prod/captures/
    assert not has_credentials(containers["drift"])


def test_a_pvc_artifact_with_capture_off_needs_no_credentials() -> None:
    deployment = build_deployment(OWNER, spec(), target(1), "blue", 1, S3)
    containers = pod_containers(deployment)
    assert not has_credentials(containers["fetch"])
    assert not has_credentials(containers["server"])


def test_spec_env_can_override_the_endpoint_in_the_server() -> None:
    body = spec(
        env=[{"name": "AWS_ENDPOINT_URL", "value": "http://other:9000"}],
        monitoring={"capture": {"enabled": True}},
    )
    deployment = build_deployment(OWNER, body, target(1, uri="s3://m/a/"), "blue", 1, S3)
    server = pod_containers(deployment)["server"]
    endpoints = [e["value"] for e in server["env"] if e["name"] == "AWS_ENDPOINT_URL"]
    assert endpoints == ["http://other:9000"]
    assert server["envFrom"] == SECRET_REF


def test_a_serving_pod_without_the_secret_is_reported_with_the_kubelets_words() -> None:
    # What the kubelet writes when envFrom names a Secret the namespace lacks.
    pod = {
        "metadata": {"name": "iris-green-7d9f-abcde"},
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {
                    "name": "fetch",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": 'secret "kubeloop-s3" not found',
                        }
                    },
                }
            ],
        },
    }
    assert pod_failure([pod]) == (
        'init container fetch: CreateContainerConfigError (secret "kubeloop-s3" not found)'
    )
