"""How far a failed ``requests`` call got, and the patch that reports it.

Two things live here:

- ``transport_failure_of(exc)``: the requests/urllib3 exception mapping. The
  hooks (to tag ``transport_error`` spans) and the retry session (to decide
  whether to send again) both ask it, so they cannot disagree.
- The send patch: ``RequestsInstrumentor`` calls no hook when ``send``
  raises, but the CLIENT span is still current inside ``Session.send`` and
  ``HTTPAdapter.send``, so marked wrappers there report the failure to the
  tagger (and have the span redact the exception it records).

    requests.RequestException
    ├── ConnectTimeout, ProxyError .................... not sent
    ├── SSLError: failed in the TLS handshake ......... not sent
    │             failed after it (request written) ... after send
    ├── ReadTimeout, ChunkedEncodingError ............. after send
    ├── ConnectionError: refused, DNS, connect timeout  not sent
    │                    reset, closed mid-exchange ... after send
    └── anything else (InvalidURL, InvalidHeader...),
        or raised in the caller's response hook ....... other
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import traceback
from collections.abc import Callable, Iterator
from types import FunctionType
from typing import Any, Final

import requests
from opentelemetry.trace import get_current_span
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as u3

from otel_productapi._adapters.requests.private import header_reader, hook_failure, loaded_body
from otel_productapi._core.status import TransportFailure
from otel_productapi._telemetry.outcomes import outcome_of_status
from otel_productapi._telemetry.tagger import Call, current_call

__all__ = ["ADAPTER_PATCH", "CALL_ATTR", "AdapterPatch", "call_of", "transport_failure_of"]

_LOG = logging.getLogger("otel_productapi")

# Failures that happen before a byte of the request reaches the server.
_NOT_SENT_REASONS: Final[tuple[type[BaseException], ...]] = (
    u3.NewConnectionError,  # refused, unreachable, DNS (NameResolutionError subclasses it)
    u3.ConnectTimeoutError,
    u3.ProxyError,
)
_MAX_CHAIN: Final = 16


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: causes, contexts, urllib3 reasons and exception args."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending += [e for e in wrapped if isinstance(e, BaseException)]


def _in_handshake(exc: BaseException) -> bool:
    """True when a TLS failure happened in the handshake, before the request was written.

    urllib3 reports a failed handshake and a bad TLS record on a response
    alike (``SSLError``); the ``ssl`` error underneath tells them apart by
    where it was raised: ``SSLSocket.do_handshake`` (which also raises every
    certificate verification failure) or a read after the request went out.
    """
    for link in _chain(exc):
        if isinstance(link, ssl.CertificateError):
            return True
        if isinstance(link, ssl.SSLError) and any(
            frame.name == "do_handshake" for frame in traceback.extract_tb(link.__traceback__)
        ):
            return True
    return False


def _reason(exc: BaseException) -> BaseException | None:
    """Dig the urllib3 cause out of requests' wrapping (MaxRetryError -> reason)."""
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, u3.MaxRetryError):
        return arg.reason
    if isinstance(arg, BaseException):
        return arg
    return exc.__cause__ or exc.__context__


def transport_failure_of(exc: BaseException) -> TransportFailure:
    """Say whether ``exc`` (raised instead of a response) may have reached the server.

    Connect timeouts, refused connections, DNS failures and TLS handshake
    failures never sent the request. Read timeouts, resets, truncated bodies
    and TLS failures after the handshake may have. URL, header and schema
    errors are not network failures at all. When in doubt, "after send": a
    retry helper must not resend a POST the server may have applied. An
    exception raised in one of the caller's response hooks is the caller's,
    not the network's, whatever its type.
    """
    in_hook = hook_failure(exc)
    if in_hook is not None and not in_hook.exchange:
        return TransportFailure.OTHER
    return _network_failure_of(exc)


def _network_failure_of(exc: BaseException) -> TransportFailure:  # noqa: PLR0911 - one return per row of the mapping
    """``transport_failure_of`` for an exception known not to be the caller's."""
    if isinstance(exc, requests.exceptions.SSLError | u3.SSLError | ssl.SSLError):
        return TransportFailure.NOT_SENT if _in_handshake(exc) else TransportFailure.AFTER_SEND
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ProxyError):
        return TransportFailure.NOT_SENT
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError):
        return TransportFailure.AFTER_SEND
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = _reason(exc)
        if isinstance(reason, u3.SSLError):
            return _network_failure_of(reason)
        if isinstance(reason, _NOT_SENT_REASONS):
            return TransportFailure.NOT_SENT
        # Reset, aborted or closed mid-exchange: the server may have acted on it.
        return TransportFailure.AFTER_SEND
    if isinstance(exc, requests.exceptions.RequestException):
        # InvalidURL, InvalidHeader, MissingSchema...: they subclass OSError via
        # RequestException, so they must be caught before the OSError rule below.
        return TransportFailure.OTHER
    if isinstance(exc, _NOT_SENT_REASONS):
        return TransportFailure.NOT_SENT
    if isinstance(exc, u3.ReadTimeoutError | u3.ProtocolError | OSError):
        return TransportFailure.AFTER_SEND
    return TransportFailure.OTHER


