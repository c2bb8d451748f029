"""The one-write HTTP protocol: same bytes as uvicorn's, head and body in one write.

Over a real socket to the live server (uvicorn with ``OneWriteHttpToolsProtocol``), and on
``_HeadHoldingTransport`` with a transport that records its writes (the only stand-in here:
what is asserted is exactly which ``write`` calls the real transport would get).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from kubeloop_runtime.serve.protocol import _HeadHoldingTransport

# Fixtures (tests/runtime/conftest.py): TrainedArtifact folders and a LiveServer starter.
TrainedArtifact = Any
StartServer = Callable[..., Any]


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def holding(recording: RecordingTransport) -> _HeadHoldingTransport:
    transport: Any = recording
    return _HeadHoldingTransport(transport)


def test_success_head_goes_out_with_the_body() -> None:
    recording = RecordingTransport()
    transport = holding(recording)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert recording.writes == []
    transport.write(b"{}")
    assert recording.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


def test_error_heads_and_continue_are_not_held() -> None:
    recording = RecordingTransport()
    transport = holding(recording)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: 2\r\n\r\n")
    assert len(recording.writes) == 2


def test_held_head_is_written_on_flush_and_before_close() -> None:
    recording = RecordingTransport()
    transport = holding(recording)
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    transport.flush()
    assert recording.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]
    transport.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
    transport.close()
    assert recording.writes[-1] == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"
    assert recording.closed
    assert transport.is_closing()


def test_live_responses_are_whole_and_keep_alive_works(
    iris_artifact: TrainedArtifact, live_server: StartServer
) -> None:
    server = live_server(iris_artifact.directory)
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as connection:
        for _ in range(3):  # the same connection: nothing held back between responses
            connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: test\r\n\r\n")
            received = b""
            while not received.endswith(b'{"live":true}'):
                chunk = connection.recv(65536)
                assert chunk, f"connection closed after {received!r}"
                received += chunk
            assert received.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"content-length: 13\r\n" in received
    # an error answer and a 2xx answer over httpx, as any client sees them
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/v2/models/nope/infer", json={}).status_code == 404
        assert client.get("/v2/health/ready").json() == {"ready": True}
