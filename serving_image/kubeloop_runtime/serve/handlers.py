"""What each endpoint does, apart from HTTP: parse, validate, predict, record, encode.

``ModelServer`` holds the server's state (the loaded model or why it is not loaded, the
batcher, the window, the metrics) and answers with bytes or plain data. ``app`` wires it to
FastAPI routes and to the raw-ASGI fast path; both call the same methods here, so a request
gets the same answer whichever way it came in.
"""

from __future__ import annotations

import logging
import math
from importlib import metadata
from typing import Any

import orjson

from kubeloop_runtime.captures import CaptureSchema, target_type
from kubeloop_runtime.serve import codecs
from kubeloop_runtime.serve.batching import MicroBatcher
from kubeloop_runtime.serve.capture import CaptureLimits, CaptureWriter
from kubeloop_runtime.serve.errors import (
    InvalidInputError,
    MalformedRequestError,
    ModelNotFoundError,
    ModelNotReadyError,
    PredictionNotFoundError,
)
from kubeloop_runtime.serve.metrics import ServerMetrics
from kubeloop_runtime.serve.model import FeatureMatrix, LoadedModel, Prediction
from kubeloop_runtime.serve.settings import ServeSettings
from kubeloop_runtime.serve.window import Window

log = logging.getLogger(__name__)
SERVER_NAME = "kubeloop"
PROTOCOL_EXTENSIONS: list[str] = []
try:
    _VERSION = metadata.version("kubeloop")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0.0.0"


