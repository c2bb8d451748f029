"""OwnWrites: a watch-fed view read together with this process's writes (kube/views.py)."""

from __future__ import annotations

from typing import Any

from kubeloop.kube.views import UNKNOWN, OwnWrites, key_of

KEY = ("apps/v1", "Deployment", "ns", "web-blue")


def deployment(rv: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-blue", "namespace": "ns", "resourceVersion": rv},
        "spec": {"replicas": replicas},
    }


def test_without_writes_of_ours_the_index_is_read() -> None:
    writes = OwnWrites()
    assert writes.resolve(KEY, deployment("5")) == deployment("5")
    assert writes.resolve(KEY, None) is None


def test_an_index_that_lags_behind_our_create_gives_what_we_created() -> None:
    writes = OwnWrites()
    created = deployment("7")
    writes.wrote(None, created)
    assert writes.resolve(KEY, None) == created
    # The watch delivers our create: the index is trusted again, and nothing stays pending.
    writes.observed(KEY, "7", deleted=False)
    assert len(writes) == 0
    assert writes.resolve(KEY, deployment("7")) == deployment("7")


def test_an_index_that_shows_our_write_drops_it() -> None:
    writes = OwnWrites()
    writes.wrote("5", deployment("9", replicas=0))
    assert writes.resolve(KEY, deployment("5")) == deployment("9", replicas=0)
    assert writes.resolve(KEY, deployment("9", replicas=0)) == deployment("9", replicas=0)
    assert len(writes) == 0


def test_another_writers_state_in_the_index_is_unknown_until_read() -> None:
    """An rv that is neither ours nor the one we wrote over: someone else wrote in between, or
    Kopf's batching skipped our echo. resourceVersions are never ordered, so: ask the API."""
    writes = OwnWrites()
    writes.wrote("5", deployment("9"))
    assert writes.resolve(KEY, deployment("8")) is UNKNOWN
    assert writes.resolve(KEY, deployment("12")) is UNKNOWN
    # The API's answer counts until the index shows it too.
    writes.read(KEY, "12", deployment("13", replicas=3))
    assert writes.resolve(KEY, deployment("12")) == deployment("13", replicas=3)
    assert writes.resolve(KEY, deployment("13", replicas=3)) == deployment("13", replicas=3)
    assert len(writes) == 0


def test_a_deletion_drops_our_write_and_an_absent_read_forgets_it() -> None:
    writes = OwnWrites()
    writes.wrote(None, deployment("7"))
    writes.observed(KEY, "8", deleted=True)
    assert writes.resolve(KEY, None) is None
    writes.wrote("8", deployment("9"))
    writes.read(KEY, "8", None)
    assert len(writes) == 0


def test_an_unrelated_event_keeps_our_write() -> None:
    writes = OwnWrites()
    writes.wrote("5", deployment("9"))
    writes.observed(KEY, "6", deleted=False)  # an event older than our write, still in flight
    assert writes.resolve(KEY, deployment("5")) == deployment("9")


def test_a_result_without_resource_version_is_not_kept() -> None:
    writes = OwnWrites()
    body = deployment("1")
    del body["metadata"]["resourceVersion"]
    writes.wrote(None, body)
    assert len(writes) == 0
    assert key_of(deployment("1")) == KEY
