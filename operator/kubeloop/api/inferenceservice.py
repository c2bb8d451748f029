"""The InferenceService kind: serve a ModelVersion blue-green, watch for drift, retrain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from kubeloop.api.base import (
    AGE_COLUMN,
    EMPTY_OBJECT_DEFAULT,
    READY_COLUMN,
    ApiModel,
    KindInfo,
    PrinterColumn,
    all_defaults,
    cel,
    validations,
)
from kubeloop.api.conditions import Conditions, ObservedGeneration
from kubeloop.api.modelversion import Alias, Stage
from kubeloop.api.resources import ResourceRequirements
from kubeloop.api.scalars import Duration, ModelName, ObjectName, StorageUri
from kubeloop.api.trainingjob import TrainingJobSpec

Color = Literal["blue", "green"]
# The drift sidecar's tests (kubeloop_runtime.drift.stattests.METHODS); `chi2` is `chisquare`.
DriftMethod = Literal["auto", "ks", "wasserstein", "psi", "chi2", "chisquare", "jensenshannon", "z"]
ServicePhase = Literal["Pending", "Deploying", "Ready", "Promoting", "Degraded", "Failed"]
RetrainPhase = Literal["RefreshingData", "Created"]
CandidatePhase = Literal["Deploying", "SmokeTesting", "Ready", "Promoted", "Failed"]

# How many promotions status.promotions keeps (newest first).
PROMOTION_HISTORY = 10

FeatureNames = Annotated[
    list[Annotated[str, Field(max_length=256)]],
    Field(max_length=1000, description="Names of the features that drifted."),
]


class ModelSelector(ApiModel):
    """Which ModelVersion to serve: exactly one of `version`, `latest`, `stage` or `alias`."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "(has(self.version) ? 1 : 0) + (has(self.latest) ? 1 : 0) "
                "+ (has(self.stage) ? 1 : 0) + (has(self.alias) ? 1 : 0) == 1",
                "set exactly one of version, latest, stage or alias: they are different ways to "
                "pick the ModelVersion to serve",
            ),
        )
    }

    name: ModelName = Field(description="Model name (`spec.modelName` of the ModelVersions).")
    version: int | None = Field(None, ge=1, description="Serve this version number.")
    latest: bool | None = Field(
        None,
        description="Serve the highest Ready version, and roll out each new one.",
        json_schema_extra=validations(
            cel(
                "self",
                "latest can only be true; to pin a version set version instead",
            )
        ),
    )
    stage: Stage | None = Field(
        None,
        description=(
            "Serve the highest Ready version in this registry stage (legacy: prefer `alias`)."
        ),
    )
    alias: Alias | None = Field(
        None,
        description=(
            "Serve the Ready version that carries this alias in `spec.aliases`, e.g. `champion`; "
            "moving the alias to another version rolls that one out. The recommended way to "
            "follow a registry decision (MLflow replaced stages with aliases)."
        ),
    )


class SmokeTest(ApiModel):
    """Requests sent to the candidate colour before it takes traffic."""

    enabled: bool = Field(True, description="Whether to smoke-test the candidate.")
    instances: list[dict[str, Any]] | None = Field(
        None,
        max_length=100,
        description=(
            "Rows to predict, as `{feature: value}` objects; each is one `POST /predict` that "
            "must answer one prediction. Left out, the test checks readiness and the v2 model "
            "metadata through the preview Service, then predicts the ModelVersion's "
            "`spec.inputExample` rows (recorded by train), if it has them."
        ),
    )
    min_success_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of requests that must succeed, from 0 to 1."
    )
    timeout_seconds: int = Field(30, ge=1, le=3600, description="Time allowed for the test.")


