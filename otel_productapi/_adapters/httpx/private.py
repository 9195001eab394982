"""The only reads of ``httpx`` internals, one function each.

httpx tells a transport nothing about whether the caller asked for a
streamed response (``client.stream(...)``, ``send(..., stream=True)``): only
``Client.send``'s own ``stream`` argument says so. ``str(httpx.URL)`` joins
its parsed parts again in three Python calls, per request. And ``httpx.Headers.get``
scans its list and decodes every match per look-up, where the tagger makes
five or more: ``header_reader`` indexes the list once. tests/adapters/httpx/test_httpx_private.py
fails loudly if a release changes what these read.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Final

import httpx

from otel_productapi._core.headers import Headers

__all__ = ["header_reader", "plain_length", "streams_the_response", "url_text"]

_SEND_CODES: Final = frozenset({httpx.Client.send.__code__, httpx.AsyncClient.send.__code__})
# Client.send -> _send_handling_auth -> _send_handling_redirects -> _send_single_request
# -> the instrumentation's wrappers -> us: well within this many frames.
_MAX_DEPTH: Final = 32
_LIST: Final = "_list"
_URI: Final = "_uri_reference"
_CONTENT_LENGTH: Final = b"content-length"
_CONTENT_ENCODING: Final = b"content-encoding"
_PLAIN_ENCODINGS: Final = frozenset({b"", b"identity"})


def streams_the_response() -> bool:
    """True unless the ``Client.send`` on the stack was called with ``stream=False``.

    Looks up the call stack (coroutines awaiting one another are linked the
    same way) for the frame of ``httpx.Client.send`` or ``AsyncClient.send``
    and reads its ``stream`` argument. Not found (a transport called
    directly, a client we do not know): assume a stream, so the body is left
    alone.
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return True
        if frame.f_code in _SEND_CODES:
            return frame.f_locals.get("stream") is not False
        frame = frame.f_back
    return True


class _ListReader:
    """``get`` from ``httpx.Headers``' list of ``(name, lower-case name, value)``,
    indexed once by lower-case name: one dictionary look-up and one decode per
    header read, where ``Headers.get`` takes four Python calls and a scan.

    Values are decoded as Latin-1, as the core expects of every client (it
    reads UTF-8 again out of that); ASCII values, all that the tagger parses,
    are the same text in every encoding httpx may pick.
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[bytes, bytes]) -> None:
        self._values = values

    def get(self, key: str, /) -> str | None:
        value = self._values.get(key.encode("latin-1"))
        return None if value is None else value.decode("latin-1")


def header_reader(headers: httpx.Headers) -> Headers:
    """The headers, for look-ups by lower-case name.

    A reader of the list behind ``httpx.Headers``; a name sent twice (httpx
    joins the values with ``", "``), or any other headers object, is left to
    httpx's own ``get``.
    """
    items = getattr(headers, _LIST, None)
    if type(headers) is not httpx.Headers or type(items) is not list:
        return headers
    values = {name: value for _, name, value in items}
    return _ListReader(values) if len(values) == len(items) else headers


def plain_length(headers: httpx.Headers) -> int | None:
    """The declared ``Content-Length`` of a body sent as it is, or ``None``.

    ``None`` when the length is absent, repeated or not plain digits, or when
    a ``Content-Encoding`` other than ``identity`` is declared: one pass over
    the list, where two ``get`` calls would make two.
    """
    items = getattr(headers, _LIST, None)
    if type(headers) is not httpx.Headers or type(items) is not list:
        return None
    length: bytes | None = None
    for _, name, value in items:
        if name == _CONTENT_LENGTH:
            if length is not None:
                return None
            length = value
        elif name == _CONTENT_ENCODING and value.strip().lower() not in _PLAIN_ENCODINGS:
            return None
    if length is None or not length.isdigit():
        return None
    return int(length)


def url_text(url: httpx.URL) -> str:
    """``str(url)``, joined here from its parsed parts for the usual URL.

    The usual URL: a scheme and a host that is no IPv6 literal, without user
    info or fragment. Any other is ``str(url)``.
    """
    parts = getattr(url, _URI, None)
    if type(url) is not httpx.URL or not isinstance(parts, tuple) or len(parts) != 7:
        return str(url)
    scheme, userinfo, host, port, path, query, fragment = parts
    if not (scheme and host) or userinfo or fragment is not None or ":" in host:
        return str(url)
    text = f"{scheme}://{host}{path}" if port is None else f"{scheme}://{host}:{port}{path}"
    return text if query is None else f"{text}?{query}"
