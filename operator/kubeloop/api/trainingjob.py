"""The TrainingJob kind: fit an allow-listed estimator, gate it, register a ModelVersion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from kubeloop.api.base import (
    AGE_COLUMN,
    EMPTY_OBJECT_DEFAULT,
    FREE_FORM,
    READY_COLUMN,
    ApiModel,
    KindInfo,
    PrinterColumn,
    all_defaults,
    cel,
    validations,
)
from kubeloop.api.conditions import Conditions, ObservedGeneration
from kubeloop.api.dataset import DataManifest
from kubeloop.api.refs import LocalObjectRef
from kubeloop.api.resources import ResourceRequirements
from kubeloop.api.scalars import Digest, ModelName, ObjectName, StorageUri
from kubeloop.estimators import ALLOWED_ESTIMATORS

MetricName = Literal["accuracy", "f1", "roc_auc", "rmse", "mae", "r2"]
# Metrics where a smaller value is better: their threshold is a ceiling, the others' a floor.
LOWER_IS_BETTER: tuple[MetricName, ...] = ("rmse", "mae")
TrainingPhase = Literal["Pending", "Running", "Succeeded", "Rejected", "Failed"]

Estimator = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(ALLOWED_ESTIMATORS),
            "description": (
                "Import path of an allow-listed scikit-learn estimator, e.g. "
                "`sklearn.ensemble.RandomForestClassifier` (the full list is in "
                "docs/resources.md)."
            ),
        }
    ),
]

# One hyper-parameter's candidates: any JSON values (numbers, strings, null, ...).
Candidates = Annotated[
    list[Any],
    WithJsonSchema(
        {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {"x-kubernetes-preserve-unknown-fields": True},
        }
    ),
]


class SearchSpec(ApiModel):
    """A hyper-parameter search: every candidate combination is a trial, cross-validated."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.maxTrials)",
                "a search space needs a trial budget: set maxTrials (grid searches fail when the "
                "grid has more combinations)",
                field_path=".maxTrials",
                reason="FieldValueRequired",
            ),
            cel(
                "!has(self.parallelism) || !has(self.maxTrials) "
                "|| self.parallelism <= self.maxTrials",
                "parallelism must not exceed maxTrials",
                field_path=".parallelism",
            ),
        )
    }

    strategy: Literal["grid", "random"] = Field(
        "grid", description="`grid` tries every combination; `random` samples maxTrials of them."
    )
    space: dict[str, Candidates] = Field(
        min_length=1,
        max_length=32,
        description=(
            "Candidate values per estimator parameter, e.g. `{max_depth: [2, 4, null]}`; "
            "merged over `params`."
        ),
    )
    max_trials: int | None = Field(
        None, ge=1, le=1000, description="Trial budget: most parameter combinations tried."
    )
    cv_folds: int = Field(3, ge=2, le=20, description="Cross-validation folds per trial.")
    # No default: a defaulted field would reach every runtime config, set or not.
    parallelism: int | None = Field(
        None, ge=1, le=32, description="Trials run at the same time (1 when left out)."
    )


