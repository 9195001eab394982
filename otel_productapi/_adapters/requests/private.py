"""The only reads of ``requests``' private attributes, one function each.

``requests`` has no public way to ask "is the body already in memory?"
without reading it (``response.content`` reads a streamed body), nor "where
did the body start?" for a file body it sent, nor "did ``Session.send`` fail
in one of the caller's response hooks, and on which response?".
tests/adapters/requests/test_requests_private.py fails loudly if a release
renames what these read.
"""

from __future__ import annotations

from typing import Final

import requests
from requests.hooks import dispatch_hook
from requests.structures import CaseInsensitiveDict

from otel_productapi._core.headers import Headers

__all__ = ["body_position", "header_reader", "hook_failure", "loaded_body"]

_STORE: Final = "_store"
_DISPATCH_HOOK: Final = dispatch_hook.__code__
#: The local of ``dispatch_hook`` holding the response each hook is given.
_HOOK_DATA: Final = "hook_data"


def loaded_body(response: requests.Response) -> bytes | None:
    """The body ``requests`` already read into memory, or ``None``.

    ``None`` for a streamed response whose body is unread (reading it would
    delay the call and change what the caller reads) and for an empty body.
    """
    if not getattr(response, "_content_consumed", False):
        return None
    content = getattr(response, "_content", None)
    return content if isinstance(content, bytes) and content else None


def body_position(request: requests.PreparedRequest) -> int | None:
    """Where a file-like body started when ``requests`` prepared it, or ``None``."""
    position = getattr(request, "_body_position", None)
    return position if isinstance(position, int) else None


class _StoreReader:
    """``get`` straight from a ``CaseInsensitiveDict``'s store of
    ``lower-case name -> (name, value)``: one look-up where the public
    ``get`` takes three Python calls (``Mapping.get``, ``__getitem__``, ``lower``)."""

    __slots__ = ("_store",)

    def __init__(self, store: dict[str, tuple[str, str]]) -> None:
        self._store = store

    def get(self, key: str, /) -> str | None:
        item = self._store.get(key)
        return None if item is None else item[1]


def header_reader(response: requests.Response) -> Headers:
    """The response's headers, for look-ups by lower-case name.

    A reader of the store behind requests' own ``CaseInsensitiveDict``;
    any other headers object (a user may replace ``response.headers``) is
    returned as it is.
    """
    headers = response.headers
    store = getattr(headers, _STORE, None)
    if type(headers) is CaseInsensitiveDict and isinstance(store, dict):  # an OrderedDict
        return _StoreReader(store)
    return headers


def hook_failure(exc: BaseException) -> tuple[bool, requests.Response | None]:
    """Whether ``exc`` was raised inside a requests ``hooks={"response": ...}``
    callback (the caller's code, run by ``dispatch_hook`` inside
    ``Session.send``), and the response that callback was given.

    Read from the traceback, only on that failure path: requests says
    nothing else about where ``Session.send`` failed.
    """
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is _DISPATCH_HOOK:
            response = frame.f_locals.get(_HOOK_DATA)
            return True, response if isinstance(response, requests.Response) else None
        tb = tb.tb_next
    return False, None
