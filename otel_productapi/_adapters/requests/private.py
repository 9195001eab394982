"""The only reads of ``requests``' private attributes, one function each.

``requests`` has no public way to ask "is the body already in memory?"
without reading it (``response.content`` reads a streamed body), nor "where
did the body start?" for a file body it sent, nor "did ``Session.send`` fail
in one of the caller's response hooks, and on which response?".
tests/adapters/requests/test_requests_private.py fails loudly if a release
renames what these read.
"""

from __future__ import annotations

from types import CodeType
from typing import Final, NamedTuple

import requests
from requests.hooks import dispatch_hook
from requests.structures import CaseInsensitiveDict

from otel_productapi._core.headers import Headers

__all__ = ["HookFailure", "body_position", "header_reader", "hook_failure", "loaded_body"]

_STORE: Final = "_store"
_DISPATCH_HOOK: Final = dispatch_hook.__code__
#: Where a response's body is read: ``Response.content`` and the generator
#: inside ``Response.iter_content`` (a parse error in ``json()`` is neither).
_BODY_READS: Final = frozenset(
    [
        requests.Response.content.fget.__code__,  # type: ignore[attr-defined]
        *(
            const
            for const in requests.Response.iter_content.__code__.co_consts
            if isinstance(const, CodeType) and const.co_name == "generate"
        ),
    ]
)
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


class HookFailure(NamedTuple):
    """An exception raised inside one of the caller's requests response hooks.

    Attributes:
        response: The response that hook was given (``None`` if a hook
            before it returned something else).
        exchange: The failure is still the exchange's: the hook was reading
            that response's body (``response.content`` meets a truncated
            body first there, since requests runs hooks before reading it),
            or resending its request (``HTTPDigestAuth`` answers a 401 so).
    """

    response: requests.Response | None
    exchange: bool


def hook_failure(exc: BaseException) -> HookFailure | None:
    """How ``exc`` relates to the caller's requests ``hooks={"response": ...}``
    callbacks (run by ``dispatch_hook`` inside ``Session.send``), or ``None``
    if it was not raised inside one.

    Read from the traceback, only on that failure path: requests says
    nothing else about where ``Session.send`` failed.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code is not _DISPATCH_HOOK:
        tb = tb.tb_next
    if tb is None:
        return None
    response = tb.tb_frame.f_locals.get(_HOOK_DATA)
    if not isinstance(response, requests.Response):
        return HookFailure(None, exchange=False)
    sent = response.request
    origin = sent.hooks if isinstance(sent, requests.PreparedRequest) else None
    # Below the hook: a read of the response's body, or a send of a copy of
    # its request (copies share their hooks).
    while (tb := tb.tb_next) is not None:
        local = tb.tb_frame.f_locals
        request = local.get("request")
        # (``generate`` sees ``self`` as a free variable, in its locals too.)
        if (tb.tb_frame.f_code in _BODY_READS and local.get("self") is response) or (
            origin is not None
            and isinstance(request, requests.PreparedRequest)
            and request.hooks is origin
        ):
            return HookFailure(response, exchange=True)
    return HookFailure(response, exchange=False)
