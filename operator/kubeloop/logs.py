"""Log records as one JSON object per line, carrying the Kubernetes object they are about.

Kopf attaches `k8s_ref` (apiVersion, kind, namespace, name, uid) to the records of its object
loggers; our own code passes the same `extra`. The formatter lifts namespace, name and kind to
top-level keys so a log query can filter on them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from kubeloop.settings import LogFormat, LogLevel


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "namespace", "name", "kind", "exception"}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            for key in ("namespace", "name", "kind"):
                if ref.get(key):
                    entry[key] = ref[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger [namespace/name] message`."""

    def format(self, record: logging.LogRecord) -> str:
        ref = getattr(record, "k8s_ref", None)
        where = ""
        if isinstance(ref, dict) and ref.get("name"):
            where = f"[{ref.get('namespace') or ''}/{ref['name']}] "
        record.message = record.getMessage()
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {where}{record.message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(log_format: LogFormat, level: LogLevel) -> None:
    """Send every logger (Kopf's included) to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Kopf logs every handler call ("Handler succeeded") at INFO; the reconciles log what matters.
    if logging.getLevelName(level) > logging.DEBUG:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    for noisy in ("urllib3", "kubernetes", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
