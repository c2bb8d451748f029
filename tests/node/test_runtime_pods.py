"""The runtime image on a real node: train as a Job, serve behind a Service, drift as a sidecar.

Hand-written manifests (node_manifests.py; the operator's builders come later), every Pod under the
restricted Pod Security Standard. One artifact is trained per session (conftest `trained`) and one
2-replica serving Deployment serves it (conftest `serving`); the tests that disturb that Deployment
(a deleted Pod, a rolling restart) run last, in file order.

Traffic from the host goes to the Service's ClusterIP (10.96.x); one test calls the Service's DNS
name from another Pod. Nothing else is contacted.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import node_manifests as m
import pytest
from node_kube import (
    Kube,
    Serving,
    Trained,
    container_status,
    describe,
    is_ready,
    termination_message,
)
from node_manifests import ISVC, MODEL_PATH, OTHER_ISVC

from support import eventually

pytestmark = [pytest.mark.node, pytest.mark.timeout(600)]

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
# A ClusterIP refuses connections for a moment while kube-proxy has not yet written the rules of
# endpoints that just became ready (docs/images.md, NODE.md): only that error is retried, and
# only this long; any other failure (a reset, a timeout, a 5xx) fails the request.
REFUSED_RETRY_SECONDS = 2.0


class RefusedError(Exception):
    """Connection refused for longer than REFUSED_RETRY_SECONDS."""


def post_json(host: str, path: str, body: Any, timeout: float = 10.0) -> tuple[int, Any, int]:
    """POST on a fresh connection (each request picks its endpoint anew through kube-proxy).

    Returns (status, decoded body, connection-refused retries).
    """
    payload = json.dumps(body).encode()
    retries = 0
    deadline = time.monotonic() + REFUSED_RETRY_SECONDS
    while True:
        connection = http.client.HTTPConnection(host, 80, timeout=timeout)
        try:
            connection.request(
                "POST",
                path,
                payload,
                {"Content-Type": "application/json", "Connection": "close"},
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read()), retries
        except ConnectionRefusedError as error:
            if time.monotonic() > deadline:
                raise RefusedError(f"{host}{path}: refused for {REFUSED_RETRY_SECONDS}s") from error
            retries += 1
            time.sleep(0.05)
        finally:
            connection.close()


def predict(serving: Serving, rows: list[list[float]]) -> list[Any]:
    status, body, _ = post_json(serving.cluster_ip, "/predict", {"instances": rows})
    assert status == 200, body
    return list(body["predictions"])


def serving_pods(kube: Kube, serving: Serving) -> list[dict[str, Any]]:
    return kube.pods(serving.namespace, f"app.kubernetes.io/name={serving.name}")


def test_the_namespace_refuses_a_pod_outside_the_restricted_standard(
    kube: Kube, node_namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unrestricted"},
        "spec": {"containers": [{"name": "c", "image": m.IMAGE}]},
    }
    result = kube.run("apply", "-n", node_namespace, "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr


def test_train_job_reports_metrics_and_digest_in_its_termination_message(trained: Trained) -> None:
    result = trained.result
    assert result["kind"] == "train"
    assert result["passed"] is True
    assert result["modelName"] == "iris"
    assert result["metrics"]["accuracy"] >= 0.8
    assert set(result["metrics"]) == {"accuracy", "f1", "roc_auc"}
    assert result["dataset"]["rows"] == 150
    assert result["artifact"]["uri"] == f"pvc://{m.ARTIFACTS_CLAIM}/{MODEL_PATH}"
    assert trained.digest.startswith("sha256:")
    assert len(trained.digest) == len("sha256:") + 64


def test_predictions_through_the_cluster_ip(serving: Serving) -> None:
    assert predict(serving, [SETOSA, VIRGINICA]) == ["setosa", "virginica"]
    status, metadata, _ = post_json(
        serving.cluster_ip,
        "/v2/models/iris/infer",
        {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 4], "data": SETOSA}]},
    )
    assert status == 200, metadata
    assert metadata["outputs"][0]["data"] == ["setosa"]


def test_predictions_through_the_service_name_from_another_pod(
    kube: Kube, serving: Serving
) -> None:
    url = f"http://{serving.name}.{serving.namespace}.svc.cluster.local/predict"
    code = (
        "import json, urllib.request\n"
        f"request = urllib.request.Request({url!r}, data=json.dumps("
        f"{{'instances': [{SETOSA!r}, {VIRGINICA!r}]}}).encode(),"
        " headers={'Content-Type': 'application/json'})\n"
        "body = urllib.request.urlopen(request, timeout=10).read()\n"
        "open('/dev/termination-log', 'wb').write(body)\n"
    )
    kube.apply(serving.namespace, [m.python_pod("client-by-name", code)])
    pod = kube.wait_for_pod(
        serving.namespace,
        "client-by-name",
        lambda p: p.get("status", {}).get("phase") in ("Succeeded", "Failed"),
        timeout=120,
    )
    assert pod["status"]["phase"] == "Succeeded", describe([pod])
    answer = termination_message(pod, "client-by-name")
    assert answer["predictions"] == ["setosa", "virginica"]


def test_a_tampered_artifact_fails_the_fetch_init_container(
    kube: Kube, serving: Serving, trained: Trained
) -> None:
    ns = serving.namespace
    source = f"{m.ARTIFACTS_MOUNT}/{MODEL_PATH}"
    tampered = f"{m.ARTIFACTS_MOUNT}/iris/tampered"
    # A copy of the trained artifact whose model.joblib gained a few bytes after training.
    code = (
        "import shutil\n"
        f"shutil.copytree({source!r}, {tampered!r}, dirs_exist_ok=True)\n"
        f"open({tampered + '/model.joblib'!r}, 'ab').write(b'tampered')\n"
    )
    kube.apply(
        ns,
        [m.python_pod("tamper", code, [m.artifacts_volume()], [m.artifacts_mount()])],
    )
    kube.wait_for_pod(
        ns, "tamper", lambda p: p.get("status", {}).get("phase") == "Succeeded", timeout=120
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "serve-tampered"},
        "spec": m.serving_pod_spec(
            "iris/tampered", trained.digest, ISVC, "default", restartPolicy="Never"
        ),
    }
    kube.apply(ns, [pod])
    ever_ready = False

    def failed(current: dict[str, Any]) -> bool:
        nonlocal ever_ready
        ever_ready = ever_ready or is_ready(current)
        return current.get("status", {}).get("phase") == "Failed"

    failed_pod = kube.wait_for_pod(ns, "serve-tampered", failed, timeout=120)
    assert not ever_ready
    assert not is_ready(failed_pod)
    fetch = container_status(failed_pod, "fetch", init=True)["state"]["terminated"]
    assert fetch["exitCode"] == 5
    message = termination_message(failed_pod, "fetch", init=True)
    assert message["ok"] is False
    assert message["reason"] == "FetchError"
    assert "digest" in message["message"]
    # The server never started: the model was refused before anything could unpickle it.
    assert "running" not in container_status(failed_pod, "server")["state"]


def read_isvc(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return kube.get_json("inferenceservice", name, namespace=namespace)


def test_drift_sidecars_patch_their_inference_service_status(kube: Kube, serving: Serving) -> None:
    for _ in range(100):
        predict(serving, [SETOSA, VIRGINICA])
    pods = {p["metadata"]["name"] for p in serving_pods(kube, serving)}

    def reported() -> dict[str, Any] | None:
        drift = read_isvc(kube, serving.namespace, ISVC).get("status", {}).get("drift") or {}
        if set(drift.get("reports") or {}) >= pods and drift.get("reporters") == len(pods):
            return dict(drift)
        return None

    drift = eventually(reported, timeout=60, interval=1, what="a drift report from every pod")
    assert drift["samples"] > 0
    assert drift["method"]
    for name in pods:
        assert drift["reports"][name]["color"] == "blue"
    other = read_isvc(kube, serving.namespace, OTHER_ISVC).get("status", {})
    assert "drift" not in other


# Run inside a drift sidecar with its own ServiceAccount token: what may it do?
PERMISSIONS_PROBE = """
import json, sys
from kubeloop_runtime.drift.kube import AccessDeniedError, InferenceServiceStatus, load_api_client
api = InferenceServiceStatus(load_api_client())
namespace, own, other = sys.argv[1:4]
def attempt(action):
    try:
        action()
        return "allowed"
    except AccessDeniedError as error:
        return str(error)
