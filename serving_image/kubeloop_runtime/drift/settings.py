"""Configuration of the drift sidecar, read from ``KUBELOOP_``-prefixed environment variables.

The operator sets these on the sidecar container (docs/design/contracts.md, "Runtime
configuration"). Kubernetes credentials are not here: in-cluster config, else ``KUBECONFIG``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubeloop_runtime.drift.detector import DEFAULT_SHARE_THRESHOLD
from kubeloop_runtime.drift.stattests import METHODS

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _pod_namespace() -> str | None:
    try:
        return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


class DriftSettings(BaseSettings):
    """Everything ``kubeloop_runtime.drift`` can be told."""

    model_config = SettingsConfigDict(env_prefix="KUBELOOP_", extra="ignore")

    server_url: str = "http://127.0.0.1:8080"
    """The model server next to this sidecar; its window is ``GET <server_url>/v2/window``."""

    model_dir: Path = Path("/mnt/models")
    """Artifact folder holding metadata.json (the reference profile and held-out metrics)."""

    isvc_name: str | None = None
    """InferenceService whose status this sidecar patches. Unset: verdicts are only logged."""

    isvc_namespace: str | None = Field(default_factory=_pod_namespace)
    """Its namespace; defaults to the pod's own (from the service-account mount)."""

    pod_name: str = Field(default_factory=socket.gethostname)
    """The key of this sidecar's report in ``status.drift.reports``."""

    color: Literal["blue", "green"] | None = None
    """This pod's colour; only reports of ``status.activeColor`` count."""

    drift_method: str = "auto"
    """Per-feature test: auto (evidently's default choice), ks, wasserstein, psi, chisquare (chi2),
    jensenshannon or z."""

    drift_threshold: float = Field(default=DEFAULT_SHARE_THRESHOLD, gt=0, le=1)
    """A window is drifted when this share of its features drifted (>=, like evidently's
    drift_share; the InferenceService spec's default, 0.3, is the default here too)."""

    drift_feature_threshold: float | None = Field(default=None, gt=0)
    """Override of the per-feature threshold (p-value or distance, by method)."""

    drift_interval_seconds: float = Field(default=30.0, gt=0)
    drift_min_samples: int = Field(default=100, ge=1)
    """Windows with fewer rows give no verdict."""

    drift_raise_after: int = Field(default=2, ge=1)
    """Consecutive drifted windows before drift is reported."""

    drift_clear_after: int = Field(default=2, ge=1)
    """Consecutive clean windows before reported drift is cleared."""

    drift_min_labels: int = Field(default=30, ge=1)
    """Labelled predictions needed before accuracy/RMSE can signal concept drift."""

    drift_accuracy_drop: float = Field(default=0.1, ge=0, le=1)
    """Concept drift when accuracy falls this far (absolute) below the held-out accuracy."""

    drift_rmse_increase: float = Field(default=0.5, ge=0)
    """Concept drift when RMSE rises this much (relative) above the held-out RMSE."""

    drift_http_timeout_seconds: float = Field(default=5.0, gt=0)
    drift_max_backoff_seconds: float = Field(default=30.0, gt=0)
    """Retry delay cap while the server, the API server or the model folder is away."""

    drift_metrics_port: int = Field(default=9090, ge=0, le=65535)
    """Port of the sidecar's own Prometheus metrics; 0 turns them off."""

    drift_metrics_host: str = "0.0.0.0"

    @field_validator("drift_method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"unknown drift method {value!r}; expected one of {list(METHODS)}")
        return value
