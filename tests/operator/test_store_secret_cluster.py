"""The S3 artifact store's Secret with the real operator and a real API server: the profile Job
it creates loads the Secret `KUBELOOP_ARTIFACT_STORE_SECRET` names, and when the namespace lacks
it the Dataset says so in the kubelet's words.

On the real node the kubelet itself reports the missing Secret. On the API-only plane no kubelet
runs the Job's Pod, so the test PLAYS THE KUBELET there: it writes the status a kubelet writes for
a container whose envFrom Secret does not exist (`CreateContainerConfigError`,
`secret "kubeloop-s3" not found`).
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers_kubelet import has_ready_node
from helpers_operator import OperatorProcess
from helpers_resources import API, condition, profile_job, status_of, wait_for_event
from isvc_cluster import stamp

from kubeloop.kube import apply as kube
from support import eventually

# The Job's Pod meets the real kubelet when there is a node (else the test plays it).
pytestmark = [pytest.mark.cluster, pytest.mark.node]

SECRET = "kubeloop-s3"


def test_a_profile_job_whose_secret_is_missing_is_reported_on_the_dataset(
    operator: OperatorProcess, namespace: str, api: Any
) -> None:
    real_node = has_ready_node(api)
    operator.start(
        KUBELOOP_ARTIFACT_STORE="s3://kubeloop-models/store",
        KUBELOOP_ARTIFACT_STORE_SECRET=SECRET,
        KUBELOOP_ARTIFACT_STORE_ENDPOINT="http://minio.storage:9000",
    )
    kube.create(
        api,
        {
            "apiVersion": API,
            "kind": "Dataset",
            "metadata": {"name": "iris", "namespace": namespace},
            "spec": {"source": {"uri": "builtin://iris"}, "target": "target"},
        },
    )
    job = profile_job(api, namespace, "iris")
    [container] = kube.get(api, "batch/v1", "Job", namespace, job)["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["envFrom"] == [{"secretRef": {"name": SECRET}}]
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage:9000"} in container["env"]

    # The Job controller made the Pod; without a node, play the kubelet that cannot find the Secret.
    pod = eventually(
        lambda: kube.list_objects(api, "v1", "Pod", namespace, f"job-name={job}"),
        what=f"the Pod of {job}",
    )[0]
    if not real_node:
        play_missing_secret(api, namespace, pod["metadata"]["name"])

    def reported() -> dict[str, Any] | None:
        found = condition(status_of(api, "Dataset", namespace, "iris"), "Reconciling")
        return found if found and found["reason"] == "PodNotStarting" else None

    reconciling = eventually(reported, timeout=90, what="PodNotStarting on the Dataset")
    assert f'CreateContainerConfigError (secret "{SECRET}" not found)' in reconciling["message"]
    assert status_of(api, "Dataset", namespace, "iris")["phase"] == "Profiling"
    wait_for_event(api, namespace, "iris", "PodNotStarting", reconciling["message"])


def play_missing_secret(api: Any, namespace: str, pod: str) -> None:
    """The status a kubelet writes for a container whose envFrom Secret does not exist."""
    kube.patch_status(
        api,
        "v1",
        "Pod",
        namespace,
        pod,
        {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp()}
            ],
            "containerStatuses": [
                {
                    "name": "profile",
                    "ready": False,
                    "restartCount": 0,
                    "image": "kubeloop-runtime:dev",
                    "imageID": "",
                    "started": False,
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": f'secret "{SECRET}" not found',
                        }
                    },
                }
            ],
        },
    )
