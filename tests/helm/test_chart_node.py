"""The chart on a real node: `helm install --wait` brings the operator's two peered replicas Ready,
running from its image under the restricted Pod Security standard with only the chart's RBAC;
the in-cluster operator takes examples/iris.yaml to a served prediction; when the working
replica's Pod is killed the standby takes over; `helm uninstall` leaves nothing of ours but the
CRDs. The tests run in file order and share one release."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from incluster import (
    CHART,
    REPO,
    HelmRunner,
    KubectlRunner,
    image_values,
    operator_pods,
    set_args,
)
from incluster import operator_logs as incluster_logs
from support import eventually

# Setup may build and load the images, then waits for the operator: more than the default.
pytestmark = [pytest.mark.cluster, pytest.mark.node, pytest.mark.timeout(1800)]

# A killed replica's peering record expires after this long; then the standby takes over.
PEERING_LIFETIME = 10
OURS = (
    "deployments,replicasets,jobs,pods,services,serviceaccounts,persistentvolumeclaims,roles,"
    "rolebindings,clusterroles,clusterrolebindings,kopfpeerings,clusterkopfpeerings"
)


def install_waiting(
    helm: HelmRunner, kubeconfig: str, name: str, namespace: str, values: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`helm install --wait` of the chart with `values`; the caller says why when it failed."""
    return helm(
        f"--kubeconfig={kubeconfig}",
        "install",
        name,
        str(CHART),
        f"--namespace={namespace}",
        "--wait",
        "--timeout=4m",
        *set_args(values),
        check=False,
        timeout=270,
    )


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str  # the operator's
    watched: str  # the one namespace it serves
    selector: str
    helm: Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def release(
    helm: HelmRunner,
    kubeconfig: str,
    kubectl: KubectlRunner,
    kubeloop_crds: list[str],
    node_images: set[str],
) -> Iterator[Release]:
    """One release, serving one namespace; both namespaces enforce restricted Pod Security."""
    namespace, watched = (f"{stem}-{uuid.uuid4().hex[:6]}" for stem in ("helm-node", "helm-ml"))
    for name in (namespace, watched):
        kubectl("create", "namespace", name)
        kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    # A claim the test makes: `--wait` would wait for a chart-made one to bind, which the node's
    # WaitForFirstConsumer StorageClass does only for its first Pod.
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models", "namespace": watched},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(claim))

    def cluster_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(f"--kubeconfig={kubeconfig}", *args, check=check, timeout=270)

    name = f"node-{uuid.uuid4().hex[:6]}"
    values = {
        **image_values(),
        "watch.mode": "namespaces",
        "watch.namespaces": "{" + watched + "}",
        "artifactStore.type": "existingClaim",
        "artifactStore.existingClaim": "models",
        "replicaCount": "2",
        "peering.enabled": "true",
        "peering.lifetimeSeconds": str(PEERING_LIFETIME),
        "logLevel": "DEBUG",
    }
    selector = f"app.kubernetes.io/instance={name}"
    try:
        installed = install_waiting(helm, kubeconfig, name, namespace, values)
        if installed.returncode != 0:
            # Say why: usually the operator's Pod, whose last log lines tell.
            pods = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "wide").stdout
            logs = kubectl(
                "logs", "-n", namespace, "-l", selector, "--tail=20", "--previous", check=False
            )
            pytest.fail(
                f"helm install --wait failed:\n{installed.stderr}\n{pods}\n"
                f"{logs.stdout}{logs.stderr}"
            )
        yield Release(name, namespace, watched, selector, cluster_helm)
    finally:
        cluster_helm("uninstall", name, f"--namespace={namespace}", "--wait", check=False)
        for ns in (namespace, watched):
            kubectl("delete", "namespace", ns, "--wait=false", check=False)


def operator_logs(kubectl: KubectlRunner, release: Release) -> str:
    """Every replica's log."""
    return incluster_logs(kubectl, release.namespace, release.selector)


def pod_log(kubectl: KubectlRunner, release: Release, pod: str) -> str:
    return kubectl("logs", "-n", release.namespace, pod, check=False).stdout


def paused(log: str) -> bool:
    """Whether Kopf in this replica is paused for a peer. Peering is mandatory, so Kopf starts
    paused and says so only when it resumes ("Resuming operations"); it says "Pausing
    operations" when a peer outranks it later."""
    return log.rfind("Pausing operations") >= log.rfind("Resuming operations")


