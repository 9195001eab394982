"""A threaded HTTP server on 127.0.0.1, served from a daemon thread.

The simulated Product API and the OTLP sink both are one; this owns the
start/stop/port lifecycle so each of them only says how to answer.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

_S = TypeVar("_S", bound="LoopbackServer")


class _QuietServer(ThreadingHTTPServer):
    """A threaded server that does not print a client hanging up as an error,
    and can close the connections it still holds open."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every client still connected (kept-alive connections included)."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client hung up already
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes an unread streamed response resets the
        # connection: expected in tests, noise on stderr.
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Serve HTTP on 127.0.0.1 in a background thread; a context manager.

    Subclasses implement ``_handler_class`` (the request handler to use).

    Args:
        port: The port to bind; 0 picks a free one.
    """

    _thread_name = "loopback-http"

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._httpd: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self: _S) -> _S:
        """Bind and serve in a background thread; returns ``self``. Idempotent."""
        if self._httpd is not None:
            return self
        httpd = _QuietServer(("127.0.0.1", self._port), self._handler_class())
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self._thread_name,
            daemon=True,
        )
        self._httpd, self._thread = httpd, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, hang up on connected clients and release the port. Safe to call twice.

        Kept-alive connections are closed too: otherwise a client's pooled
        connection would still be answered by a stopped server.
        """
        httpd, thread = self._httpd, self._thread
        self._httpd, self._thread = None, None
        if httpd is not None:
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._httpd.server_address[1])

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
