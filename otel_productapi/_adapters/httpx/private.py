"""The only reads of ``httpx`` internals, one function each.

httpx tells a transport nothing about whether the caller asked for a
streamed response (``client.stream(...)``, ``send(..., stream=True)``): only
``Client.send``'s own ``stream`` argument says so. ``str(httpx.URL)`` joins
its parsed parts again in three Python calls, per request. And ``httpx.Headers.get``
scans its list and decodes every match per look-up, where the tagger makes
five or more: ``picked_headers`` takes what the tagger reads in one pass.
tests/adapters/httpx/test_httpx_private.py fails loudly if a release
changes what these read.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from types import FrameType
from typing import Final

import httpx

from otel_productapi._core.headers import Headers

__all__ = ["BODY_HEADERS", "picked_headers", "streams_the_response", "url_text", "wanted"]

_SEND_CODES: Final = frozenset({httpx.Client.send.__code__, httpx.AsyncClient.send.__code__})
# Client.send -> _send_handling_auth -> _send_handling_redirects -> _send_single_request
# -> the instrumentation's wrappers -> us: well within this many frames.
_MAX_DEPTH: Final = 32
_LIST: Final = "_list"
_URI: Final = "_uri_reference"


class _SendFrames:
    """Finds ``Client.send``'s frame above a transport, at the depths it was found before.

    Walking the stack frame by frame makes a frame object of each (about
    18,000 instructions a walk under Python 3.11); ``sys._getframe(depth)``
    makes only the one it returns. The same client stack puts ``send`` at
    the same depth every time, so the depths found are kept (at most
    ``MAX_DEPTHS``; a new one past that replaces the oldest) and tried
    first. A frame found there counts only if it is ``send``'s and holds the
    very request the transport got, so a stale depth cannot misread another
    call's ``send``: anything else is walked. (Only a transport that hands
    the caller's very request object on to another client's ``send`` could
    be read at the outer ``send``; that decides no more than whether a
    small error body is read ahead.)
    """

    MAX_DEPTHS: Final = 4

    def __init__(self) -> None:
        self.depths: list[int] = []

    def stream_argument(self, request: object, above: int) -> object:
        """``stream`` of the nearest ``send`` frame, ``above`` frames above the caller
        of this method; ``None`` when there is none."""
        for depth in self.depths:
            try:
                frame = sys._getframe(depth + above + 1)
            except ValueError:
                continue
            if frame.f_code in _SEND_CODES:
                local = frame.f_locals
                if local.get("request") is request:
                    return local.get("stream")
        walked: FrameType | None = sys._getframe(above + 1)
        for depth in range(_MAX_DEPTH):
            if walked is None:
                return None
            if walked.f_code in _SEND_CODES:
                self._learn(depth)
                return walked.f_locals.get("stream")
            walked = walked.f_back
        return None

    def _learn(self, depth: int) -> None:
        # A list replaced whole: a thread reading the old one meanwhile is fine.
        depths = [d for d in self.depths if d != depth]
        self.depths = [depth, *depths][: self.MAX_DEPTHS]


_send_frames: Final = _SendFrames()


def streams_the_response(request: httpx.Request, *, above: int = 0) -> bool:
    """True unless the ``Client.send`` on the stack was called with ``stream=False``.

    Looks up the call stack (coroutines awaiting one another are linked the
    same way) for the frame of ``httpx.Client.send`` or ``AsyncClient.send``,
    starting ``above`` frames above the caller, and reads its ``stream``
    argument. Not found (a transport called directly, a client we do not
    know): assume a stream, so the body is left alone.
    """
    return _send_frames.stream_argument(request, above + 1) is not False


#: Headers the transport patch reads to decide on a body, picked with the tagger's.
BODY_HEADERS: Final = ("content-length", "content-encoding")


@functools.lru_cache(maxsize=64)
def wanted(names: tuple[str, ...]) -> Mapping[bytes, str]:
    """What ``picked_headers`` looks for: ``names``, lower-case, by the bytes httpx
    keeps them as. Made once per tuple of names (the transport patch asks on
    every error response)."""
    return {name.lower().encode("latin-1"): name.lower() for name in names}


def picked_headers(headers: httpx.Headers, names: Mapping[bytes, str]) -> Headers:
    """The headers of ``names`` the response carries, as a ``dict`` of text values.

    One pass over the list behind ``httpx.Headers`` (where every
    ``Headers.get`` takes four Python calls and a scan). Values are decoded
    as Latin-1, as the core expects of every client (it reads UTF-8 again out
    of that); ASCII values, all that the tagger parses, are the same text in
    every encoding httpx may pick. A wanted name sent twice (httpx joins the
    values with ``", "``), or any other headers object, is left to httpx's
    own ``get``.
    """
    items = getattr(headers, _LIST, None)
    if type(headers) is not httpx.Headers or type(items) is not list:
        return headers
    picked: dict[str, str] = {}
    for _, lower, value in items:
        if lower in names:  # most headers are not: one test each
            name = names[lower]
            if name in picked:
                return headers
            picked[name] = value.decode("latin-1")
    return picked


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