class ModelServer:
    """The served model and everything kept about its traffic; only the event loop uses it."""

    def __init__(self, settings: ServeSettings, metrics: ServerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model: LoadedModel | None = None
        self.window: Window | None = None
        self.batcher: MicroBatcher | None = None
        self.load_error: str | None = None
        self.name = settings.model_name or "model"
        self.version = settings.model_version
        self.infer_paths: dict[str, str] = {}
        """The served model's infer paths, to the route templates the metrics label them by."""
        self.requests_arriving = 0
        """Prediction requests still reading their body (the batcher waits only for these)."""
        self.capture: CaptureWriter | None = None
        metrics.window_capacity.set(settings.window_size)

    # -- lifecycle -------------------------------------------------------------------------
    def model_loaded(self, model: LoadedModel) -> None:
        """Install a verified model: from now on the server is ready."""
        self.name = self.settings.model_name or model.schema.name
        window = Window(model.schema, self.settings.window_size)
        self.window = window
        self.metrics.watch_window(lambda: window.rows, lambda: window.seq)
        self.metrics.set_classes(model.class_names)
        self.metrics.model_info.labels(
            self.name, self.version, model.schema.digest, model.schema.task
        ).set(1)
        base = f"/v2/models/{self.name}"
        self.infer_paths = {
            f"{base}/infer": "/v2/models/{model_name}/infer",
            f"{base}/versions/{self.version}/infer": (
                "/v2/models/{model_name}/versions/{model_version}/infer"
            ),
        }
        self.model = model
        self.capture = self._start_capture(model, window)
        self.metrics.model_ready.set(1)

    def _start_capture(self, model: LoadedModel, window: Window) -> CaptureWriter | None:
        uri = self.settings.capture_uri
        if uri is None or self.settings.capture_sample_rate == 0:
            return None
        target = model.schema.metadata.get("target") or {}
        target_name = target.get("name") if isinstance(target, dict) else None
        values = model.class_values
        schema = CaptureSchema(
            model=self.name,
            model_version=self.version,
            pod=self.settings.pod_name,
            task=model.schema.task,
            features=tuple((feature.name, feature.kind) for feature in model.schema.features),
            target=target_name if isinstance(target_name, str) and target_name else "target",
            target_type=target_type(values, model.schema.task),
        )
        clash = schema.reserved_clash()
        if clash is not None:
            log.error("capture is off: the column name %r clashes with the capture columns", clash)
            return None
        settings = self.settings
        limits = CaptureLimits(
            sample_rate=settings.capture_sample_rate,
            flush_seconds=settings.capture_flush_seconds,
            max_rows_per_part=settings.capture_max_rows_per_part,
            buffer_rows=settings.capture_buffer_rows,
            max_parts=settings.capture_max_parts,
            max_bytes=settings.capture_max_bytes,
            writer_share=settings.capture_writer_share,
        )
        writer = CaptureWriter(uri, schema, window.instance, limits, values)
        self.metrics.watch_capture(writer.stats)
        writer.start()
        log.info("capturing to %s (sample rate %g)", uri, limits.sample_rate)
        return writer

    def model_failed(self, reason: str) -> None:
        self.load_error = reason

    def _ready_model(self) -> tuple[LoadedModel, Window, MicroBatcher]:
        if self.model is None or self.window is None or self.batcher is None:
            why = self.load_error or "the model is still loading"
            raise ModelNotReadyError(f"the model is not ready: {why}")
        return self.model, self.window, self.batcher

    def check_model(self, name: str, version: str | None = None) -> None:
        if self.model is None and self.settings.model_name is None:
            # The name comes from metadata.json, not known before the load: any name asked
            # for gets "not ready" (with the reason) rather than a misleading 404.
            self._ready_model()
        if name != self.name:
            raise ModelNotFoundError(
                f"model {name!r} is not served here; this server serves {self.name!r}",
                field="model_name",
            )
        if version is not None and version != self.version:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version!r}; this server serves version "
                f"{self.version!r}",
                field="model_version",
            )

    # -- health and metadata ----------------------------------------------------------------
    def ready(self) -> dict[str, Any]:
        self._ready_model()
        return {"ready": True}

    def model_ready(self, name: str, version: str | None) -> dict[str, Any]:
        self.check_model(name, version)
        return {"name": self.name, "ready": self.ready()["ready"]}

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": _VERSION, "extensions": PROTOCOL_EXTENSIONS}

    def model_metadata(self, name: str, version: str | None) -> dict[str, Any]:
        self.check_model(name, version)
        model, _, _ = self._ready_model()
        schema = model.schema
        numeric = schema.all_numeric
        outputs: list[dict[str, Any]] = [
            {
                "name": codecs.OUTPUT_PREDICT,
                "datatype": "BYTES" if schema.task == "classification" else "FP64",
                "shape": [-1],
            }
        ]
        if schema.task == "classification" and hasattr(model.estimator, "predict_proba"):
            outputs.append(
                {
                    "name": codecs.OUTPUT_PROBA,
                    "datatype": "FP64",
                    "shape": [-1, len(model.class_names or ())],
                }
            )
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "sklearn",
            "inputs": [
                {
                    "name": "input-0" if numeric else feature.name,
                    "datatype": "FP64" if feature.kind == "number" else "BYTES",
                    "shape": [-1, len(schema.features)] if numeric else [-1],
                }
                for feature in (schema.features[:1] if numeric else schema.features)
            ],
            "outputs": outputs,
            "parameters": {
                "task": schema.task,
                "features": [{"name": f.name, "type": f.kind} for f in schema.features],
                "classes": list(model.class_names) if model.class_names else None,
                "digest": schema.digest,
            },
        }

    # -- prediction ------------------------------------------------------------------------
    def record_batch(self, features: FeatureMatrix, prediction: Prediction, requests: int) -> int:
        """Once per predict call: keep the rows in the window, count them; first row's number."""
        assert self.window is not None  # the batcher only runs requests once ready
        self.metrics.observe_batch(requests, len(prediction.labels))
        self.metrics.observe_prediction(prediction)
        first = self.window.append(features, prediction.labels)
        if self.capture is not None:
            self.capture.add(first, features, prediction)
        return first

    @staticmethod
    def _refused(error: Exception) -> InvalidInputError:
        # The estimator refused values that passed the schema (an unknown category, say).
        return InvalidInputError(f"the model refused the input: {error}")

    async def predict(self, body: bytes) -> bytes:
        model, window, batcher = self._ready_model()
        request = codecs.decode_predict(
            codecs.parse_json(body), model.schema, self.settings.allow_missing
        )
        wants_proba = request.probabilities
        if wants_proba and not hasattr(model.estimator, "predict_proba"):
            raise InvalidInputError("this model does not give probabilities", field="probabilities")
        # predict_now first: no await level at all when predict is cheap (the hot path)
        try:
            done = batcher.predict_now(request.features, wants_proba)
            prediction, first = done or await batcher.predict(request.features, wants_proba)
        except (ValueError, TypeError) as error:
            raise self._refused(error) from error
        ids = window.ids(first, len(prediction.labels))
        return codecs.encode_predict(prediction, ids, self.name, self.version)

    async def infer(
        self, body: bytes, name: str | None = None, version: str | None = None
    ) -> bytes:
        if name is not None:
            self.check_model(name, version)
        model, window, batcher = self._ready_model()
        request = codecs.decode_infer(
            codecs.parse_json(body), model.schema, self.settings.allow_missing
        )
        wants_proba = codecs.OUTPUT_PROBA in request.outputs
        if wants_proba and not hasattr(model.estimator, "predict_proba"):
            raise InvalidInputError("this model has no predict_proba output", field="outputs")
        # predict_now first: no await level at all when predict is cheap (the hot path)
        try:
            done = batcher.predict_now(request.features, wants_proba)
            prediction, first = done or await batcher.predict(request.features, wants_proba)
        except (ValueError, TypeError) as error:
            raise self._refused(error) from error
        ids = window.ids(first, len(prediction.labels))
        return codecs.encode_infer(prediction, ids, request, self.name, self.version)

    # -- drift window and feedback ---------------------------------------------------------
    def window_snapshot(self) -> bytes:
        _, window, _ = self._ready_model()
        return orjson.dumps(
            window.snapshot(self.name, self.version), option=orjson.OPT_SERIALIZE_NUMPY
        )

    def feedback(self, body: bytes) -> dict[str, Any]:
        model, window, _ = self._ready_model()
        payload = codecs.parse_json(body)
        items = payload if isinstance(payload, list) else [payload]
        if not items:
            raise InvalidInputError("feedback list is empty", field="feedback")
        checked: list[tuple[str, Any, Any]] = []
        for position, item in enumerate(items):
            where = f"[{position}]" if isinstance(payload, list) else ""
            if not isinstance(item, dict):
                raise MalformedRequestError(
                    f'feedback{where} must be an object like {{"id": "...", "label": ...}}'
                )
            unknown = [key for key in item if key not in ("id", "label")]
            if unknown:
                raise InvalidInputError(
                    f"feedback{where}: unknown field {unknown[0]!r}", field=unknown[0]
                )
            prediction_id = item.get("id")
            if not isinstance(prediction_id, str):
                raise InvalidInputError(
                    f"feedback{where}: 'id' must be a prediction id string", field="id"
                )
            if "label" not in item:
                raise InvalidInputError(f"feedback{where}: missing 'label'", field="label")
            label, value = self._check_label(model, item["label"], where)
            try:
                window.prediction_for(prediction_id)
            except KeyError:
                raise PredictionNotFoundError(
                    f"feedback{where}: prediction id {prediction_id[:80]!r} is unknown or has "
                    f"left the window (it keeps the last {window.capacity} predictions)",
                    field="id",
                ) from None
            checked.append((prediction_id, label, value))
        capture = self.capture
        for prediction_id, label, value in checked:
            window.add_feedback(prediction_id, label)
            if capture is not None:
                capture.label(int(prediction_id.rpartition("-")[2]), value)
        self.metrics.feedback.inc(len(checked))
        return {"accepted": len(checked), "labelled": window.labelled}

    @staticmethod
    def _check_label(model: LoadedModel, label: Any, where: str) -> tuple[Any, Any]:
        """The label as the window keeps it (a class name) and as the model's target value."""
        names = model.class_names
        if names is None:
            if isinstance(label, bool) or not isinstance(label, int | float):
                raise InvalidInputError(f"feedback{where}: 'label' must be a number", field="label")
            if not math.isfinite(label):
                raise InvalidInputError(f"feedback{where}: 'label' must be finite", field="label")
            return float(label), float(label)
        position = model.class_position(label)
        if position is None:
            raise InvalidInputError(
                f"feedback{where}: label {str(label)[:40]!r} is not one of the classes "
                f"({', '.join(names)})",
                field="label",
            )
        values = model.class_values
        return names[position], None if values is None else values[position]
