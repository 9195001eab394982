"""What each outcome of a call adds to its span and its count, decided once.

An outcome is a response status or a kind of transport failure. Each is
looked up here and its attributes built once, so the per-response work is
one dictionary look-up, and metrics can key their series by the ``Outcome``
object itself (identity hash: cheap, and the same object for the same
status, always).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from otel_productapi._core import names as n
from otel_productapi._core.status import (
    IDEMPOTENT_METHODS,
    Classification,
    TransportFailure,
    classify_status,
    classify_transport_failure,
)

__all__ = [
    "FAILURE_OUTCOMES",
    "OUTCOME_429",
    "OUTCOME_500",
    "Outcome",
    "outcome_of_status",
    "reads_body",
]

AttributeValue = str | bool | int


@dataclass(frozen=True, slots=True, eq=False)
class Outcome:
    """One status, or one kind of transport failure, and what it records.

    Compared and hashed by identity: there is exactly one ``Outcome`` per
    status (``outcome_of_status``) and per failure kind (``FAILURE_OUTCOMES``).

    Attributes:
        status: The HTTP status; ``None`` when no response arrived.
        classification: Class and retryability; ``None`` on success.
        span_attributes: ``productapi.error.class`` and ``.retryable``, or empty.
        metric_attributes: The same plus ``http.response.status_code`` when
            there is one: this outcome's part of a ``productapi.client.requests``
            series.
        batch: A status that may carry a batch outcome (202, 422).
        reads_body: The body is worth reading (an error, or a batch).

    The mappings are plain dicts typed read-only (see ``Route``).
    """

    status: int | None
    classification: Classification | None
    span_attributes: Mapping[str, AttributeValue] = field(repr=False)
    metric_attributes: Mapping[str, AttributeValue] = field(repr=False)
    batch: bool
    reads_body: bool


_BATCH_STATUSES: Final = frozenset({202, 422})


def _outcome(status: int | None, classification: Classification | None) -> Outcome:
    span: dict[str, AttributeValue] = {}
    if classification is not None:
        span[n.ATTR_ERROR_CLASS] = classification.error_class
        span[n.ATTR_ERROR_RETRYABLE] = classification.retryable
    metric: dict[str, AttributeValue] = {}
    if status is not None:
        metric[n.ATTR_HTTP_RESPONSE_STATUS_CODE] = status
    metric.update(span)
    batch = status in _BATCH_STATUSES
    return Outcome(
        status=status,
        classification=classification,
        span_attributes=span,
        metric_attributes=metric,
        batch=batch,
        reads_body=batch or classification is not None,
    )


# Every status an HTTP client can hand over has three digits (http.client,
# h11 and urllib3 refuse others), so one table covers them all; each entry is
# built on first use, under a lock so that a status never gets two outcomes.
_BY_STATUS: Final[list[Outcome | None]] = [None] * 1000
_lock: Final = threading.Lock()
# Anything else (a custom adapter's invention) shares one outcome, so it
# cannot mint series: classified as the table says, without a status label.
_UNKNOWN_STATUS: Final = _outcome(None, classify_status(-1))


def outcome_of_status(status: int) -> Outcome:
    """The one ``Outcome`` of an HTTP status."""
    if type(status) is not int or not 0 <= status < 1000:
        return _UNKNOWN_STATUS
    found = _BY_STATUS[status]
    if found is None:
        with _lock:
            found = _BY_STATUS[status]
            if found is None:
                found = _BY_STATUS[status] = _outcome(status, classify_status(status))
    return found


OUTCOME_429: Final = outcome_of_status(429)
OUTCOME_500: Final = outcome_of_status(500)


def _failure_outcomes() -> dict[tuple[TransportFailure, bool], Outcome]:
    # One outcome per distinct (class, retryable): two failures that record
    # the same attributes must share a series.
    by_attributes: dict[tuple[str, bool], Outcome] = {}
    table: dict[tuple[TransportFailure, bool], Outcome] = {}
    for failure in TransportFailure:
        for idempotent in (True, False):
            method = next(iter(IDEMPOTENT_METHODS)) if idempotent else "POST"
            classification = classify_transport_failure(failure, method)
            key = (classification.error_class, classification.retryable)
            if key not in by_attributes:
                by_attributes[key] = _outcome(None, classification)
            table[failure, idempotent] = by_attributes[key]
    return table


#: ``(failure, method is idempotent) -> Outcome`` for calls that got no response.
FAILURE_OUTCOMES: Final = _failure_outcomes()


def reads_body(status: int) -> bool:
    """``outcome_of_status(status).reads_body`` without the look-up: an error or 202/422.

    Adapters ask before fetching a body, so that success responses cost nothing.
    """
    return status == 202 or not 100 <= status < 400