class EvaluationSpec(ApiModel):
    """How the fitted model is scored on held-out data and when it is good enough to register."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.threshold) || !has(self.metric) || self.metric in ['rmse', 'mae', 'r2'] "
                "|| (self.threshold >= 0.0 && self.threshold <= 1.0)",
                "threshold for accuracy, f1 and roc_auc must be between 0 and 1",
                field_path=".threshold",
            ),
            cel(
                "!has(self.threshold) || !has(self.metric) || !(self.metric in ['rmse', 'mae']) "
                "|| self.threshold >= 0.0",
                "threshold for rmse and mae is an upper bound on the error and must not be "
                "negative",
                field_path=".threshold",
            ),
            cel(
                "!has(self.threshold) || has(self.metric)",
                "a threshold needs the metric it applies to: set metric",
                field_path=".metric",
                reason="FieldValueRequired",
            ),
        )
    }

    test_size: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share of rows held out for evaluation, between 0 and 1."
    )
    metric: MetricName | None = Field(
        None,
        description=(
            "Metric that gates registration: `accuracy`, `f1`, `roc_auc` (classification), "
            "`rmse`, `mae`, `r2` (regression). Left out: accuracy or r2 by task."
        ),
    )
    threshold: float | None = Field(
        None,
        description=(
            "Gate: the model is registered only if metric reaches it (at least the threshold; "
            "at most for `rmse` and `mae`). Left out, every model that trains is registered."
        ),
    )
    random_seed: int = Field(42, ge=0, description="Seed for the split and the estimator.")
    compare_to: Literal["serving"] | None = Field(
        None,
        description=(
            "`serving`: the model is registered only if it also scores no worse than the version "
            "serving `modelName` now (the gate's metric, both models on the same held-out rows of "
            "this run's data); a worse one is Rejected with both scores. Left out: no comparison. "
            "Retrains started by an InferenceService compare by default."
        ),
    )


class OutputSpec(ApiModel):
    """Where the artifact folder is written."""

    uri: StorageUri


class TrainingJobSpec(ApiModel):
    """The desired state of a TrainingJob."""

    dataset_ref: LocalObjectRef = Field(description="The Dataset to train on.")
    model_name: ModelName = Field(
        description="Name of the model; the registered ModelVersion is `<modelName>-v<version>`."
    )
    estimator: Estimator
    params: dict[str, Any] | None = Field(
        None,
        description="Estimator constructor arguments, e.g. `{n_estimators: 100}`.",
        json_schema_extra=FREE_FORM | {"maxProperties": 64},
    )
    search: SearchSpec | None = Field(None, description="An optional hyper-parameter search.")
    evaluation: EvaluationSpec = Field(
        default_factory=all_defaults(EvaluationSpec),
        description="Held-out evaluation and the registration gate.",
        json_schema_extra=EMPTY_OBJECT_DEFAULT,
    )
    resources: ResourceRequirements | None = Field(
        None, description="Resources of the training container."
    )
    active_deadline_seconds: int | None = Field(
        None, ge=1, le=604800, description="Longest the training Job may run, in seconds."
    )
    backoff_limit: int = Field(1, ge=0, le=10, description="Retries of a failed training pod.")
    output: OutputSpec | None = Field(
        None,
        description=(
            "Where the artifact is written. Left out, the operator's default artifact store is "
            "used."
        ),
    )


class TrainedArtifact(ApiModel):
    """The artifact a successful run wrote."""

    uri: StorageUri
    digest: Digest


class ServingComparison(ApiModel):
    """How the candidate scored against the serving version (`evaluation.compareTo: serving`)."""

    metric: MetricName = Field(description="The gate's metric both models were scored on.")
    candidate: float = Field(description="This run's model's score.")
    baseline: float | None = Field(
        None, description="The serving version's score; left out when nothing served the model."
    )
    baseline_version: str | None = Field(
        None, description="The ModelVersion compared with; left out when nothing served."
    )
    passed: bool = Field(description="Whether the candidate scored no worse than the baseline.")
    test_rows: int = Field(ge=0, description="Held-out rows both models were scored on.")


class TrainingJobStatus(ApiModel):
    """The observed state of a TrainingJob."""

    phase: TrainingPhase | None = Field(
        None,
        description=(
            "`Pending`, `Running`, `Succeeded` (a ModelVersion was registered), `Rejected` "
            "(trained but below the gate, or worse than the serving version) or `Failed`."
        ),
    )
    job_name: ObjectName | None = Field(None, description="The batch/v1 Job that trains.")
    metrics: dict[str, float] | None = Field(
        None, max_length=32, description="Held-out metrics of the fitted model."
    )
    score: float | None = Field(None, description="Value of the gating metric.")
    best_params: dict[str, Any] | None = Field(
        None, description="Parameters the search chose.", json_schema_extra=FREE_FORM
    )
    trials: int | None = Field(None, ge=0, description="Search trials run.")
    dataset_version: Digest | None = Field(
        None,
        description=(
            "The Dataset version pinned when the run started, and trained on: the training Job "
            "fails (`DataVersionGone`) rather than train on other data."
        ),
    )
    dataset_manifest: DataManifest | None = Field(
        None,
        description="Folder sources: the files of the pinned version, the ones trained on.",
    )
    artifact: TrainedArtifact | None = Field(None, description="The artifact written.")
    model_version: ObjectName | None = Field(
        None, description="Name of the ModelVersion this run registered."
    )
    rejected_reason: str | None = Field(
        None,
        description=(
            "Why the model was not registered (the gate it missed, or the serving version it "
            "scored worse than)."
        ),
    )
    comparison: ServingComparison | None = Field(
        None, description="The comparison with the serving version, when one was asked for."
    )
    start_time: datetime | None = Field(None, description="When training started.")
    completion_time: datetime | None = Field(None, description="When training finished.")
    conditions: Conditions | None = None
    observed_generation: ObservedGeneration = None


TRAINING_JOB = KindInfo(
    kind="TrainingJob",
    plural="trainingjobs",
    short_names=("tjob",),
    spec_model=TrainingJobSpec,
    status_model=TrainingJobStatus,
    summary=(
        "A TrainingJob fits an allow-listed scikit-learn estimator on a Dataset in a Job, scores "
        "it on held-out rows and, when it passes the gate, registers an immutable ModelVersion."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Model", ".spec.modelName"),
        PrinterColumn("Metric", ".spec.evaluation.metric"),
        PrinterColumn("Score", ".status.score", "number"),
        PrinterColumn("ModelVersion", ".status.modelVersion"),
        READY_COLUMN,
        PrinterColumn("Estimator", ".spec.estimator", priority=1),
        AGE_COLUMN,
    ),
)
