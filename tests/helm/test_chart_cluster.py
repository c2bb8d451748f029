"""The chart installed on a real API server: the operator's account can do what the operator
needs and nothing more (kubectl auth can-i as the ServiceAccount), it can create the drift
sidecar's Role with a real token, a bad value installs nothing, and `helm uninstall` leaves only
the CRDs. Pods need not run: an API-only plane is enough (the node tests start the operator)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import CHART, REPO, HelmRunner, set_args

from support import eventually

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class Install:
    release: str
    namespace: str  # the release's, where the operator runs
    account: str  # system:serviceaccount:<namespace>:<sa>
    watched: tuple[str, ...]  # empty: cluster mode
    other: str  # a namespace the operator must not reach in namespaces mode


@pytest.fixture(scope="module")
def cluster_helm(helm: HelmRunner, kubeconfig: str) -> HelmRunner:
    def run(
        *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return helm(f"--kubeconfig={kubeconfig}", *args, check=check, timeout=timeout)

    return run


def make_namespace(kubectl: KubectlRunner, stem: str) -> str:
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    return name


def install(cluster_helm: HelmRunner, kubectl: KubectlRunner, mode: str) -> Iterator[Install]:
    namespace = make_namespace(kubectl, "helm-op")
    other = make_namespace(kubectl, "helm-other")
    watched: tuple[str, ...] = ()
    # No operator Pod: these tests ask the API server about its account, and on a cluster with a
    # node a running cluster-wide operator would reconcile other tests' objects.
    values = {"replicaCount": "0"}
    if mode == "namespaces":
        watched = (make_namespace(kubectl, "helm-ml"), make_namespace(kubectl, "helm-ml2"))
        values |= {"watch.mode": "namespaces", "watch.namespaces": "{" + ",".join(watched) + "}"}
    release = f"kl-{uuid.uuid4().hex[:6]}"
    cluster_helm("install", release, str(CHART), f"--namespace={namespace}", *set_args(values))
    account = f"system:serviceaccount:{namespace}:{release}-kubeloop"
    try:
        yield Install(release, namespace, account, watched, other)
    finally:
        cluster_helm("uninstall", release, f"--namespace={namespace}", "--wait", check=False)
        for name in (namespace, other, *watched):
            kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def cluster_mode(
    cluster_helm: HelmRunner, kubectl: KubectlRunner, kubeloop_crds: list[str]
) -> Iterator[Install]:
    yield from install(cluster_helm, kubectl, "cluster")


@pytest.fixture(scope="module")
def namespaces_mode(
    cluster_helm: HelmRunner, kubectl: KubectlRunner, kubeloop_crds: list[str]
) -> Iterator[Install]:
    yield from install(cluster_helm, kubectl, "namespaces")


def can_i(kubectl: KubectlRunner, account: str, *query: str) -> bool:
    result = kubectl("auth", "can-i", f"--as={account}", *query, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stdout + result.stderr
    return answer == "yes"


# What the operator does in a namespace it serves (ISSUE-8 and docs/rbac.md).
NEEDED = [
    ("watch", "datasets.kubeloop.dev"),
    ("list", "trainingjobs.kubeloop.dev"),
    ("patch", "inferenceservices.kubeloop.dev"),
    ("create", "modelversions.kubeloop.dev"),
    ("create", "trainingjobs.kubeloop.dev"),
    ("patch", "datasets.kubeloop.dev", "--subresource=status"),
    ("patch", "trainingjobs.kubeloop.dev", "--subresource=status"),
    ("patch", "modelversions.kubeloop.dev", "--subresource=status"),
    ("patch", "inferenceservices.kubeloop.dev", "--subresource=status"),
    ("create", "jobs.batch"),
    ("watch", "pods"),
    ("get", "pods"),
    ("create", "deployments.apps"),
    ("patch", "deployments.apps"),
    ("create", "services"),
    ("create", "serviceaccounts"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("get", "configmaps"),
    ("create", "configmaps"),
    ("update", "configmaps"),
    ("create", "events"),
]
# What it must never be able to do, wherever it asks.
FORBIDDEN = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "pods", "--subresource=exec"),
    ("get", "pods", "--subresource=log"),
    ("create", "pods"),
    ("delete", "deployments.apps"),
    ("delete", "jobs.batch"),
    ("patch", "trainingjobs.kubeloop.dev"),
    ("delete", "modelversions.kubeloop.dev"),
    ("list", "configmaps"),
    ("delete", "configmaps"),
    ("delete", "pods"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
    ("*", "*"),
    ("create", "*"),
    ("get", "*"),
]
FORBIDDEN_CLUSTER_WIDE = [
    ("get", "nodes"),
    ("list", "nodes"),
    ("patch", "nodes"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("create", "namespaces"),
    ("delete", "namespaces"),
    ("*", "*"),
    ("list", "secrets", "--all-namespaces"),
]
DISCOVERY = [
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
]


@pytest.mark.parametrize("query", NEEDED, ids=" ".join)
def test_cluster_mode_can_do_what_the_operator_needs_anywhere(
    kubectl: KubectlRunner, cluster_mode: Install, query: tuple[str, ...]
) -> None:
    for namespace in (cluster_mode.other, cluster_mode.namespace):
        assert can_i(kubectl, cluster_mode.account, *query, "-n", namespace), (query, namespace)


@pytest.mark.parametrize("query", FORBIDDEN, ids=" ".join)
def test_cluster_mode_cannot_do_more(
    kubectl: KubectlRunner, cluster_mode: Install, query: tuple[str, ...]
) -> None:
    for namespace in (cluster_mode.other, cluster_mode.namespace, "kube-system", "default"):
        assert not can_i(kubectl, cluster_mode.account, *query, "-n", namespace), (query, namespace)


@pytest.mark.parametrize("query", FORBIDDEN_CLUSTER_WIDE, ids=" ".join)
def test_no_mode_reaches_nodes_crd_writes_or_wildcards(
    kubectl: KubectlRunner,
    cluster_mode: Install,
    namespaces_mode: Install,
    query: tuple[str, ...],
) -> None:
    for installed in (cluster_mode, namespaces_mode):
        assert not can_i(kubectl, installed.account, *query), (query, installed.release)


@pytest.mark.parametrize("query", DISCOVERY, ids=" ".join)
def test_both_modes_may_read_crds_for_kopf(
    kubectl: KubectlRunner,
    cluster_mode: Install,
    namespaces_mode: Install,
    query: tuple[str, ...],
) -> None:
    for installed in (cluster_mode, namespaces_mode):
        assert can_i(kubectl, installed.account, *query)


@pytest.mark.parametrize("query", NEEDED, ids=" ".join)
def test_namespaces_mode_grants_only_in_the_watched_namespaces(
    kubectl: KubectlRunner, namespaces_mode: Install, query: tuple[str, ...]
) -> None:
    for namespace in namespaces_mode.watched:
        assert can_i(kubectl, namespaces_mode.account, *query, "-n", namespace), (query, namespace)
    for namespace in (namespaces_mode.other, namespaces_mode.namespace, "default"):
        assert not can_i(kubectl, namespaces_mode.account, *query, "-n", namespace), (
            query,
            namespace,
        )


def test_namespaces_mode_has_no_secrets_even_where_it_works(
    kubectl: KubectlRunner, namespaces_mode: Install
) -> None:
    for query in FORBIDDEN:
        for namespace in namespaces_mode.watched:
            assert not can_i(kubectl, namespaces_mode.account, *query, "-n", namespace), query


# --- a real create as the operator's account ------------------------------------------------


def token_kubectl(kubectl: KubectlRunner, tmp_path: Path, installed: Install) -> KubectlRunner:
    """kubectl authenticated only by a TokenRequest token of the operator's ServiceAccount."""
    sa = installed.account.rsplit(":", 1)[1]
    token = kubectl("create", "token", sa, "-n", installed.namespace, "--duration=10m").stdout
    config = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    config["users"] = [{"name": "operator", "user": {"token": token.strip()}}]
    config["contexts"][0]["context"]["user"] = "operator"
    path = tmp_path / "operator.kubeconfig"
    path.write_text(json.dumps(config))

    def run(
        *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = kubectl(f"--kubeconfig={path}", *args, check=False, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    return run


def role(namespace: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": rules,
    }


def sidecar_rbac(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """The drift sidecar's ServiceAccount, Role and RoleBinding, as the operator builds them."""
    meta = isvc["metadata"]
    try:
        from kubeloop.builders.inferenceservice import Owner, build_sidecar_rbac
    except ImportError:  # before the operator's InferenceService builders are merged
        name, namespace = f"{meta['name']}-drift", meta["namespace"]
        rules = [
            {
                "apiGroups": ["kubeloop.dev"],
                "resources": ["inferenceservices"],
                "resourceNames": [meta["name"]],
                "verbs": ["get"],
            },
            {
                "apiGroups": ["kubeloop.dev"],
                "resources": ["inferenceservices/status"],
                "resourceNames": [meta["name"]],
                "verbs": ["get", "patch"],
            },
        ]
        return [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            },
            role(namespace, name, rules),
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ]
    return list(build_sidecar_rbac(Owner(meta["name"], meta["namespace"], meta["uid"])))


def example_inference_service(kubectl: KubectlRunner, namespace: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((REPO / "examples" / "iris.yaml").read_text())
    isvc = next(doc for doc in docs if doc["kind"] == "InferenceService")
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(isvc))
    return dict(json.loads(kubectl("get", "infsvc", "iris", "-n", namespace, "-o", "json").stdout))


@pytest.mark.parametrize("mode", ["cluster", "namespaces"])
def test_operator_token_applies_the_sidecar_rbac_but_cannot_escalate(
    request: pytest.FixtureRequest, kubectl: KubectlRunner, tmp_path: Path, mode: str
) -> None:
    installed: Install = request.getfixturevalue(f"{mode}_mode")
    as_operator = token_kubectl(kubectl, tmp_path, installed)
    where = installed.watched[0] if installed.watched else installed.other
    whoami = as_operator("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == installed.account

    # What the operator does for every InferenceService: server-side apply, its field manager.
    manifests = sidecar_rbac(example_inference_service(kubectl, where))
    assert [m["kind"] for m in manifests] == ["ServiceAccount", "Role", "RoleBinding"]
    as_operator(
        "apply",
        "--server-side",
        "--field-manager=kubeloop-operator",
        "-f",
        "-",
        input=yaml.safe_dump_all(manifests),
    )
    sidecar = f"system:serviceaccount:{where}:{manifests[0]['metadata']['name']}"
    assert can_i(
        kubectl,
        sidecar,
        "patch",
        "inferenceservices.kubeloop.dev/iris",
        "--subresource=status",
        "-n",
        where,
    )
    assert not can_i(
        kubectl,
        sidecar,
        "patch",
        "inferenceservices.kubeloop.dev/other",
        "--subresource=status",
        "-n",
        where,
    )

    # Granting what the operator does not hold is refused: it has no escalate.
    rules = [
        *manifests[1]["rules"],
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    ]
    refused = as_operator(
        "create", "-f", "-", check=False, input=yaml.safe_dump(role(where, "greedy", rules))
    )
    assert refused.returncode != 0
    assert "attempting to grant RBAC permissions not currently held" in refused.stderr
    # Nor can it bind a role whose permissions it does not hold (no bind).
    refused = as_operator(
        "create",
        "rolebinding",
        "admin-for-drift",
        "-n",
        where,
        "--clusterrole=admin",
        f"--serviceaccount={where}:iris-drift",
        check=False,
    )
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()

    if installed.watched:
        outside = role(installed.other, "iris-drift", manifests[1]["rules"])
        refused = as_operator("create", "-f", "-", check=False, input=yaml.safe_dump(outside))
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr.lower()


# --- install and uninstall ------------------------------------------------------------------


def test_bad_value_fails_helm_install_with_the_schema_message_and_installs_nothing(
    cluster_helm: HelmRunner, kubectl: KubectlRunner, namespace: str
) -> None:
    for values, message in (
        ({"replicaCount": "-1"}, "at '/replicaCount': minimum: got -1, want 0"),
        ({"watch.mode": "some"}, "at '/watch/mode': value must be one of 'cluster', 'namespaces'"),
        ({"image.repository": "Op:dev"}, "at '/image/repository': 'Op:dev' does not match"),
        (
            {"artifactStore.type": "nfs"},
            "at '/artifactStore/type': value must be one of 'pvc', 'existingClaim', 's3'",
        ),
    ):
        result = cluster_helm(
            "install", "bad", str(CHART), f"--namespace={namespace}", *set_args(values), check=False
        )
        assert result.returncode == 1
        assert message in result.stderr, result.stderr
    assert cluster_helm("list", f"--namespace={namespace}", "-q").stdout.strip() == ""
    left = kubectl(
        "get",
        "all,serviceaccounts,pvc,roles,rolebindings",
        "-n",
        namespace,
        "-l",
        "app.kubernetes.io/instance=bad",
        "-o",
        "name",
    ).stdout
    assert left == ""


def test_notes_after_install_tell_the_next_step(cluster_helm: HelmRunner, namespace: str) -> None:
    out = cluster_helm(
        "install", "kubeloop", str(CHART), f"--namespace={namespace}", "--dry-run=client"
    ).stdout
    notes = out.split("NOTES:", 1)[1]
    assert f"kubectl -n {namespace} rollout status deployment/kubeloop" in notes
    assert "kubectl wait --for=condition=Ready inferenceservice/iris" in notes
    assert "docs/upgrading.md" in notes


OURS = (
    "deployments,replicasets,jobs,pods,services,serviceaccounts,persistentvolumeclaims,roles,"
    "rolebindings,clusterroles,clusterrolebindings"
)


def test_uninstall_leaves_nothing_but_the_crds(
    cluster_helm: HelmRunner, kubectl: KubectlRunner, kubeloop_crds: list[str]
) -> None:
    namespace = make_namespace(kubectl, "helm-un")
    watched = make_namespace(kubectl, "helm-un-ml")
    release = f"un-{uuid.uuid4().hex[:6]}"
    selector = f"app.kubernetes.io/instance={release}"
    try:
        cluster_helm(
            "install",
            release,
            str(CHART),
            f"--namespace={namespace}",
            "--set=watch.mode=namespaces",
            f"--set=watch.namespaces={{{watched}}}",
        )
        made = kubectl("get", OURS, "-A", "-l", selector, "-o", "name").stdout.split()
        kinds = {name.split("/")[0] for name in made}
        assert {
            "deployment.apps",
            "serviceaccount",
            "service",
            "persistentvolumeclaim",
            "job.batch",
            "role.rbac.authorization.k8s.io",
            "rolebinding.rbac.authorization.k8s.io",
            "clusterrole.rbac.authorization.k8s.io",
        } <= kinds, made

        cluster_helm("uninstall", release, f"--namespace={namespace}", "--wait")

        def nothing_left() -> bool:
            return kubectl("get", OURS, "-A", "-l", selector, "-o", "name").stdout == ""

        eventually(nothing_left, timeout=60, interval=0.5, what=f"objects of {release} gone")
        crds = kubectl("get", "crd", "-o", "name").stdout.split()
        assert set(kubeloop_crds) <= set(crds)
    finally:
        cluster_helm("uninstall", release, f"--namespace={namespace}", check=False)
        for name in (namespace, watched):
            kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_operator_pod_is_admitted_under_restricted_pod_security(
    cluster_helm: HelmRunner, kubectl: KubectlRunner, kubeloop_crds: list[str]
) -> None:
    # The PodSecurity admission plugin refuses a non-compliant Pod at create time, so a Pod of
    # the Deployment existing in an enforcing namespace is the proof (it need not run here). The
    # default values also make the artifact claim's binder Job here: its Pod must pass too.
    namespace = make_namespace(kubectl, "helm-psa")
    kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    release = f"psa-{uuid.uuid4().hex[:6]}"
    try:
        cluster_helm(
            "install",
            release,
            str(CHART),
            f"--namespace={namespace}",
        )

        def pods(component: str) -> list[str]:
            return kubectl(
                "get",
                "pods",
                "-n",
                namespace,
                "-l",
                f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}",
                "-o",
                "name",
            ).stdout.split()

        for component in ("operator", "artifact-store-binder"):
            eventually(
                lambda: len(pods(component)) == 1,  # noqa: B023 (called at once)
                timeout=60,
                interval=0.5,
                what=f"the {component} Pod",
            )
        events = kubectl(
            "get", "events", "-n", namespace, "--field-selector=reason=FailedCreate", "-o", "name"
        ).stdout
        assert events == ""
    finally:
        cluster_helm("uninstall", release, f"--namespace={namespace}", check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
