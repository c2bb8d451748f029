"""Fixtures of the operator tests: the real operator as a subprocess, and an API client.

`operator` starts `python -m kubeloop` watching only the test's namespace, against the test
cluster, with its metrics and liveness endpoints on free loopback ports. It can be SIGKILLed
and restarted (the idempotency tests do), and is stopped at the end of the test; its log is
printed when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_kubelet import JobRunner, artifact_claim, has_ready_node
from helpers_operator import OperatorProcess

from kubeloop.kube import apply as kube
from kubeloop.kube.client import connect


@pytest.fixture
def operator(
    kubeconfig: str,
    namespace: str,
    kubeloop_crds: list[str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorProcess]:
    """The operator, not yet started: call `.start()` (after creating what it should find, or
    before, as the test needs)."""
    process = OperatorProcess(kubeconfig=kubeconfig, namespace=namespace, log_dir=tmp_path)
    try:
        yield process
    finally:
        process.stop()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(f"--- operator log ---\n{process.log()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> Iterator[Any]:
    """The operator's own ApiClient type, for the edge functions in tests."""
    client = connect(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _node_tests_need_a_ready_node() -> None:
    """This folder's `node` tests run without a node too: the test plays the kubelet with the
    real runtime (helpers_kubelet.py). Overrides the root conftest's skip."""


@pytest.fixture
def jobs(api: Any, namespace: str, tmp_path: Path) -> JobRunner:
    """Runs the operator's Jobs: the real node when the cluster has one (with the artifact
    store's PersistentVolumeClaim in the test's namespace), else the test plays the kubelet with
    the real runtime (helpers_kubelet.py says how)."""
    pvc_root = tmp_path / "pvc"
    pvc_root.mkdir()
    real_node = has_ready_node(api)
    if real_node:
        kube.create(api, artifact_claim(namespace))
    return JobRunner(api=api, namespace=namespace, pvc_root=pvc_root, real_node=real_node)