print(json.dumps({
    "get own": attempt(lambda: api.read(namespace, own)),
    "patch own": attempt(lambda: api.patch_status(namespace, own, {"status": {}})),
    "get other": attempt(lambda: api.read(namespace, other)),
    "patch other": attempt(lambda: api.patch_status(namespace, other, {"status": {"drift": {}}})),
}))
"""


def test_drift_sidecar_may_patch_only_its_own_inference_service(
    kube: Kube, serving: Serving
) -> None:
    pod = serving_pods(kube, serving)[0]["metadata"]["name"]
    result = kube.run(
        "exec",
        "-n",
        serving.namespace,
        pod,
        "-c",
        "drift",
        "--",
        "python",
        "-c",
        PERMISSIONS_PROBE,
        serving.namespace,
        ISVC,
        OTHER_ISVC,
    )
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["get own"] == "allowed"
    assert outcome["patch own"] == "allowed"
    assert "HTTP 403" in outcome["get other"]
    assert "HTTP 403" in outcome["patch other"]
    other = read_isvc(kube, serving.namespace, OTHER_ISVC).get("status", {})
    assert "drift" not in other


def test_a_deleted_serving_pod_is_replaced_and_traffic_recovers(
    kube: Kube, serving: Serving
) -> None:
    victim = serving_pods(kube, serving)[0]["metadata"]["name"]
    kube.run("delete", "pod", victim, "-n", serving.namespace, "--wait=false")

    def replaced() -> bool:
        pods = serving_pods(kube, serving)
        names = {p["metadata"]["name"] for p in pods}
        return victim not in names and len(pods) == 2 and all(is_ready(p) for p in pods)

    eventually(replaced, timeout=120, interval=0.5, what=f"a ready replacement of {victim}")
    for _ in range(20):
        assert predict(serving, [SETOSA]) == ["setosa"]


def test_a_rolling_restart_under_load_loses_no_request(kube: Kube, serving: Serving) -> None:
    before = {p["metadata"]["name"] for p in serving_pods(kube, serving)}
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    refused_retries = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal refused_retries
        while not stop.is_set():
            try:
                status, body, retries = post_json(
                    serving.cluster_ip, "/predict", {"instances": [SETOSA, VIRGINICA]}
                )
                outcome = (
                    "ok"
                    if status == 200 and body["predictions"] == ["setosa", "virginica"]
                    else f"HTTP {status}: {body}"
                )
            except (OSError, http.client.HTTPException, RefusedError) as error:
                outcome, retries = f"{type(error).__name__}: {error}", 0
            with lock:
                outcomes[outcome] += 1
                refused_retries += retries

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(4):
            pool.submit(client)
        time.sleep(1)
        kube.run("rollout", "restart", f"deployment/{serving.name}", "-n", serving.namespace)
        kube.run(
            "rollout",
            "status",
            f"deployment/{serving.name}",
            "-n",
            serving.namespace,
            "--timeout=180s",
            timeout=200,
        )
        # The last old Pod is still draining (preStop, then graceful shutdown): keep the load on
        # until every old Pod is gone.
        eventually(
            lambda: not before & {p["metadata"]["name"] for p in serving_pods(kube, serving)},
            timeout=60,
            interval=0.5,
            what="the old pods to go",
        )
        stop.set()
    failures = {outcome: n for outcome, n in outcomes.items() if outcome != "ok"}
    assert not failures, f"{failures} of {sum(outcomes.values())} requests failed"
    assert outcomes["ok"] > 100
    print(f"rolling restart: {outcomes['ok']} requests, {refused_retries} refused-and-retried")
