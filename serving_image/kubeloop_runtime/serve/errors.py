"""Typed errors of the model server, each carrying the HTTP status it is answered with.

Handlers and codecs raise these; one place (``app.render_error``) turns them into JSON
``{"error": "...", "field": ...}``. No endpoint formats its own error body.
"""

from __future__ import annotations


class ServeError(Exception):
    """Base of every error the server answers on purpose. ``field`` names the culprit, if any."""

    status_code = 500

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class MalformedRequestError(ServeError):
    """The body is not valid JSON, or its top-level shape is not what the endpoint takes."""

    status_code = 400


class ModelNotFoundError(ServeError):
    """The model name (or version) in the path is not the one this server serves."""

    status_code = 404


class PredictionNotFoundError(ServeError):
    """Feedback names a prediction id this server never made or no longer remembers."""

    status_code = 404


class PayloadTooLargeError(ServeError):
    status_code = 413


class UnsupportedMediaTypeError(ServeError):
    status_code = 415


class InvalidInputError(ServeError):
    """The JSON parsed but the values do not fit the model's feature schema or the protocol."""

    status_code = 422


class ModelNotReadyError(ServeError):
    """The model is still loading, or failed to load (digest mismatch, missing file)."""

    status_code = 503
