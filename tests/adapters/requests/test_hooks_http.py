"""The hooks against a real HTTP server on 127.0.0.1: span attributes and metrics."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import Telemetry, make_telemetry
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import StatusCode
from pytest_httpserver import HTTPServer
from requests.adapters import HTTPAdapter
from werkzeug import Request as WzRequest
from werkzeug import Response as WzResponse

from otel_productapi._core import names as n
from otel_productapi._telemetry import tagger as _tagger
from otel_productapi._telemetry.context import RESEND_COUNT

PATH = "/v1/things"


def _url(server: HTTPServer, path: str = PATH, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{server.port}{path}"


# --- the status table, row by row --------------------------------------------

ROWS = [
    (400, n.CLASS_BAD_REQUEST, False),
    (401, n.CLASS_UNAUTHORIZED, False),
    (403, n.CLASS_FORBIDDEN, False),
    (404, n.CLASS_NOT_FOUND, False),
    (422, n.CLASS_VALIDATION_FAILED, False),
    (429, n.CLASS_RATE_LIMITED, True),
    (500, n.CLASS_SERVER_ERROR, True),
    (418, n.CLASS_CLIENT_ERROR, False),
    (409, n.CLASS_CLIENT_ERROR, False),
    (503, n.CLASS_SERVER_ERROR, True),
    (599, n.CLASS_SERVER_ERROR, True),
]


@pytest.mark.parametrize(
    ("status", "expected_class", "expected_retryable"), ROWS, ids=[str(r[0]) for r in ROWS]
)
def test_error_status_is_classified_on_span_and_counter(
    status: int,
    expected_class: str,
    expected_retryable: bool,
    telemetry: Telemetry,
    httpserver: HTTPServer,
) -> None:
    """Each documented (and undocumented) error status gets its class and retryability."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data("", status=status)

    assert requests.get(_url(httpserver), timeout=5).status_code == status

    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == expected_class
    assert attrs[n.ATTR_ERROR_RETRYABLE] is expected_retryable
    template = attrs[n.ATTR_URL_TEMPLATE]
    expected = {
        n.ATTR_HTTP_REQUEST_METHOD: "GET",
        n.ATTR_HTTP_RESPONSE_STATUS_CODE: status,
        n.ATTR_ERROR_CLASS: expected_class,
        n.ATTR_ERROR_RETRYABLE: expected_retryable,
        n.ATTR_URL_TEMPLATE: template,
        n.ATTR_SERVER_ADDRESS: "127.0.0.1",
    }
    assert (expected, 1) in telemetry.series(n.METRIC_CLIENT_REQUESTS)


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304], ids=str)
def test_success_has_no_class(status: int, telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """2xx and 3xx carry neither class nor retryable, on the span or the counter."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data("", status=status)

    requests.get(_url(httpserver), timeout=5, allow_redirects=False)

    attrs = telemetry.span().attributes or {}
    assert n.ATTR_ERROR_CLASS not in attrs
    assert n.ATTR_ERROR_RETRYABLE not in attrs
    counted = [a for a, v in telemetry.series(n.METRIC_CLIENT_REQUESTS) if v == 1]
    assert counted == [
        {
            n.ATTR_HTTP_REQUEST_METHOD: "GET",
            n.ATTR_HTTP_RESPONSE_STATUS_CODE: status,
            n.ATTR_URL_TEMPLATE: attrs[n.ATTR_URL_TEMPLATE],
            n.ATTR_SERVER_ADDRESS: "127.0.0.1",
        }
    ]


def test_span_status_and_error_type_are_left_to_the_instrumentation(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """A 404 span keeps the ERROR status and error.type (if any) the instrumentation set."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data("", status=404)
    requests.get(_url(httpserver), timeout=5)
    tagged = telemetry.span()

    plain = make_telemetry()
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    from otel_productapi import uninstrument

    uninstrument()
    RequestsInstrumentor().instrument(tracer_provider=plain.tracer_provider)
    try:
        requests.get(_url(httpserver), timeout=5)
    finally:
        RequestsInstrumentor().uninstrument()
    untagged = plain.span()

    assert tagged.status.status_code == untagged.status.status_code == StatusCode.ERROR
    assert tagged.status.description == untagged.status.description
    assert (tagged.attributes or {}).get(n.ATTR_ERROR_TYPE) == (untagged.attributes or {}).get(
        n.ATTR_ERROR_TYPE
    )


# --- transport failures --------------------------------------------------------


def _transport_series(telemetry: Telemetry) -> list[tuple[dict[str, Any], float]]:
    return [
        (a, v)
        for a, v in telemetry.series(n.METRIC_CLIENT_REQUESTS)
        if a.get(n.ATTR_ERROR_CLASS) == n.CLASS_TRANSPORT_ERROR
    ]


def test_connection_refused_is_a_retryable_transport_error(
    telemetry: Telemetry, closed_port: int
) -> None:
    """A refused connection never sent the request: transport_error, retryable, counted once."""
    telemetry.instrument(hosts=["127.0.0.1"])

    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{closed_port}{PATH}", timeout=5)

    span = telemetry.span()
    attrs = span.attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert attrs[n.ATTR_ERROR_RETRYABLE] is True
    assert span.status.status_code == StatusCode.ERROR
    assert _transport_series(telemetry) == [
        (
            {
                n.ATTR_HTTP_REQUEST_METHOD: "POST",
                n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR,
                n.ATTR_ERROR_RETRYABLE: True,
                n.ATTR_URL_TEMPLATE: attrs[n.ATTR_URL_TEMPLATE],
                n.ATTR_SERVER_ADDRESS: "127.0.0.1",
            },
            1,
        )
    ]


@pytest.mark.parametrize(
    ("method", "expected_retryable"),
    [("GET", True), ("PUT", True), ("POST", False), ("PATCH", False)],
    ids=["GET", "PUT", "POST", "PATCH"],
)
def test_read_timeout_is_retryable_only_for_idempotent_methods(
    method: str, expected_retryable: bool, telemetry: Telemetry, silent_port: int
) -> None:
    """A read timeout may have reached the server: retryable only if the method is idempotent."""
    telemetry.instrument(hosts=["127.0.0.1"])

    with pytest.raises(requests.ReadTimeout):
        requests.request(method, f"http://127.0.0.1:{silent_port}{PATH}", timeout=(2, 0.05))

    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert attrs[n.ATTR_ERROR_RETRYABLE] is expected_retryable
    series = _transport_series(telemetry)
    assert [(a[n.ATTR_ERROR_RETRYABLE], a[n.ATTR_HTTP_REQUEST_METHOD], v) for a, v in series] == [
        (expected_retryable, method, 1)
    ]


def test_exception_events_of_failed_calls_leak_no_personal_data(
    telemetry: Telemetry, closed_port: int
) -> None:
    """urllib3 quotes the URL in its message; the span's exception event must not."""
    telemetry.instrument(hosts=["127.0.0.1"])
    secrets = ("bob@example.com", "+4915112345678", "s3cr3t-t0ken")
    path = "/v1/projects/acme/users/bob@example.com/phones/+4915112345678?access_token=s3cr3t-t0ken"

    with pytest.raises(requests.ConnectionError) as raised:
        requests.get(f"http://127.0.0.1:{closed_port}{path}", timeout=5)

    span = telemetry.span()
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    exported = repr(span.to_json())
    assert [s for s in secrets if s in exported] == []
    assert "Max retries exceeded" in str(events[0].attributes)
    # The caller's exception is untouched: it still names what failed.
    assert "bob@example.com" in str(raised.value)


def test_transport_error_after_a_redirect_is_counted_once(
    telemetry: Telemetry, httpserver: HTTPServer, closed_port: int
) -> None:
    """A redirect to a dead port: one span, one transport_error count, on the original route."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data(
        "", status=302, headers={"Location": f"http://127.0.0.1:{closed_port}/elsewhere"}
    )

    with pytest.raises(requests.ConnectionError):
        requests.get(_url(httpserver), timeout=5)

    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert telemetry.request_count() == 1
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 1


# --- streaming -------------------------------------------------------------------


def test_streamed_body_is_never_read_by_the_hooks(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """stream=True returns before the body exists; the caller then reads all of it."""
    telemetry.instrument(hosts=["127.0.0.1"])
    head = b'{"message": "slow'
    tail = b"x" * (4 * 1024 * 1024) + b'"}'
    release = threading.Event()

    def handler(_: WzRequest) -> WzResponse:
        def body() -> Iterator[bytes]:
            yield head  # headers go out with the first chunk
            release.wait(10)
            yield tail

        return WzResponse(body(), status=429, content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(handler)

    response = requests.get(_url(httpserver), stream=True, timeout=15)
    try:
        # The call returned while the server was still holding the rest back,
        # and the span already ended: nothing waited for the body.
        assert not release.is_set()
        assert getattr(response, "_content_consumed") is False  # noqa: B009 - not in the stubs
        attrs = telemetry.span().attributes or {}
        assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
        assert n.ATTR_ERROR_MESSAGE not in attrs
    finally:
        release.set()
    assert b"".join(response.iter_content(65536)) == head + tail


# --- error messages ---------------------------------------------------------------


def _json_error(httpserver: HTTPServer, message: str, status: int = 400) -> None:
    httpserver.expect_request(PATH).respond_with_json({"message": message}, status=status)


def test_json_error_message_is_captured(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """The `message` of a JSON error body lands on the span."""
    telemetry.instrument(hosts=["127.0.0.1"])
    _json_error(httpserver, "Invalid query filter")
    requests.get(_url(httpserver), timeout=5)
    assert (telemetry.span().attributes or {})[n.ATTR_ERROR_MESSAGE] == "Invalid query filter"


def test_error_message_is_truncated(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """A long message is cut to message_max_length."""
    telemetry.instrument(hosts=["127.0.0.1"], message_max_length=16)
    _json_error(httpserver, "Invalid filter " * 100)
    requests.get(_url(httpserver), timeout=5)
    message = (telemetry.span().attributes or {})[n.ATTR_ERROR_MESSAGE]
    assert isinstance(message, str)
    assert 0 < len(message) <= 16
    assert message.startswith("Invalid")


def test_error_message_is_scrubbed(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """E-mail addresses and phone numbers in a message never reach the span."""
    telemetry.instrument(hosts=["127.0.0.1"])
    _json_error(httpserver, "no user jane.doe@example.com with phone +1 415 555 0100", 404)
    requests.get(_url(httpserver), timeout=5)
    message = str((telemetry.span().attributes or {})[n.ATTR_ERROR_MESSAGE])
    assert message.startswith("no user ")
    assert "jane.doe" not in message
    assert "555" not in message


def test_error_message_capture_can_be_switched_off(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """capture_message=False leaves the message off."""
    telemetry.instrument(hosts=["127.0.0.1"], capture_message=False)
    _json_error(httpserver, "Invalid query filter")
    requests.get(_url(httpserver), timeout=5)
    attrs = telemetry.span().attributes or {}
    assert n.ATTR_ERROR_MESSAGE not in attrs
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_BAD_REQUEST


def test_body_over_the_cap_is_not_parsed(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """A body larger than max_body_bytes is not looked at."""
    telemetry.instrument(hosts=["127.0.0.1"], max_body_bytes=1024)
    _json_error(httpserver, "x" * 2000)
    requests.get(_url(httpserver), timeout=5)
    assert n.ATTR_ERROR_MESSAGE not in (telemetry.span().attributes or {})


def test_success_body_message_is_not_captured(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """A 200 body with a `message` field is not an error message."""
    telemetry.instrument(hosts=["127.0.0.1"])
    _json_error(httpserver, "all good", status=200)
    requests.get(_url(httpserver), timeout=5)
    assert n.ATTR_ERROR_MESSAGE not in (telemetry.span().attributes or {})


# --- rate limits ------------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected_reset"),
    [
        ({"X-RateLimit-Reset": "30"}, 30.0),
        ({"X-RateLimit-Reset": str(int(NOW) + 60)}, 60.0),
        ({"X-RateLimit-Reset": str(int(NOW * 1000) + 90_000)}, 90.0),
        ({"Retry-After": "12"}, 12.0),
    ],
    ids=["delta-seconds", "epoch-seconds", "epoch-milliseconds", "retry-after"],
)
def test_rate_limit_headers(
    headers: dict[str, str],
    expected_reset: float,
    telemetry: Telemetry,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Limit, remaining and the reset (in any of its units) land on the span and the gauges."""
    monkeypatch.setattr(_tagger, "_now", lambda: NOW)
    telemetry.instrument(hosts=["127.0.0.1"])
    all_headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", **headers}
    httpserver.expect_request(PATH).respond_with_data("", status=429, headers=all_headers)

    requests.get(_url(httpserver), timeout=5)

    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_RATELIMIT_LIMIT] == 100
    assert attrs[n.ATTR_RATELIMIT_REMAINING] == 0
    assert attrs[n.ATTR_RATELIMIT_RESET] == pytest.approx(expected_reset)
    route = {n.ATTR_URL_TEMPLATE: attrs[n.ATTR_URL_TEMPLATE], n.ATTR_SERVER_ADDRESS: "127.0.0.1"}
    assert telemetry.series(n.METRIC_RATELIMIT_LIMIT) == [(route, 100)]
    assert telemetry.series(n.METRIC_RATELIMIT_REMAINING) == [(route, 0)]