# --- the send patches -------------------------------------------------------------

#: The attribute of a ``PreparedRequest`` that holds its ``Call`` (set by the
#: request hook; redirects and retries send copies or re-send, and each send
#: goes through the hook again).
CALL_ATTR: Final = "_otel_productapi_call"
#: Set on our wrappers (an instrumentation wrapping ours copies it: ours is inside).
PATCH_MARK: Final = "_otel_productapi_patched"
#: What ``RequestsInstrumentor`` sets on its ``Session.send`` wrapper.
_INSTRUMENTED_MARK: Final = "opentelemetry_instrumentation_requests_applied"
#: Failures of the exchange itself (outside the caller's hooks, which
#: ``private.hook_failure`` tells apart).
_EXCHANGE_ERRORS: Final = (requests.RequestException, u3.HTTPError, OSError)


def call_of(request: object) -> Call | None:
    """The call the request hook attached to ``request``, if any."""
    call = getattr(request, CALL_ATTR, None)
    return call if isinstance(call, Call) else None


def _failing_call(request: requests.PreparedRequest) -> Call | None:
    call = call_of(request)
    if call is None or call.span is not get_current_span():
        # Redirect hops are copies of the request sent with the instrumentation
        # suppressed (no span, no hook), and one PreparedRequest may be sent
        # from two threads at once (the later send's call rides on it): the
        # call is the one whose span is current, if the request shares its
        # hooks, as copies do. A call the caller's own hook makes (to another
        # service, say) does not: its failure is not this call's.
        call = current_call()
        if call is None or request.hooks is not call.origin:
            return None
    # The span check keeps a stale call (one whose span ended without a
    # response) from claiming a failure that is not its own.
    if call.done or call.span is not get_current_span():
        return None
    return call


def _own_response(response: object, call: Call) -> requests.Response | None:
    """``response`` if it is an answer to ``call`` (its request or a copy of it)."""
    if not isinstance(response, requests.Response) or type(response.status_code) is not int:
        return None
    sent = response.request
    return response if sent is not None and sent.hooks is call.origin else None


def _report_failure(request: requests.PreparedRequest, exc: BaseException) -> None:
    """``HTTPAdapter.send`` raised: the call got no response.

    The caller's hooks run above ``HTTPAdapter.send``, never inside it, so
    the exception is the network's (or the adapter's).
    """
    call = _failing_call(request)
    if call is not None:
        call.tagger.on_failure(call, _network_failure_of(exc))


def _report_escape(request: requests.PreparedRequest, exc: BaseException) -> None:
    """``Session.send`` raised, perhaps outside ``HTTPAdapter.send``.

    There the adapter is chosen (``InvalidSchema`` for a mistyped scheme in
    the URL or a redirect's ``Location``), a custom adapter sends, the
    caller's response hooks run and the body is read (a truncated body).
    Whatever the failure, what the span records of the exception is
    scrubbed. Counted: a failure of the exchange once, as a transport
    error (a hook reading the body or resending the request, as digest auth
    does, fails the exchange too); a call whose exception carries its own
    response (``TooManyRedirects``, ``raise_for_status`` in a hook) by that
    response, in the response hook; a call whose response a hook of the
    caller's failed on (however: a ``ValueError``, another service's
    ``HTTPError``), by that response, here. Not counted: the caller's own
    failure with no response of the API's to show (the API did nothing
    wrong; nothing may page for it).
    """
    call = _failing_call(request)
    if call is None:
        return
    if _own_response(getattr(exc, "response", None), call) is not None:
        call.tagger.on_escape(call, finish=False)  # the response hook counts it
        return
    in_hook = hook_failure(exc)
    if in_hook is not None and not in_hook.exchange:
        response = _own_response(in_hook.response, call)
        call.tagger.on_escape(call, finish=response is None)
        if response is not None:
            outcome = outcome_of_status(response.status_code)
            body = loaded_body(response) if outcome.reads_body else None
            call.tagger.on_response(call, outcome, header_reader(response), body)
    elif isinstance(exc, _EXCHANGE_ERRORS):
        call.tagger.on_failure(call, _network_failure_of(exc))  # hooks ruled out above
    else:
        call.tagger.on_escape(call, finish=True)


