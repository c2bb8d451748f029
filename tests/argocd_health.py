"""The Argo CD health checks we ship, run as Argo CD runs them, and their status samples.

`health_scripts` parses the Lua snippets out of examples/gitops/argocd/argocd-cm.yaml (the file a
user applies, not a copy); `assess` runs one in a real Lua 5.1 (Argo CD's gopher-lua implements
5.1) with the object as the global `obj`. The samples in tests/helm/testdata/health/ are live
objects captured from the real operator by
tests/operator/played/test_argocd_health_cluster.py (`KUBELOOP_REFRESH_HEALTH_SAMPLES=1` rewrites
them); `sample_shape` is what that test compares between a fresh capture and the committed sample.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
ARGOCD_CM = REPO / "examples" / "gitops" / "argocd" / "argocd-cm.yaml"
SAMPLES_DIR = REPO / "tests" / "helm" / "testdata" / "health"
KEY = "resource.customizations.health.kubeloop.dev_{kind}"
KINDS = ("Dataset", "TrainingJob", "ModelVersion", "InferenceService")
# The state a sample is captured in -> what Argo CD must report for it.
STATES = {
    "healthy": "Healthy",
    "progressing": "Progressing",
    "degraded": "Degraded",
    "lagging": "Progressing",
}
SAMPLE_NAMESPACE = "ml"  # captures are taken in a random test namespace; samples say this one
REFRESH_ENV = "KUBELOOP_REFRESH_HEALTH_SAMPLES"
# Server-set metadata that differs on every capture and means nothing to the health check.
_VOLATILE_METADATA = ("managedFields", "resourceVersion", "selfLink")


def health_scripts() -> dict[str, str]:
    """Kind -> its health script, from the shipped argocd-cm."""
    data = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    return {kind: data[KEY.format(kind=kind)] for kind in KINDS}


def assess(script: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """What Argo CD would show: the script run with `obj` as its global, in a fresh Lua."""
    import lupa.lua51

    lua = lupa.lua51.LuaRuntime(unpack_returned_tuples=False)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return dict(result.items())


def sample_path(kind: str, state: str) -> Path:
    return SAMPLES_DIR / f"{kind.lower()}-{state}.yaml"


def clean(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """A live object as a sample: volatile server fields dropped, the namespace made `ml`."""
    cleaned = copy.deepcopy(dict(obj))
    metadata = cleaned["metadata"]
    for key in _VOLATILE_METADATA:
        metadata.pop(key, None)
    metadata.get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if metadata.get("annotations") == {}:
        metadata.pop("annotations")
    text = json.dumps(cleaned).replace(namespace, SAMPLE_NAMESPACE)
    return dict(json.loads(text))


def write_sample(kind: str, state: str, obj: Mapping[str, Any], health: Mapping[str, Any]) -> None:
    header = (
        f"# {kind}, {state}: Argo CD must report {STATES[state]}. Captured from the real operator\n"
        "# by tests/operator/played/test_argocd_health_cluster.py; do not edit, refresh with\n"
        f"# {REFRESH_ENV}=1 (docs/gitops.md).\n"
    )
    body = {"expected": {"status": health["status"], "message": health["message"]}, "object": obj}
    sample_path(kind, state).write_text(header + yaml.safe_dump(body, sort_keys=False))


def load_sample(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def sample_shape(obj: Mapping[str, Any], health: Mapping[str, Any]) -> dict[str, Any]:
    """What must stay the same between a capture and its committed sample: Argo's verdict, the
    status fields present, each condition's type, status and reason, the generations' order."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    observed = status.get("observedGeneration")
    return {
        "kind": obj["kind"],
        "argo": health["status"],
        "phase": status.get("phase"),
        "fields": sorted(status),
        "conditions": sorted(
            (c["type"], c["status"], c.get("reason", "")) for c in status.get("conditions") or ()
        ),
        "lagging": observed is None or (generation is not None and observed < generation),
    }
