#!/usr/bin/env python3
"""Turn CustomResourceDefinitions into the JSON Schemas kubeconform validates against, offline.

    python hack/kubeconform_schemas.py crds/*.yaml --out /tmp/schemas
    kubeconform -strict -summary examples/ -schema-location \
        '/tmp/schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'

One file per served version: `<out>/<group>/<kind lowercased>_<version>.json`. The schemas are
strict: every object with declared properties refuses unknown ones (as the API server's pruning
would silently drop them, which is worse), except where the CRD preserves unknown fields.
kubeconform compiles schemas as JSON Schema draft 4, which shares OpenAPI v3.0's boolean
exclusive bounds; `nullable` becomes a `null` type and the `x-kubernetes-*` extensions, which
kubeconform ignores, are dropped. CEL rules cannot be checked offline: the API server remains
the authority on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]


def to_json_schema(node: Schema) -> Schema:
    """One OpenAPI v3 node of a CRD schema as a strict JSON Schema node."""
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [to_json_schema(child) for child in value]
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserves = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in out and "additionalProperties" not in out and not preserves:
        out["additionalProperties"] = False
    return out


def schemas_of(crd: Schema) -> Iterable[tuple[str, Schema]]:
    """(relative file name, JSON Schema) for every served version of one CRD."""
    spec = crd["spec"]
    group = spec["group"]
    kind = spec["names"]["kind"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = to_json_schema(version["schema"]["openAPIV3Schema"])
        # `metadata` is declared as a bare object in CRDs; the API server validates it itself.
        schema["properties"]["metadata"] = {"type": "object"}
        # Every object may carry apiVersion and kind, whether its schema declares them or not
        # (Kopf's peering CRDs declare only status).
        for field in ("apiVersion", "kind"):
            schema["properties"].setdefault(field, {"type": "string"})
        yield f"{group}/{kind.lower()}_{version['name']}.json", schema


def write_schemas(crd_files: Iterable[Path], out: Path) -> list[Path]:
    written = []
    for crd_file in crd_files:
        for document in yaml.safe_load_all(crd_file.read_text()):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            for name, schema in schemas_of(document):
                target = out / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                written.append(target)
    return written


def schema_location(out: Path) -> str:
    """The `-schema-location` template that finds the files written under `out`."""
    return f"{out}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crds", nargs="+", type=Path, help="CRD YAML files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON Schemas")
    args = parser.parse_args(argv)
    for path in write_schemas(args.crds, args.out):
        print(path)
    print(f"-schema-location '{schema_location(args.out)}'", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
