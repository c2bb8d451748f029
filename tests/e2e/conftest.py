"""The e2e tests' fixtures: one release of the chart per session, with the operator in-cluster from
its image (kubeloop-operator:dev, runtime kubeloop-runtime:dev, as tests/helm/test_chart_node.py
and `make demo` install it), and a namespace per test with the demo's pipeline in it.

The release serves exactly the namespaces of the selected e2e tests (`watch.mode: namespaces`
fixes them at install), so nothing of another run or of `make demo` is touched. At session start
every namespace gets the demo's base data and examples/demo/iris-loop.yaml at once: the pipelines
train and roll out side by side while the first tests run, and each test waits only for its own
(`scene.baseline()`). A test's namespace is deleted when it ends; the release at session end.
KUBELOOP_E2E_KEEP=1 keeps both for a look.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_kit import SEED_JOB, VALUES, Scene, Stack

from demolib.cluster import Cluster
from incluster import CHART, HelmRunner, KubectlRunner, set_args

RUN = uuid.uuid4().hex[:5]
KEEP = os.environ.get("KUBELOOP_E2E_KEEP") == "1"


def namespace_for(test_name: str) -> str:
    """`test_zero_failed_requests…` → `e2e-<run>-zero-failed-requests…` (a DNS label)."""
    stem = test_name.removeprefix("test_").lower()
    stem = "".join(c if c.isalnum() else "-" for c in stem)
    return f"e2e-{RUN}-{stem}"[:63].strip("-")


def create_namespace(kubectl: KubectlRunner, name: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/part-of": "kubeloop-e2e",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        },
    }
    kubectl("create", "-f", "-", input=json.dumps(body))


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest,
    helm: HelmRunner,
    kubectl: KubectlRunner,
    kubeconfig: str,
    tool_path: Callable[[str], str],
    kubeloop_crds: list[str],
    node_images: set[str],
) -> Iterator[Stack]:
    """The chart installed once, its operator Pod available, every selected test's namespace
    served and seeded, the demo pipeline applied in each."""
    tests = [item.name for item in request.session.items if item.get_closest_marker("e2e")]
    watched = tuple(dict.fromkeys(namespace_for(name) for name in tests))
    operator_namespace = f"e2e-{RUN}"
    name = f"kubeloop-e2e-{RUN}"  # contains "kubeloop": the chart's fullname, the Deployment's
    path = f"{Path(tool_path('kubectl')).parent}:{Path(tool_path('helm')).parent}:"
    cluster = Cluster(Path(kubeconfig), path + os.environ.get("PATH", ""))
    stack = Stack(name, operator_namespace, watched, kubectl, cluster)
    for namespace in (operator_namespace, *watched):
        create_namespace(kubectl, namespace)
    try:
        # No --wait: it would wait for the artifact claims to bind, which the node's
        # WaitForFirstConsumer StorageClass does only for their first Pod (as `make deploy`).
        values = {
            "watch.namespaces": "{" + ",".join(watched) + "}",
            "logFormat": "text",  # read in failure messages
        }
        helm(
            f"--kubeconfig={kubeconfig}",
            "install",
            name,
            str(CHART),
            f"--namespace={operator_namespace}",
            f"--values={VALUES}",
            *set_args(values),
            "--timeout=2m",
            timeout=150,
        )
        rollout = kubectl(
            "rollout",
            "status",
            f"deployment/{name}",
            "-n",
            operator_namespace,
            "--timeout=180s",
            check=False,
            timeout=200,
        )
        if rollout.returncode != 0:
            pods = kubectl("get", "pods", "-n", operator_namespace, "-o", "wide", check=False)
            pytest.fail(
                f"the operator did not become available:\n{rollout.stderr}\n{pods.stdout}\n"
                f"{stack.logs()}",
                pytrace=False,
            )
        scenes = [Scene(stack, namespace) for namespace in watched]
        for scene in scenes:
            scene.seed()
        for scene in scenes:
            scene.wait_job(SEED_JOB)
            scene.apply_pipeline()
        yield stack
    finally:
        if not KEEP:
            helm(
                f"--kubeconfig={kubeconfig}",
                "uninstall",
                name,
                f"--namespace={operator_namespace}",
                "--timeout=2m",
                check=False,
                timeout=150,
            )
            for namespace in (*watched, operator_namespace):
                kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def scene(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Scene]:
    """This test's namespace (served by the release, its pipeline applied at session start);
    deleted when the test ends, so its Pods stop taking the shared cores."""
    namespace = namespace_for(request.node.name)
    if namespace not in stack.watched:
        pytest.fail(f"{namespace} is not served by the release: is the test marked e2e?")
    yield Scene(stack, namespace)
    if not KEEP:
        stack.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
