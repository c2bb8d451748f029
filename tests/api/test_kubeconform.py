"""kubeconform, strict and offline with schemas generated from our CRDs, accepts the examples and
rejects broken manifests naming the field."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from kubeconform_schemas import schema_location, to_json_schema, write_schemas

REPO = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).parent / "testdata" / "broken.yaml"


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kubeconform-schemas")
    written = write_schemas(sorted((REPO / "crds").glob("*.yaml")), out)
    assert len(written) == 6  # our four kinds and Kopf's two peering kinds
    return out


def kubeconform(tool_path: Callable[[str], str], schemas: Path, *paths: Path) -> str:
    result = subprocess.run(
        [
            tool_path("kubeconform"),
            "-strict",
            "-summary",
            "-output=text",
            "-schema-location",
            schema_location(schemas),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_examples_are_valid(tool_path: Callable[[str], str], schemas: Path) -> None:
    examples = sorted((REPO / "examples").glob("*.yaml"))
    output = kubeconform(tool_path, schemas, *examples)
    assert output.startswith("exit 0"), output
    assert "Invalid: 0, Errors: 0, Skipped: 0" in output


def test_broken_manifests_are_rejected_naming_the_field(
    tool_path: Callable[[str], str], schemas: Path
) -> None:
    output = kubeconform(tool_path, schemas, BROKEN)
    assert output.startswith("exit 1"), output
    for problem in (
        "/spec/artifact/digest",  # not sha256:<64 hex>
        "/spec/version",  # below 1
        "additional properties 'colour' not allowed",  # strict: unknown field
        "/spec/estimator",  # not allow-listed
        "/spec/evaluation/testSize",  # out of (0, 1)
        "/spec/rollout/scaleDownDelaySeconds",  # negative
        "/spec/monitoring/method",  # unknown drift test
    ):
        assert problem in output, f"{problem!r} not reported:\n{output}"
    assert "Invalid: 3" in output


def test_conversion_is_strict_except_where_the_crd_preserves_unknown_fields() -> None:
    node = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "true", "message": "never shown offline"}],
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "open": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"known": {"type": "string"}},
            },
            "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "maybe": {"type": "string", "nullable": True},
            "quantity": {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "x-kubernetes-int-or-string": True,
            },
        },
    }
    assert to_json_schema(node) == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "free": {"type": "object"},
            "open": {"type": "object", "properties": {"known": {"type": "string"}}},
            # kubeconform compiles draft 4, where exclusive bounds are booleans as in OpenAPI 3.0
            "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "maybe": {"type": ["string", "null"]},
            "quantity": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
    }
