"""The train and profile configuration: one JSON document that mirrors the CRD specs (camelCase).

Schema: docs/design/contracts.md, "Runtime configuration". The operator passes the spec through
unchanged, so the top level and ``dataset`` ignore fields this runtime does not use (resources,
deadlines, refresh intervals); the parts whose every field matters here (schema, search, evaluation)
forbid unknown fields so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from kubeloop_runtime.errors import ConfigError

CONFIG_ENV: Final = "KUBELOOP_CONFIG"

_Model = TypeVar("_Model", bound=BaseModel)

ColumnType = Literal["number", "integer", "category", "string", "boolean"]
MetricName = Literal["accuracy", "f1", "roc_auc", "rmse", "mae", "r2"]


class _Strict(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class _PassThrough(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class ColumnExpectation(_Strict):
    """What one column must look like; every rule is optional except the name."""

    name: str = Field(min_length=1)
    type: ColumnType | None = None
    min: float | None = None
    max: float | None = None
    allowed_values: list[str | int | float | bool] | None = None
    max_null_share: float | None = Field(default=None, ge=0.0, le=1.0)
    required: bool = True


class SchemaSpec(_Strict):
    """The expectations a dataset is validated against (all violations are reported at once)."""

    columns: list[ColumnExpectation] = Field(default_factory=list)
    min_rows: int | None = Field(default=None, ge=0)
    allow_extra_columns: bool = True


DIGEST_PATTERN: Final = r"^sha256:[a-f0-9]{64}$"


class ManifestEntry(_Strict):
    """One file of a folder as it was read: its path relative to the folder, size and sha256."""

    path: str = Field(min_length=1)
    size: int = Field(ge=0)
    digest: str = Field(pattern=DIGEST_PATTERN)


class ManifestSpec(_PassThrough):
    """The files of a folder's pinned data version: inline (``entries``) or in the profile's
    ``manifest.json`` (``uri``), with the digest of the list (datasets.manifest_digest)."""

    digest: str = Field(pattern=DIGEST_PATTERN)
    files: int = Field(ge=1)
    uri: str | None = Field(default=None, min_length=1)
    entries: list[ManifestEntry] | None = None

    @model_validator(mode="after")
    def _entries_or_uri(self) -> ManifestSpec:
        if self.entries is None and self.uri is None:
            raise ValueError("the manifest needs its entries or the uri of manifest.json")
        return self


class DatasetSpec(_PassThrough):
    """The data to read. Takes the contract's flat form (``uri``, ``format``) and also a Dataset
    spec passed through as is, where they sit under ``source``. ``version`` (the pinned data
    version) and ``manifest`` (a folder's files of that version) make train read that version
    or fail."""

    uri: str = Field(min_length=1)
    format: Literal["auto", "csv", "parquet"] = "auto"
    target: str | None = None
    schema_: SchemaSpec | None = Field(default=None, alias="schema")
    version: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    manifest: ManifestSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _lift_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "uri" not in data and isinstance(data.get("source"), dict):
            source = data["source"]
            return {**data, **{key: source[key] for key in ("uri", "format") if key in source}}
        return data


class SearchSpec(_Strict):
    """A hyper-parameter search: every value of ``space`` is a list of candidates."""

    strategy: Literal["grid", "random"] = "grid"
    space: dict[str, list[Any]] = Field(min_length=1)
    max_trials: int | None = Field(default=None, ge=1)
    cv_folds: int = Field(default=3, ge=2)
    parallelism: int = Field(default=1, ge=1)  # trials fitted at once (joblib workers in the pod)

    @model_validator(mode="after")
    def _check_space(self) -> SearchSpec:
        empty = sorted(name for name, values in self.space.items() if not values)
        if empty:
            raise ValueError(f"search.space: no candidate values for {empty}")
        if self.strategy == "random" and self.max_trials is None:
            raise ValueError("search.maxTrials is required for the random strategy")
        if self.strategy == "grid" and self.max_trials is not None:
            size = self.grid_size
            if size > self.max_trials:
                raise ValueError(
                    f"search.space: the grid has {size} combinations, more than "
                    f"search.maxTrials={self.max_trials}"
                )
        return self

    @property
    def grid_size(self) -> int:
        size = 1
        for values in self.space.values():
            size *= len(values)
        return size


class BaselineSpec(_Strict):
    """The serving version's artifact, filled in by the operator for ``compareTo: serving``."""

    uri: str = Field(min_length=1)
    digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$")
    version: str | None = None


class EvaluationSpec(_Strict):
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    metric: MetricName | None = None
    threshold: float | None = None
    random_seed: int = 42
    compare_to: Literal["serving"] | None = None
    baseline: BaselineSpec | None = None

    @model_validator(mode="after")
    def _baseline_needs_compare_to(self) -> EvaluationSpec:
        if self.baseline is not None and self.compare_to is None:
            raise ValueError("evaluation.baseline is only used with evaluation.compareTo: serving")
        return self


class OutputSpec(_PassThrough):
    uri: str = Field(min_length=1)


class TrainConfig(_PassThrough):
    model_name: str = Field(min_length=1)
    dataset: DatasetSpec
    estimator: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    search: SearchSpec | None = None

    @field_validator("params", mode="before")
    @classmethod
    def _null_params_are_none(cls, value: Any) -> Any:
        return {} if value is None else value

    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    output: OutputSpec


class ProfileConfig(_PassThrough):
    """The Dataset profiling run: validate, version, profile; ``output`` keeps the full profile."""

    dataset: DatasetSpec
    output: OutputSpec | None = None


def read_config_document(flag_value: str | None) -> dict[str, Any]:
    """Read the JSON document from ``--config`` (inline or a file path) or ``$KUBELOOP_CONFIG``."""
    raw = flag_value if flag_value is not None else os.environ.get(CONFIG_ENV)
    if raw is None or not raw.strip():
        raise ConfigError(f"no configuration: pass --config or set {CONFIG_ENV}")
    text = raw
    source = "the configuration"
    if not raw.lstrip().startswith("{"):
        path = Path(raw)
        try:
            text = path.read_text()
        except OSError as error:
            raise ConfigError(f"cannot read the configuration file {path}: {error}") from error
        source = str(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{source} must be a JSON object")
    return document


def parse_train_config(document: dict[str, Any]) -> TrainConfig:
    return _parse(TrainConfig, document)


def parse_profile_config(document: dict[str, Any]) -> ProfileConfig:
    return _parse(ProfileConfig, document)


def _parse(model: type[_Model], document: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from error


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field by its JSON path (``dataset.schema.minRows``)."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(document)"
        problems.append(f"{where}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)
