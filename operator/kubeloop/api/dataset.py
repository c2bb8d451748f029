"""The Dataset kind: where training data lives, what it must look like, and its versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from kubeloop.api.base import (
    AGE_COLUMN,
    FREE_FORM,
    READY_COLUMN,
    ApiModel,
    KindInfo,
    PrinterColumn,
    cel,
    validations,
)
from kubeloop.api.conditions import Conditions, ObservedGeneration
from kubeloop.api.scalars import DataUri, Digest, Duration, ObjectName, StorageUri

ColumnType = Literal["number", "integer", "string", "category", "boolean"]
DatasetPhase = Literal["Pending", "Profiling", "Ready", "Failed"]

ColumnName = Annotated[str, Field(min_length=1, max_length=256)]
# A category may be written as a string or an integer code; both keep their type in the schema.
AllowedValue = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class DataSource(ApiModel):
    """Where the data is read from."""

    uri: DataUri
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="File format; `auto` guesses from the URI's extension."
    )


class ColumnExpectation(ApiModel):
    """What one column must look like. Every rule is optional except the name."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "min must not be greater than max",
                field_path=".min",
            ),
            cel(
                "(!has(self.min) && !has(self.max)) || !has(self.type) "
                "|| self.type in ['number', 'integer']",
                "min and max apply only to columns of type number or integer",
                field_path=".type",
            ),
            cel(
                "!has(self.allowedValues) || !has(self.type) "
                "|| self.type in ['category', 'string', 'integer']",
                "allowedValues applies only to columns of type category, string or integer",
                field_path=".allowedValues",
            ),
        )
    }

    name: ColumnName = Field(description="Column name as it appears in the data.")
    type: ColumnType | None = Field(
        None,
        description=(
            "Expected type: `number`, `integer`, `string`, `category` or `boolean`. "
            "Left out, the type is not checked."
        ),
    )
    min: float | None = Field(None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(None, description="Largest allowed value (numeric columns).")
    allowed_values: list[AllowedValue] | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="The only values the column may hold (categorical columns).",
    )
    max_null_share: float | None = Field(
        None, ge=0.0, le=1.0, description="Largest share of missing values, from 0 to 1."
    )
    required: bool = Field(True, description="Whether a dataset without this column is invalid.")


