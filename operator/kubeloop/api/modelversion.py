"""The ModelVersion kind: one immutable entry of the model registry.

A ModelVersion is the record of an artifact (where it is and its digest) with its lineage. Its
identity and artifact cannot change after creation (CEL transition rules); only the aliases, the
legacy stage and the description move. It has no owner, so deleting the TrainingJob keeps the
registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from kubeloop.api.base import (
    AGE_COLUMN,
    FREE_FORM,
    READY_COLUMN,
    ApiModel,
    KindInfo,
    PrinterColumn,
    cel,
    immutable,
    validations,
)
from kubeloop.api.conditions import Conditions, ObservedGeneration
from kubeloop.api.scalars import DNS_LABEL_PATTERN, Digest, ModelName, ObjectName, StorageUri

Stage = Literal["None", "Staging", "Production", "Archived"]


def model_version_name(model_name: str, version: int) -> str:
    """The one name a ModelVersion may have, so that (model, version) is unique per namespace."""
    return f"{model_name}-v{version}"


ModelVersionPhase = Literal["Pending", "Ready", "Failed"]

# An alias is a name people and InferenceServices point at (`champion`, `challenger`).
Alias = Annotated[
    str,
    Field(
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
        description="An alias: lowercase letters, digits and `-`, e.g. `champion`.",
    ),
]


class Artifact(ApiModel):
    """The artifact folder (model.joblib, model.sha256, metadata.json) and its digest."""

    uri: StorageUri
    digest: Digest = Field(description="`sha256:<64 hex>` of model.joblib; checked before loading.")


class Framework(ApiModel):
    """The library that fitted the model."""

    name: Literal["scikit-learn"] = Field("scikit-learn", description="Framework name.")
    version: str = Field(
        pattern=r"^[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)$",
        max_length=64,
        description="Framework version used to fit, e.g. `1.9.1`; serving checks compatibility.",
    )


class Lineage(ApiModel):
    """Where the model came from."""

    training_job: ObjectName | None = Field(None, description="The TrainingJob that made it.")
    dataset: ObjectName | None = Field(None, description="The Dataset it was trained on.")
    dataset_version: Digest | None = Field(None, description="The Dataset version trained on.")
    estimator: str | None = Field(None, max_length=256, description="Estimator import path.")
    params: dict[str, Any] | None = Field(
        None, description="Estimator parameters as fitted.", json_schema_extra=FREE_FORM
    )
    image: str | None = Field(None, max_length=512, description="Runtime image that trained it.")


class ModelVersionSpec(ApiModel):
    """The desired state of a ModelVersion. All but `aliases`, `stage` and `description` are
    immutable."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.framework) == has(oldSelf.framework) "
                "&& has(self.metrics) == has(oldSelf.metrics) "
                "&& has(self.lineage) == has(oldSelf.lineage) "
                "&& has(self.inputExample) == has(oldSelf.inputExample)",
                "spec.framework, spec.metrics, spec.lineage and spec.inputExample cannot be added "
                "or removed after creation: create a new ModelVersion instead",
            ),
        )
    }

    model_name: ModelName = Field(
        description="Name of the model this is a version of.",
        json_schema_extra=validations(immutable("spec.modelName")),
    )
    version: int = Field(
        ge=1,
        description="Version number, counting from 1 per model.",
        json_schema_extra=validations(immutable("spec.version")),
    )
    artifact: Artifact = Field(
        description="The artifact; immutable, so a version always means the same bytes.",
        json_schema_extra=validations(immutable("spec.artifact (uri and digest)")),
    )
    framework: Framework | None = Field(
        None,
        description="The library that fitted the model.",
        json_schema_extra=validations(immutable("spec.framework")),
    )
    metrics: dict[str, float] | None = Field(
        None,
        max_length=32,
        description="Held-out metrics, e.g. `{accuracy: 0.97}`.",
        json_schema_extra=validations(immutable("spec.metrics")),
    )
    lineage: Lineage | None = Field(
        None,
        description="Training job, dataset and version, parameters and image.",
        json_schema_extra=validations(immutable("spec.lineage")),
    )
    input_example: list[dict[str, Any]] | None = Field(
        None,
        max_length=5,
        description=(
            "A few training rows as `{feature: value}` objects (like MLflow's input example), "
            "recorded by the TrainingJob; the InferenceService smoke test predicts them when it "
            "has no `instances` of its own."
        ),
        json_schema_extra={
            "items": {"type": "object", **FREE_FORM},
            **validations(immutable("spec.inputExample")),
        },
    )
    aliases: list[Alias] | None = Field(
        None,
        max_length=16,
        description=(
            "Names for this version, e.g. `champion`, `challenger`; unique per model: setting "
            "an alias here moves it from the version that had it (the operator removes it "
            "there, with an Event on both). An InferenceService can serve `model.alias`. "
            "The recommended way to promote a version."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    stage: Stage = Field(
        "None",
        description=(
            "Legacy registry stage: `None`, `Staging`, `Production` or `Archived` (MLflow "
            "deprecated stages for aliases in 2.9; prefer `aliases`). An InferenceService can "
            "still follow a stage instead of a version."
        ),
    )
    description: str | None = Field(None, max_length=4096, description="Free text for people.")


class ModelVersionStatus(ApiModel):
    """The observed state of a ModelVersion."""

    phase: ModelVersionPhase | None = Field(
        None,
        description=(
            "`Pending`, `Ready` (artifact verified: only a Ready version is served) or "
            "`Failed` (e.g. digest mismatch)."
        ),
    )
    message: str | None = Field(None, description="Why the version is not Ready, if it is not.")
    verify_job: ObjectName | None = Field(
        None,
        description=(
            "The Job that fetched the artifact and checked its digest (versions not vouched "
            "for by the TrainingJob that made them)."
        ),
    )
    aliases: list[str] | None = Field(
        None,
        max_length=16,
        description="The aliases the operator has made unique: `spec.aliases` once reconciled.",
    )
    served_by: list[ObjectName] | None = Field(
        None,
        max_length=1000,
        description="InferenceServices whose active model version this is.",
    )
    conditions: Conditions | None = None
    observed_generation: ObservedGeneration = None


MODEL_VERSION = KindInfo(
    kind="ModelVersion",
    plural="modelversions",
    short_names=("mver",),
    spec_model=ModelVersionSpec,
    status_model=ModelVersionStatus,
    summary=(
        "A ModelVersion is one immutable entry of the model registry: an artifact with its "
        "digest, metrics and lineage. Only its aliases, stage and description change after "
        "creation."
    ),
    printer_columns=(
        PrinterColumn("Model", ".spec.modelName"),
        PrinterColumn("Version", ".spec.version", "integer"),
        PrinterColumn("Aliases", ".spec.aliases"),
        PrinterColumn("Stage", ".spec.stage", priority=1),
        PrinterColumn("Phase", ".status.phase"),
        READY_COLUMN,
        PrinterColumn("Digest", ".spec.artifact.digest", priority=1),
        AGE_COLUMN,
    ),
    root_validations=(
        cel(
            # string(int) has no cost bound in the API server's estimate; parse the name instead.
            "self.metadata.name.startsWith(self.spec.modelName + '-v') "
            "&& self.metadata.name.substring(self.spec.modelName.size() + 2)"
            ".matches('^[1-9][0-9]{0,17}$') "
            "&& int(self.metadata.name.substring(self.spec.modelName.size() + 2)) "
            "== self.spec.version",
            "metadata.name must be <spec.modelName>-v<spec.version> (e.g. iris-v3), so that each "
            "version of a model is registered once",
        ),
    ),
)
