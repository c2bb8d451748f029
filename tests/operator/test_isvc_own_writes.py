"""Which InferenceService events are echoes of the operator's own status write (no reconcile),
and which carry someone else's change that the write's reconcile did not see."""

from __future__ import annotations

from typing import Any

from kubeloop.controllers.inferenceservice import OwnStatusWrites


def isvc(
    rv: str, status: dict[str, Any], generation: int = 1, **annotations: str
) -> dict[str, Any]:
    meta = {"namespace": "ns", "name": "iris", "resourceVersion": rv, "generation": generation}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "status": status}


READ = isvc("10", {"phase": "Pending", "drift": {"detected": False}})
PATCH = {"phase": "Ready", "activeColor": "blue"}


def test_the_echo_of_our_own_write_is_recognised_and_a_later_change_is_not() -> None:
    writes = OwnStatusWrites()
    writes.wrote(READ, PATCH, isvc("11", {**READ["status"], **PATCH}))
    assert writes.is_echo("ns", "iris", "11")
    assert not writes.is_echo("ns", "iris", "12")  # the sidecar's patch after ours
    assert not writes.is_echo("ns", "other", "11")
    writes.forget("ns", "iris")
    assert not writes.is_echo("ns", "iris", "11")


def test_a_write_that_landed_on_someone_elses_change_is_not_an_echo() -> None:
    writes = OwnStatusWrites()
    # The drift sidecar patched status.drift between our read and our write: the result holds
    # its change, and Kopf's batching may deliver only our write's event. It must reconcile.
    drifted = {"phase": "Ready", "activeColor": "blue", "drift": {"detected": True}}
    writes.wrote(READ, PATCH, isvc("12", drifted))
    assert not writes.is_echo("ns", "iris", "12")
    # A spec edit meanwhile (generation 2), or an annotation (kubeloop.dev/promote): the same.
    writes.wrote(READ, PATCH, isvc("13", {**READ["status"], **PATCH}, generation=2))
    assert not writes.is_echo("ns", "iris", "13")
    promoted = isvc("14", {**READ["status"], **PATCH}, **{"kubeloop.dev/promote": "true"})
    writes.wrote(READ, PATCH, promoted)
    assert not writes.is_echo("ns", "iris", "14")
