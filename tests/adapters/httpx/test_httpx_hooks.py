"""httpx.Client and httpx.AsyncClient against the simulated Product API on 127.0.0.1.

Every call is made with requests as well, on fresh providers, and what each
client emitted (span name, attributes, span status, every metric series) must
be identical: a dashboard must not tell which client made a call. Each test
also checks the exact values, so a fault shared by both adapters still fails.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from conftest import Telemetry, make_telemetry
from httpx_support import CLIENTS, KINDS, Client, Emitted, Kind, call, call_with, each_client
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import StatusCode

from otel_productapi._core import names as n
from otel_productapi._telemetry import tagger as _tagger
from otel_productapi._telemetry.context import RESEND_COUNT
from otel_productapi.testing import FakeProductApi, FakeResponse

USER = "/v1/projects/p1/users/u1"
USER_TEMPLATE = "/v1/projects/{project}/users/{user_id}"
BATCH = "/v1/projects/p1/events:batch"
BATCH_TEMPLATE = "/v1/projects/{project}/events:batch"
ROUTE = {n.ATTR_URL_TEMPLATE: USER_TEMPLATE, n.ATTR_SERVER_ADDRESS: "127.0.0.1"}


def _identical(found: dict[Client, Emitted]) -> Emitted:
    """Every client emitted the same; return that."""
    assert set(found) == set(CLIENTS)
    reference = found["requests"]
    for client in ("sync", "async"):
        assert found[client] == reference, client
    return reference


def _zero_initialised(method: str, status: int) -> list[tuple[dict[str, Any], float]]:
    """The requests series after one call of ``status``: its own, and the alerting zeros."""
    route = {n.ATTR_HTTP_REQUEST_METHOD: method, **ROUTE}
    rate_limited = {
        **route,
        n.ATTR_HTTP_RESPONSE_STATUS_CODE: 429,
        n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED,
        n.ATTR_ERROR_RETRYABLE: True,
    }
    server_error = {
        **route,
        n.ATTR_HTTP_RESPONSE_STATUS_CODE: 500,
        n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR,
        n.ATTR_ERROR_RETRYABLE: True,
    }
    series = [(rate_limited, 1.0 if status == 429 else 0.0)]
    series.append((server_error, 1.0 if status == 500 else 0.0))
    return series


def _sorted(series: list[tuple[dict[str, Any], float]]) -> list[tuple[dict[str, Any], float]]:
    return sorted(series, key=lambda s: repr(sorted(s[0].items())))


# --- the status table, row by row: identical to requests ----------------------------------

ERROR_ROWS = [
    (400, n.CLASS_BAD_REQUEST, False),
    (401, n.CLASS_UNAUTHORIZED, False),
    (403, n.CLASS_FORBIDDEN, False),
    (404, n.CLASS_NOT_FOUND, False),
    (422, n.CLASS_VALIDATION_FAILED, False),
    (429, n.CLASS_RATE_LIMITED, True),
    (500, n.CLASS_SERVER_ERROR, True),
    (409, n.CLASS_CLIENT_ERROR, False),
    (418, n.CLASS_CLIENT_ERROR, False),
    (502, n.CLASS_SERVER_ERROR, True),
    (503, n.CLASS_SERVER_ERROR, True),
    (599, n.CLASS_SERVER_ERROR, True),
]


@pytest.mark.parametrize(
    ("status", "error_class", "retryable"), ERROR_ROWS, ids=[str(r[0]) for r in ERROR_ROWS]
)
def test_error_row_is_identical_to_requests(
    status: int, error_class: str, retryable: bool, fake_product_api: FakeProductApi
) -> None:
    """Each error status: the exact span (name, attributes, status) and counter series,
    the same from httpx.Client, httpx.AsyncClient and requests."""
    url = fake_product_api.url + USER
    answer = FakeResponse(
        status, {"message": f"Scripted error {status}"}, {"X-Request-Id": f"req-{status}"}
    )
    fake_product_api.script("GET", USER, [answer] * len(CLIENTS))

    found = each_client(lambda client: call_with(client, "GET", url, timeout=5))

    emitted = _identical(found)
    assert emitted.name == f"GET {USER_TEMPLATE}"
    assert emitted.status == StatusCode.ERROR
    assert emitted.attributes == {
        "http.method": "GET",
        "http.url": url,
        "http.status_code": status,
        n.ATTR_URL_TEMPLATE: USER_TEMPLATE,
        n.ATTR_ERROR_CLASS: error_class,
        n.ATTR_ERROR_RETRYABLE: retryable,
        n.ATTR_REQUEST_ID: f"req-{status}",
        n.ATTR_ERROR_MESSAGE: f"Scripted error {status}",
    }
    expected = _zero_initialised("GET", status)
    if status not in (429, 500):
        expected.append(
            (
                {
                    n.ATTR_HTTP_REQUEST_METHOD: "GET",
                    **ROUTE,
                    n.ATTR_HTTP_RESPONSE_STATUS_CODE: status,
                    n.ATTR_ERROR_CLASS: error_class,
                    n.ATTR_ERROR_RETRYABLE: retryable,
                },
                1.0,
            )
        )
    assert _sorted(emitted.series()) == _sorted(expected)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 301, 304], ids=str)
def test_success_row_is_identical_to_requests(
    status: int, fake_product_api: FakeProductApi
) -> None:
    """2xx and 3xx: no class, no retryable, no message; the same from every client."""
    url = fake_product_api.url + USER
    body = None if status in (204, 304) else {"message": "not an error"}
    answer = FakeResponse(status, body, {"X-Request-Id": "req-ok", "Location": "/elsewhere"})
    fake_product_api.script("GET", USER, [answer] * len(CLIENTS))

    emitted = _identical(each_client(lambda client: call_with(client, "GET", url, timeout=5)))

    assert emitted.name == f"GET {USER_TEMPLATE}"
    assert emitted.status == StatusCode.UNSET
    assert emitted.attributes == {
        "http.method": "GET",
        "http.url": url,
        "http.status_code": status,
        n.ATTR_URL_TEMPLATE: USER_TEMPLATE,
        n.ATTR_REQUEST_ID: "req-ok",
    }
    ok = {n.ATTR_HTTP_REQUEST_METHOD: "GET", **ROUTE, n.ATTR_HTTP_RESPONSE_STATUS_CODE: status}
    assert _sorted(emitted.series()) == _sorted([*_zero_initialised("GET", status), (ok, 1.0)])


def test_each_scenario_of_the_fake_api_is_identical_to_requests(
    fake_product_api: FakeProductApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake API's own answers (a rate-limit storm; healthy, with X-RateLimit-*)
    give the same spans and series from every client."""
    monkeypatch.setattr(_tagger, "_now", lambda: 1_700_000_000.0)
    url = fake_product_api.url + USER
    for scenario in ("healthy", "rate_limit_storm"):
        fake_product_api.set_scenario(scenario)
        found: dict[Client, Emitted] = {}
        for client in CLIENTS:
            # The same server state each time: a fresh rate-limit window.
            fake_product_api.reset()
            fake_product_api.set_scenario(scenario)
            found.update(each_client(lambda c: call_with(c, "GET", url, timeout=5), (client,)))
        # The request id counts up on the server; the rest must match exactly.
        for emitted in found.values():
            assert str(emitted.attributes.pop(n.ATTR_REQUEST_ID)).startswith("req_")
        emitted = _identical(found)
        if scenario == "rate_limit_storm":
            assert emitted.attributes[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
            assert emitted.attributes[n.ATTR_RATELIMIT_REMAINING] == 0
            assert emitted.attributes[n.ATTR_ERROR_MESSAGE].startswith("Rate limit exceeded")
        else:
            assert emitted.attributes[n.ATTR_RATELIMIT_REMAINING] == 99
            assert n.ATTR_ERROR_CLASS not in emitted.attributes


# --- rate limits -----------------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected_reset"),
    [
        ({"X-RateLimit-Reset": "30"}, 30.0),
        ({"X-RateLimit-Reset": str(int(NOW) + 60)}, 60.0),
        ({"X-RateLimit-Reset": str(int(NOW * 1000) + 90_000)}, 90.0),
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"}, 20.0),
    ],
    ids=["delta-seconds", "epoch-seconds", "epoch-milliseconds", "retry-after", "retry-date"],
)
def test_rate_limit_headers_are_identical_to_requests(
    headers: dict[str, str],
    expected_reset: float,
    fake_product_api: FakeProductApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Limit, remaining and the reset in each of its forms: the same span and gauges."""
    monkeypatch.setattr(_tagger, "_now", lambda: NOW)
    url = fake_product_api.url + USER
    answer = FakeResponse(
        429,
        {"message": "slow down"},
        {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-Request-Id": "r", **headers},
    )
    fake_product_api.script("GET", USER, [answer] * len(CLIENTS))

    emitted = _identical(each_client(lambda client: call_with(client, "GET", url, timeout=5)))

    attrs = emitted.attributes
    assert attrs[n.ATTR_RATELIMIT_LIMIT] == 100
    assert attrs[n.ATTR_RATELIMIT_REMAINING] == 0
    assert attrs[n.ATTR_RATELIMIT_RESET] == pytest.approx(expected_reset)
    assert emitted.ratelimit == [
        (tuple(sorted({**ROUTE, "gauge": "remaining"}.items())), 0),
        (tuple(sorted(ROUTE.items())), 100),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Limit": "-5", "X-RateLimit-Remaining": "1e3", "X-RateLimit-Reset": "soon"},
        {"X-RateLimit-Limit": "9" * 40, "X-RateLimit-Remaining": " 7 ", "Retry-After": "-1"},
        {"X-RateLimit-Remaining": "3, 2", "Retry-After": "Tue, 99 Nov 2023 99:99:99 GMT"},
    ],
    ids=["nonsense", "out-of-range", "repeated-and-bad-date"],
)
def test_malformed_rate_limit_headers_are_identical_to_requests(
    headers: dict[str, str], fake_product_api: FakeProductApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Malformed or out-of-range rate-limit headers never break the call, and whatever
    is kept of them is the same from every client."""
    monkeypatch.setattr(_tagger, "_now", lambda: NOW)
    url = fake_product_api.url + USER
    answer = FakeResponse(429, {"message": "slow"}, {"X-Request-Id": "r", **headers})
    fake_product_api.script("GET", USER, [answer] * len(CLIENTS))

    found = each_client(lambda client: call_with(client, "GET", url, timeout=5))

    emitted = _identical(found)
    assert emitted.attributes[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert emitted.attributes[n.ATTR_ERROR_MESSAGE] == "slow"


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_gauge_keeps_the_last_value(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi
) -> None:
    """Rate-limit headers on successful responses update the gauge; the last one wins."""
    telemetry.instrument(hosts=["127.0.0.1"], route_templates=[USER_TEMPLATE])
    fake_product_api.script(
        "GET",
        USER,
        [
            FakeResponse(200, {}, {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": r})
            for r in ("42", "41")
        ],
    )
    for _ in range(2):
        call(kind, "GET", fake_product_api.url + USER, timeout=5)
    assert telemetry.series(n.METRIC_RATELIMIT_REMAINING) == [(ROUTE, 41)]
    assert (telemetry.spans()[-1].attributes or {})[n.ATTR_RATELIMIT_REMAINING] == 41


# --- request ids --------------------------------------------------------------------------

REQUEST_IDS = [
    ("req-7f3a", "req-7f3a"),
    ("0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ("jane.doe@example.com", "{email}"),
    ("Bearer s3cr3tT0kenABCDEFGHIJ", "Bearer {token}"),
    ("  trace 42 for +4915112345678  ", "trace 42 for {phone}"),
    ("j\u00fcrgen@m\u00fcnchen.de", "{email}"),
]


@pytest.mark.parametrize(
    ("raw", "expected"), REQUEST_IDS, ids=["plain", "uuid", "email", "bearer", "phone", "latin1"]
)
def test_request_id_is_identical_to_requests(
    raw: str, expected: str, fake_product_api: FakeProductApi
) -> None:
    """Plain ids are recorded as sent; others are cleaned and scrubbed, the same by
    every client (httpx and requests decode header bytes differently)."""
    url = fake_product_api.url + USER
    fake_product_api.script("GET", USER, [FakeResponse(500, {}, {"X-Request-Id": raw})] * 3)

    emitted = _identical(each_client(lambda client: call_with(client, "GET", url, timeout=5)))

    assert emitted.attributes[n.ATTR_REQUEST_ID] == expected


def test_utf8_request_id_is_identical_to_requests(fake_product_api: FakeProductApi) -> None:
    """A UTF-8 header value (httpx decodes it as UTF-8, requests as Latin-1) is
    recorded the same: non-ASCII characters are dropped before scrubbing."""
    url = fake_product_api.url + USER
    utf8_as_sent = "r\u00e9q-\u00fc42".encode().decode("latin-1")
    fake_product_api.script(
        "GET", USER, [FakeResponse(500, {}, {"X-Request-Id": utf8_as_sent})] * 3
    )

    emitted = _identical(each_client(lambda client: call_with(client, "GET", url, timeout=5)))

    assert emitted.attributes[n.ATTR_REQUEST_ID] == "rq-42"


@pytest.mark.parametrize("kind", KINDS)
def test_request_id_header_is_configurable_and_bounded(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi
) -> None:
    """A configured header name is read, and a long id is cut to the maximum length."""
    telemetry.instrument(
        hosts=["127.0.0.1"], request_id_headers=["X-Trace-Ref"], request_id_max_length=8
    )
    fake_product_api.script("GET", USER, [FakeResponse(200, {}, {"X-Trace-Ref": "r" * 500})])
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    assert (telemetry.span().attributes or {})[n.ATTR_REQUEST_ID] == "r" * 8


# --- batches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "scenario", "expected"),
    [
        ([{"event": "a"}, {"event": "b"}, {"event": "c"}], "healthy", (202, 3, 0, "complete")),
        ([{"event": "a"}, {"event": "b"}, {"event": "c"}], "batch_partial", (202, 3, 1, "partial")),
        ([{"nope": 1}, {"nope": 2}], "healthy", (422, 2, 2, "failed")),
    ],
    ids=["202-complete", "202-partial", "422-failed"],
)
def test_batch_outcome_is_identical_to_requests(
    items: list[dict[str, Any]],
    scenario: str,
    expected: tuple[int, int, int, str],
    fake_product_api: FakeProductApi,
) -> None:
    """Batched writes: items, failed items, outcome and the item counter, from the body
    the httpx transport read, exactly as requests reports them."""
    url = fake_product_api.url + BATCH
    found: dict[Client, Emitted] = {}
    for client in CLIENTS:
        fake_product_api.reset()
        fake_product_api.set_scenario(scenario)
        found.update(
            each_client(
                lambda c: call_with(c, "POST", url, json={"items": items}, timeout=5), (client,)
            )
        )
    for emitted in found.values():
        emitted.attributes.pop(n.ATTR_REQUEST_ID)
        emitted.attributes.pop(n.ATTR_RATELIMIT_RESET, None)  # a clock-dependent delta
    emitted = _identical(found)

    status, total, failed, outcome = expected
    attrs = emitted.attributes
    assert attrs["http.status_code"] == status
    assert emitted.name == f"POST {BATCH_TEMPLATE}"
    assert (
        attrs[n.ATTR_BATCH_ITEMS],
        attrs[n.ATTR_BATCH_FAILED_ITEMS],
        attrs[n.ATTR_BATCH_OUTCOME],
    ) == (total, failed, outcome)
    route = {n.ATTR_URL_TEMPLATE: BATCH_TEMPLATE, n.ATTR_SERVER_ADDRESS: "127.0.0.1"}
    counted = [(n.ITEM_ACCEPTED, total - failed), (n.ITEM_FAILED, failed)]
    assert emitted.batch == sorted(
        (tuple(sorted({**route, "outcome": outcome}.items())), value)
        for outcome, value in counted
        if value  # zero counts add no series
    )


# --- hosts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_other_hosts_are_untouched_and_not_counted(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi
) -> None:
    """With HOSTS=localhost, an httpx call to 127.0.0.1 keeps the plain span (its
    name, no productapi.* or url.template) and adds no series; its body is read as usual."""
    telemetry.instrument(hosts=["localhost"])
    fake_product_api.set_scenario("rate_limit_storm")

    result = call(kind, "GET", fake_product_api.url + USER, timeout=5)

    assert result.status == 429
    assert result.content.startswith(b'{"message": "Rate limit exceeded')
    span = telemetry.span()
    assert span.name == "GET"
    assert sorted(span.attributes or {}) == ["http.method", "http.status_code", "http.url"]
    assert telemetry.series(n.METRIC_CLIENT_REQUESTS) == []
    assert telemetry.series(n.METRIC_RATELIMIT_REMAINING) == []

    call(kind, "GET", f"http://localhost:{fake_product_api.port}{USER}", timeout=5)
    assert telemetry.request_count(**{n.ATTR_SERVER_ADDRESS: "localhost"}) == 1


# --- sampling, redaction, resends ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_metrics_do_not_depend_on_sampling(kind: Kind, fake_product_api: FakeProductApi) -> None:
    """With every span dropped, httpx calls are still counted: a 429 with its gauges, a
    202 batch with its items (the body read ahead all the same), a refused connection."""
    telemetry = make_telemetry(sampler=ParentBased(ALWAYS_OFF))
    telemetry.instrument(hosts=["127.0.0.1"])
    fake_product_api.script(
        "GET",
        USER,
        [FakeResponse(429, {}, {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3"})],
    )
    fake_product_api.set_scenario("batch_partial")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    call(kind, "POST", fake_product_api.url + BATCH, json={"items": [{"event": "a"}] * 2})
    with pytest.raises(httpx.ConnectError):
        call(kind, "GET", f"http://127.0.0.1:{closed_port}{USER}", timeout=5)

    assert telemetry.spans() == []
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED}) == 1
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 202}) == 1
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 1
    assert telemetry.request_count() == 3
    assert telemetry.value(n.METRIC_RATELIMIT_REMAINING, **{n.ATTR_URL_TEMPLATE: USER}) == 3
    assert telemetry.value(n.METRIC_BATCH_ITEMS, outcome=n.ITEM_FAILED) == 1
    assert telemetry.value(n.METRIC_BATCH_ITEMS, outcome=n.ITEM_ACCEPTED) == 1


SECRETS = ("hunter2", "s3cr3tT0ken", "jane.doe", "example.com", "4155550100")


def test_redacted_url_is_identical_to_requests(fake_product_api: FakeProductApi) -> None:
    """Userinfo, a token query value, an e-mail and a phone in the path: the span's URL
    is redacted the same for every client, and nothing secret is left anywhere."""
    path = "/v1/projects/p1/users/jane.doe@example.com"
    fake_product_api.script("GET", path, [FakeResponse(404, {"message": "unknown"})] * 3)
    url = (
        f"http://alice:hunter2@127.0.0.1:{fake_product_api.port}{path}"
        "?token=s3cr3tT0ken&phone=%2B14155550100&page=2"
    )

    found = each_client(lambda client: call_with(client, "GET", url, timeout=5))

    for emitted in found.values():
        emitted.attributes.pop(n.ATTR_REQUEST_ID)  # the server's own counter
    emitted = _identical(found)
    exported = repr(emitted)
    assert [s for s in SECRETS if s in exported] == []
    assert emitted.attributes[n.ATTR_URL_TEMPLATE] == USER_TEMPLATE
    assert str(emitted.attributes["http.url"]).startswith(
        f"http://REDACTED:REDACTED@127.0.0.1:{fake_product_api.port}/v1/projects/p1/users/"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_resend_count_comes_from_the_context(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi
) -> None:
    """http.request.resend_count is set from RESEND_COUNT (sync and async), only above 0."""
    telemetry.instrument(hosts=["127.0.0.1"])
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    token = RESEND_COUNT.set(2)
    try:
        call(kind, "GET", fake_product_api.url + USER, timeout=5)
    finally:
        RESEND_COUNT.reset(token)
    first, second = telemetry.spans()
    assert n.ATTR_HTTP_RESEND_COUNT not in (first.attributes or {})
    assert (second.attributes or {})[n.ATTR_HTTP_RESEND_COUNT] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_followed_redirects_count_each_hop(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi
) -> None:
    """httpx instruments each hop of follow_redirects=True as its own span, so each hop
    is counted (requests makes one span of the whole call): documented, pinned here."""
    telemetry.instrument(hosts=["127.0.0.1"], route_templates=[USER_TEMPLATE])
    fake_product_api.script(
        "GET", USER, [FakeResponse(302, None, {"Location": "/v1/projects/p1/users/u2"})]
    )
    result = call(kind, "GET", fake_product_api.url + USER, follow_redirects=True, timeout=5)
    assert result.status == 200
    assert [(s.attributes or {})["http.status_code"] for s in telemetry.spans()] == [302, 200]
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 302}) == 1
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 200}) == 1
