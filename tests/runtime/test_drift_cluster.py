"""The drift sidecar against a real kube-apiserver: status merge across pods and colours.

Uses the lead's `kubeloop_crds` (the real crds/kubeloop.dev_inferenceservices.yaml) and a fresh
`namespace`. The window comes from a tiny real http.server on loopback (helpers_drift.WindowServer):
these tests need two "pods" with different windows and a window server that can be stopped and
restarted on the same port; the model server itself is exercised in test_drift_loop.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from helpers_drift import (
    BreastCancerArtifact,
    WindowServer,
    shifted,
    window_document,
    write_breast_cancer_artifact,
)
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from kubeloop_runtime.drift.kube import GROUP, PLURAL, VERSION, InferenceServiceStatus
from kubeloop_runtime.drift.loop import DriftChecker
from kubeloop_runtime.drift.settings import DriftSettings
from kubeloop_runtime.drift.status import format_time
from support import eventually, free_port

pytestmark = pytest.mark.cluster

SHIFTED = ["mean radius", "mean texture", "worst area", "worst symmetry"]
ISVC = "breast-cancer"


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> BreastCancerArtifact:
    return write_breast_cancer_artifact(tmp_path_factory.mktemp("breast-cancer"))


@pytest.fixture
def isvc(kubeloop_crds: list[str], namespace: str, k8s_api_client: client.ApiClient) -> str:
    """An InferenceService whose status says blue is the active colour."""
    api = client.CustomObjectsApi(k8s_api_client)
    api.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "InferenceService",
            "metadata": {"name": ISVC},
            "spec": {"model": {"name": "breast-cancer", "version": 1}},
        },
    )
    set_status(k8s_api_client, namespace, {"activeColor": "blue"})
    return namespace


def set_status(api_client: client.ApiClient, namespace: str, status: Mapping[str, Any]) -> None:
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        ISVC,
        {"status": dict(status)},
        _content_type="application/merge-patch+json",
    )


def read_drift(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    found = InferenceServiceStatus(api_client).read(namespace, ISVC)
    return dict((found.get("status") or {}).get("drift") or {})


def checker(
    url: str,
    artifact: BreastCancerArtifact,
    namespace: str,
    pod: str,
    color: Literal["blue", "green"],
    api_client: client.ApiClient,
) -> DriftChecker:
    settings = DriftSettings(
        server_url=url,
        model_dir=artifact.directory,
        isvc_name=ISVC,
        isvc_namespace=namespace,
        pod_name=pod,
        color=color,
        drift_min_samples=50,
        drift_threshold=0.1,
        drift_raise_after=1,
        drift_clear_after=1,
        drift_interval_seconds=30,
        drift_metrics_port=0,
    )
    return DriftChecker(settings, status_store=InferenceServiceStatus(api_client))


def test_two_pods_two_colours_patch_a_real_status(
    isvc: str, breast_cancer: BreastCancerArtifact, k8s_api_client: client.ApiClient
) -> None:
    namespace = isvc
    gone = {
        "color": "blue",
        "detected": True,
        "driftedFeatures": ["mean radius"],
        "samples": 10,
        "checkedAt": "2026-01-01T00:00:00Z",
    }
    set_status(k8s_api_client, namespace, {"drift": {"reports": {"gone-pod": gone}}})
    moved = shifted(breast_cancer.holdout, breast_cancer.reference, SHIFTED)
    green_window = WindowServer(window_document(moved, seq=1000, model_version="2"))
    blue_window = WindowServer(window_document(breast_cancer.holdout, seq=500))
    green = checker(
        green_window.url, breast_cancer, namespace, "bc-green-1", "green", k8s_api_client
    )
    blue = checker(blue_window.url, breast_cancer, namespace, "bc-blue-1", "blue", k8s_api_client)
    try:
        assert green.check_once().patched
        drift = read_drift(k8s_api_client, namespace)
        assert "gone-pod" not in drift["reports"]  # its report was hours old: removed
        assert drift["reports"]["bc-green-1"]["detected"] is True
        assert drift["reports"]["bc-green-1"]["color"] == "green"
        assert drift["detected"] is False  # green is not the active colour

        assert blue.check_once().patched
        drift = read_drift(k8s_api_client, namespace)
        assert set(drift["reports"]) == {"bc-green-1", "bc-blue-1"}
        assert drift["detected"] is False
        assert drift["score"] == 0
        assert drift["driftedFeatures"] == []
        assert drift["samples"] == len(breast_cancer.holdout)

        blue_window.document = window_document(moved, seq=900)
        assert blue.check_once().patched
        drift = read_drift(k8s_api_client, namespace)
        assert drift["detected"] is True
        assert sorted(drift["driftedFeatures"]) == sorted(SHIFTED)
        assert drift["score"] == pytest.approx(len(SHIFTED) / 30, abs=1e-6)
        assert drift["method"] == "auto"
        assert drift["threshold"] == 0.1
        assert drift["checkedAt"].endswith("Z")
        # Fields the CRD schema lacked would be pruned silently by the API server.
        assert drift["reporters"] == 1
        assert drift["conceptDrift"] is False
        report = drift["reports"]["bc-blue-1"]
        assert report["conceptDrift"] is False
        assert report["color"] == "blue"
        assert report["modelVersion"] == "1"
        assert report["streak"] == 1
        assert report["labeled"] == 0
        assert "accuracy" not in report  # null until labels arrive: a merge patch drops nulls

        # The blue sidecar's container restarts: same pod name, state picked up from its report.
        restarted = checker(
            blue_window.url, breast_cancer, namespace, "bc-blue-1", "blue", k8s_api_client
        )
        try:
            blue_window.document = window_document(moved, seq=950)
            outcome = restarted.check_once()
            assert outcome.state.streak == 2  # continued from 1, not restarted from 0
            assert outcome.state.detected
        finally:
            restarted.close()

        # Promotion: green becomes active, and its verdict is the one that counts.
        set_status(k8s_api_client, namespace, {"activeColor": "green"})
        blue_window.document = window_document(breast_cancer.holdout, seq=1400)
        assert blue.check_once().patched
        drift = read_drift(k8s_api_client, namespace)
        assert drift["detected"] is True  # green's fresh report still says drifted
        assert drift["reports"]["bc-blue-1"]["detected"] is False
    finally:
        for server in (green_window, blue_window):
            server.stop()
        green.close()
        blue.close()


def test_conflicting_writer_is_retried(isvc: str, k8s_api_client: client.ApiClient) -> None:
    """Another sidecar writes between our read and our patch: 409, then a fresh read wins."""
    namespace = isvc
    store = InferenceServiceStatus(k8s_api_client)
    calls: list[str] = []

    def build(status: Mapping[str, Any]) -> dict[str, Any]:
        calls.append(str(status.get("activeColor")))
        if len(calls) == 1:  # the other writer sneaks in
            now = format_time(time_now())
            other = {"color": "blue", "detected": False, "checkedAt": now}
            set_status(k8s_api_client, namespace, {"drift": {"reports": {"other": other}}})
        return {"reports": {"me": {"color": "blue", "checkedAt": format_time(time_now())}}}

    store.update_drift(namespace, ISVC, build)
    assert len(calls) == 2
    assert set(read_drift(k8s_api_client, namespace)["reports"]) == {"other", "me"}


def test_sidecar_process_patches_and_survives_outages(
    isvc: str,
    breast_cancer: BreastCancerArtifact,
    k8s_api_client: client.ApiClient,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    namespace = isvc
    moved = shifted(breast_cancer.holdout, breast_cancer.reference, SHIFTED)
    window = WindowServer(window_document(moved, seq=100))
    port = window.port
    metrics_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "KUBELOOP_SERVER_URL": window.url,
        "KUBELOOP_MODEL_DIR": str(breast_cancer.directory),
        "KUBELOOP_ISVC_NAME": ISVC,
        "KUBELOOP_ISVC_NAMESPACE": namespace,
        "KUBELOOP_POD_NAME": "bc-blue-7f9c",
        "KUBELOOP_COLOR": "blue",
        "KUBELOOP_DRIFT_INTERVAL_SECONDS": "0.5",
        "KUBELOOP_DRIFT_MIN_SAMPLES": "50",
        "KUBELOOP_DRIFT_THRESHOLD": "0.1",
        "KUBELOOP_DRIFT_RAISE_AFTER": "1",
        "KUBELOOP_DRIFT_CLEAR_AFTER": "1",
        "KUBELOOP_DRIFT_METRICS_PORT": str(metrics_port),
        "KUBELOOP_DRIFT_METRICS_HOST": "127.0.0.1",
    }
    log_path = tmp_path / "sidecar.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kubeloop_runtime", "drift"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    second: WindowServer | None = None
    try:
        eventually(lambda: read_drift(k8s_api_client, namespace).get("detected") is True)
        drift = read_drift(k8s_api_client, namespace)
        assert sorted(drift["driftedFeatures"]) == sorted(SHIFTED)
        assert drift["reports"]["bc-blue-7f9c"]["color"] == "blue"

        window.stop()  # the model server goes away for a while
        eventually(lambda: server_errors(metrics_port) >= 3)
        assert process.poll() is None, log_path.read_text()

        second = WindowServer(window_document(breast_cancer.holdout, seq=40), port=port)
        eventually(lambda: read_drift(k8s_api_client, namespace).get("detected") is False)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
            if second is not None:
                second.stop()
    output = log_path.read_text()
    assert code == 0, output
    assert output.count("drift check failed (server)") == 1, output
    assert "server is back after" in output


def server_errors(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "kubeloop_drift_errors_total" and sample.labels == {
                "source": "server"
            }:
                return float(sample.value)
    return 0.0


def time_now() -> datetime:
    return datetime.now(UTC)
