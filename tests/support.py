"""Small helpers shared by the test folders: waiting for a condition, picking a free port."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def eventually(
    check: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A port of `host` (loopback unless told) nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def free_plane_port() -> int:
    """An API server port for a hack/devcluster plane whose etcd ports (port-4064, port-4063)
    are free as well."""
    while True:
        port = free_port()
        if port > 5500 and all(port_is_free(port - offset) for offset in (4064, 4063)):
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Images every local node has (hack/devcluster.py imports them at `up`; nothing can be pulled).
PAUSE_IMAGE = "kubeloop.dev/pause:3.10"
TESTKIT_IMAGE = "kubeloop.dev/testkit:dev"

# What the restricted Pod Security Standard asks of every Pod and container: the `namespace`
# fixture's namespaces enforce it. Camel-case: for manifests and dict bodies alike.
RESTRICTED_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
