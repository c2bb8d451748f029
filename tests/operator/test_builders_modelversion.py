"""ModelVersion decisions: trust, verification, aliases moving between versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubeloop.builders.jobs import JobOutcome
from kubeloop.builders.modelversion import (
    alias_holder,
    alias_moves,
    alias_patch,
    build_verify_job,
    lost_aliases,
    plan_verification,
    vouched_by_training_job,
)
from kubeloop.conditions import find_condition
from kubeloop.settings import OperatorSettings

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
SETTINGS = OperatorSettings(runtime_image="kubeloop-runtime:dev")
DIGEST = "sha256:" + "c" * 64


def version(
    number: int, aliases: list[str] | None = None, acknowledged: list[str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"iris-v{number}",
            "namespace": "ml",
            "uid": f"uid-{number}0000000",
            "resourceVersion": str(100 + number),
            "generation": 1,
            "annotations": {},
        },
        "spec": {
            "modelName": "iris",
            "version": number,
            "artifact": {"uri": "pvc://store/models/iris/run", "digest": DIGEST},
            "aliases": aliases,
        },
        "status": {"aliases": acknowledged} if acknowledged else {},
    }


def test_an_alias_set_on_a_new_version_moves_from_the_old_one() -> None:
    old = version(1, ["champion", "stable"], ["champion", "stable"])
    new = version(2, ["champion"])
    moves = alias_moves(new, [old, new])
    assert [(m.alias, m.holder, m.holder_aliases) for m in moves] == [
        ("champion", "iris-v1", ("stable",))
    ]
    assert alias_patch(moves[0]) == {
        "metadata": {"resourceVersion": "101"},
        "spec": {"aliases": ["stable"]},
    }
    # Seen from the old holder, the alias is lost, and it does not move it back.
    assert alias_moves(old, [old, new]) == []
    assert lost_aliases(old, [old, new]) == {"champion"}
    assert lost_aliases(new, [old, new]) == set()


def test_two_versions_taking_an_alias_at_once_leave_it_to_the_higher() -> None:
    low, high = version(1, ["champion"]), version(3, ["champion"])
    assert alias_moves(low, [low, high]) == []
    assert [m.holder for m in alias_moves(high, [low, high])] == ["iris-v1"]
    assert lost_aliases(low, [low, high]) == {"champion"}
    removed = alias_moves(high, [version(1, ["champion"], ["champion"]), high])
    assert alias_patch(removed[0])["spec"] == {"aliases": None}


def test_other_models_are_left_alone() -> None:
    other = version(1, ["champion"], ["champion"])
    other["spec"]["modelName"] = "wine"
    assert alias_moves(version(2, ["champion"]), [other]) == []


def test_a_version_its_training_job_vouches_for_is_ready_without_a_job() -> None:
    made = version(1)
    made["metadata"]["annotations"] = {"kubeloop.dev/training-job-uid": "tj-uid"}
    trainingjob = {
        "metadata": {"uid": "tj-uid"},
        "status": {"artifact": dict(made["spec"]["artifact"])},
    }
    assert vouched_by_training_job(made, trainingjob)
    forged = {**trainingjob, "metadata": {"uid": "other"}}
    assert not vouched_by_training_job(made, forged)
    assert not vouched_by_training_job(made, None)
    plan = plan_verification(made, True, None, NOW, SETTINGS)
    assert plan.create_job is None
    assert plan.status["phase"] == "Ready"
    verified = find_condition(plan.status["conditions"], "Verified")
    assert verified.reason == "RegisteredByTrainingJob"


def test_a_hand_registered_version_is_verified_by_a_fetch_job() -> None:
    hand = version(4)
    job = build_verify_job(hand, SETTINGS)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "fetch",
        "--uri",
        "pvc://store/models/iris/run",
        "--dest",
        "/tmp/verify",
        "--digest",
        DIGEST,
    ]
    assert {"name": "pvc-0", "mountPath": "/mnt/pvc/store", "readOnly": True} in container[
        "volumeMounts"
    ]
    start = plan_verification(hand, False, None, NOW, SETTINGS)
    assert start.create_job is not None
    assert start.status["phase"] == "Pending"
    hand["status"] = start.status
    ok = plan_verification(
        hand, False, JobOutcome("succeeded", {"ok": True, "kind": "fetch"}), NOW, SETTINGS
    )
    assert ok.status["phase"] == "Ready"
    mismatch = plan_verification(
        hand,
        False,
        JobOutcome(
            "failed",
            {"ok": False},
            "FetchError",
            "artifact refused: pvc://store/models/iris/run/model.joblib: digest mismatch: "
            f"expected {DIGEST}, file has sha256:{'d' * 64}",
        ),
        NOW,
        SETTINGS,
    )
    assert mismatch.status["phase"] == "Failed"
    stalled = find_condition(mismatch.status["conditions"], "Stalled")
    assert stalled.reason == "DigestMismatch"
    assert stalled.message.startswith("digest mismatch")
    # The verdict is kept: a later reconcile plans no new Job.
    hand["status"] = mismatch.status
    assert plan_verification(hand, False, None, NOW, SETTINGS).create_job is None


def test_alias_holder_follows_the_move_rule() -> None:
    old, new = version(3, ["champion"], ["champion"]), version(1, ["champion"])
    assert alias_holder([old, new], "champion") is new  # just set on v1: it moves there
    assert alias_holder([old, version(2)], "champion") is old
    assert (
        alias_holder([version(1, ["champion"]), version(2, ["champion"])], "champion")["metadata"][
            "name"
        ]
        == "iris-v2"
    )
    assert alias_holder([version(1)], "champion") is None
