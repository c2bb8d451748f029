"""The closing screen and failure messages (pure)."""

from __future__ import annotations

from pathlib import Path

from demolib import summary


def record() -> summary.DemoRecord:
    r = summary.DemoRecord(namespace="kubeloop-demo", isvc="iris", endpoint="http://10.96.0.42")
    r.data_versions = [("sha256:" + "a" * 64, 150), ("sha256:" + "b" * 64, 8310)]
    r.first_model = summary.ModelFacts(
        "iris-v1", "accuracy", 0.947, "sha256:" + "a" * 64, "iris-rf"
    )
    r.retrained = summary.ModelFacts(
        "iris-v2", "accuracy", 0.981, "sha256:" + "b" * 64, "iris-retrain-1"
    )
    r.comparison = summary.comparison_from(
        {
            "comparison": {
                "metric": "accuracy",
                "candidate": 0.981,
                "baseline": 0.402,
                "baselineVersion": "iris-v1",
                "passed": True,
                "testRows": 1662,
            }
        }
    )
    r.drift_features = ["petal length (cm)", "petal width (cm)"]
    r.drift_score = 0.5
    r.accuracy_before, r.accuracy_shifted, r.accuracy_after = 0.97, 0.34, 0.98
    r.loop_lines = ["drift → new version serving: 44.0 s = detect 12.0 + ..."]
    r.elapsed_seconds = 131.4
    r.picture = Path("/repo/.cache/kubeloop/demo/timeline.png")
    return r


def test_the_summary_fits_one_screen_and_says_what_happened() -> None:
    text = summary.render_summary(record())
    lines = text.splitlines()
    assert len(lines) <= 30
    assert all(len(line) <= 130 for line in lines)
    assert "aaaaaaaaaaaa (150 rows) → bbbbbbbbbbbb (8310 rows)" in text
    assert "iris-v1: accuracy 0.947" in text
    assert "accuracy 0.981 against 0.402 of iris-v1 on the same 1662 held-out rows" in text
    assert "petal length (cm), petal width (cm)" in text
    assert "before the shift 97%" in text
    assert "on the retrained one 98%" in text
    assert "/repo/.cache/kubeloop/demo/timeline.png" in text
    assert "kubectl -n kubeloop-demo get kubeloop" in text
    assert "curl -s http://10.96.0.42/predict" in text


def test_a_failed_step_turns_the_title_and_is_listed() -> None:
    r = record()
    r.failures.append("no new data version: capture is not configured")
    text = summary.render_summary(r)
    assert "the loop did NOT close" in text
    assert "FAILED: no new data version: capture is not configured" in text


def test_a_partial_record_renders_without_the_missing_parts() -> None:
    text = summary.render_summary(summary.DemoRecord(namespace="ns", isvc="iris"))
    assert "retrained   " not in text
    assert "curl" not in text
    assert "n/a" in text


def test_comparison_is_read_from_a_termination_message_or_nothing() -> None:
    assert summary.comparison_from(None) is None
    assert summary.comparison_from({"ok": True, "kind": "train"}) is None
    found = summary.comparison_from({"metric": "accuracy", "candidate": 1.0, "baseline": None})
    assert found == summary.Comparison("accuracy", 1.0, None, None, None)
    assert summary.comparison_line(None) == "no comparison reported"


def test_failure_text_names_resource_message_and_logs() -> None:
    text = summary.failure_text(
        "TrainingJob iris-rf ended Failed",
        "trainingjob/iris-rf",
        "exit 4: SchemaError",
        "kubectl -n kubeloop-demo logs job/iris-rf-train",
    )
    assert text.splitlines() == [
        "demo failed: TrainingJob iris-rf ended Failed",
        "  resource: trainingjob/iris-rf",
        "  status:   exit 4: SchemaError",
        "  logs:     kubectl -n kubeloop-demo logs job/iris-rf-train",
    ]
    assert summary.short_digest(None) == "?"


def test_the_benchmark_verdict_against_the_target() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import loop

    assert loop.verdict(41.25, 60) == "PASS (41.2 s < 60 s)"
    assert loop.verdict(60.0, 60) == "FAIL (60.0 s >= 60 s)"
    assert loop.verdict(None, 60) == "FAIL (not reached)"


def test_logs_hint_names_the_job_the_pods_and_the_operator() -> None:
    from demolib.cluster import logs_hint, state_of

    job = {"metadata": {"name": "iris-rf"}, "status": {"phase": "Failed", "jobName": "iris-rf-1"}}
    hint = logs_hint("TrainingJob", "kubeloop-demo", job)
    assert "kubectl -n kubeloop-demo describe trainingjob iris-rf" in hint
    assert "kubectl -n kubeloop-demo logs job/iris-rf-1" in hint
    assert "logs deploy/kubeloop-demo" in hint
    isvc_hint = logs_hint("InferenceService", "ns", {"metadata": {"name": "iris"}})
    assert "-l kubeloop.dev/inferenceservice=iris" in isvc_hint
    ready = {"type": "Ready", "status": "False", "message": "waiting for Dataset iris"}
    assert state_of({"status": {"phase": "Pending", "conditions": [ready]}}) == (
        "phase Pending; Ready=False: waiting for Dataset iris"
    )
    assert state_of(None) == "not created yet"
