"""The only reads of ``httpx`` internals, one function each.

httpx tells a transport nothing about whether the caller asked for a
streamed response (``client.stream(...)``, ``send(..., stream=True)``): only
``Client.send``'s own ``stream`` argument says so. tests/adapters/httpx/test_httpx_private.py
fails loudly if a release changes what this reads.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Final

import httpx

__all__ = ["streams_the_response"]

_SEND_CODES: Final = frozenset({httpx.Client.send.__code__, httpx.AsyncClient.send.__code__})
# Client.send -> _send_handling_auth -> _send_handling_redirects -> _send_single_request
# -> the instrumentation's wrappers -> us: well within this many frames.
_MAX_DEPTH: Final = 32


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
