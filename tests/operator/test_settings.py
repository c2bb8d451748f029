"""OperatorSettings: environment parsing, defaults, and a docstring for every field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubeloop.settings import OperatorSettings


def test_defaults_watch_the_whole_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBELOOP_NAMESPACES", raising=False)
    settings = OperatorSettings()
    assert settings.namespaces == []
    assert settings.clusterwide
    assert settings.artifact_store == "pvc://kubeloop-artifacts/"
    assert settings.image_pull_policy == "IfNotPresent"


def test_namespaces_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBELOOP_NAMESPACES", " team-a, team-b ,")
    settings = OperatorSettings()
    assert settings.namespaces == ["team-a", "team-b"]
    assert not settings.clusterwide


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBELOOP_IMAGE_PULL_POLICY", "Sometimes")
    with pytest.raises(ValidationError, match="image_pull_policy"):
        OperatorSettings()


def test_unrelated_kubeloop_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBELOOP_DEVCLUSTER_PORT", "17443")
    assert OperatorSettings().metrics_port == 8080


def test_every_field_has_a_docstring() -> None:
    undocumented = [
        name for name, info in OperatorSettings.model_fields.items() if not info.description
    ]
    assert undocumented == []


def test_docs_operator_lists_every_setting() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs/operator.md").read_text()
    missing = [
        name for name in OperatorSettings.model_fields if f"`KUBELOOP_{name.upper()}`" not in page
    ]
    assert missing == []
