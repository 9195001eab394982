"""Map a requests/urllib3 exception to how far the request got.

The hooks (to tag ``transport_error`` spans) and the retry session (to decide
whether to send again) both ask this one question, so they cannot disagree.
"""

from __future__ import annotations

import requests
from urllib3 import exceptions as u3

from otel_productapi._core.status import TransportFailure

__all__ = ["transport_failure_of"]

# Failures that happen before a byte of the request reaches the server.
_NOT_SENT_REASONS: tuple[type[BaseException], ...] = (
    u3.NewConnectionError,  # refused, unreachable, DNS (NameResolutionError subclasses it)
    u3.ConnectTimeoutError,
    u3.SSLError,
    u3.ProxyError,
)


def _reason(exc: BaseException) -> BaseException | None:
    """Dig the urllib3 cause out of requests' wrapping (MaxRetryError -> reason)."""
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, u3.MaxRetryError):
        return arg.reason
    if isinstance(arg, BaseException):
        return arg
    return exc.__cause__ or exc.__context__


def transport_failure_of(exc: BaseException) -> TransportFailure:  # noqa: PLR0911 - one return per row of the mapping
    """Say whether ``exc`` (raised instead of a response) may have reached the server.

    Connect timeouts, refused connections, DNS and TLS failures never sent
    the request. Read timeouts, resets and truncated bodies may have. URL,
    header and schema errors are not network failures at all.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return TransportFailure.NOT_SENT
    if isinstance(exc, requests.exceptions.ProxyError):
        return TransportFailure.NOT_SENT
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError):
        return TransportFailure.AFTER_SEND
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = _reason(exc)
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
