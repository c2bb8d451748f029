"""JSON logs carry the object; peering objects per namespace or cluster-wide; Events' shape."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from kubeloop.kube.errors import KubeError
from kubeloop.kube.events import build_event
from kubeloop.logs import JsonFormatter, TextFormatter
from kubeloop.main import peering_priority
from kubeloop.peering import PeeringGate, outranking_peers, peering_objects
from kubeloop.settings import OperatorSettings


def record(**extra: object) -> logging.LogRecord:
    item = logging.LogRecord("kubeloop", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    for key, value in extra.items():
        setattr(item, key, value)
    return item


def test_json_lines_carry_namespace_and_name() -> None:
    ref = {"kind": "Dataset", "namespace": "ml", "name": "iris", "uid": "u"}
    line = json.loads(JsonFormatter().format(record(k8s_ref=ref)))
    assert line["message"] == "hello there"
    assert (line["namespace"], line["name"], line["kind"]) == ("ml", "iris", "Dataset")
    assert line["level"] == "INFO"
    assert "namespace" not in json.loads(JsonFormatter().format(record()))
    assert "[ml/iris] hello there" in TextFormatter().format(record(k8s_ref=ref))


def test_peering_objects_follow_the_watching_mode() -> None:
    assert [item["kind"] for item in peering_objects("kubeloop", [])] == ["ClusterKopfPeering"]
    namespaced = peering_objects("kubeloop", ["a", "b"])
    assert [(item["kind"], item["metadata"]["namespace"]) for item in namespaced] == [
        ("KopfPeering", "a"),
        ("KopfPeering", "b"),
    ]


def test_peering_priorities_are_configured_or_random() -> None:
    assert peering_priority(OperatorSettings(peering_priority=7)) == 7
    drawn = {peering_priority(OperatorSettings()) for _ in range(20)}
    assert len(drawn) > 1
    assert all(value > 0 for value in drawn)


def test_events_name_the_object_they_are_about() -> None:
    involved = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u", "resourceVersion": "5"},
    }
    now = datetime(2026, 12, 1, tzinfo=UTC)
    event = build_event(involved, "Normal", "Ready", "x" * 5000, now=now, suffix="abc")
    assert event["metadata"] == {"name": "iris.abc", "namespace": "ml"}
    assert event["involvedObject"]["uid"] == "u"
    assert event["lastTimestamp"] == "2026-12-01T00:00:00Z"
    assert len(event["message"]) == 1024


def test_no_change_handlers_so_kopf_keeps_no_diff_base() -> None:
    """NoDiffBase is only right while every handler is an event handler or an index: a change
    handler (on.create/update/resume/delete/field) would silently never see a diff."""
    import kopf

    import kubeloop.controllers  # noqa: F401 (registers the handlers)
    from kubeloop.main import NoDiffBase, kopf_settings

    registry = kopf.get_default_registry()
    assert list(registry._changing.get_all_handlers()) == []
    assert registry._spawning._handlers == []  # timers and daemons would add finalizers too
    settings = kopf_settings(OperatorSettings(), priority=1)
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)


def test_a_replica_yields_to_live_peers_of_higher_or_equal_priority_only() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def seen(seconds_ago: float) -> str:
        return (now - timedelta(seconds=seconds_ago)).isoformat()

    peering = {
        "status": {
            "me": {"priority": 5, "lifetime": 10, "lastseen": seen(0)},
            "higher": {"priority": 9, "lifetime": 10, "lastseen": seen(3)},
            "tie": {"priority": 5, "lifetime": 10, "lastseen": seen(1)},
            "lower": {"priority": 1, "lifetime": 10, "lastseen": seen(0)},
            "dead": {"priority": 99, "lifetime": 10, "lastseen": seen(10)},
            "unseen": {"priority": 7},  # no lastseen: just seen, as Kopf reads it
        }
    }
    assert outranking_peers([peering], "me", 5, now) == ["higher", "tie", "unseen"]
    assert outranking_peers([peering], "me", 100, now) == []
    assert outranking_peers([{"metadata": {}}, peering], "higher", 9, now) == []


def test_the_gate_reads_its_peers_once_per_ttl_and_keeps_its_answer_when_it_cannot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    reads: list[str] = []
    peering: dict[str, object] = {"status": {}}

    def get_or_none(api: object, version: str, kind: str, namespace: str, name: str) -> object:
        reads.append(f"{kind} {namespace}/{name}")
        if peering.get("broken"):
            raise KubeError("the API server is unreachable")
        return peering

    monkeypatch.setattr("kubeloop.peering.get_or_none", get_or_none)
    settings = OperatorSettings(namespaces=["ml"], peering_name="kubeloop")
    gate = PeeringGate(None, settings, "me", 5, ttl=2.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert gate.open()
    assert gate.open()  # within the ttl: no second read
    assert reads == ["KopfPeering ml/kubeloop"]

    seen = datetime.now(UTC).isoformat()
    peering["status"] = {"other": {"priority": 9, "lifetime": 60, "lastseen": seen}}
    assert gate.open()  # the cached answer, until the ttl has passed
    now[0] = 2.0
    assert not gate.open()
    peering["broken"] = True
    now[0] = 4.0
    assert not gate.open()  # unreadable: the last answer stands
    assert len(reads) == 3
