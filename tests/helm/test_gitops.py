"""examples/gitops/: valid against Argo CD's and Flux's real CRD schemas (pinned, offline), the
Kustomization builds, and both installers point at this chart with values the chart accepts."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from chartlib import CHART, REPO, HelmRunner, Kubeconform

GITOPS = REPO / "examples" / "gitops"
MANIFESTS = sorted(p for p in GITOPS.rglob("*.yaml") if p.name != "kustomization.yaml")


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def test_manifests_pass_kubeconform_with_argo_cd_and_flux_schemas(kubeconform: Kubeconform) -> None:
    result = kubeconform(*MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Valid: {len(MANIFESTS)}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


def test_kustomization_builds_every_example(
    tool_path: Callable[[str], str], kubeconform: Kubeconform
) -> None:
    built = subprocess.run(
        [tool_path("kubectl"), "kustomize", str(GITOPS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(built) if doc)
    assert kinds == ["Application", "Application", "ConfigMap", "GitRepository", "HelmRelease"]
    result = kubeconform(stdin=built)
    assert result.returncode == 0, result.stdout + result.stderr
    # The YAML anchor that shares one health script survives kustomize.
    configmap = next(d for d in yaml.safe_load_all(built) if d and d["kind"] == "ConfigMap")
    assert len(set(configmap["data"].values())) == 1
    assert len(configmap["data"]) == 4


def test_schemas_are_real_and_strict(kubeconform: Kubeconform) -> None:
    release = load(GITOPS / "flux" / "helmrelease.yaml")
    release["spec"]["install"]["crds"] = "Sometimes"  # helm-controller's enum
    application = load(GITOPS / "argocd" / "application.yaml")
    application["spec"]["source"]["helmValues"] = {}  # no such field
    result = kubeconform(stdin=yaml.safe_dump_all([release, application]))
    assert result.returncode == 1
    assert "/spec/install/crds" in result.stdout
    assert "additional properties 'helmValues' not allowed" in result.stdout


def test_installers_point_at_this_chart_and_release(helm: HelmRunner, tmp_path: Path) -> None:
    tag = f"v{project_version()}"
    application = load(GITOPS / "argocd" / "application.yaml")["spec"]
    source = load(GITOPS / "flux" / "source.yaml")["spec"]
    release = load(GITOPS / "flux" / "helmrelease.yaml")["spec"]
    assert application["source"]["targetRevision"] == tag
    assert source["ref"]["tag"] == tag
    assert application["source"]["repoURL"] == source["url"]
    assert (REPO / application["source"]["path"] / "Chart.yaml").exists()
    assert (REPO / release["chart"]["spec"]["chart"] / "Chart.yaml").exists()
    pipeline = load(GITOPS / "argocd" / "pipeline.yaml")["spec"]["source"]
    assert (pipeline["repoURL"], pipeline["targetRevision"]) == (source["url"], tag)
    assert (REPO / pipeline["path"] / pipeline["directory"]["include"]).exists()
    assert (
        release["chart"]["spec"]["sourceRef"]["name"]
        == load(GITOPS / "flux" / "source.yaml")["metadata"]["name"]
    )
    for name, values in (
        ("argocd", application["source"]["helm"]["valuesObject"]),
        ("flux", release["values"]),
    ):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        helm("template", "kubeloop", str(CHART), "-f", str(path))
