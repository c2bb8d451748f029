"""Concept drift on the real node: the inputs stay as the model knows them, but the labels fed back
stop matching them (each flower is labelled as the next species). The data drift test sees
nothing; the sidecar's feedback accuracy falls below the model's held-out accuracy, the
InferenceService reports DriftDetected for that reason, and the operator starts a retrain."""

from __future__ import annotations

import pytest
from e2e_kit import ISVC, LABEL_ISVC, Scene, pipeline_spec

from demolib import traffic
from demolib.load import send_round

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.node, pytest.mark.timeout(900)]

BATCH = 50


def test_labels_that_stop_matching_the_inputs_raise_concept_drift_and_a_retrain(
    scene: Scene,
) -> None:
    base = scene.baseline()
    threshold = float(pipeline_spec("InferenceService")["monitoring"]["threshold"])
    assert base.accuracy is not None
    right = wrong = rows = 0
    seed = 5000

    def probe() -> tuple[dict | None, str]:
        # One round per poll: unshifted rows, permuted labels as their feedback.
        nonlocal right, wrong, rows, seed
        seed += 1
        batch = traffic.draw(BATCH, shifted=False, seed=seed)
        relabelled = traffic.permuted(batch)
        answer, taken = send_round(base.url, relabelled)
        assert taken, "the server refused the feedback"
        right += round((traffic.accuracy(answer.predictions, batch.labels) or 0) * BATCH)
        wrong += round((traffic.accuracy(answer.predictions, relabelled.labels) or 0) * BATCH)
        rows += BATCH
        drift = (scene.isvc().get("status") or {}).get("drift") or {}
        if drift.get("detected"):
            return drift, "detected"
        return None, f"{rows} rows sent; drift {drift}"

    drift = scene.wait("concept drift to be detected", probe, timeout=180, interval=0.5)

    # The answers: the model still reads the inputs as before (right by the true species) ...
    assert right / rows >= 0.8, f"{right}/{rows} answers match the true species"
    # ... and the labels it is judged by disagree with nearly all of them.
    assert wrong / rows <= 0.2, f"{wrong}/{rows} answers match the permuted labels"

    # The status: concept drift on feedback, not data drift.
    assert drift["conceptDrift"] is True, drift
    assert drift["accuracy"] is not None, drift
    assert drift["accuracy"] < base.accuracy - 0.1, drift
    assert float(drift["score"]) < threshold, f"the inputs drifted: {drift}"
    assert not drift.get("driftedFeatures"), drift
    detected = scene.wait_condition("DriftDetected", "True")
    assert "concept drift on feedback" in str(detected.get("message")), detected

    # The retrain: recorded in status, then its TrainingJob, owned by the InferenceService.
    last = scene.wait("the operator to start a retrain", scene.retrain_started, timeout=90)
    name = str(last["trainingJob"])
    assert name == f"{ISVC}-retrain-1", last
    assert "concept drift" in str(last.get("reason")), last

    def created() -> tuple[dict | None, str]:
        job = scene.get("TrainingJob", name)
        return job, str((scene.isvc().get("status") or {}).get("lastRetrain"))

    job = scene.wait(f"trainingjob/{name} to be created", created, timeout=150)
    assert job["metadata"]["labels"][LABEL_ISVC] == ISVC
    assert job["metadata"]["ownerReferences"][0]["name"] == ISVC
    assert "concept drift" in job["metadata"]["annotations"]["kubeloop.dev/retrain-reason"]