def _wrap_adapter_send(
    original: Callable[..., requests.Response],
) -> Callable[..., requests.Response]:
    @functools.wraps(original, updated=())
    def send(
        self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        try:
            return original(self, request, *args, **kwargs)
        except Exception as exc:
            _report_failure(request, exc)
            raise

    setattr(send, PATCH_MARK, True)
    return send


def _wrap_session_send(
    original: Callable[..., requests.Response],
) -> Callable[..., requests.Response]:
    @functools.wraps(original, updated=())
    def send(
        self: requests.Session, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        try:
            return original(self, request, **kwargs)
        except Exception as exc:
            _report_escape(request, exc)
            raise

    setattr(send, PATCH_MARK, True)
    return send


#: What the patch wraps: ``HTTPAdapter.send`` (the failures of most calls,
#: wherever the instrumentation sits) and ``Session.send`` (the rest; useful
#: only inside the instrumentation's wrapper, where the span is current).
_TARGETS: Final = (
    (HTTPAdapter, _wrap_adapter_send),
    (requests.Session, _wrap_session_send),
)
#: The code of our wrappers: a wrapper around ours copies our mark, not our code.
_OUR_CODE: Final = frozenset(wrap(requests.Session.send).__code__ for _, wrap in _TARGETS)


def _is_ours(method: object) -> bool:
    # A plain function only: wrapt's proxies answer for the code they wrap.
    return type(method) is FunctionType and method.__code__ in _OUR_CODE


class AdapterPatch:
    """Our wrappers of ``HTTPAdapter.send`` and ``Session.send``, installed while anyone needs them.

    Users are counted: ``instrument()`` acquires it and ``uninstrument()``
    releases it; hooks built by ``make_hooks()`` for someone else's
    ``RequestsInstrumentor``, and the zero-code path, acquire it too and
    release it only when they are undone. Each wrapper is removed when the
    last user releases the patch, and only if it is still the one in place
    (compared by identity): if someone wrapped ours since, removing ours
    would drop theirs, so it stays as a pass-through.

    ``Session.send`` is wrapped only while the instrumentation has not
    wrapped it yet: ours must sit inside the instrumentation's wrapper (the
    span is current there) and must never hide that wrapper from its own
    ``uninstrument()``, which looks for its mark on ``Session.send``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._installed: dict[type, Callable[..., requests.Response]] = {}

    def acquire(self) -> None:
        """Install the wrappers that are not in place; count one more user."""
        with self._lock:
            self._users += 1
            for owner, wrap in _TARGETS:
                current = owner.__dict__["send"]
                if _is_ours(current):
                    # Ours, perhaps left as a pass-through and exposed again
                    # since (someone uninstrumented around it): adopt it.
                    self._installed[owner] = current
                    continue
                if getattr(current, PATCH_MARK, False):
                    continue  # a wrapper around ours
                if getattr(current, _INSTRUMENTED_MARK, False):
                    _LOG.warning(
                        "otel_productapi: requests was instrumented before make_hooks(); "
                        "failures outside HTTPAdapter.send (a mistyped scheme, a custom "
                        "adapter, a truncated body) are not tagged or counted; call "
                        "make_hooks() before RequestsInstrumentor().instrument()"
                    )
                    continue  # too late to go inside
                self._installed[owner] = wrap(current)
                owner.send = self._installed[owner]  # type: ignore[method-assign]

    def release(self) -> None:
        """Count one user less; remove the wrappers with the last one, if still ours."""
        with self._lock:
            self._users = max(self._users - 1, 0)
            if self._users:
                return
            for owner, _ in _TARGETS:
                ours = self._installed.pop(owner, None)
                if ours is not None and owner.__dict__["send"] is ours:
                    owner.send = ours.__wrapped__  # type: ignore[attr-defined,method-assign]

    @property
    def users(self) -> int:
        """How many users hold the patch now."""
        with self._lock:
            return self._users

    @property
    def installed(self) -> bool:
        """True while our wrapper is ``HTTPAdapter.send``."""
        return getattr(HTTPAdapter.__dict__["send"], PATCH_MARK, False) is True

    @property
    def session_installed(self) -> bool:
        """True while ``Session.send`` is our wrapper or a wrapper around it."""
        return getattr(requests.Session.__dict__["send"], PATCH_MARK, False) is True


#: The one patch of this process (the patched methods are one per process too).
ADAPTER_PATCH: Final = AdapterPatch()
