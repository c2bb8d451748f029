"""The whole loop on the real node, as `make demo` runs it: base data → Dataset → TrainingJob →
ModelVersion → blue-green serving; then shifted, labelled traffic through the active Service →
the drift sidecar reports drift → the operator refreshes the Dataset (a new version, with the
captured rows) → retrains with `compareTo: serving` (the new model beats the serving one on the
same held-out rows) → promotes it → its answers come through the Service → drift clears.

Every step is asserted twice: from the resources' status, and from the answers the clients got.
"""

from __future__ import annotations

import time

import pytest
from e2e_kit import DATASET, FIRST_JOB, ISVC, Scene, condition_of, pipeline_spec

from demolib import summary, timeline, traffic
from demolib.load import TrafficSender

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.node, pytest.mark.timeout(900)]

# The demo's traffic (hack/demo.py): a labelled burst of shifted rows that dominates the captured
# data, then a steady labelled flow.
SHIFT_BURST_ROWS = 3000
STEADY_BATCH = 50


def test_the_loop_closes_on_shifted_labelled_traffic(scene: Scene) -> None:
    base = scene.baseline()
    monitoring = pipeline_spec("InferenceService")["monitoring"]
    threshold, min_samples = float(monitoring["threshold"]), int(monitoring["minSamples"])
    assert base.rows == 150
    assert base.model_version == "iris-v1"

    began = time.monotonic()

    def clock() -> float:
        return time.monotonic() - began

    line = timeline.Timeline()
    sender = TrafficSender(base.url, line, clock, batch_size=10, rounds_per_second=2.0)
    sender.start()
    try:
        # Base traffic: iris-v1 answers, and gets the base rows right.
        scene.wait(
            "base traffic answered",
            lambda: (len(line.snapshot().traffic) >= 6 or None, f"{sender.stats}"),
            timeout=60,
        )
        shift_at = clock()
        before = line.snapshot().traffic
        assert {timeline.version_number(s.served_by) for s in before} == {1}, before
        base_accuracy = timeline.accuracy_between(before, 0, shift_at)
        assert base_accuracy is not None
        assert base_accuracy >= 0.8, base_accuracy

        # The shift, with its labels as feedback: the sidecar must see it in the inputs.
        sender.shifted = True
        sender.batch_size = STEADY_BATCH
        burst = sender.burst(SHIFT_BURST_ROWS)

        def drift_probe() -> tuple[dict | None, str]:
            drift = (scene.isvc().get("status") or {}).get("drift") or {}
            if drift.get("detected"):
                return drift, "detected"
            return None, f"drift {drift}; burst {sender.burst_sent}/{SHIFT_BURST_ROWS} rows sent"

        drift = scene.wait("the sidecar to report drift", drift_probe, timeout=180)
        assert set(traffic.SHIFTED_FEATURES) <= set(drift.get("driftedFeatures") or ()), drift
        assert float(drift["score"]) >= threshold, drift
        scene.wait_condition("DriftDetected", "True")

        # The retrain: the Dataset re-read first, so the TrainingJob pins a new, larger version.
        last = scene.wait("the operator to start a retrain", scene.retrain_started, timeout=90)
        retrain = str(last["trainingJob"])
        assert retrain == f"{ISVC}-retrain-1", last
        burst.join(timeout=180)
        assert not burst.is_alive(), "the shifted burst did not finish"
        shifted_v1 = timeline.accuracy_between(
            line.snapshot().traffic, shift_at, clock(), served_by="1"
        )
        assert shifted_v1 is not None
        assert shifted_v1 < 0.6, f"iris-v1 should get the shifted rows wrong, got {shifted_v1}"

        job = scene.wait(
            f"trainingjob/{retrain} to succeed",
            lambda: scene.training_done(retrain),
            timeout=420,
            focus=(("TrainingJob", retrain), ("Dataset", DATASET)),
        )
        # The refresh before it: a new data version, the base rows and the labelled captures.
        history = scene.status("Dataset", DATASET).get("history") or []
        newest = max(history, key=lambda entry: str(entry.get("observedAt")))
        assert newest["version"] != base.dataset_version, history
        assert newest["rows"] > base.rows, history
        # What train read: exactly the version it pinned, one the Dataset recorded, although
        # the folder kept growing while captures arrived (train reads the pinned manifest).
        result = scene.cluster.termination_message(scene.namespace, job["status"]["jobName"])
        assert result is not None, job["status"]
        trained = result["dataset"]
        assert job["status"]["datasetVersion"] == trained["digest"], job["status"]
        recorded = {entry["version"]: entry for entry in history}
        history = scene.status("Dataset", DATASET).get("history") or []
        recorded.update({entry["version"]: entry for entry in history})
        assert trained["digest"] in recorded, (trained, history)
        assert trained["rows"] == recorded[trained["digest"]]["rows"], (trained, history)
        assert trained["digest"] != base.dataset_version, trained
        comparison = summary.comparison_from(job["status"])
        assert comparison is not None, job["status"]
        assert comparison.baseline_version == base.model_version, comparison
        assert (comparison.test_rows or 0) > 0, comparison
        assert comparison.candidate is not None
        assert comparison.baseline is not None
        assert comparison.candidate > comparison.baseline, comparison
        assert job["status"]["comparison"]["passed"] is True

        new = str(job["status"]["modelVersion"])
        assert new == "iris-v2", job["status"]
        registered = scene.get("ModelVersion", new) or {}
        lineage = registered["spec"].get("lineage") or {}
        assert lineage.get("datasetVersion") == trained["digest"], lineage

        # Promoted: the status says so, then the answers through the Service do.
        isvc = scene.wait_serving(new, timeout=300)
        assert isvc["status"]["promotions"][0]["modelVersion"] == new
        scene.wait(
            f"answers from {new} through the Service",
            lambda: (timeline.first_answer_from(line.snapshot().traffic, new), "old answers"),
            timeout=60,
        )
        switched = clock()

        def cleared_probe() -> tuple[dict | None, str]:
            drift = (scene.isvc().get("status") or {}).get("drift") or {}
            judged = (drift.get("samples") or 0) >= min_samples and drift.get("score") is not None
            if judged and float(drift["score"]) < threshold and drift.get("detected") is False:
                return drift, "cleared"
            return None, str(drift)

        cleared = scene.wait("drift to clear on the new version", cleared_probe, timeout=180)
        assert (cleared.get("reporters") or 0) >= 1, cleared
        assert condition_of(scene.isvc(), "DriftDetected").get("status") == "False"
        time.sleep(2)  # a few more answers from the new version
    finally:
        sender.stop()

    after = timeline.accuracy_between(line.snapshot().traffic, switched, clock(), served_by=new)
    assert after is not None
    assert after >= 0.9, f"{new} on the shifted rows: {after}"
    assert FIRST_JOB in scene.names("TrainingJob")
