"""Fixtures for the chart's tests: `helm template`, the kubeconform runner, schemas for our CRDs and
for the Kubernetes, Argo CD and Flux kinds (built offline from pinned Go modules). The helm runner
is the root conftest's `helm` fixture (shared with tests/e2e)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import CHART, REPO, HelmRunner, Kubeconform, Render, set_args
from kubeconform_schemas import schema_location, write_schemas
from kubeconform_upstream import DEFAULT_OUT, ensure_schemas


@pytest.fixture(scope="session")
def render(helm: HelmRunner) -> Render:
    """`helm template` of the chart with `--set` values, as a list of manifests."""

    def run(
        values: dict[str, str] | None = None, *extra: str, namespace: str = "kubeloop-system"
    ) -> list[dict[str, Any]]:
        out = helm(
            "template",
            "kubeloop",
            str(CHART),
            f"--namespace={namespace}",
            *set_args(values),
            *extra,
        ).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    return run


@pytest.fixture(scope="session")
def schema_locations(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """kubeconform -schema-location templates: our CRDs (incl. any Kopf peering CRDs in crds/),
    then Kubernetes, Argo CD and Flux."""
    ours = tmp_path_factory.mktemp("crd-schemas")
    assert write_schemas(sorted((REPO / "crds").glob("*.yaml")), ours)
    return [schema_location(ours), schema_location(ensure_schemas(DEFAULT_OUT))]


@pytest.fixture(scope="session")
def kubeconform(tool_path: Callable[[str], str], schema_locations: list[str]) -> Kubeconform:
    binary = tool_path("kubeconform")

    def run(*paths: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        locations = [f"-schema-location={location}" for location in schema_locations]
        sources = [str(path) for path in paths] or ["-"]
        return subprocess.run(
            [binary, "-strict", "-summary", "-output=text", *locations, *sources],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
