"""The Kubernetes edge against a real API server: apply, create-once, optimistic replace,
status merge patches, typed errors and Events."""

from __future__ import annotations

from typing import Any

import pytest

from kubeloop.kube import apply as kube
from kubeloop.kube.errors import Conflict, Invalid, NotFound
from kubeloop.kube.events import emit


def config_map(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def test_apply_is_idempotent_and_create_refuses_an_existing_name(api: Any, namespace: str) -> None:
    first = kube.apply(api, config_map(namespace, "a", {"k": "1"}))
    again = kube.apply(api, config_map(namespace, "a", {"k": "1"}))
    assert first["metadata"]["resourceVersion"] == again["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"][0]["manager"] == "kubeloop-operator"
    with pytest.raises(Conflict):
        kube.create(api, config_map(namespace, "a", {"k": "2"}))
    assert kube.get(api, "v1", "ConfigMap", namespace, "a")["data"] == {"k": "1"}


def test_replace_with_a_stale_resource_version_conflicts(api: Any, namespace: str) -> None:
    created = kube.create(api, config_map(namespace, "counter", {"next": "1"}))
    stale = created["metadata"]["resourceVersion"]
    fresh = {**created, "data": {"next": "2"}}
    kube.replace(api, fresh)
    with pytest.raises(Conflict):
        kube.replace(api, {**created, "data": {"next": "2"}, "metadata": created["metadata"]})
    assert (
        stale
        != kube.get(api, "v1", "ConfigMap", namespace, "counter")["metadata"]["resourceVersion"]
    )


def test_get_list_patch_and_delete(api: Any, namespace: str) -> None:
    assert kube.get_or_none(api, "v1", "ConfigMap", namespace, "missing") is None
    with pytest.raises(NotFound):
        kube.get(api, "v1", "ConfigMap", namespace, "missing")
    kube.apply(
        api,
        {
            **config_map(namespace, "b", {}),
            "metadata": {"name": "b", "namespace": namespace, "labels": {"x": "y"}},
        },
    )
    assert [
        item["metadata"]["name"]
        for item in kube.list_objects(api, "v1", "ConfigMap", namespace, label_selector="x=y")
    ] == ["b"]
    patched = kube.patch(api, "v1", "ConfigMap", namespace, "b", {"data": {"k": "v"}})
    assert patched["data"] == {"k": "v"}
    assert kube.delete(api, "v1", "ConfigMap", namespace, "b")
    assert not kube.delete(api, "v1", "ConfigMap", namespace, "b")


def test_status_patches_and_invalid_objects(
    api: Any, namespace: str, kubeloop_crds: list[str]
) -> None:
    dataset = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "iris", "namespace": namespace},
        "spec": {"source": {"uri": "builtin://iris"}},
    }
    created = kube.create(api, dataset)
    updated = kube.patch_status(
        api, "kubeloop.dev/v1alpha1", "Dataset", namespace, "iris", {"phase": "Pending", "rows": 1}
    )
    assert updated["status"] == {"phase": "Pending", "rows": 1}
    removed = kube.patch_status(
        api, "kubeloop.dev/v1alpha1", "Dataset", namespace, "iris", {"rows": None}
    )
    assert removed["status"] == {"phase": "Pending"}
    with pytest.raises(Conflict):
        kube.patch_status(
            api,
            "kubeloop.dev/v1alpha1",
            "Dataset",
            namespace,
            "iris",
            {"phase": "Ready"},
            resource_version=created["metadata"]["resourceVersion"],
        )
    bad = {**dataset, "metadata": {"name": "bad", "namespace": namespace}}
    bad["spec"] = {"source": {"uri": "ftp://nowhere"}}
    with pytest.raises(Invalid, match=r"spec\.source\.uri"):
        kube.create(api, bad)
    emit(api, created, "Normal", "Tested", "an event from the edge test")
    events = kube.list_objects(api, "v1", "Event", namespace)
    assert [(e["reason"], e["involvedObject"]["name"]) for e in events] == [("Tested", "iris")]