def test_rate_limit_gauges_follow_successful_responses(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """Rate-limit headers are read on any response, and the gauge keeps the last value."""
    telemetry.instrument(hosts=["127.0.0.1"])
    for remaining in ("42", "41"):
        httpserver.expect_oneshot_request(PATH).respond_with_data(
            "ok", headers={"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": remaining}
        )
        requests.get(_url(httpserver), timeout=5)
    assert [v for _, v in telemetry.series(n.METRIC_RATELIMIT_REMAINING)] == [41]
    assert (telemetry.spans()[-1].attributes or {})[n.ATTR_RATELIMIT_REMAINING] == 41


# --- request id -------------------------------------------------------------------


def test_request_id_is_recorded(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """X-Request-Id lands on the span."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data(
        "", status=500, headers={"X-Request-Id": "req-7f3a"}
    )
    requests.get(_url(httpserver), timeout=5)
    assert (telemetry.span().attributes or {})[n.ATTR_REQUEST_ID] == "req-7f3a"


def test_request_id_header_is_configurable_and_bounded(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """A configured header name is read, and a long id is cut to the maximum length."""
    telemetry.instrument(
        hosts=["127.0.0.1"], request_id_headers=["X-Trace-Ref"], request_id_max_length=8
    )
    httpserver.expect_request(PATH).respond_with_data("", headers={"X-Trace-Ref": "r" * 500})
    requests.get(_url(httpserver), timeout=5)
    rid = (telemetry.span().attributes or {})[n.ATTR_REQUEST_ID]
    assert isinstance(rid, str)
    assert 0 < len(rid) <= 8


# --- batches ------------------------------------------------------------------------


def _batch_body(statuses: list[str]) -> dict[str, Any]:
    return {"items": [{"id": i, "status": s} for i, s in enumerate(statuses)]}


@pytest.mark.parametrize(
    ("status", "item_statuses", "expected"),
    [
        (202, ["ok", "ok", "ok"], (3, 0, n.BATCH_COMPLETE)),
        (202, ["ok", "error", "ok", "error"], (4, 2, n.BATCH_PARTIAL)),
        (422, ["error", "error"], (2, 2, n.BATCH_FAILED)),
    ],
    ids=["202-complete", "202-partial", "422-failed"],
)
def test_batch_outcome(
    status: int,
    item_statuses: list[str],
    expected: tuple[int, int, str],
    telemetry: Telemetry,
    httpserver: HTTPServer,
) -> None:
    """Batched writes get items, failed items and an outcome; items are counted by outcome."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        _batch_body(item_statuses), status=status
    )

    requests.post(_url(httpserver), json=[{}] * len(item_statuses), timeout=5)

    attrs = telemetry.span().attributes or {}
    items, failed, outcome = expected
    assert (
        attrs[n.ATTR_BATCH_ITEMS],
        attrs[n.ATTR_BATCH_FAILED_ITEMS],
        attrs[n.ATTR_BATCH_OUTCOME],
    ) == expected
    assert outcome in (n.BATCH_COMPLETE, n.BATCH_PARTIAL, n.BATCH_FAILED)
    assert telemetry.value(n.METRIC_BATCH_ITEMS, outcome=n.ITEM_ACCEPTED) == items - failed
    assert telemetry.value(n.METRIC_BATCH_ITEMS, outcome=n.ITEM_FAILED) == failed


def test_non_batch_status_has_no_batch_attributes(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """A 200 with an items list is not a batch acceptance."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_json(_batch_body(["ok"]), status=200)
    requests.get(_url(httpserver), timeout=5)
    assert n.ATTR_BATCH_OUTCOME not in (telemetry.span().attributes or {})
    assert telemetry.series(n.METRIC_BATCH_ITEMS) == []


# --- redaction ----------------------------------------------------------------------

SECRETS = ("hunter2", "s3cr3tT0ken", "jane.doe", "example.com", "4155550100", "5550100")


def test_nothing_secret_or_personal_reaches_any_attribute_or_metric(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """Userinfo, token query values, e-mails and phones in the path appear nowhere."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(re.compile(".*")).respond_with_json(
        {"message": "unknown"}, status=404
    )
    url = (
        f"http://alice:hunter2@127.0.0.1:{httpserver.port}"
        "/v1/users/jane.doe@example.com/phones/+14155550100?token=s3cr3tT0ken&page=2"
    )

    requests.get(url, timeout=5)

    span = telemetry.span()
    exported = [span.name]
    exported += [f"{k}={v!r}" for k, v in (span.attributes or {}).items()]
    for event in span.events:
        exported += [f"{k}={v!r}" for k, v in (event.attributes or {}).items()]
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    exported += [f"{k}={v!r}" for k, v in (point.attributes or {}).items()]
    leaks = [(s, e) for e in exported for s in SECRETS if s in e]
    assert leaks == []
    # The span still says where it went, redacted.
    assert any("127.0.0.1" in e for e in exported)


# --- hosts, templates, names ----------------------------------------------------------


def test_other_hosts_are_untouched_and_not_counted(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """With HOSTS=localhost, a call to 127.0.0.1 keeps the plain span and is not counted."""
    telemetry.instrument(hosts=["localhost"])
    httpserver.expect_request(PATH).respond_with_data("", status=429)

    requests.get(_url(httpserver, host="127.0.0.1"), timeout=5)

    span = telemetry.span()
    assert span.name == "GET"
    assert not [k for k in (span.attributes or {}) if k.startswith("productapi.")]
    assert n.ATTR_URL_TEMPLATE not in (span.attributes or {})
    assert telemetry.series(n.METRIC_CLIENT_REQUESTS) == []

    requests.get(_url(httpserver, host="localhost"), timeout=5)
    assert telemetry.request_count(**{n.ATTR_SERVER_ADDRESS: "localhost"}) == 1


def test_other_hosts_transport_errors_are_not_counted(
    telemetry: Telemetry, closed_port: int
) -> None:
    """A refused connection to a non-Product-API host is not tagged or counted."""
    telemetry.instrument(hosts=["localhost"])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{closed_port}{PATH}", timeout=5)
    assert n.ATTR_ERROR_CLASS not in (telemetry.span().attributes or {})
    assert telemetry.series(n.METRIC_CLIENT_REQUESTS) == []


def test_url_template_names_the_span_and_the_series(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """Ids in the path become placeholders: one template, one span name, one series."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(re.compile("/v1/users/.*")).respond_with_data("", status=404)

    for user in ("12345", "67890", "4242"):
        requests.get(_url(httpserver, f"/v1/users/{user}"), timeout=5)

    spans = telemetry.spans()
    templates = {(s.attributes or {})[n.ATTR_URL_TEMPLATE] for s in spans}
    assert len(templates) == 1
    (template,) = templates
    assert isinstance(template, str)
    assert template.startswith("/v1/users/")
    assert "12345" not in template
    assert {s.name for s in spans} == {f"GET {template}"}
    assert telemetry.request_count(**{n.ATTR_URL_TEMPLATE: template}) == 3


def test_configured_route_template_wins(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """A configured template names the route, whatever the segment looks like."""
    telemetry.instrument(
        hosts=["127.0.0.1"], route_templates=["/v1/projects/{project}/users/{user_id}"]
    )
    httpserver.expect_request(re.compile("/v1/projects/.*")).respond_with_data("", status=403)

    requests.get(_url(httpserver, "/v1/projects/acme/users/jane.doe@example.com"), timeout=5)

    span = telemetry.span()
    template = "/v1/projects/{project}/users/{user_id}"
    assert (span.attributes or {})[n.ATTR_URL_TEMPLATE] == template
    assert span.name == f"GET {template}"
    assert telemetry.request_count(**{n.ATTR_URL_TEMPLATE: template}) == 1


def test_resend_count_is_set_on_retries_only(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """http.request.resend_count comes from RESEND_COUNT, and only when above zero."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data("", status=500)
    requests.get(_url(httpserver), timeout=5)
    token = RESEND_COUNT.set(2)
    try:
        requests.get(_url(httpserver), timeout=5)
    finally:
        RESEND_COUNT.reset(token)
    first, second = telemetry.spans()
    assert n.ATTR_HTTP_RESEND_COUNT not in (first.attributes or {})
    assert (second.attributes or {})[n.ATTR_HTTP_RESEND_COUNT] == 2


# --- metrics --------------------------------------------------------------------------


def test_first_call_on_a_route_zero_initialises_the_alerting_series(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """rate_limited and server_error series exist at 0 after a first successful call."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data("ok")

    requests.get(_url(httpserver), timeout=5)

    template = (telemetry.span().attributes or {})[n.ATTR_URL_TEMPLATE]
    route = {
        n.ATTR_HTTP_REQUEST_METHOD: "GET",
        n.ATTR_URL_TEMPLATE: template,
        n.ATTR_SERVER_ADDRESS: "127.0.0.1",
    }
    assert sorted(
        telemetry.series(n.METRIC_CLIENT_REQUESTS),
        key=lambda s: int(s[0][n.ATTR_HTTP_RESPONSE_STATUS_CODE]),
    ) == [
        ({**route, n.ATTR_HTTP_RESPONSE_STATUS_CODE: 200}, 1),
        (
            {
                **route,
                n.ATTR_HTTP_RESPONSE_STATUS_CODE: 429,
                n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED,
                n.ATTR_ERROR_RETRYABLE: True,
            },
            0,
        ),
        (
            {
                **route,
                n.ATTR_HTTP_RESPONSE_STATUS_CODE: 500,
                n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR,
                n.ATTR_ERROR_RETRYABLE: True,
            },
            0,
        ),
    ]


def test_counts_add_up(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """Each call is counted exactly once, under its own status."""
    telemetry.instrument(hosts=["127.0.0.1"])
    plan = [200, 200, 429, 500, 404, 200, 429]
    for status in plan:
        httpserver.expect_oneshot_request(PATH).respond_with_data("", status=status)
    for _ in plan:
        requests.get(_url(httpserver), timeout=5)
    assert telemetry.request_count() == len(plan)
    for status in set(plan):
        assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: status}) == plan.count(
            status
        )


def test_metrics_do_not_depend_on_sampling(httpserver: HTTPServer, closed_port: int) -> None:
    """With every span dropped (ParentBased(ALWAYS_OFF)), every call is still counted."""
    telemetry = make_telemetry(sampler=ParentBased(ALWAYS_OFF))
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH, method="GET").respond_with_data(
        "", status=429, headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3"}
    )
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        _batch_body(["ok", "error"]), status=202
    )

    requests.get(_url(httpserver), timeout=5)
    requests.post(_url(httpserver), json=[{}, {}], timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{closed_port}{PATH}", timeout=5)

    assert telemetry.spans() == []
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED}) == 1
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 202}) == 1
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 1
    assert [v for _, v in telemetry.series(n.METRIC_RATELIMIT_REMAINING)] == [3]
    assert telemetry.value(n.METRIC_BATCH_ITEMS, outcome=n.ITEM_FAILED) == 1


# --- instrument / uninstrument ------------------------------------------------------------


def test_instrument_twice_reconfigures_without_a_second_span(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """A second instrument() call replaces the first: one span and one count per call."""
    telemetry.instrument(hosts=["localhost"])
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data("", status=500)

    requests.get(_url(httpserver), timeout=5)

    assert (telemetry.span().attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert telemetry.request_count() == 1


def test_uninstrument_restores_everything(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """After uninstrument(), both patched methods are the originals and nothing is emitted."""
    send_before = requests.Session.send
    adapter_send_before = HTTPAdapter.send
    telemetry.instrument(hosts=["127.0.0.1"])
    assert requests.Session.send is not send_before
    assert HTTPAdapter.send is not adapter_send_before

    from otel_productapi import uninstrument

    uninstrument()
    uninstrument()  # harmless when nothing is instrumented

    assert requests.Session.send is send_before
    assert HTTPAdapter.send is adapter_send_before
    httpserver.expect_request(PATH).respond_with_data("", status=500)
    requests.get(_url(httpserver), timeout=5)
    assert telemetry.spans() == []
    assert telemetry.series(n.METRIC_CLIENT_REQUESTS) == []


def test_someone_elses_instrumentation_is_left_alone(
    telemetry: Telemetry, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """If requests is already instrumented by someone else: one span, a warning, no tagging."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    from otel_productapi import uninstrument

    RequestsInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    try:
        with caplog.at_level("WARNING"):
            telemetry.instrument(hosts=["127.0.0.1"])
        assert "already instrumented" in caplog.text
        httpserver.expect_request(PATH).respond_with_data("", status=500)
        requests.get(_url(httpserver), timeout=5)
        assert n.ATTR_ERROR_CLASS not in (telemetry.span().attributes or {})
        uninstrument()
        assert RequestsInstrumentor().is_instrumented_by_opentelemetry
    finally:
        RequestsInstrumentor().uninstrument()


def test_someone_elses_instrumentation_with_our_hooks_is_not_called_untagged(
    telemetry: Telemetry, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's own RequestsInstrumentor carrying make_hooks(): instrument() says its
    arguments are ignored (info, no "tagging is off" warning), and calls are tagged."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    telemetry.instrument_own_requests(hosts=["127.0.0.1"])
    try:
        with caplog.at_level("INFO", logger="otel_productapi"):
            telemetry.instrument(hosts=["127.0.0.1"])
        assert "hooks from otel_productapi.make_hooks() are in use" in caplog.text
        assert not [r for r in caplog.records if r.levelname == "WARNING"]
        httpserver.expect_request(PATH).respond_with_data("", status=500)
        requests.get(_url(httpserver), timeout=5)
        assert (telemetry.span().attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    finally:
        RequestsInstrumentor().uninstrument()


def test_unloaded_json_body_of_other_types_is_ignored(
    telemetry: Telemetry, httpserver: HTTPServer
) -> None:
    """A non-JSON error body leaves the message off and the call still classified."""
    telemetry.instrument(hosts=["127.0.0.1"])
    httpserver.expect_request(PATH).respond_with_data(
        b"\xff\xfe<html>oops", status=502, content_type="text/html"
    )
    requests.get(_url(httpserver), timeout=5)
    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert n.ATTR_ERROR_MESSAGE not in attrs
    assert json.dumps(dict(attrs))  # every value is a plain JSON-able value
