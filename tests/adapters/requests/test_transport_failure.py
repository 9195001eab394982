"""Real network failures on 127.0.0.1 map to how far the request got.

Every socket here is on the loopback interface, and the session ignores
proxy variables, so nothing leaves the machine.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from otel_productapi._adapters.requests.transport import transport_failure_of
from otel_productapi._core.status import TransportFailure

LOOPBACK = "127.0.0.1"


def _failure_of(call: Callable[[], object]) -> TransportFailure:
    with pytest.raises(requests.RequestException) as info:
        call()
    return transport_failure_of(info.value)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A loopback socket that completes handshakes (via the backlog) but never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((LOOPBACK, 0))
    server.listen(8)
    yield server
    server.close()


def _serve_once(server: socket.socket, *, reset: bool) -> threading.Thread:
    """Accept one connection, read the request, then close it (or reset it)."""

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            conn.recv(65536)
            if reset:
                # Linger 0: close() sends RST instead of FIN.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _port(server: socket.socket) -> int:
    return int(server.getsockname()[1])


def test_closed_port_is_not_sent(session: requests.Session) -> None:
    """A refused connection never sent the request."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind((LOOPBACK, 0))
    port = _port(probe)
    probe.close()  # nothing listens on this port any more
    url = f"http://{LOOPBACK}:{port}/v1/things"
    assert _failure_of(lambda: session.get(url, timeout=2)) == TransportFailure.NOT_SENT


def test_read_timeout_is_after_send(session: requests.Session, listening: socket.socket) -> None:
    """A server that accepts and never answers may have received the request."""
    url = f"http://{LOOPBACK}:{_port(listening)}/v1/things"
    assert (
        _failure_of(lambda: session.post(url, data=b"{}", timeout=(2, 0.2)))
        == TransportFailure.AFTER_SEND
    )


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_connection_dropped_after_request_is_after_send(
    session: requests.Session, listening: socket.socket, reset: bool
) -> None:
    """A server that reads the request and then closes or resets may have acted on it."""
    thread = _serve_once(listening, reset=reset)
    url = f"http://{LOOPBACK}:{_port(listening)}/v1/things"
    assert _failure_of(lambda: session.get(url, timeout=5)) == TransportFailure.AFTER_SEND
    thread.join(timeout=5)


@pytest.mark.parametrize(
    "url",
    ["http://", "ftp://127.0.0.1/x", "127.0.0.1/no-scheme", "http://127.0.0.1:notaport/"],
    ids=["no-host", "bad-scheme", "missing-scheme", "bad-port"],
)
def test_invalid_url_is_other(session: requests.Session, url: str) -> None:
    """A URL that cannot be sent is not a network failure; retrying repeats it."""
    assert _failure_of(lambda: session.get(url, timeout=2)) == TransportFailure.OTHER
