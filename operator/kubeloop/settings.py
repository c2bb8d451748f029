"""The operator's settings: one pydantic-settings class, read from `KUBELOOP_*` variables.

Every knob the operator has is a field here with a docstring, so `docs/operator.md`'s table and
`OperatorSettings()` never disagree. Lists are written comma-separated (`KUBELOOP_NAMESPACES=a,b`).
Nothing here talks to the API: the settings are parsed once in `kubeloop.main` and passed down.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

DEFAULT_RUNTIME_IMAGE = "ghcr.io/kubeloop/kubeloop-runtime:0.1.0"


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class OperatorSettings(BaseSettings):
    """What the operator watches, which image its Jobs run, and how it reports itself."""

    model_config = SettingsConfigDict(
        env_prefix="KUBELOOP_",
        extra="ignore",
        use_attribute_docstrings=True,
        frozen=True,
    )

    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Namespaces to watch, comma-separated; empty watches the whole cluster."""

    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    """Image of the runtime (train, profile, fetch, serve, drift) that every child Pod runs."""

    image_pull_policy: PullPolicy = "IfNotPresent"
    """Pull policy of the runtime image in every child Pod."""

    artifact_store: str = "pvc://kubeloop-artifacts/"
    """Default artifact store URI in the resource's namespace; a TrainingJob's `output.uri`
    overrides it. Models go to `<store>/models/<model>/<trainingjob>-<uid8>/`."""

    artifact_store_secret: str = ""
    """Secret with the S3 credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
    `AWS_SESSION_TOKEN`, `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`) that every runtime container
    handling an `s3://` URI loads (`envFrom`). It must exist in each namespace with Kubeloop
    resources; the operator never reads it. Empty: the runtime's own AWS credential chain."""

    artifact_store_endpoint: str = ""
    """Endpoint URL of an S3-compatible store (MinIO, Ceph), set as `AWS_ENDPOINT_URL` in
    every runtime container handling an `s3://` URI; empty: AWS S3 (or the Secret's own)."""

    default_cpu_request: str = "100m"
    """CPU request of a child container whose resource did not set `resources`."""

    default_memory_request: str = "256Mi"
    """Memory request of a child container whose resource did not set `resources`."""

    default_memory_limit: str = "1Gi"
    """Memory limit of a child container whose resource did not set `resources`."""

    job_ttl_seconds: int = Field(default=86400, ge=0)
    """`ttlSecondsAfterFinished` of profile and verify Jobs (their results are kept in status)."""

    profile_deadline_seconds: int = Field(default=600, ge=1)
    """`activeDeadlineSeconds` of a Dataset's profile Job and a ModelVersion's verify Job."""

    unreachable_timeout_seconds: float = Field(default=600.0, gt=0)
    """How long a Dataset whose source cannot be read is retried (with backoff) before it is
    marked Stalled; it keeps being retried at the longest backoff afterwards."""

    retry_base_seconds: float = Field(default=5.0, gt=0)
    """First delay of the exponential backoff after a retryable failure."""

    retry_max_seconds: float = Field(default=300.0, gt=0)
    """Longest delay of the exponential backoff."""

    reconcile_workers: int = Field(default=16, ge=1, le=256)
    """Reconciles that run at once (threads; each waits on the API server most of its time).
    The API client's connection pool is sized to match."""

    history_limit: int = Field(default=10, ge=1, le=20)
    """Most versions kept in a Dataset's `status.history`."""

    metrics_port: int = Field(default=8080, ge=0, le=65535)
    """Port of the Prometheus `/metrics` endpoint; 0 turns it off."""

    metrics_host: str = "0.0.0.0"
    """Address the metrics endpoint listens on."""

    health_port: int = Field(default=8081, ge=0, le=65535)
    """Port of the liveness endpoint `/healthz`; 0 turns it off."""

    health_host: str = "0.0.0.0"
    """Address the liveness endpoint listens on."""

    log_format: LogFormat = "json"
    """`json` (one object per line with namespace and name) or `text`."""

    log_level: LogLevel = "INFO"
    """Lowest level logged."""

    peering_name: str = "kubeloop"
    """Name of the KopfPeering (namespaced) or ClusterKopfPeering object replicas share."""

    peering_priority: int | None = Field(default=None, ge=0)
    """This replica's peering priority; unset draws a random one, so that of two replicas one
    is active and the other stands by (equal priorities would pause both)."""

    peering_lifetime_seconds: int = Field(default=60, ge=5)
    """How long a replica's peering record counts as alive without a keep-alive; a standby
    takes over this long after the active replica died."""

    standalone: bool = False
    """Run without peering (one replica, or tests)."""

    kubeconfig: str | None = None
    """Kubeconfig file; unset uses the in-cluster account, else `$KUBECONFIG`."""

    @field_validator("namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_commas(value)

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces
