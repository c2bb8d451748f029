"""Reads served from the operator's watches, kept consistent with this process's own writes.

Kopf updates its indexes from the watch before any handler of an event runs, so a reconcile that
an event triggered can read that event's state, or a newer one, from an index instead of asking
the API server (a GET of the object, a LIST of its Deployments: a fifth of a first reconcile's
requests in bench/operator.py). What an index cannot show is a write this process made a moment
ago whose watch event Kopf has not processed yet: a reconcile that ran right then would decide on
the object as it was before its own change, and apply the same Deployment or send the same
transition's Event again.

`OwnWrites` keeps each object this process wrote until the index shows that write. A read then
gets, for one object:

- the index's object, when no write of ours is pending, or the index shows our write;
- our write's result, when the index still shows the object as it was before our write;
- `UNKNOWN` otherwise (another writer came in between, or Kopf's batching delivered a later event
  instead of our write's): the caller reads the API, and that read counts as a write until the
  index shows it too.

resourceVersions are compared for equality only, never ordered (the API's contract).
"""

from __future__ import annotations

import copy
import enum
import threading
from collections.abc import Mapping
from typing import Any, Final, Literal

from kubernetes import client as k8s

from kubeloop.kube.apply import get_or_none

Key = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


class Unknown(enum.Enum):
    """Neither the index nor our last write can be trusted: read the API."""

    UNKNOWN = "unknown"


UNKNOWN: Final = Unknown.UNKNOWN
Resolved = Mapping[str, Any] | Literal[Unknown.UNKNOWN] | None


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return (
        str(body["apiVersion"]),
        str(body["kind"]),
        str(meta.get("namespace", "")),
        meta["name"],
    )


def version_of(body: Mapping[str, Any] | None) -> str | None:
    """An object's resourceVersion; None for an absent object."""
    if body is None:
        return None
    return (body.get("metadata") or {}).get("resourceVersion")


def without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of the object without `metadata.managedFields`, which no reconcile reads
    and which is often the larger part of an object kept in memory."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return dict(body)
    return {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


class OwnWrites:
    """This process's writes that the watch-fed indexes may not show yet (see the module)."""

    def __init__(self) -> None:
        self._pending: dict[Key, tuple[str | None, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def wrote(self, before: str | None, result: Mapping[str, Any]) -> None:
        """`result` is what the API answered to our write of an object that was at resourceVersion
        `before` when we read it (None: it did not exist)."""
        if version_of(result) is None:
            return
        kept = without_managed_fields(result)
        with self._lock:
            self._pending[key_of(result)] = (before, kept)

    def resolve(self, key: Key, seen: Mapping[str, Any] | None) -> Resolved:
        """The object to decide on, given what the index shows (`seen`; None: absent), or
        UNKNOWN when neither the index nor our last write can be trusted."""
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                return seen
            before, result = pending
            shown = version_of(seen)
            if shown is not None and shown == version_of(result):
                del self._pending[key]  # the index has caught up
                return seen
            if shown == before:
                return result  # the index lags behind our write
            return UNKNOWN

    def observed(self, key: Key, resource_version: str | None, deleted: bool) -> None:
        """A watch event of the object (from a Kopf handler, after the index took it)."""
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and (deleted or resource_version == version_of(pending[1])):
                del self._pending[key]

    def read(self, key: Key, before: str | None, result: Mapping[str, Any] | None) -> None:
        """The object was just read from the API (`result`; None: absent) while the index showed
        it at resourceVersion `before`: until the index shows it, the read is what to decide on,
        like a write of ours."""
        if result is None:
            with self._lock:
                self._pending.pop(key, None)
            return
        self.wrote(before, result)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


def index_values(index: Mapping[Any, Any] | None, key: Any) -> list[Any]:
    """The values a Kopf index holds under `key` ([] when none, or when there is no index).
    Worker threads read while Kopf's loop updates the index: one lookup, no check-then-get
    (which could raise KeyError)."""
    return list(index.get(key, ())) if index is not None else []


def read_object(
    api: k8s.ApiClient,
    writes: OwnWrites,
    index: Mapping[Any, Any] | None,
    api_version: str,
    kind: str,
    namespace: str,
    name: str,
) -> dict[str, Any] | None:
    """The object from a Kopf index keyed (namespace, name), with our pending writes laid over
    (a copy the caller may change); from the API when the index is not bound (None) or cannot be
    trusted. None: the object does not exist."""
    key = (api_version, kind, namespace, name)
    seen = next(iter(index_values(index, (namespace, name))), None)
    if index is not None:
        body = writes.resolve(key, seen)
        if body is not UNKNOWN:
            return copy.deepcopy(dict(body)) if body is not None else None
    found = get_or_none(api, api_version, kind, namespace, name)
    writes.read(key, version_of(seen), found)
    return found