def standing_by(kubectl: KubectlRunner, release: Release) -> list[str]:
    """The replicas whose Kopf paused in favour of a peer and has not resumed since."""
    names = [
        p["metadata"]["name"] for p in operator_pods(kubectl, release.namespace, release.selector)
    ]
    return [name for name in names if paused(pod_log(kubectl, release, name))]


def test_install_wait_brings_both_replicas_ready_and_one_stands_by(
    kubectl: KubectlRunner, release: Release
) -> None:
    pods = operator_pods(kubectl, release.namespace, release.selector)
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions["Ready"] == "True", pod["status"]  # a standby answers its liveness too
        [container] = pod["status"]["containerStatuses"]
        assert container["image"].endswith("kubeloop-operator:dev")
        assert container["restartCount"] == 0
        log = pod_log(kubectl, release, pod["metadata"]["name"])
        assert f"namespaces {release.watched}" in log, log
    # Peering: the chart's KopfPeering, in the namespace it serves; one replica works.
    kubectl("get", "kopfpeering", "kubeloop", "-n", release.watched)
    eventually(
        lambda: len(standing_by(kubectl, release)) == 1,
        timeout=30,
        interval=1,
        what="one replica to stand by",
    )


def predict(cluster_ip: str, rows: list[dict[str, float]]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{cluster_ip}/predict",
        data=json.dumps({"instances": rows}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def wait_ready(kubectl: KubectlRunner, release: Release, resource: str) -> None:
    ns = release.watched
    result = kubectl(
        "wait",
        "-n",
        ns,
        "--for=condition=Ready",
        resource,
        "--timeout=600s",
        check=False,
        timeout=620,
    )
    assert result.returncode == 0, (
        f"{resource} not Ready:\n{result.stderr}\n"
        + kubectl("get", "kubeloop,jobs,pods", "-n", ns, "-o", "wide").stdout
        + operator_logs(kubectl, release)[-4000:]
    )


def test_in_cluster_operator_profiles_and_trains_the_iris_example(
    kubectl: KubectlRunner, release: Release
) -> None:
    kubectl("apply", "-n", release.watched, "-f", str(REPO / "examples" / "iris.yaml"))
    wait_ready(kubectl, release, "dataset/iris")
    wait_ready(kubectl, release, "trainingjob/iris-rf")
    version = kubectl(
        "get",
        "trainingjob",
        "iris-rf",
        "-n",
        release.watched,
        "-o",
        "jsonpath={.status.modelVersion}",
    ).stdout
    wait_ready(kubectl, release, f"modelversion/{version}")
    logs = operator_logs(kubectl, release)
    assert "Forbidden" not in logs
    # The peering gate reads the KopfPeering with the chart's RBAC before each reconcile.
    assert "cannot read the peering objects" not in logs


def test_in_cluster_operator_serves_the_iris_example(
    kubectl: KubectlRunner, release: Release
) -> None:
    pytest.importorskip(
        "kubeloop.controllers.inferenceservice",
        reason="the InferenceService controller (branch isvc) is not in this tree or its image",
    )
    wait_ready(kubectl, release, "inferenceservice/iris")
    cluster_ip = kubectl(
        "get", "service", "iris", "-n", release.watched, "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    rows = [
        {
            "sepal length (cm)": 5.1,
            "sepal width (cm)": 3.5,
            "petal length (cm)": 1.4,
            "petal width (cm)": 0.2,
        }
    ]
    # A ClusterIP can refuse connections for a moment after its endpoints become ready.
    answer = eventually(
        lambda: _try_predict(cluster_ip, rows),
        timeout=30,
        interval=1,
        what="a prediction through the iris Service",
    )
    assert answer["model"] == "iris"
    assert answer["predictions"] == ["setosa"]
    assert "Forbidden" not in operator_logs(kubectl, release)


def _try_predict(cluster_ip: str, rows: list[dict[str, float]]) -> dict[str, Any] | None:
    try:
        return predict(cluster_ip, rows)
    except OSError:
        return None


def test_the_standby_takes_over_when_the_working_replica_is_killed(
    kubectl: KubectlRunner, release: Release
) -> None:
    [standby] = standing_by(kubectl, release)
    [working] = [
        p["metadata"]["name"]
        for p in operator_pods(kubectl, release.namespace, release.selector)
        if p["metadata"]["name"] != standby
    ]
    # No clean stop: the killed replica's peering record stays until it expires.
    kubectl("delete", "pod", working, "-n", release.namespace, "--grace-period=0", "--force")
    eventually(
        lambda: not paused(pod_log(kubectl, release, standby)),
        timeout=PEERING_LIFETIME + 60,
        interval=1,
        what=f"{standby} to resume after {working}'s record expired",
    )
    # Whichever replica works now (the Deployment's new Pod may outrank the survivor), the
    # operator serves: a new Dataset is profiled.
    dataset = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "wine", "namespace": release.watched},
        "spec": {"source": {"uri": "builtin://wine"}, "target": "target"},
    }
    kubectl("apply", "-f", "-", input=json.dumps(dataset))
    wait_ready(kubectl, release, "dataset/wine")
    kubectl("delete", "dataset", "wine", "-n", release.watched, "--wait=true", timeout=120)