class RolloutSpec(ApiModel):
    """How a new ModelVersion replaces the serving one."""

    strategy: Literal["BlueGreen"] = Field(
        "BlueGreen",
        description=(
            "`BlueGreen`: the candidate runs in the idle colour behind the preview Service, "
            "then the active Service switches over."
        ),
    )
    auto_promote: bool = Field(
        True,
        description=(
            "Switch traffic as soon as the candidate is ready and smoke-tested. If false, "
            "promote by hand with the `kubeloop.dev/promote` annotation."
        ),
    )
    min_ready_seconds: int = Field(
        10, ge=0, le=3600, description="Seconds the candidate must stay ready before promotion."
    )
    smoke_test: SmokeTest = Field(
        default_factory=all_defaults(SmokeTest),
        description="Requests the candidate must answer before promotion.",
        json_schema_extra=EMPTY_OBJECT_DEFAULT,
    )
    scale_down_delay_seconds: int = Field(
        30,
        ge=0,
        le=86400,
        description="Seconds the old colour keeps running after promotion, for a quick rollback.",
    )
    progress_deadline_seconds: int = Field(
        600,
        ge=10,
        le=86400,
        description=(
            "Seconds a candidate may take to become available and pass its smoke test; past "
            "them the rollout is aborted and the active colour keeps serving."
        ),
    )


class CaptureSpec(ApiModel):
    """Data capture: serving pods write inputs, predictions and feedback labels as Parquet."""

    enabled: bool = Field(False, description="Whether serving pods capture what they serve.")
    uri: StorageUri | None = Field(
        None,
        description=(
            "Folder the part files are written to. Left out: `captures/<namespace>/<name>/` "
            "under the operator's artifact store."
        ),
    )
    sample_rate: float = Field(1.0, ge=0.0, le=1.0, description="Share of rows captured, 0 to 1.")
    flush_interval_seconds: int = Field(
        10, ge=1, le=3600, description="Seconds between part files while rows wait."
    )


class MonitoringSpec(ApiModel):
    """Drift detection by the sidecar in every serving pod."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.minSamples) || !has(self.window) || self.minSamples <= self.window",
                "minSamples must not exceed window: the checker never holds more rows than the "
                "window",
                field_path=".minSamples",
            ),
        )
    }

    enabled: bool = Field(True, description="Whether the drift sidecar runs.")
    method: DriftMethod = Field(
        "auto",
        description=(
            "Per-feature test: `ks`, `wasserstein`, `psi`, `chi2`/`chisquare`, `jensenshannon`, "
            "`z`, or `auto`, which picks per feature as evidently does: with more than 1000 "
            "reference rows, normalised Wasserstein for numeric features with more than 5 "
            "values, else Jensen-Shannon; with fewer, KS for numeric, chi-squared for "
            "categorical, z for binary."
        ),
    )
    threshold: float = Field(
        0.3,
        gt=0.0,
        le=1.0,
        description="Share of drifted features at which the dataset counts as drifted.",
    )
    window: int = Field(
        5000, ge=10, le=1_000_000, description="Recent inputs (rows) the server keeps."
    )
    interval_seconds: int = Field(60, ge=5, le=86400, description="Seconds between checks.")
    min_samples: int = Field(
        100, ge=1, le=1_000_000, description="Fewest rows before a check draws conclusions."
    )
    capture: CaptureSpec | None = Field(None, description="Data capture for retraining.")


class RetrainSpec(ApiModel):
    """Retraining when drift is detected."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.enabled) || !self.enabled || has(self.template)",
                "retraining needs a template: set template to the TrainingJob spec to run",
                field_path=".template",
                reason="FieldValueRequired",
            ),
        )
    }

    enabled: bool = Field(False, description="Whether drift starts a TrainingJob.")
    template: TrainingJobSpec | None = Field(
        None, description="The spec of the TrainingJob created on drift."
    )
    cooldown: Duration = Field(
        "1h", description="Least time between two retrainings, e.g. `30m` or `2h`."
    )


class EnvVar(ApiModel):
    """One environment variable with a literal value."""

    name: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256, description="Variable name."
    )
    value: str = Field("", max_length=32768, description="Its value.")


