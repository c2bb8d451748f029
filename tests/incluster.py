"""The chart installed with the operator in-cluster from this tree's images: what
tests/helm/test_chart_node.py and tests/e2e/ share (the images on the node, helm, the operator's
Pod and its log). The fixtures that use these are in tests/conftest.py (`helm`, `node_images`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support import eventually

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "kubeloop"
KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]
HelmRunner = Callable[..., subprocess.CompletedProcess[str]]

OPERATOR_IMAGE = ("kubeloop-operator", "dev")
RUNTIME_IMAGE = ("kubeloop-runtime", "dev")


def image_ref(image: tuple[str, str]) -> str:
    return f"{image[0]}:{image[1]}"


def helm_runner(binary: str) -> HelmRunner:
    """`helm …` as a function: check raises with helm's output, timeout in seconds."""

    def run(
        *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    return run


def set_args(values: dict[str, str] | None) -> list[str]:
    return [f"--set={key}={value}" for key, value in (values or {}).items()]


def image_values() -> dict[str, str]:
    """The chart values that make it run this tree's images (never pulled)."""
    return {
        "image.repository": OPERATOR_IMAGE[0],
        "image.tag": OPERATOR_IMAGE[1],
        "image.pullPolicy": "IfNotPresent",
        "runtime.image.repository": RUNTIME_IMAGE[0],
        "runtime.image.tag": RUNTIME_IMAGE[1],
        "runtime.image.pullPolicy": "IfNotPresent",
    }


def images_on_nodes(kubectl: KubectlRunner) -> set[str]:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {
        name
        for node in nodes
        for image in node["status"].get("images", ())
        for name in image.get("names") or ()
    }


def has_image(images: set[str], repository: str, tag: str) -> bool:
    return any(
        name.endswith(f"/{repository}:{tag}") or name == f"{repository}:{tag}" for name in images
    )


def is_local_node(kubeconfig: str) -> bool:
    """Whether the cluster is this checkout's local one (its kubeconfig is in $KUBELOOP_CACHE)."""
    cache = Path(os.environ.get("KUBELOOP_CACHE", REPO / ".cache" / "kubeloop")).resolve()
    return Path(kubeconfig).resolve().is_relative_to(cache)


def load_images(kubectl: KubectlRunner, kubeconfig: str) -> set[str]:
    """The images of this tree on the node: the local node gets them built and loaded
    (`hack/images.sh load`, a no-op when unchanged); any other cluster must have them (the
    test skips otherwise). Returns the image names the nodes list."""
    wanted = (OPERATOR_IMAGE, RUNTIME_IMAGE)
    tags = [image_ref(image) for image in wanted]
    local = is_local_node(kubeconfig)
    if local:
        subprocess.run(
            ["bash", str(REPO / "hack" / "images.sh"), "load", *tags], check=True, timeout=1800
        )

    def loaded() -> set[str]:
        images = images_on_nodes(kubectl)
        return images if all(has_image(images, *image) for image in wanted) else set()

    if local:
        # The kubelet lists a freshly imported image in the Node's status only at its next
        # status update (every 10 s), so a just-loaded image is waited for, not skipped.
        return eventually(loaded, timeout=90, interval=1, what=f"{tags} in the Node's status")
    images = loaded()
    if not images:
        pytest.skip(f"{' and '.join(tags)} must be on the node: load them there first")
    return images


def operator_pods(kubectl: KubectlRunner, namespace: str, selector: str) -> list[dict[str, Any]]:
    found = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return [dict(pod) for pod in json.loads(found)["items"]]


def operator_logs(
    kubectl: KubectlRunner, namespace: str, selector: str, *, tail: int | None = None
) -> str:
    """The log of the operator's Pod(s), and of the previous container when it restarted;
    never raises (it is read for failure messages)."""
    limit = [f"--tail={tail}"] if tail else []
    texts = []
    for pod in operator_pods(kubectl, namespace, selector):
        name = pod["metadata"]["name"]
        restarted = any(
            (status.get("restartCount") or 0) > 0
            for status in (pod.get("status") or {}).get("containerStatuses") or ()
        )
        for previous in (True, False) if restarted else (False,):
            flag = ["--previous"] if previous else []
            result = kubectl("logs", "-n", namespace, name, *flag, *limit, check=False)
            label = f"--- pod/{name}{' (previous container)' if previous else ''} ---"
            texts.append(f"{label}\n{result.stdout}{result.stderr}")
    return "\n".join(texts) or f"(no operator Pod in {namespace} with {selector})"
