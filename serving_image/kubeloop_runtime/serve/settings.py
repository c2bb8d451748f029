"""Configuration of the model server, read from ``KUBELOOP_``-prefixed environment variables.

The operator sets these on the serving container (docs/design/contracts.md, "Runtime
configuration"); every field has a default that works in a pod with the model mounted at
``/mnt/models``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubeloop_runtime.errors import StorageError
from kubeloop_runtime.storage import resolve


class ServeSettings(BaseSettings):
    """Everything ``kubeloop_runtime.serve`` can be told."""

    model_config = SettingsConfigDict(env_prefix="KUBELOOP_", extra="ignore")

    model_dir: Path = Path("/mnt/models")
    """Artifact folder: model.joblib, model.sha256, metadata.json."""

    model_name: str | None = None
    """Name in the v2 paths; defaults to ``modelName`` from metadata.json."""

    model_version: str = "1"
    """Version reported in v2 metadata and accepted in ``/versions/{version}/`` paths."""

    model_digest: str | None = None
    """Expected ``sha256:<hex>`` of model.joblib. Unset: the folder's model.sha256 is trusted."""

    host: str = "0.0.0.0"  # a pod listens on its own interface
    port: int = Field(default=8080, ge=0, le=65535)

    window_size: int = Field(default=5000, ge=1)
    """Rows of recent inputs kept for the drift checker (and predictions kept for feedback)."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    """Larger request bodies are refused with 413, before or while they are read."""

    max_batch_rows: int = Field(default=1024, ge=1)
    """Concurrent requests are merged into one predict call up to this many rows."""

    max_batch_wait_ms: float = Field(default=1.0, ge=0)
    """How long a batch waits for more requests, only while requests arrive concurrently."""

    predict_in_thread: Literal["auto", "always", "never"] = "auto"
    """Run predict in a worker thread, so the event loop keeps reading requests meanwhile.

    The hand-off costs ~0.1 ms, which only pays when predict is slow and releases the GIL for
    part of its work (tree ensembles do). ``auto`` uses the thread while recent predict calls
    took longer than ``thread_threshold_ms``.
    """

    thread_threshold_ms: float = Field(default=1.0, ge=0)

    direct_threshold_ms: float = Field(default=0.1, ge=0)
    """Predict a lone request on the spot, unbatched, while recent predict calls took less than
    this (batching costs more than it saves on such models); 0 always batches."""

    predict_n_jobs: int | None = 1
    """Override ``n_jobs`` of the loaded estimator (thread start-up dominates small batches)."""

    allow_missing: bool = False
    """Accept null/NaN feature values (for estimators that handle missing values)."""

    termination_log: Path = Path("/dev/termination-log")
    """Where the reason of a failed model load is written before the process exits."""

    exit_on_load_failure: bool = True
    """Exit non-zero when the artifact is refused, so Kubernetes shows CrashLoopBackOff."""

    graceful_shutdown_seconds: int = Field(default=25, ge=0)
    """After SIGTERM, in-flight requests get this long to finish (below the pod's 30 s grace)."""

    log_level: str = "info"

    # -- data capture (docs/design/contracts.md, "Data capture") ------------------------------
    capture_uri: str | None = None
    """Folder URI the capture part files are written to; unset or empty: no capture."""

    capture_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of predicted rows captured (decided per row by a hash of its row number)."""

    capture_flush_seconds: float = Field(default=10.0, gt=0)
    """A part is written at least this often while records wait."""

    capture_max_rows_per_part: int = Field(default=10_000, ge=1)
    """Records per part file at most; a part's worth waiting is written at once."""

    capture_buffer_rows: int = Field(default=100_000, ge=1)
    """Records waiting in memory at most; beyond, new ones are dropped and counted."""

    capture_max_parts: int = Field(default=1000, ge=1)
    """Retention: this pod's part files kept at most (oldest deleted first)."""

    capture_max_bytes: int = Field(default=1 << 30, ge=1)
    """Retention: bytes of this pod's part files kept at most (the newest part always stays)."""

    capture_writer_share: float = Field(default=0.25, gt=0.0, le=1.0)
    """Most of one core the capture writer thread may use; beyond, records are dropped."""

    pod_name: str = Field(default_factory=socket.gethostname, min_length=1)
    """Names this pod's part files (in a pod the host name is the pod's name)."""

    @field_validator("capture_uri")
    @classmethod
    def _capture_uri_is_storage(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            location = resolve(value)
        except StorageError as error:
            raise ValueError(str(error)) from error
        if location.protocol not in ("file", "s3"):
            raise ValueError(f"{value}: capture needs a writable file://, pvc:// or s3:// folder")
        return value

    @field_validator("pod_name")
    @classmethod
    def _pod_name_has_no_slash(cls, value: str) -> str:
        if "/" in value:
            raise ValueError(f"{value!r}: a pod name cannot hold '/'")
        return value