class InferenceServiceSpec(ApiModel):
    """The desired state of an InferenceService."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.retrain) || !has(self.retrain.enabled) || !self.retrain.enabled "
                "|| !has(self.monitoring) || !has(self.monitoring.enabled) "
                "|| self.monitoring.enabled",
                "retraining is triggered by drift: it needs monitoring.enabled",
                field_path=".retrain.enabled",
            ),
            cel(
                "!has(self.retrain) || !has(self.retrain.template) "
                "|| self.retrain.template.modelName == self.model.name",
                "retrain.template.modelName must equal model.name, or retrained versions would "
                "never be served",
                field_path=".retrain.template.modelName",
            ),
        )
    }

    model: ModelSelector = Field(description="The ModelVersion to serve.")
    replicas: int = Field(1, ge=0, le=100, description="Serving pods per colour.")
    resources: ResourceRequirements | None = Field(
        None, description="Resources of the model server container."
    )
    env: list[EnvVar] | None = Field(
        None,
        max_length=64,
        description=(
            "Extra environment variables of the model server container, e.g. serve's "
            "`KUBELOOP_MAX_BATCH_ROWS`; a change rolls out like a new version."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    rollout: RolloutSpec = Field(
        default_factory=all_defaults(RolloutSpec),
        description="How a new version replaces the serving one.",
        json_schema_extra=EMPTY_OBJECT_DEFAULT,
    )
    monitoring: MonitoringSpec = Field(
        default_factory=all_defaults(MonitoringSpec),
        description="Drift detection on live inputs.",
        json_schema_extra=EMPTY_OBJECT_DEFAULT,
    )
    retrain: RetrainSpec = Field(
        default_factory=all_defaults(RetrainSpec),
        description="Retraining on drift.",
        json_schema_extra=EMPTY_OBJECT_DEFAULT,
    )


class DriftReport(ApiModel):
    """What one serving pod's drift checker last saw."""

    color: Color | None = Field(None, description="Colour of the pod.")
    model_version: str | None = Field(None, max_length=64, description="Version served (number).")
    detected: bool | None = Field(None, description="Whether this pod sees drift.")
    score: float | None = Field(None, ge=0.0, le=1.0, description="Share of drifted features.")
    drifted_features: FeatureNames | None = None
    samples: int | None = Field(None, ge=0, description="Rows the check used.")
    accuracy: float | None = Field(None, description="Accuracy on labelled feedback.")
    rmse: float | None = Field(None, ge=0.0, description="RMSE on labelled feedback (regression).")
    concept_drift: bool | None = Field(
        None, description="Feedback metric worse than the held-out metric of the model."
    )
    labeled: int | None = Field(None, ge=0, description="Rows with feedback labels.")
    checked_at: datetime | None = Field(None, description="When the check ran.")
    streak: int | None = Field(
        None, ge=0, description="Consecutive checks with the same verdict (hysteresis)."
    )


class DriftStatus(ApiModel):
    """Drift aggregated over the fresh reports of the active colour (docs/design/contracts.md)."""

    detected: bool | None = Field(None, description="Whether the serving model sees drift.")
    score: float | None = Field(
        None, ge=0.0, le=1.0, description="Share of drifted features (max over the reports)."
    )
    method: DriftMethod | None = Field(None, description="Test used.")
    threshold: float | None = Field(None, description="Threshold used.")
    drifted_features: FeatureNames | None = None
    samples: int | None = Field(None, ge=0, description="Rows the checks used.")
    accuracy: float | None = Field(None, description="Accuracy on labelled feedback, if any.")
    rmse: float | None = Field(
        None, ge=0.0, description="RMSE on labelled feedback (regression), if any."
    )
    concept_drift: bool | None = Field(
        None, description="Whether any report sees its feedback metric fall below the model's."
    )
    reporters: int | None = Field(
        None, ge=0, description="Fresh reports of the active colour the aggregate is over."
    )
    checked_at: datetime | None = Field(None, description="When the aggregate was computed.")
    reports: dict[str, DriftReport] | None = Field(
        None, max_length=256, description="Latest report per serving pod, by pod name."
    )


class Candidate(ApiModel):
    """The ModelVersion being rolled out in the idle colour."""

    model_version: ObjectName | None = Field(None, description="ModelVersion being rolled out.")
    color: Color | None = Field(None, description="Colour it runs in.")
    phase: CandidatePhase | None = Field(
        None, description="`Deploying`, `SmokeTesting`, `Ready`, `Promoted` or `Failed`."
    )
    message: str | None = Field(None, description="Progress or failure detail.")
    since: datetime | None = Field(None, description="When the rollout started.")
    template_hash: str | None = Field(
        None,
        max_length=64,
        description=(
            "Hash of the serving template rolled out (ModelVersion, image, resources, env, "
            "monitoring); a failed candidate is not retried until it changes."
        ),
    )


