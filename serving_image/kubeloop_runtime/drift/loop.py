"""The sidecar's interval loop: read the window, judge it, patch the InferenceService status.

The only module that sequences I/O. Decisions are the pure modules' (detector, hysteresis, status);
I/O is httpx (the window) and kube.py (the status). The loop never crashes on a failure of the
server, the API server, the model folder or the input: each failure is logged once per outage
(with its recovery), counted in the errors metric, and retried with a capped exponential backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from kubeloop_runtime.artifact import ArtifactError, read_metadata
from kubeloop_runtime.drift.detector import (
    ConceptDrift,
    DataDrift,
    Window,
    assess_feedback,
    detect_data_drift,
    parse_window,
)
from kubeloop_runtime.drift.errors import (
    DriftError,
    DriftInputError,
    ModelNotReadyError,
    ServerUnavailableError,
    WindowError,
)
from kubeloop_runtime.drift.hysteresis import (
    DriftState,
    Freshness,
    advance,
    resume,
    window_freshness,
)
from kubeloop_runtime.drift.kube import InferenceServiceStatus, KubeError, load_api_client
from kubeloop_runtime.drift.metrics import DriftMetrics
from kubeloop_runtime.drift.settings import DriftSettings
from kubeloop_runtime.drift.stattests import FeatureReference, prepare_reference
from kubeloop_runtime.drift.status import PodReport, build_drift_status

log = logging.getLogger("kubeloop_runtime.drift")

WINDOW_PATH = "/v2/window"
_FIRST_RETRY_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class ModelReference:
    """What the checker needs from metadata.json."""

    references: Mapping[str, FeatureReference]
    task: str
    metrics: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one pass of the loop did."""

    freshness: Freshness
    window: Window
    data: DataDrift | None  # None when the window gave no verdict
    concept: ConceptDrift | None
    state: DriftState
    patched: bool


def load_model_reference(settings: DriftSettings) -> ModelReference:
    """Read the reference profile, task and held-out metrics from the artifact folder."""
    try:
        metadata = read_metadata(settings.model_dir)
    except ArtifactError as error:
        raise ModelNotReadyError(str(error)) from error
    profile = metadata.get("profile")
    if not isinstance(profile, Mapping):
        raise DriftInputError(f"{settings.model_dir}/metadata.json: no 'profile' object")
    task = metadata.get("task")
    if task not in ("classification", "regression"):
        raise DriftInputError(f"{settings.model_dir}/metadata.json field 'task': got {task!r}")
    metrics = metadata.get("metrics")
    return ModelReference(
        references=prepare_reference(profile),
        task=str(task),
        metrics=metrics if isinstance(metrics, Mapping) else {},
    )


