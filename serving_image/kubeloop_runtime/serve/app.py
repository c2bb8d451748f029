"""The HTTP application: FastAPI routes for every endpoint, behind a thin raw-ASGI front.

``create_app`` returns an ASGI callable. The front does three things and nothing else:
times every request into the metrics, answers the two hot paths (``POST /predict`` and
``POST /v2/models/{name}/infer`` of the served model) without FastAPI's routing and dependency
machinery, and hands every other request to the FastAPI app. The FastAPI routes implement the
same endpoints too (they call the same ``ModelServer`` methods), which is what the OpenAPI
schema describes and what answers any path the front does not recognise.

Errors: every ``ServeError`` (and FastAPI's own validation and routing errors) becomes
``{"error": "...", "field": ...}`` in ``render_error``; anything else is a bug, logged and
answered 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kubeloop_runtime.artifact import ArtifactError
from kubeloop_runtime.serve import openapi
from kubeloop_runtime.serve.batching import MicroBatcher
from kubeloop_runtime.serve.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    ServeError,
    UnsupportedMediaTypeError,
)
from kubeloop_runtime.serve.handlers import ModelServer
from kubeloop_runtime.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from kubeloop_runtime.serve.metrics import ServerMetrics
from kubeloop_runtime.serve.model import load
from kubeloop_runtime.serve.settings import ServeSettings

log = logging.getLogger("kubeloop_runtime.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
JSON = "application/json"
_JSON_HEADER = (b"content-type", b"application/json")


def error_body(error: ServeError) -> bytes:
    return orjson.dumps({"error": error.message, "field": error.field})


def render_error(error: ServeError) -> Response:
    return Response(error_body(error), status_code=error.status_code, media_type=JSON)


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON)


def check_content_type(content_type: str | None) -> None:
    """JSON only. A missing header is taken as JSON (load generators and curl -d omit it)."""
    if not content_type or content_type == JSON:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media == JSON or (media.startswith("application/") and media.endswith("+json")):
        return
    raise UnsupportedMediaTypeError(
        f"content type {media!r} is not supported; send {JSON} "
        "(the binary tensor extension of the v2 protocol is not implemented)",
        field="content-type",
    )


def check_content_length(raw: str | None, limit: int) -> None:
    if raw is None:
        return
    if not raw.isdigit():
        raise MalformedRequestError("Content-Length is not a number", field="content-length")
    if int(raw) > limit:
        raise PayloadTooLargeError(
            f"request body of {int(raw)} bytes exceeds the limit of {limit} bytes",
            field="content-length",
        )


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the request body, refusing it as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise MalformedRequestError("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(
                    f"request body exceeds the limit of {limit} bytes", field="body"
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _request_body(request: Request, limit: int) -> bytes:
    check_content_type(request.headers.get("content-type"))
    check_content_length(request.headers.get("content-length"), limit)
    return await read_body(request.receive, limit)


def write_termination_message(settings: ServeSettings, reason: str, message: str) -> None:
    """Tell Kubernetes why the server gave up (pod status shows it); best effort."""
    payload = {"ok": False, "kind": "serve", "reason": reason, "message": message[:3000]}
    try:
        settings.termination_log.write_bytes(orjson.dumps(payload))
    except OSError as error:
        log.warning(
            "cannot write the termination message to %s: %s", settings.termination_log, error
        )


class ServingFront:
    """The raw-ASGI front described in the module docstring."""

    def __init__(self, api: FastAPI, server: ModelServer) -> None:
        self.api = api
        self.server = server
        self._limit = server.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        metrics = self.server.metrics
        started = time.perf_counter()
        metrics.request_started()
        status = 500
        endpoint = "unmatched"
        try:
            path = scope["path"]
            if scope["method"] == "POST" and path == "/predict":
                endpoint = "/predict"
                status = await self._fast(self.server.predict, scope, receive, send)
            elif scope["method"] == "POST" and path in self.server.infer_paths:
                endpoint = self.server.infer_paths[path]
                status = await self._fast(self.server.infer, scope, receive, send)
            else:

                async def send_and_note(message: Message) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]
                    await send(message)

                await self.api(scope, receive, send_and_note)
                endpoint = getattr(scope.get("route"), "path", "unmatched")
        finally:
            metrics.request_finished(endpoint, status, time.perf_counter() - started)

    async def _fast(
        self,
        handler: Callable[[bytes], Awaitable[bytes]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> int:
        """Answer a hot-path request; return the status sent."""
        try:
            content_type = content_length = None
            for key, value in scope["headers"]:
                if key == b"content-type":
                    content_type = value.decode("latin-1")
                elif key == b"content-length":
                    content_length = value.decode("latin-1")
            check_content_type(content_type)
            check_content_length(content_length, self._limit)
            # From the end of the body to the batcher's queue, the handler never yields; so
            # "arriving" is exactly the requests the batcher may usefully wait for.
            self.server.requests_arriving += 1
            try:
                request_body = await read_body(receive, self._limit)
            finally:
                self.server.requests_arriving -= 1
            body = await handler(request_body)
            status = 200
        except ServeError as error:
            body, status = error_body(error), error.status_code
        except Exception:
            log.exception("bug while answering %s", scope["path"])
            body, status = orjson.dumps({"error": "internal error", "field": None}), 500
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON_HEADER, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return status


def create_app(
    settings: ServeSettings | None = None,
    on_load_failure: Callable[[str], None] | None = None,
) -> ServingFront:
    """Build the server. The model loads in the background once the app starts (lifespan)."""
    settings = settings or ServeSettings()
    metrics = ServerMetrics()
    server = ModelServer(settings, metrics)

    async def load_in_background() -> None:
        try:
            # Hashing and unpickling off the event loop (liveness keeps answering); the
            # server's state changes on the loop only.
            model = await asyncio.to_thread(
                load, settings.model_dir, settings.model_digest, settings.predict_n_jobs
            )
            server.model_loaded(model)
            log.info(
                "model %r version %r loaded from %s (%s)",
                server.name, server.version, settings.model_dir, model.schema.digest,
            )  # fmt: skip
        except ArtifactError as error:
            reason = str(error)
            log.error("refusing to serve the model: %s", reason)
            server.model_failed(reason)
            write_termination_message(settings, "ArtifactError", reason)
            if on_load_failure is not None:
                on_load_failure(reason)
        except Exception as error:  # a model file that does not unpickle, for one
            reason = f"{type(error).__name__}: {error}"
            log.exception("cannot load the model")
            server.model_failed(reason)
            write_termination_message(settings, type(error).__name__, reason)
            if on_load_failure is not None:
                on_load_failure(reason)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        def predict(features: Any, probabilities: bool) -> Any:
            assert server.model is not None  # the batcher only gets requests once ready
            return server.model.predict(features, probabilities)

        batcher = MicroBatcher(
            predict,
            max_rows=settings.max_batch_rows,
            max_wait_seconds=settings.max_batch_wait_ms / 1000,
            thread_mode=settings.predict_in_thread,
            thread_threshold_seconds=settings.thread_threshold_ms / 1000,
            direct_threshold_seconds=settings.direct_threshold_ms / 1000,
            arriving=lambda: server.requests_arriving,
            recorder=server.record_batch,
        )
        batcher.start()
        server.batcher = batcher
        loading = asyncio.create_task(load_in_background(), name="load-model")
        try:
            yield
        finally:
            loading.cancel()
            await batcher.stop()
            if server.capture is not None:
                # What the last requests queued is written before the process exits.
                await asyncio.to_thread(server.capture.close)

    api = FastAPI(
        title="Kubeloop model server",
        summary="Open Inference Protocol v2 REST, a plain /predict, the drift window, feedback.",
        version=server.server_metadata()["version"],
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _add_error_handlers(api)
    _add_routes(api, server, settings)
    return ServingFront(api, server)


def _add_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(ServeError)
    async def serve_error(_: Request, error: ServeError) -> Response:
        return render_error(error)

    @api.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return _json({"error": f"{where}: {first.get('msg', 'invalid')}", "field": where}, 422)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        return Response(
            orjson.dumps({"error": str(error.detail), "field": None}),
            status_code=error.status_code,
            media_type=JSON,
            headers=error.headers,
        )

    @api.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> Response:
        log.error("bug while answering %s", request.url.path, exc_info=error)
        return _json({"error": "internal error", "field": None}, 500)


def _add_routes(api: FastAPI, server: ModelServer, settings: ServeSettings) -> None:
    limit = settings.max_body_bytes
    errors = openapi.ERROR_RESPONSES

    @api.get("/v2/health/live", tags=["health"])
    async def live() -> Response:
        return _json({"live": True})

    @api.get("/v2/health/ready", tags=["health"], responses=errors)
    async def ready() -> Response:
        return _json(server.ready())

    @api.get("/v2", tags=["metadata"])
    async def server_metadata() -> Response:
        return _json(server.server_metadata())

    @api.get("/v2/models/{model_name}", tags=["metadata"], responses=errors)
    async def model_metadata(model_name: str) -> Response:
        return _json(server.model_metadata(model_name, None))

    @api.get(
        "/v2/models/{model_name}/versions/{model_version}", tags=["metadata"], responses=errors
    )
    async def model_version_metadata(model_name: str, model_version: str) -> Response:
        return _json(server.model_metadata(model_name, model_version))

    @api.get("/v2/models/{model_name}/ready", tags=["health"], responses=errors)
    async def model_ready(model_name: str) -> Response:
        return _json(server.model_ready(model_name, None))

    @api.get(
        "/v2/models/{model_name}/versions/{model_version}/ready", tags=["health"], responses=errors
    )
    async def model_version_ready(model_name: str, model_version: str) -> Response:
        return _json(server.model_ready(model_name, model_version))

    @api.post(
        "/v2/models/{model_name}/infer",
        tags=["inference"],
        openapi_extra=openapi.body(openapi.INFER_REQUEST),
        responses=errors,
    )
    async def infer(model_name: str, request: Request) -> Response:
        server.check_model(model_name)
        body = await _request_body(request, limit)
        return Response(await server.infer(body, model_name), media_type=JSON)

    @api.post(
        "/v2/models/{model_name}/versions/{model_version}/infer",
        tags=["inference"],
        openapi_extra=openapi.body(openapi.INFER_REQUEST),
        responses=errors,
    )
    async def infer_version(model_name: str, model_version: str, request: Request) -> Response:
        server.check_model(model_name, model_version)
        body = await _request_body(request, limit)
        return Response(await server.infer(body, model_name, model_version), media_type=JSON)

    @api.post(
        "/predict",
        tags=["inference"],
        openapi_extra=openapi.body(openapi.PREDICT_REQUEST),
        responses=errors,
    )
    async def predict(request: Request) -> Response:
        body = await _request_body(request, limit)
        return Response(await server.predict(body), media_type=JSON)

    @api.post(
        "/feedback",
        tags=["monitoring"],
        openapi_extra=openapi.body(openapi.FEEDBACK_REQUEST),
        responses=errors,
    )
    async def feedback(request: Request) -> Response:
        body = await _request_body(request, limit)
        return _json(server.feedback(body))

    @api.get("/v2/window", tags=["monitoring"], responses=errors)
    async def window() -> Response:
        return Response(server.window_snapshot(), media_type=JSON)

    @api.get("/metrics", tags=["monitoring"])
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type=METRICS_CONTENT_TYPE)
