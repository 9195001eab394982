"""The status table says what every outcome means, as the error page documents it."""

from __future__ import annotations

import itertools

import pytest

from otel_productapi._core import names as n
from otel_productapi._core.status import (
    IDEMPOTENT_METHODS,
    STATUS_TABLE,
    TransportFailure,
    classify_status,
    classify_transport_failure,
)


@pytest.mark.parametrize(
    ("error_class", "retryable", "status"),
    [
        (n.CLASS_BAD_REQUEST, False, 400),
        (n.CLASS_UNAUTHORIZED, False, 401),
        (n.CLASS_FORBIDDEN, False, 403),
        (n.CLASS_NOT_FOUND, False, 404),
        (n.CLASS_VALIDATION_FAILED, False, 422),
        (n.CLASS_RATE_LIMITED, True, 429),
        (n.CLASS_SERVER_ERROR, True, 500),
    ],
    ids=str,
)
def test_documented_status(error_class: str, retryable: bool, status: int) -> None:
    """Each status the error page lists has its own class and retryability."""
    found = classify_status(status)
    assert found is not None
    assert (error_class, retryable) == (found.error_class, found.retryable)
    assert found.advice


def test_table_holds_exactly_the_documented_statuses() -> None:
    """STATUS_TABLE lists the error page's statuses and nothing else."""
    assert {400, 401, 403, 404, 422, 429, 500} == set(STATUS_TABLE)


@pytest.mark.parametrize("status", [402, 405, 409, 410, 418, 451, 499], ids=str)
def test_other_4xx_is_a_non_retryable_client_error(status: int) -> None:
    """Every 4xx the page does not list means the request itself is wrong."""
    found = classify_status(status)
    assert found is not None
    assert (found.error_class, found.retryable) == (n.CLASS_CLIENT_ERROR, False)


@pytest.mark.parametrize("status", [501, 502, 503, 504, 599], ids=str)
def test_other_5xx_is_a_retryable_server_error(status: int) -> None:
    """Every 5xx is retried with backoff, like 500."""
    found = classify_status(status)
    assert found is not None
    assert (found.error_class, found.retryable) == (n.CLASS_SERVER_ERROR, True)


@pytest.mark.parametrize("status", [100, 101, 200, 201, 202, 204, 301, 304, 399], ids=str)
def test_success_range_has_no_class(status: int) -> None:
    """1xx, 2xx and 3xx are not errors."""
    assert classify_status(status) is None


@pytest.mark.parametrize("status", [-1, 0, 99, 600, 999], ids=str)
def test_status_outside_http_range_is_a_server_error(status: int) -> None:
    """A status that is not HTTP means the server misbehaved; it never raises."""
    found = classify_status(status)
    assert found is not None
    assert (found.error_class, found.retryable) == (n.CLASS_SERVER_ERROR, True)


METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH", "get", "post"]


@pytest.mark.parametrize(
    ("failure", "method"), list(itertools.product(TransportFailure, METHODS)), ids=str
)
def test_transport_failure_classification(failure: TransportFailure, method: str) -> None:
    """Never-sent is always retryable, after-send only for idempotent methods, other never."""
    if failure is TransportFailure.NOT_SENT:
        expected = True
    elif failure is TransportFailure.AFTER_SEND:
        expected = method.upper() in IDEMPOTENT_METHODS
    else:
        expected = False
    found = classify_transport_failure(failure, method)
    assert (n.CLASS_TRANSPORT_ERROR, expected) == (found.error_class, found.retryable)


@pytest.mark.parametrize(
    ("retryable", "method"),
    [(True, "GET"), (True, "put"), (True, "DELETE"), (False, "POST"), (False, "PATCH")],
    ids=str,
)
def test_after_send_retryability_by_method(retryable: bool, method: str) -> None:
    """A request that may have been applied is retried only if repeating it is harmless."""
    assert retryable is classify_transport_failure(TransportFailure.AFTER_SEND, method).retryable


def test_every_error_class_is_produced_by_some_outcome() -> None:
    """Each productapi.error.class value is reachable from a status or a transport failure."""
    produced = {c.error_class for s in range(-1, 1000) if (c := classify_status(s)) is not None}
    produced |= {classify_transport_failure(f, "GET").error_class for f in TransportFailure}
    assert set(n.ERROR_CLASSES) == produced