def backoff_delay(failures: int, interval: float, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 0.5, 1, 2, … up to the cap."""
    growing = _FIRST_RETRY_SECONDS * 2.0 ** max(failures - 1, 0)
    return float(min(growing, cap, interval))


class _Outages:
    """Logs a failing source once when it starts failing and once when it recovers."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[float, str]] = {}

    def failed(self, source: str, message: str) -> None:
        if source not in self._since:
            log.warning("drift check failed (%s): %s", source, message)
            self._since[source] = (time.monotonic(), message)
        else:
            log.debug("drift check still failing (%s): %s", source, message)

    def recovered(self, *sources: str) -> None:
        for source in sources:
            known = self._since.pop(source, None)
            if known is not None:
                log.info("%s is back after %.1f s", source, time.monotonic() - known[0])


class DriftChecker:
    """One sidecar: its settings, its hysteresis state and its last verdict."""

    def __init__(
        self,
        settings: DriftSettings,
        *,
        metrics: DriftMetrics | None = None,
        status_store: InferenceServiceStatus | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.metrics = metrics or DriftMetrics()
        self.state = DriftState()
        self._status_store = status_store
        self._clock = clock
        self._model: ModelReference | None = None
        self._last_data: DataDrift | None = None
        self._last_concept: ConceptDrift | None = None
        self._http = httpx.Client(
            base_url=settings.server_url, timeout=settings.drift_http_timeout_seconds
        )
        self._outages = _Outages()
        self._resumed = False  # until this pod's last report has been looked up

    def close(self) -> None:
        self._http.close()

    # -- one pass ---------------------------------------------------------------------------------

    def check_once(self) -> CheckOutcome:
        """Read the window, judge it if it is fresh, and write this pod's report."""
        model = self._model_reference()
        if not self._resumed:
            self._resume_state()
        window = self.fetch_window()
        settings = self.settings
        freshness = window_freshness(
            self.state, window.seq, window.size, settings.drift_min_samples
        )
        data: DataDrift | None = None
        concept: ConceptDrift | None = None
        if freshness is Freshness.FRESH:
            data = detect_data_drift(
                model.references,
                window.columns,
                method=settings.drift_method,
                share_threshold=settings.drift_threshold,
                feature_threshold=settings.drift_feature_threshold,
            )
            concept = assess_feedback(
                window.predictions,
                window.labels,
                task=model.task,
                metrics=model.metrics,
                min_labels=settings.drift_min_labels,
                accuracy_drop=settings.drift_accuracy_drop,
                rmse_increase=settings.drift_rmse_increase,
            )
            self.state = advance(
                self.state,
                data.detected or concept.detected,
                window.seq,
                raise_after=settings.drift_raise_after,
                clear_after=settings.drift_clear_after,
            )
            self._last_data, self._last_concept = data, concept
            self.metrics.record_verdict(data, concept, detected=self.state.detected, at=time.time())
            log.info(
                "window seq=%d rows=%d: score=%.3f drifted=%s concept=%s -> detected=%s",
                window.seq,
                window.size,
                data.score,
                data.drifted_features,
                concept.detected,
                self.state.detected,
            )
        else:
            self.metrics.checks.labels(outcome=freshness.value).inc()
        self.metrics.samples.set(window.size)
        patched = self.publish(window)
        return CheckOutcome(freshness, window, data, concept, self.state, patched)

    def fetch_window(self) -> Window:
        try:
            response = self._http.get(WINDOW_PATH)
        except httpx.HTTPError as error:
            raise ServerUnavailableError(
                f"GET {self.settings.server_url}{WINDOW_PATH}: {type(error).__name__}: {error}"
            ) from error
        if response.status_code != 200:
            raise ServerUnavailableError(
                f"GET {self.settings.server_url}{WINDOW_PATH}: HTTP {response.status_code}"
            )
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise WindowError(f"window: not valid JSON ({error})") from error
        return parse_window(document)

    def report(self, window: Window) -> PodReport:
        """This pod's report: the hysteresis state and the last judged window."""
        data, concept = self._last_data, self._last_concept
        return PodReport(
            color=self.settings.color,
            model_version=window.model_version,
            detected=self.state.detected,
            score=None if data is None else round(data.score, 6),
            drifted_features=tuple(data.drifted_features) if data else (),
            samples=window.size,
            accuracy=None if concept is None else _rounded(concept.accuracy),
            rmse=None if concept is None else _rounded(concept.rmse),
            labeled=0 if concept is None else concept.labeled,
            concept_drift=bool(concept and concept.detected),
            streak=self.state.streak,
            checked_at=self._clock(),
        )

    def publish(self, window: Window) -> bool:
        """Merge this pod's report into the InferenceService status; False when not configured."""
        settings = self.settings
        if settings.isvc_name is None or settings.isvc_namespace is None:
            return False
        report = self.report(window)
        store = self._status_store or self._connect()

        def build(status: Mapping[str, Any]) -> dict[str, Any]:
            return build_drift_status(
                status,
                settings.pod_name,
                report,
                now=report.checked_at,
                interval_seconds=settings.drift_interval_seconds,
                method=settings.drift_method,
                threshold=settings.drift_threshold,
            )

        store.update_drift(settings.isvc_namespace, settings.isvc_name, build)
        return True

    # -- the loop ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event, max_checks: int | None = None) -> int:
        """Check every interval until ``stop`` is set; return how many passes failed in a row."""
        settings = self.settings
        failures = 0
        passes = 0
        while not stop.is_set() and (max_checks is None or passes < max_checks):
            passes += 1
            try:
                self.check_once()
            except (DriftError, KubeError) as error:
                failures += 1
                source = error.source
                self.metrics.errors.labels(source=source).inc()
                self._outages.failed(source, str(error))
            except Exception as error:  # the sidecar must outlive any bug in one pass
                failures += 1
                self.metrics.errors.labels(source="internal").inc()
                log.exception("drift check failed unexpectedly: %s", error)
            else:
                failures = 0
                self._outages.recovered("model", "server", "input", "apiserver", "internal")
            if max_checks is not None and passes >= max_checks:
                break
            delay = (
                settings.drift_interval_seconds
                if failures == 0
                else backoff_delay(
                    failures, settings.drift_interval_seconds, settings.drift_max_backoff_seconds
                )
            )
            stop.wait(delay)
        return failures

    def _resume_state(self) -> None:
        """Pick up this pod's hysteresis state from its last report (after a container restart)."""
        settings = self.settings
        if settings.isvc_name is None or settings.isvc_namespace is None:
            self._resumed = True
            return
        store = self._status_store or self._connect()
        found = store.read(settings.isvc_namespace, settings.isvc_name)
        drift = (found.get("status") or {}).get("drift") or {}
        reports = drift.get("reports") if isinstance(drift, Mapping) else None
        own = reports.get(settings.pod_name) if isinstance(reports, Mapping) else None
        self.state = resume(own, settings.color)
        self._resumed = True
        if own is not None:
            log.info(
                "resumed from this pod's last report: detected=%s streak=%d",
                self.state.detected,
                self.state.streak,
            )

    def _model_reference(self) -> ModelReference:
        if self._model is None:
            self._model = load_model_reference(self.settings)
            log.info(
                "reference profile loaded from %s: %d features, task %s",
                self.settings.model_dir,
                len(self._model.references),
                self._model.task,
            )
        return self._model

    def _connect(self) -> InferenceServiceStatus:
        try:
            api_client = load_api_client()
        except Exception as error:
            raise KubeError(f"no Kubernetes credentials: {error}") from error
        self._status_store = InferenceServiceStatus(api_client)
        return self._status_store


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
