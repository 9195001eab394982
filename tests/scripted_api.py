"""A real HTTP server on 127.0.0.1 that answers exactly what a test scripts.

Unlike ``FakeProductApi`` (which simulates the API), this writes each
response byte for byte: header values may be any bytes (UTF-8, Latin-1,
whatever a misbehaving server sends), bodies any size, statuses anything::

    with ScriptedApi() as api:
        api.script(Reply(404, [(b"X-Request-Id", "jürgen@münchen.de".encode())], b"{}"))
        requests.get(f"{api.url}/v1/things")
        assert api.received == [("GET", "/v1/things", b"")]

Requests that find no scripted reply get ``api.default``.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from otel_productapi.testing._loopback import LoopbackServer

__all__ = ["Reply", "ScriptedApi", "json_reply"]


@dataclass(frozen=True)
class Reply:
    """One response, written as given (``Content-Length`` is added)."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


def json_reply(
    status: int, document: object, headers: list[tuple[bytes, bytes]] | None = None
) -> Reply:
    """A JSON response (``application/json``) with ``document`` as its body."""
    return Reply(
        status,
        [(b"Content-Type", b"application/json"), *(headers or [])],
        json.dumps(document).encode(),
    )


class ScriptedApi(LoopbackServer):
    """Answers each request with the next scripted ``Reply``, else ``default``."""

    _thread_name = "scripted-api"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._received: list[tuple[str, str, bytes]] = []
        self.default = json_reply(404, {"message": "Not found"})

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order (replacing any left)."""
        with self._lock:
            self._replies = deque(replies)

    @property
    def received(self) -> list[tuple[str, str, bytes]]:
        """``(method, raw request target, body)`` of every request so far."""
        with self._lock:
            return list(self._received)

    def reset(self) -> None:
        """Forget scripted replies and received requests."""
        with self._lock:
            self._replies.clear()
            self._received.clear()

    def _next(self, method: str, target: str, body: bytes) -> Reply:
        with self._lock:
            self._received.append((method, target, body))
            return self._replies.popleft() if self._replies else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = api._next(self.command, self.path, body)
                lines = [f"HTTP/1.1 {reply.status} X".encode()]
                lines += [name + b": " + value for name, value in reply.headers]
                lines.append(f"Content-Length: {len(reply.body)}".encode())
                self.wfile.write(b"\r\n".join(lines) + b"\r\n\r\n" + reply.body)
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815

        return Handler
