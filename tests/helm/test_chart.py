"""The chart, rendered without a cluster: lint, kubeconform against the Kubernetes and CRD
schemas, the values schema's messages, and what each value renders into."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import CHART, REPO, HelmRunner, Kubeconform, Render, set_args

# Value sets a user would install with; every one must lint and validate.
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "namespaces": {"watch.mode": "namespaces", "watch.namespaces": "{ml,ml-staging}"},
    "existing-claim": {
        "artifactStore.type": "existingClaim",
        "artifactStore.existingClaim": "models",
    },
    "s3": {
        "artifactStore.type": "s3",
        "artifactStore.s3.uri": "s3://kubeloop-models/prod",
        "artifactStore.s3.credentialsSecret": "kubeloop-s3",
        "artifactStore.s3.endpoint": "http://minio.storage:9000",
    },
    "peered": {"replicaCount": "2", "peering.enabled": "true"},
    "peered-namespaces": {
        "replicaCount": "3",
        "peering.enabled": "true",
        "watch.mode": "namespaces",
        "watch.namespaces": "{ml}",
    },
    "local-images": {
        "image.repository": "kubeloop-operator",
        "image.tag": "dev",
        "runtime.image.repository": "kubeloop-runtime",
        "runtime.image.tag": "dev",
        "runtime.image.pullPolicy": "Never",
    },
    "digest": {
        "image.digest": "sha256:" + "ab" * 32,
        "image.repository": "registry.local:5000/ml/op",
    },
}
PEERING_KINDS = {"KopfPeering", "ClusterKopfPeering"}


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def operator_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return dict(containers[0])


def env_of(manifests: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in operator_container(manifests)["env"]}


def rules_of(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [rule for role in by_kind(manifests, kind) for rule in role["rules"]]


def grants(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
    )


def peering_crds_shipped() -> bool:
    for path in (CHART / "crds").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("spec", {}).get("names", {}).get("kind") in PEERING_KINDS:
                return True
    return False


# --- lint, versions, kubeconform ------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lint_strict_passes(helm: HelmRunner, variant: str) -> None:
    result = helm("lint", "--strict", str(CHART), *set_args(VARIANTS[variant]))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_chart_version_and_app_version_follow_the_project() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == project
    assert chart["appVersion"] == project


def test_chart_crds_mirror_the_generated_crds() -> None:
    ours = {p.name: p.read_text() for p in (REPO / "crds").glob("*.yaml")}
    chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert chart == ours, "helm/kubeloop/crds/ differs from crds/: run `python -m kubeloop.crdgen`"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_chart_passes_kubeconform_strict(
    helm: HelmRunner, kubeconform: Kubeconform, variant: str
) -> None:
    values = VARIANTS[variant]
    if values.get("peering.enabled") == "true" and not peering_crds_shipped():
        pytest.skip("crds/ has no Kopf peering CRDs yet: the KopfPeering objects have no schema")
    rendered = helm(
        "template",
        "kubeloop",
        str(CHART),
        "--namespace=kubeloop-system",
        "--include-crds",
        "--api-versions=monitoring.coreos.com/v1/ServiceMonitor",
        *set_args(values),
    ).stdout
    result = kubeconform(stdin=rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


def test_kubeconform_rejects_an_unknown_field_in_a_built_in_kind(
    render: Render, kubeconform: Kubeconform
) -> None:
    # The Kubernetes schemas are strict: a typo in the chart would not pass unseen.
    manifests = render()
    deployment = one(manifests, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    result = kubeconform(stdin=yaml.safe_dump(deployment))
    assert result.returncode == 1
    assert "additional properties 'securityContex' not allowed" in result.stdout


# --- bad values fail with the schema's message ----------------------------------------------

BAD_VALUES = {
    "negative replicas": ({"replicaCount": "-1"}, "at '/replicaCount': minimum: got -1, want 0"),
    "unknown mode": (
        {"watch.mode": "everywhere"},
        "at '/watch/mode': value must be one of 'cluster', 'namespaces'",
    ),
    "image with a space": (
        {"image.repository": "Kubeloop Operator"},
        "at '/image/repository': 'Kubeloop Operator' does not match pattern",
    ),
    "tag in the repository": (
        {"runtime.image.repository": "kubeloop-runtime:dev"},
        "at '/runtime/image/repository': 'kubeloop-runtime:dev' does not match pattern",
    ),
    "bad tag": ({"image.tag": "dev:1"}, "at '/image/tag': 'dev:1' does not match pattern"),
    "bad digest": ({"image.digest": "sha256:xyz"}, "at '/image/digest': 'sha256:xyz' does not"),
    "bad pull policy": (
        {"image.pullPolicy": "Sometimes"},
        "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
    ),
    "store neither PVC nor URI": (
        {"artifactStore.type": "nfs"},
        "at '/artifactStore/type': value must be one of 'pvc', 'existingClaim', 's3'",
    ),
    "URI given as a claim": (
        {"artifactStore.type": "existingClaim", "artifactStore.existingClaim": "s3://models"},
        "at '/artifactStore/existingClaim': 's3://models' does not match pattern",
    ),
    "non-S3 URI": (
        {"artifactStore.type": "s3", "artifactStore.s3.uri": "gs://models/prod"},
        "at '/artifactStore/s3/uri': 'gs://models/prod' does not match pattern",
    ),
    "unknown value": ({"replicas": "1"}, "additional properties 'replicas' not allowed"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_value_fails_helm_template_with_the_schema_message(helm: HelmRunner, case: str) -> None:
    # `helm install` runs the same check first: test_chart_cluster.py shows it on a real server.
    values, message = BAD_VALUES[case]
    result = helm("template", "kubeloop", str(CHART), *set_args(values), check=False)
    assert result.returncode == 1, result.stdout
    assert "values don't meet the specifications of the schema(s)" in result.stderr
    assert message in result.stderr, result.stderr


CROSS_FIELD = {
    "replicas without peering": (
        {"replicaCount": "2"},
        "replicaCount is 2 but peering.enabled is false",
    ),
    "namespaces mode without namespaces": (
        {"watch.mode": "namespaces"},
        "watch.mode is namespaces but watch.namespaces is empty",
    ),
    "namespaces in cluster mode": (
        {"watch.namespaces": "{ml}"},
        "watch.namespaces is set but watch.mode is cluster",
    ),
    "existing claim unnamed": (
        {"artifactStore.type": "existingClaim"},
        "artifactStore.existingClaim is empty",
    ),
    "s3 without a URI": ({"artifactStore.type": "s3"}, "artifactStore.s3.uri is empty"),
}


@pytest.mark.parametrize("case", sorted(CROSS_FIELD))
def test_values_that_contradict_each_other_fail_saying_what_to_change(
    helm: HelmRunner, case: str
) -> None:
    values, message = CROSS_FIELD[case]
    result = helm("template", "kubeloop", str(CHART), *set_args(values), check=False)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


# --- what the values render into ------------------------------------------------------------


def test_default_operator_is_one_restricted_replica_recreated(render: Render) -> None:
    manifests = render()
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(manifests)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert container["image"] == "ghcr.io/kubeloop/kubeloop-operator:0.1.0"
    assert pod["serviceAccountName"] == one(manifests, "ServiceAccount")["metadata"]["name"]


def test_peering_allows_replicas_and_rolls_without_a_gap(render: Render) -> None:
    manifests = render(VARIANTS["peered"])
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert env_of(manifests)["KUBELOOP_PEERING_NAME"] == "kubeloop"
    assert "KUBELOOP_STANDALONE" not in env_of(manifests)
    assert one(manifests, "ClusterKopfPeering")["metadata"]["name"] == "kubeloop"
    assert grants(rules_of(manifests, "ClusterRole"), "kopf.dev", "clusterkopfpeerings", "patch")


def test_peering_in_namespaces_mode_meets_in_each_namespace(render: Render) -> None:
    manifests = render(VARIANTS["peered-namespaces"])
    assert [p["metadata"]["namespace"] for p in by_kind(manifests, "KopfPeering")] == ["ml"]
    assert not by_kind(manifests, "ClusterKopfPeering")
    assert grants(rules_of(manifests, "Role"), "kopf.dev", "kopfpeerings", "patch")


def test_images_env_and_store_reach_the_operator(render: Render) -> None:
    manifests = render(VARIANTS["local-images"])
    container = operator_container(manifests)
    assert container["image"] == "kubeloop-operator:dev"
    env = env_of(manifests)
    assert env["KUBELOOP_RUNTIME_IMAGE"] == "kubeloop-runtime:dev"
    assert env["KUBELOOP_IMAGE_PULL_POLICY"] == "Never"
    assert env["KUBELOOP_NAMESPACES"] == ""
    assert env["KUBELOOP_ARTIFACT_STORE"] == "pvc://kubeloop-artifacts/"
    assert env["KUBELOOP_LOG_FORMAT"] == "json"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["KUBELOOP_METRICS_PORT"] == str(ports["metrics"])
    assert env["KUBELOOP_HEALTH_PORT"] == str(ports["liveness"])
    assert env["KUBELOOP_STANDALONE"] == "true"  # peering is off by default
    assert env["KUBELOOP_DEFAULT_CPU_REQUEST"] == "100m"
    assert env["KUBELOOP_DEFAULT_MEMORY_REQUEST"] == "256Mi"
    assert env["KUBELOOP_DEFAULT_MEMORY_LIMIT"] == "1Gi"
    service = one(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert (
        service["spec"]["selector"]
        == one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_digest_wins_over_the_tag(render: Render) -> None:
    image = operator_container(render(VARIANTS["digest"]))["image"]
    assert image == "registry.local:5000/ml/op@sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("variant", "uri", "claims"),
    [
        ("defaults", "pvc://kubeloop-artifacts/", {("kubeloop-system", "kubeloop-artifacts")}),
        (
            "namespaces",
            "pvc://kubeloop-artifacts/",
            {("ml", "kubeloop-artifacts"), ("ml-staging", "kubeloop-artifacts")},
        ),
        ("existing-claim", "pvc://models/", set()),
        ("s3", "s3://kubeloop-models/prod", set()),
    ],
)
def test_artifact_store(
    render: Render, variant: str, uri: str, claims: set[tuple[str, str]]
) -> None:
    manifests = render(VARIANTS[variant])
    env = env_of(manifests)
    assert env["KUBELOOP_ARTIFACT_STORE"] == uri
    made = {
        (c["metadata"]["namespace"], c["metadata"]["name"])
        for c in by_kind(manifests, "PersistentVolumeClaim")
    }
    assert made == claims
    if variant == "s3":
        assert env["KUBELOOP_ARTIFACT_STORE_SECRET"] == "kubeloop-s3"
        assert env["KUBELOOP_ARTIFACT_STORE_ENDPOINT"] == "http://minio.storage:9000"


def test_service_monitor_only_where_the_prometheus_operator_api_exists(render: Render) -> None:
    enabled = {"metrics.serviceMonitor.enabled": "true"}
    assert not by_kind(render(enabled), "ServiceMonitor")
    api = "--api-versions=monitoring.coreos.com/v1/ServiceMonitor"
    assert not by_kind(render({}, api), "ServiceMonitor")
    monitor = one(render(enabled, api), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


# --- RBAC as rendered -----------------------------------------------------------------------


def all_rules(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rules_of(manifests, "ClusterRole") + rules_of(manifests, "Role")


@pytest.mark.parametrize("variant", ["defaults", "namespaces", "peered", "peered-namespaces"])
def test_rules_have_no_wildcards_secrets_exec_nodes_or_escalation(
    render: Render, variant: str
) -> None:
    rules = all_rules(render(VARIANTS[variant]))
    assert rules
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert not rule.get("nonResourceURLs"), rule
        assert not {"secrets", "pods/exec", "pods/attach", "pods/portforward", "nodes"} & set(
            rule["resources"]
        ), rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), (
            rule
        )
        if "customresourcedefinitions" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


@pytest.mark.parametrize("variant", ["defaults", "namespaces"])
def test_operator_holds_what_the_sidecar_roles_grant(render: Render, variant: str) -> None:
    # Kubernetes refuses a Role granting more than its creator holds (no escalate here).
    rules = all_rules(render(VARIANTS[variant]))
    assert grants(rules, "kubeloop.dev", "inferenceservices", "get")
    assert grants(rules, "kubeloop.dev", "inferenceservices/status", "patch")
    for resource in ("roles", "rolebindings"):
        assert grants(rules, "rbac.authorization.k8s.io", resource, "create")


def test_namespaces_mode_grants_nothing_namespaced_cluster_wide(render: Render) -> None:
    manifests = render(VARIANTS["namespaces"])
    roles = by_kind(manifests, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml", "ml-staging"]
    assert sorted(b["metadata"]["namespace"] for b in by_kind(manifests, "RoleBinding")) == [
        "ml",
        "ml-staging",
    ]
    [cluster_role] = by_kind(manifests, "ClusterRole")
    resources = {res for rule in cluster_role["rules"] for res in rule["resources"]}
    assert resources == {"customresourcedefinitions", "namespaces"}
    assert all(set(rule["verbs"]) == {"get", "list", "watch"} for rule in cluster_role["rules"])
    assert env_of(manifests)["KUBELOOP_NAMESPACES"] == "ml,ml-staging"


def test_cluster_mode_binds_the_rules_cluster_wide_to_the_operator(render: Render) -> None:
    manifests = render()
    account = one(manifests, "ServiceAccount")["metadata"]
    bindings = by_kind(manifests, "ClusterRoleBinding")
    assert {b["roleRef"]["name"] for b in bindings} == {
        r["metadata"]["name"] for r in by_kind(manifests, "ClusterRole")
    }
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]
    assert not by_kind(manifests, "Role")


def test_rbac_can_be_left_to_the_user(render: Render) -> None:
    manifests = render({"rbac.create": "false"})
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert "Deployment" in kinds


def test_everything_rendered_carries_the_release_labels(render: Render) -> None:
    # `helm uninstall` removes what it made; the labels let a person find it too.
    for variant in ("defaults", "namespaces", "peered"):
        for manifest in render(VARIANTS[variant]):
            labels = manifest["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == "kubeloop", manifest["kind"]
            assert labels["app.kubernetes.io/part-of"] == "kubeloop", manifest["kind"]


def test_values_file_validates_against_its_own_schema(helm: HelmRunner, tmp_path: Path) -> None:
    # A values file written from values.yaml's comments: every documented key is accepted.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["artifactStore"]["pvc"]["storageClassName"] = "fast"
    values["metrics"]["serviceMonitor"]["labels"] = {"release": "prometheus"}
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    helm("template", "kubeloop", str(CHART), "-f", str(path))


def test_every_env_var_the_chart_sets_is_an_operator_setting(render: Render) -> None:
    settings = pytest.importorskip(
        "kubeloop.settings", reason="the operator's settings"
    ).OperatorSettings
    known = {f"KUBELOOP_{name.upper()}" for name in settings.model_fields}
    names: set[str] = set()
    for variant in VARIANTS.values():
        names |= set(env_of(render(variant)))
    assert names - known == set()


def test_the_s3_credentials_reach_the_operator_settings(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator reads what the chart renders: the Secret's name and the endpoint it hands on
    # to every runtime container that handles an s3:// URI.
    settings = pytest.importorskip(
        "kubeloop.settings", reason="the operator's settings"
    ).OperatorSettings
    for name, value in env_of(render(VARIANTS["s3"])).items():
        monkeypatch.setenv(name, value)
    parsed = settings()
    assert parsed.artifact_store == "s3://kubeloop-models/prod"
    assert parsed.artifact_store_secret == "kubeloop-s3"
    assert parsed.artifact_store_endpoint == "http://minio.storage:9000"
    for variant in ("defaults", "existing-claim"):
        assert "KUBELOOP_ARTIFACT_STORE_SECRET" not in env_of(render(VARIANTS[variant]))


def test_each_chart_made_claim_gets_a_binder_job_so_install_wait_ends(render: Render) -> None:
    # `helm install --wait` waits for claims to be Bound; a WaitForFirstConsumer StorageClass
    # binds one only for a Pod that uses it. The binder Job's Pod is that first consumer.
    manifests = render(VARIANTS["namespaces"])
    jobs = by_kind(manifests, "Job")
    claims = {
        (c["metadata"]["namespace"], c["metadata"]["name"])
        for c in by_kind(manifests, "PersistentVolumeClaim")
    }
    assert {(j["metadata"]["namespace"], "kubeloop-artifacts") for j in jobs} == claims
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        assert pod["volumes"] == [
            {
                "name": "artifacts",
                "persistentVolumeClaim": {"claimName": "kubeloop-artifacts", "readOnly": True},
            }
        ]
        [container] = pod["containers"]
        assert container["image"] == operator_container(manifests)["image"]
        assert container["volumeMounts"][0]["readOnly"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["automountServiceAccountToken"] is False
        assert len(job["metadata"]["name"]) <= 63


def test_the_binder_job_is_renamed_when_its_immutable_template_changes(render: Render) -> None:
    def name(values: dict[str, str]) -> str:
        return str(one(render(values), "Job")["metadata"]["name"])

    assert name({}) == name({"logLevel": "DEBUG"})  # deterministic, unrelated values keep it
    assert name({}) != name({"image.tag": "0.2.0"})  # an upgrade of the image makes a new Job


def test_no_binder_job_without_a_chart_made_claim_or_when_turned_off(render: Render) -> None:
    for variant in ("existing-claim", "s3"):
        assert not by_kind(render(VARIANTS[variant]), "Job")
    off = render({"artifactStore.pvc.bindOnInstall": "false"})
    assert not by_kind(off, "Job")
    assert by_kind(off, "PersistentVolumeClaim")
    # `helm upgrade --reuse-values` from a chart without the key keeps that chart's defaults.
    assert by_kind(render({"artifactStore.pvc.bindOnInstall": "null"}), "Job")
