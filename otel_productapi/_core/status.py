"""The Product API's status table, as data, and the pure functions that read it.

Written from the API's error page (the single source of truth): for each
documented status, its error class, whether a retry can help, and the advice
the page gives. Nothing here imports OpenTelemetry or requests, so the retry
helper, the hooks and the alert docs all read the same table.

    outcome
    ├── 1xx / 2xx / 3xx ............ success: no class
    ├── documented 4xx ............. its own class (400, 401, 403, 404, 422, 429)
    ├── any other 4xx .............. client_error, not retryable
    ├── any 5xx .................... server_error, retryable
    └── no response ................ transport_error
        ├── never left (connect, DNS, TLS) ........ retryable
        ├── sent, then timed out / reset .......... retryable if idempotent
        └── anything else (bad URL, bad header) ... not retryable
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from otel_productapi._core import names as n

__all__ = [
    "IDEMPOTENT_METHODS",
    "KNOWN_METHODS",
    "METHOD_NAMES",
    "STATUS_TABLE",
    "Classification",
    "TransportFailure",
    "classify_status",
    "classify_transport_failure",
    "normalize_method",
]


@dataclass(frozen=True, slots=True)
class Classification:
    """What an outcome means: its error class, whether a retry can help, and why.

    Attributes:
        error_class: One of the ``productapi.error.class`` values.
        retryable: True when sending the same request again can succeed.
        advice: The error page's advice, for runbooks and logs.
    """

    error_class: str
    retryable: bool
    advice: str


#: The documented statuses, exactly as the error page lists them.
STATUS_TABLE: Final[dict[int, Classification]] = {
    400: Classification(
        n.CLASS_BAD_REQUEST,
        False,
        "The body or query string is malformed or has the wrong shape; fix the payload first.",
    ),
    401: Classification(
        n.CLASS_UNAUTHORIZED,
        False,
        "The token is missing, revoked or malformed; not retryable with the same token.",
    ),
    403: Classification(
        n.CLASS_FORBIDDEN,
        False,
        "The token lacks the scope or privacy level; mint a token with the right scope.",
    ),
    404: Classification(
        n.CLASS_NOT_FOUND,
        False,
        "The project, resource, user, phone, e-mail or audience in the URL does not exist "
        "or is not visible to this token.",
    ),
    422: Classification(
        n.CLASS_VALIDATION_FAILED,
        False,
        "Validation failed (for a batch, every item failed); fix the items and resubmit.",
    ),
    429: Classification(
        n.CLASS_RATE_LIMITED,
        True,
        "The per-endpoint rate-limit window is spent; retry after X-RateLimit-Reset.",
    ),
    500: Classification(
        n.CLASS_SERVER_ERROR,
        True,
        "Something broke on the API's side; retry with exponential backoff, and contact "
        "support with the request id if it persists.",
    ),
}

_OTHER_CLIENT_ERROR: Final = Classification(
    n.CLASS_CLIENT_ERROR,
    False,
    "Every 4xx other than 429 means the request itself is wrong; retrying will not help.",
)
_OTHER_SERVER_ERROR: Final = Classification(
    n.CLASS_SERVER_ERROR,
    True,
    "A server-side failure; retry with exponential backoff starting at 1 s, capped at a minute.",
)

#: Methods whose repetition has the same effect as one call (the retry policy's list).
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: Methods recorded as they are; any other becomes ``_OTHER`` (semantic
#: conventions), so made-up methods cannot blow up metric cardinality.
KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
OTHER_METHOD: Final = "_OTHER"
#: Each known method as text and as bytes (httpx hands its hooks bytes), to its
#: name: one look-up for the usual method; ``normalize_method`` for the rest.
METHOD_NAMES: Final[Mapping[str | bytes | None, str]] = {
    **{method: method for method in KNOWN_METHODS},
    **{method.encode("ascii"): method for method in KNOWN_METHODS},
}


def normalize_method(method: str | bytes | None) -> str:
    """``method`` upper-cased if it is one of ``KNOWN_METHODS``, else ``_OTHER``."""
    if isinstance(method, bytes):
        method = method.decode("latin-1")
    if method is None:
        return OTHER_METHOD
    if method in KNOWN_METHODS:
        return method
    upper = method.strip().upper()
    return upper if upper in KNOWN_METHODS else OTHER_METHOD


def _build_lookup() -> dict[int, Classification]:
    lookup: dict[int, Classification] = {}
    for status in range(400, 600):
        default = _OTHER_CLIENT_ERROR if status < 500 else _OTHER_SERVER_ERROR
        lookup[status] = STATUS_TABLE.get(status, default)
    return lookup


# Precomputed so that classifying on the per-request path is one dict lookup.
_BY_STATUS: Final = _build_lookup()


def classify_status(status: int) -> Classification | None:
    """Classify an HTTP status; ``None`` means success (1xx, 2xx, 3xx).

    Statuses outside 100-599 are not HTTP: below 400 they count as success
    only if they are at least 100; anything else non-standard is a
    ``server_error`` (the server misbehaved), never an exception.
    """
    found = _BY_STATUS.get(status)
    if found is not None:
        return found
    if 100 <= status < 400:
        return None
    return _OTHER_SERVER_ERROR


class TransportFailure(enum.Enum):
    """Why a request got no response, as far as retry safety is concerned."""

    #: The request never left: connection refused, DNS, TLS handshake, connect timeout.
    NOT_SENT = "not_sent"
    #: The request may have reached the server: read timeout, reset after sending.
    AFTER_SEND = "after_send"
    #: Not a network failure (invalid URL or header, a bug): retrying repeats it.
    OTHER = "other"


_TRANSPORT_NOT_SENT: Final = Classification(
    n.CLASS_TRANSPORT_ERROR,
    True,
    "The request never reached the API (connect, DNS or TLS failure); it is safe to retry.",
)
_TRANSPORT_AFTER_SEND_IDEMPOTENT: Final = Classification(
    n.CLASS_TRANSPORT_ERROR,
    True,
    "No response after sending; the method is idempotent, so a retry is safe.",
)
_TRANSPORT_AFTER_SEND_UNSAFE: Final = Classification(
    n.CLASS_TRANSPORT_ERROR,
    False,
    "No response after sending a non-idempotent request; it may have been applied, "
    "so do not retry blindly.",
)
_TRANSPORT_OTHER: Final = Classification(
    n.CLASS_TRANSPORT_ERROR,
    False,
    "The request could not be sent as written (invalid URL or header); retrying repeats it.",
)


def classify_transport_failure(failure: TransportFailure, method: str) -> Classification:
    """Classify a call that got no response at all.

    Args:
        failure: How far the request got before failing.
        method: The HTTP method, any case.
    """
    if failure is TransportFailure.NOT_SENT:
        return _TRANSPORT_NOT_SENT
    if failure is TransportFailure.AFTER_SEND:
        if method.upper() in IDEMPOTENT_METHODS:
            return _TRANSPORT_AFTER_SEND_IDEMPOTENT
        return _TRANSPORT_AFTER_SEND_UNSAFE
    return _TRANSPORT_OTHER
