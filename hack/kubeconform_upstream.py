#!/usr/bin/env python3
"""kubeconform JSON Schemas for what our manifests use but do not define, built offline from
pinned Go modules: Kubernetes' built-in kinds, Argo CD's, Flux's and the ServiceMonitor CRDs.

    python hack/kubeconform_upstream.py [--out DIR]    # default .cache/kubeloop/schemas/upstream
    kubeconform -strict -schema-location "$(python hack/kubeconform_upstream.py)" FILE...

Sources (each module's zip on the Go module proxy, via `go mod download -json`, so the pins are
checked against go.sum's public checksum database):
- Kubernetes: `api/openapi-spec/swagger.json` of k8s.io/kubernetes at the version the control
  plane is built from (hack/tools/kube/go.mod), the same OpenAPI the API server serves;
- Argo CD: `manifests/crds/*.yaml` of github.com/argoproj/argo-cd/v3;
- Flux: `config/crd/bases/*.yaml` of github.com/fluxcd/helm-controller and source-controller;
- the Prometheus Operator's ServiceMonitor, from its module's `example/prometheus-operator-crd/`.

The layout is the one hack/kubeconform_schemas.py writes for our CRDs,
`<out>/<group>/<kind lowercased>_<version>.json` (the core group's kinds under `<out>/v1/`, since
kubeconform takes the group of `apiVersion: v1` to be "v1"), so one
`-schema-location` template finds both. Like kubeconform's strict schemas, every object with
declared properties refuses unknown ones. Nothing here is committed: it all lands under .cache/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeconform_schemas import schema_location, write_schemas

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / ".cache" / "kubeloop" / "schemas" / "upstream"
Schema = dict[str, Any]


@dataclass(frozen=True)
class CrdSource:
    """A Go module whose zip carries CRD YAML, and the folder of it that holds them."""

    module: str
    version: str
    folder: str
    pattern: str = "*.yaml"


# Argo CD v3.6 and source-controller v1.10 need Go 1.27 just to be downloaded by Go 1.26.
CRD_SOURCES = (
    CrdSource("github.com/argoproj/argo-cd/v3", "v3.5.7", "manifests/crds"),
    CrdSource("github.com/fluxcd/helm-controller", "v1.6.0", "config/crd/bases"),
    CrdSource("github.com/fluxcd/source-controller", "v1.9.6", "config/crd/bases"),
    # The chart's optional ServiceMonitor.
    CrdSource(
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        "example/prometheus-operator-crd",
        "monitoring.coreos.com_servicemonitors.yaml",
    ),
)
KUBERNETES_MODULE = "k8s.io/kubernetes"
SWAGGER = "api/openapi-spec/swagger.json"
DEFINITION_PREFIX = "#/definitions/"
# Types whose JSON form is wider than the `type: string` the OpenAPI v2 document declares.
WIDENED = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": ["string", "integer"]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": ["string", "number"]},
}


class UpstreamError(RuntimeError):
    """A pinned module could not be fetched or does not hold what we expect."""


def kubernetes_version(go_mod: Path = REPO / "hack" / "tools" / "kube" / "go.mod") -> str:
    """The k8s.io/kubernetes version the control plane is built from (its go.mod is the pin)."""
    match = re.search(rf"^\s*{re.escape(KUBERNETES_MODULE)} (v\S+)", go_mod.read_text(), re.M)
    if match is None:
        raise UpstreamError(f"{go_mod} does not require {KUBERNETES_MODULE}")
    return match.group(1)


def module_dir(module: str, version: str) -> Path:
    """The extracted module in GOMODCACHE, downloaded (and checksum-verified) if not yet there."""
    with tempfile.TemporaryDirectory() as outside_any_module:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=outside_any_module,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
            capture_output=True,
            text=True,
            timeout=900,
        )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    if result.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or result.stderr.strip()
        raise UpstreamError(f"go mod download {module}@{version}: {detail}")
    return Path(info["Dir"])


# --- Kubernetes built-in kinds from the OpenAPI v2 document ---------------------------------


def strict(node: Any) -> Any:
    """A swagger definition node as a strict JSON Schema: descriptions and `x-` keys dropped,
    unknown properties refused where properties are declared."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key == "description" or key.startswith("x-"):
            continue
        if key == "properties":
            # Property names are data, not keywords ("$ref" is one of JSONSchemaProps').
            out[key] = {name: strict(child) for name, child in value.items()}
        else:
            out[key] = strict(value)
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def referenced(node: Any) -> Iterator[str]:
    """Names of the definitions a node refers to directly."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(DEFINITION_PREFIX):
                yield value.removeprefix(DEFINITION_PREFIX)
            elif key == "properties":
                for child in value.values():
                    yield from referenced(child)
            else:
                yield from referenced(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced(item)


def closure(definitions: dict[str, Schema], root: str) -> set[str]:
    """`root` and every definition reachable from it."""
    seen: set[str] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(referenced(definitions[name]))
    return seen


def kind_schemas(swagger: Schema) -> Iterator[tuple[str, Schema]]:
    """(relative file name, standalone schema) for every kind the document declares."""
    definitions: dict[str, Schema] = swagger["definitions"]
    converted = {name: WIDENED.get(name) or strict(node) for name, node in definitions.items()}
    for name, node in definitions.items():
        for gvk in node.get("x-kubernetes-group-version-kind", ()):
            # DeleteOptions, WatchEvent and friends are declared for every group: not objects.
            if len(node["x-kubernetes-group-version-kind"]) > 1:
                continue
            schema = dict(converted[name])
            needed = closure(definitions, name) - {name}
            schema["definitions"] = {dep: converted[dep] for dep in sorted(needed)}
            # kubeconform's {{ .Group }} of a core kind (apiVersion v1) is "v1".
            folder = gvk["group"] or gvk["version"]
            yield f"{folder}/{gvk['kind'].lower()}_{gvk['version']}.json", schema


def write_kubernetes_schemas(swagger_file: Path, out: Path) -> list[Path]:
    written = []
    for name, schema in kind_schemas(json.loads(swagger_file.read_text())):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, sort_keys=True) + "\n")
        written.append(target)
    return written


# --- all of it, once per set of pins --------------------------------------------------------


def pins() -> str:
    sources = [f"{KUBERNETES_MODULE}@{kubernetes_version()}"]
    sources += [f"{s.module}@{s.version}" for s in CRD_SOURCES]
    return " ".join(sources) + "\n"


def crd_files(sources: Iterable[CrdSource]) -> list[Path]:
    files = []
    for source in sources:
        folder = module_dir(source.module, source.version) / source.folder
        found = sorted(folder.glob(source.pattern))
        if not found:
            raise UpstreamError(f"{source.module}@{source.version} has no CRDs in {source.folder}")
        files += found
    return files


def ensure_schemas(out: Path = DEFAULT_OUT) -> Path:
    """Write the schemas under `out` unless the same pins already did; return `out`."""
    stamp = out / ".pins"
    if stamp.exists() and stamp.read_text() == pins():
        return out
    out.mkdir(parents=True, exist_ok=True)
    swagger = module_dir(KUBERNETES_MODULE, kubernetes_version()) / SWAGGER
    if not write_kubernetes_schemas(swagger, out):
        raise UpstreamError(f"{swagger} declares no kinds")
    # write_schemas skips the kustomization.yaml that sits beside Argo CD's CRDs.
    write_schemas(crd_files(CRD_SOURCES), out)
    stamp.write_text(pins())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the schemas")
    args = parser.parse_args(argv)
    try:
        out = ensure_schemas(args.out)
    except UpstreamError as error:
        print(f"kubeconform_upstream: {error}", file=sys.stderr)
        return 1
    # The only output, so `-schema-location "$(python hack/kubeconform_upstream.py)"` works.
    print(schema_location(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