def test_uninstall_leaves_nothing_of_ours_but_the_crds(
    kubectl: KubectlRunner, release: Release, kubeloop_crds: list[str]
) -> None:
    # The user's objects first, as docs/getting-started.md says, then the release.
    kubectl(
        "delete",
        "-n",
        release.watched,
        "-f",
        str(REPO / "examples" / "iris.yaml"),
        "--ignore-not-found",
        "--wait=true",
        timeout=180,
    )
    release.helm("uninstall", release.name, f"--namespace={release.namespace}", "--wait")

    def nothing_left() -> bool:
        return kubectl("get", OURS, "-A", "-l", release.selector, "-o", "name").stdout == ""

    eventually(nothing_left, timeout=120, interval=1, what=f"objects of {release.name} gone")
    assert set(kubeloop_crds) <= set(kubectl("get", "crd", "-o", "name").stdout.split())


def test_install_wait_binds_the_chart_made_artifact_claim_and_uninstall_removes_it(
    helm: HelmRunner,
    kubeconfig: str,
    kubectl: KubectlRunner,
    kubeloop_crds: list[str],
    node_images: set[str],
) -> None:
    # The default artifact store: a chart-made claim on the node's WaitForFirstConsumer
    # StorageClass. Helm's --wait waits for it to be Bound; the chart's binder Job is its first
    # consumer. Namespaces mode on a fresh namespace keeps this operator off others' objects.
    namespace, watched = (f"{stem}-{uuid.uuid4().hex[:6]}" for stem in ("helm-bind", "helm-bml"))
    for ns in (namespace, watched):
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    name = f"bind-{uuid.uuid4().hex[:6]}"
    selector = f"app.kubernetes.io/instance={name}"
    values = {
        **image_values(),
        "watch.mode": "namespaces",
        "watch.namespaces": "{" + watched + "}",
    }

    def cluster_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(f"--kubeconfig={kubeconfig}", *args, check=check, timeout=270)

    try:
        installed = install_waiting(helm, kubeconfig, name, namespace, values)
        assert installed.returncode == 0, (
            f"helm install --wait failed:\n{installed.stderr}\n"
            + kubectl("get", "pvc,jobs,pods", "-n", watched, "-o", "wide").stdout
            + kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout
        )
        claim = json.loads(
            kubectl("get", "pvc", "kubeloop-artifacts", "-n", watched, "-o", "json").stdout
        )
        assert claim["status"]["phase"] == "Bound"
        assert claim["metadata"].get("annotations", {}).get("volume.kubernetes.io/selected-node")
        pods = json.loads(
            kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
        )["items"]
        ready = [
            c["status"] for p in pods for c in p["status"]["conditions"] if c["type"] == "Ready"
        ]
        assert ready == ["True"], pods

        cluster_helm("uninstall", name, f"--namespace={namespace}", "--wait")

        def nothing_left() -> bool:
            return kubectl("get", OURS, "-A", "-l", selector, "-o", "name").stdout == ""

        eventually(nothing_left, timeout=120, interval=1, what=f"objects of {name} gone")
    finally:
        cluster_helm("uninstall", name, f"--namespace={namespace}", check=False)
        for ns in (namespace, watched):
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