class DataSchema(ApiModel):
    """Expectations the data is validated against; all violations are reported at once."""

    columns: list[ColumnExpectation] | None = Field(
        None,
        max_length=500,
        description="Per-column expectations, unique by name.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    min_rows: int | None = Field(None, ge=0, description="Fewest rows a valid dataset has.")
    allow_extra_columns: bool = Field(
        True, description="Whether columns not listed in `columns` are accepted."
    )


class DatasetSpec(ApiModel):
    """The desired state of a Dataset."""

    source: DataSource = Field(description="Where the data is read from.")
    target: ColumnName | None = Field(
        None,
        description=(
            "The label column for supervised training. Left out for unsupervised use; "
            "`builtin://` datasets name theirs `target`."
        ),
    )
    schema_: DataSchema | None = Field(
        None, alias="schema", description="Expectations the data must meet to become Ready."
    )
    refresh_interval: Duration | None = Field(
        None,
        description=(
            "How often to re-read the source and record a new version when the content changed. "
            "Left out, the data is read once."
        ),
    )


class FeatureInfo(ApiModel):
    """One column the models are trained on."""

    name: str = Field(description="Column name.")
    type: str = Field(description="Profiled kind of the column, e.g. `number` or `category`.")


class DatasetVersion(ApiModel):
    """One content version the Dataset has had."""

    version: Digest
    rows: int = Field(ge=0, description="Number of rows in that version.")
    observed_at: datetime = Field(description="When the version was first seen.")


class ManifestEntry(ApiModel):
    """One file of a folder's data version, as the profile read it."""

    path: str = Field(
        min_length=1, max_length=1024, description="Path relative to the folder, `/`-separated."
    )
    size: int = Field(ge=0, description="Size in bytes.")
    digest: Digest = Field(description="`sha256:<64 hex>` of the file's bytes.")


class DataManifest(ApiModel):
    """The exact files a folder's data version was read from, so training reads the same ones
    (docs/design/contracts.md, "Datasets over folders")."""

    digest: Digest = Field(description="Digest of the file list (paths, sizes and digests).")
    files: int = Field(ge=1, description="Number of files.")
    uri: StorageUri | None = Field(
        None, description="`manifest.json` in the artifact store: the full file list."
    )
    entries: list[ManifestEntry] | None = Field(
        None,
        max_length=64,
        description="The file list itself, when it is short; else read from `uri`.",
    )


CheckResult = Literal["Running", "Retrying", "Succeeded", "Failed"]


class DatasetCheck(ApiModel):
    """The latest read of the source: which check it is, its Job, and how it went."""

    key: str = Field(
        max_length=128,
        description=(
            "What the check is for: the generation, the refresh slot and the refresh token "
            "(`g<generation>-s<slot>[-<token hash>]`)."
        ),
    )
    job: ObjectName = Field(description="The profile Job of the latest attempt.")
    attempt: int = Field(
        ge=1, description="Attempt number; the source is retried when unreachable."
    )
    result: CheckResult = Field(
        description="`Running`, `Retrying` (waiting to retry), `Succeeded` or `Failed`."
    )
    started_at: datetime = Field(description="When the first attempt of this check started.")


class DatasetStatus(ApiModel):
    """The observed state of a Dataset."""

    phase: DatasetPhase | None = Field(
        None, description="`Pending`, `Profiling`, `Ready` or `Failed`."
    )
    version: Digest | None = Field(
        None, description="Content digest of the current data: the data version models record."
    )
    rows: int | None = Field(None, ge=0, description="Number of rows.")
    features: list[FeatureInfo] | None = Field(
        None, max_length=10000, description="The feature columns (the target excluded)."
    )
    profile: dict[str, Any] | None = Field(
        None,
        description=(
            "Per-feature summary (the drift reference), in the reference-profile format of "
            "docs/design/contracts.md; large parts such as samples may be left out."
        ),
        json_schema_extra=FREE_FORM,
    )
    profile_uri: StorageUri | None = Field(
        None,
        description=(
            "Where the full reference profile (bins, deciles, samples) was written: "
            "`profile.json` in the artifact store."
        ),
    )
    manifest: DataManifest | None = Field(
        None,
        description=(
            "Folder sources: the files `version` was read from. A TrainingJob pins it with the "
            "version and trains on exactly these files."
        ),
    )
    history: list[DatasetVersion] | None = Field(
        None, max_length=20, description="The most recent versions, newest first."
    )
    refresh_token: str | None = Field(
        None,
        max_length=253,
        description=(
            "The `kubeloop.dev/refresh` annotation value the latest finished check answered: "
            "a refresh asked for with that token is done when this equals it."
        ),
    )
    check: DatasetCheck | None = Field(None, description="The latest read of the source.")
    last_checked_at: datetime | None = Field(None, description="When the source was last read.")
    message: str | None = Field(None, description="Why the Dataset is not Ready, if it is not.")
    conditions: Conditions | None = None
    observed_generation: ObservedGeneration = None


DATASET = KindInfo(
    kind="Dataset",
    plural="datasets",
    short_names=("dset",),
    spec_model=DatasetSpec,
    status_model=DatasetStatus,
    summary=(
        "A Dataset names where training data lives and what it must look like. The operator "
        "validates and profiles it in a Job; the content digest becomes the data version that "
        "models record, and the profile becomes the reference that drift is measured against."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase"),
        READY_COLUMN,
        PrinterColumn("Rows", ".status.rows", "integer"),
        PrinterColumn("Version", ".status.version", priority=1),
        PrinterColumn("Source", ".spec.source.uri", priority=1),
        AGE_COLUMN,
    ),
)