class ScaleDown(ApiModel):
    """The old colour kept running after a promotion, and when it scales to zero."""

    color: Color = Field(description="Colour to scale down.")
    at: datetime = Field(description="When it scales to 0 (promotion + scaleDownDelaySeconds).")


class Promotion(ApiModel):
    """One switch of the active Service to a colour."""

    model_version: ObjectName = Field(description="ModelVersion that took traffic.")
    color: Color = Field(description="Colour it runs in.")
    at: datetime = Field(description="When the active Service switched to it.")


class LastRetrain(ApiModel):
    """The most recent retraining this InferenceService started."""

    training_job: ObjectName | None = Field(None, description="The TrainingJob created.")
    reason: str | None = Field(None, description="Why, e.g. the drifted features.")
    drift_score: float | None = Field(None, description="Drift score that triggered it.")
    at: datetime | None = Field(None, description="When it was started.")
    phase: RetrainPhase | None = Field(
        None,
        description=(
            "`RefreshingData` while the Dataset re-reads its source, then `Created` once the "
            "TrainingJob exists."
        ),
    )


class InferenceServiceStatus(ApiModel):
    """The observed state of an InferenceService."""

    phase: ServicePhase | None = Field(
        None,
        description="`Pending`, `Deploying`, `Ready`, `Promoting`, `Degraded` or `Failed`.",
    )
    active_color: Color | None = Field(None, description="Colour the active Service selects.")
    active_model_version: ObjectName | None = Field(
        None, description="ModelVersion serving traffic."
    )
    candidate: Candidate | None = Field(None, description="Rollout in progress, if any.")
    url: str | None = Field(
        None, max_length=2048, description="In-cluster URL of the active model."
    )
    preview_url: str | None = Field(
        None, max_length=2048, description="In-cluster URL of the idle colour (preview Service)."
    )
    ready_replicas: int | None = Field(None, ge=0, description="Ready pods of the active colour.")
    scale_down: ScaleDown | None = Field(
        None,
        description=(
            "Pending scale-down of the previous colour; kept here so a restarted operator "
            "honours the deadline."
        ),
    )
    promotions: list[Promotion] | None = Field(
        None,
        max_length=PROMOTION_HISTORY,
        description=f"Promotions, newest first (at most {PROMOTION_HISTORY}).",
    )
    drift: DriftStatus | None = Field(None, description="Drift seen in live traffic.")
    last_retrain: LastRetrain | None = Field(None, description="Most recent retraining.")
    conditions: Conditions | None = None
    observed_generation: ObservedGeneration = None


INFERENCE_SERVICE = KindInfo(
    kind="InferenceService",
    plural="inferenceservices",
    short_names=("infsvc",),
    spec_model=InferenceServiceSpec,
    status_model=InferenceServiceStatus,
    summary=(
        "An InferenceService serves a ModelVersion from two Deployments (blue and green) behind "
        "an active and a preview Service, watches live inputs for drift with a sidecar in every "
        "pod, and can start a TrainingJob when drift is detected."
    ),
    printer_columns=(
        READY_COLUMN,
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Model", ".spec.model.name"),
        PrinterColumn("Serving", ".status.activeModelVersion", description="Active ModelVersion"),
        PrinterColumn("Color", ".status.activeColor"),
        PrinterColumn("Candidate", ".status.candidate.modelVersion", priority=1),
        PrinterColumn("Drift", ".status.drift.detected", "boolean"),
        PrinterColumn("DriftScore", ".status.drift.score", "number", priority=1),
        PrinterColumn("URL", ".status.url", priority=1),
        AGE_COLUMN,
    ),
    root_validations=(
        cel(
            "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') "
            "&& self.metadata.name.size() <= 50",
            "metadata.name must start with a letter, hold only lowercase letters, digits and '-', "
            "and be at most 50 characters: it names the Services and Deployments created for it",
        ),
    ),
)
