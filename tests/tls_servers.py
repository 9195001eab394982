"""TLS servers on 127.0.0.1 that fail in the handshake or after the request was written.

``trustme`` makes a throwaway certificate authority and a certificate for
``127.0.0.1``; a client that trusts the authority completes the handshake,
one that does not fails in it, before a byte of the request is sent::

    with tls_server("garbage_after_request") as server:
        httpx.get(server.url, verify=server.client_context())   # fails after sending
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import trustme

Behaviour = Literal["handshake_only", "garbage_after_request"]


@dataclass
class TlsServer:
    """A started server; ``requests`` counts the requests it read in full."""

    port: int
    ca: trustme.CA
    requests: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1/things"

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's authority."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def ca_file(self, directory: os.PathLike[str] | str) -> str:
        """The authority's certificate as a PEM file (for ``requests``' ``verify=``)."""
        path = os.path.join(directory, "ca.pem")
        self.ca.cert_pem.write_to_path(path)
        return path


def _read_request(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


#: A TLS application-data record header and a body that no key decrypts.
_BAD_RECORD = b"\x17\x03\x03\x00\x10" + b"not a TLS record"


def _answer(
    raw: socket.socket, context: ssl.SSLContext, server: TlsServer, behaviour: Behaviour
) -> None:
    with raw:
        raw.settimeout(5)
        try:
            conn = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate: the handshake failed
        if behaviour == "garbage_after_request":
            request = _read_request(conn)
            if request:
                server.requests.append(request)
            # A record under the TLS layer that fails the client's next read,
            # after its request went out.
            os.write(conn.fileno(), _BAD_RECORD)
            _wait_for_hang_up(conn)
        with contextlib.suppress(OSError):
            conn.close()


def _wait_for_hang_up(conn: ssl.SSLSocket) -> None:
    """Drain (raw) what the client still sends until it closes: closing first, with
    unread bytes, would reset the connection and could discard our record unread."""
    for _ in range(50):
        readable, _, _ = select.select([conn], [], [], 0.1)
        if readable and not os.read(conn.fileno(), 65536):
            return


def _serve(
    listener: socket.socket, context: ssl.SSLContext, server: TlsServer, behaviour: Behaviour
) -> None:
    while True:
        try:
            raw, _ = listener.accept()
        except OSError:
            return  # the listener was closed: the test is over
        threading.Thread(
            target=_answer, args=(raw, context, server, behaviour), daemon=True
        ).start()


@contextlib.contextmanager
def tls_server(behaviour: Behaviour) -> Iterator[TlsServer]:
    """A TLS server on a free 127.0.0.1 port, for the duration of the block."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server = TlsServer(listener.getsockname()[1], ca)
    thread = threading.Thread(
        target=_serve, args=(listener, context, server, behaviour), daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        # close() alone does not wake a thread blocked in accept(); shutdown() does.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
