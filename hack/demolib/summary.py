"""The demo's closing screen and its failure messages, as text (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelFacts:
    """A registered model version and what it was trained on."""

    name: str  # the ModelVersion, e.g. iris-v1
    metric: str
    score: float | None
    dataset_version: str | None
    training_job: str


@dataclass(frozen=True)
class Comparison:
    """The retrained model against the serving one on the same held-out rows of the new data."""

    metric: str
    candidate: float | None
    baseline: float | None
    baseline_version: str | None
    test_rows: int | None


@dataclass
class DemoRecord:
    """What one run established, filled in step by step."""

    namespace: str
    isvc: str
    endpoint: str | None = None
    data_versions: list[tuple[str, int | None]] = field(default_factory=list)
    first_model: ModelFacts | None = None
    retrained: ModelFacts | None = None
    comparison: Comparison | None = None
    drift_features: list[str] = field(default_factory=list)
    drift_score: float | None = None
    accuracy_before: float | None = None
    accuracy_shifted: float | None = None
    accuracy_after: float | None = None
    loop_lines: list[str] = field(default_factory=list)
    drift_to_serving_seconds: float | None = None
    job_to_serving_seconds: float | None = None
    elapsed_seconds: float | None = None
    picture: Path | None = None
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # steps that did not do what they should


def short_digest(digest: str | None) -> str:
    """`sha256:0123456789ab…` → `0123456789ab`."""
    if not digest:
        return "?"
    return digest.removeprefix("sha256:")[:12]


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def comparison_from(result: Mapping[str, Any] | None) -> Comparison | None:
    """The `comparison` object of train's result (termination message or status), if any."""
    if not result:
        return None
    data = result.get("comparison") if "comparison" in result else result
    if not isinstance(data, Mapping) or "candidate" not in data:
        return None
    rows = data.get("testRows")
    return Comparison(
        metric=str(data.get("metric", "accuracy")),
        candidate=data.get("candidate"),
        baseline=data.get("baseline"),
        baseline_version=data.get("baselineVersion"),
        test_rows=int(rows) if isinstance(rows, int) else None,
    )


def comparison_line(comparison: Comparison | None) -> str:
    if comparison is None:
        return "no comparison reported"
    rows = f" on the same {comparison.test_rows} held-out rows" if comparison.test_rows else ""
    against = comparison.baseline_version or "the serving version"
    return (
        f"{comparison.metric} {number(comparison.candidate)} against {number(comparison.baseline)}"
        f" of {against}{rows} of the new data"
    )


def render_summary(record: DemoRecord, *, kubectl: str = "kubectl") -> str:
    """The one-screen summary and how to poke at what is still running."""
    if record.failures:
        title = "Kubeloop demo: the loop did NOT close"
    elif record.retrained:
        title = "Kubeloop demo: the loop closed"
    else:
        title = "Kubeloop demo"
    lines = ["", "=" * 78, title]
    lines.append("=" * 78)
    if record.data_versions:
        versions = " → ".join(
            f"{short_digest(v)} ({rows} rows)" if rows is not None else short_digest(v)
            for v, rows in record.data_versions
        )
        lines.append(f"data versions     {versions}")
    for label, facts in (("first model", record.first_model), ("retrained", record.retrained)):
        if facts:
            lines.append(
                f"{label:17} {facts.name}: {facts.metric} {number(facts.score)} "
                f"(TrainingJob {facts.training_job}, data {short_digest(facts.dataset_version)})"
            )
    if record.retrained:
        lines.append(f"  vs serving      {comparison_line(record.comparison)}")
    if record.drift_features:
        lines.append(
            f"drift             score {number(record.drift_score)} on "
            f"{', '.join(record.drift_features)}"
        )
    lines.append(
        f"answers right      before the shift {percent(record.accuracy_before)}, shifted on "
        f"the first model {percent(record.accuracy_shifted)}, on the retrained one "
        f"{percent(record.accuracy_after)}"
    )
    lines.extend(record.loop_lines)
    if record.elapsed_seconds is not None:
        lines.append(f"demo time         {record.elapsed_seconds:.0f} s")
    if record.picture:
        lines.append(f"timeline picture  {record.picture}")
    lines.extend(f"FAILED: {failure}" for failure in record.failures)
    lines.extend(f"note: {note}" for note in record.notes)
    lines += ["", "Poke at it:", f"  {kubectl} -n {record.namespace} get kubeloop"]
    lines.append(f"  {kubectl} -n {record.namespace} describe inferenceservice {record.isvc}")
    if record.endpoint:
        lines.append(
            f"  curl -s {record.endpoint}/predict -H 'content-type: application/json' -d "
            "'{\"instances\": [[5.1, 3.5, 9.4, 2.2]]}'"
        )
    lines.append("  make demo-down    # removes everything the demo started")
    return "\n".join(lines)


def failure_text(what: str, resource: str, message: str | None, logs: str | None) -> str:
    """A failed step: what failed, which resource, its status message, where its logs are."""
    lines = [f"demo failed: {what}", f"  resource: {resource}"]
    lines.append(f"  status:   {message or '(no status message)'}")
    if logs:
        lines.append(f"  logs:     {logs}")
    return "\n".join(lines)
