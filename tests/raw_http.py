"""A server on 127.0.0.1 that answers with exact bytes: truncated bodies, stalls, resets.

For what a real HTTP server library will not send: a ``Content-Length`` the
body does not reach, a body that stops until released, an RST instead of a FIN.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["RawServer", "http_response", "raw_server"]


# --- a server that answers with exact bytes ----------------------------------------------


def http_response(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
    chunked: bool = False,
) -> bytes:
    """Raw HTTP/1.1 response bytes: ``Content-Length`` is ``length`` (default: the
    body's), or the body goes out in chunks (no length)."""
    lines = [f"HTTP/1.1 {status} Scripted", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7])
            for i in range(0, len(body), 7)
        )
        body = payload + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class RawServer:
    """Started by ``raw_server``: its URL, and the requests it read (one per connection)."""

    port: int
    received: list[bytes]

    def url(self, path: str = "/v1/projects/p1/users/u1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            wanted = int(line.split(b":", 1)[1])
            while len(rest) < wanted:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
    return head + b"\r\n\r\n" + rest


@contextlib.contextmanager
def raw_server(
    first: bytes,
    rest: bytes = b"",
    *,
    release: threading.Event | None = None,
    reset: bool = False,
    then: Sequence[bytes | None] = (),
) -> Iterator[RawServer]:
    """A 127.0.0.1 server that answers each connection with ``first``, then (once
    ``release`` is set, if given) ``rest``, then closes it (``reset``: at once, with
    an RST instead of a FIN). ``then``: what the second, third... connection gets
    instead of ``first`` (its last item repeats; ``None``: an RST once the request is
    read)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = RawServer(listener.getsockname()[1], [])
    stop = threading.Event()

    def answer(conn: socket.socket, number: int) -> None:
        answer = first if number == 0 or not then else then[min(number, len(then)) - 1]
        with conn:
            conn.settimeout(30)
            with contextlib.suppress(OSError):
                server.received.append(_read_request(conn))
                if answer is not None:
                    conn.sendall(answer)
                if reset or answer is None:
                    # Linger 0: close() sends RST instead of FIN.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if release is not None:
                    while not (release.wait(0.05) or stop.is_set()):
                        pass
                if rest:
                    conn.sendall(rest)
                conn.shutdown(socket.SHUT_WR)
                # Let the client read to the end before the close.
                conn.recv(65536)

    def serve() -> None:
        listener.settimeout(0.05)
        number = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=answer, args=(conn, number), daemon=True).start()
            number += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        listener.close()
