"""Classified spans reach a real collector: app under opentelemetry-instrument -> Rotel.

Rotel (``rotel-agent`` from the ``rotel`` package, in the test extra) listens
on 127.0.0.1 and forwards everything it receives over OTLP/HTTP to an
in-process sink that decodes it; the test reads the sink, and Rotel's own
debug output, never the app's memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from apps._run import ZERO_CODE_APP, run_instrumented

from otel_productapi._core import names as n
from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi
from otel_productapi.testing._collector import OtlpSink, ReceivedSpan, Rotel, rotel_with_sink

USER = "/v1/projects/p1/users/u1"
BATCH = "/v1/projects/p1/events:batch"


@pytest.fixture
def collector() -> Iterator[tuple[Rotel, OtlpSink]]:
    """Rotel on free 127.0.0.1 ports, forwarding to a sink; both stopped afterwards."""
    with rotel_with_sink() as (rotel, sink):
        yield rotel, sink
    pid = rotel.pid
    assert pid is None


def _export_env(rotel: Rotel) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": "rotel-test-app",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.endpoint,
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "APP_PRINT_SPANS": "0",
        "PRODUCTAPI_OTEL_ROUTE_TEMPLATES": ",".join(ROUTE_TEMPLATES),
    }


def _by_status(spans: list[ReceivedSpan]) -> dict[int, ReceivedSpan]:
    return {int(s.attributes[n.ATTR_HTTP_RESPONSE_STATUS_CODE]): s for s in spans}


def test_classified_spans_arrive_in_rotel(
    collector: tuple[Rotel, OtlpSink], fake_product_api: FakeProductApi
) -> None:
    """Every request's CLIENT span arrives in the collector with its classification."""
    rotel, sink = collector
    fake_product_api.script("GET", USER, [429, 500, 200, 404])
    fake_product_api.set_scenario("batch_partial")
    calls = [f"GET {USER}"] * 4 + [f"POST {BATCH}"]
    run_instrumented([str(ZERO_CODE_APP), fake_product_api.url, *calls], _export_env(rotel))

    spans = sink.wait_for(lambda got: len(got) >= len(calls))
    client = [s for s in spans if s.kind == "CLIENT"]
    assert len(client) == len(calls)
    assert {s.resource["service.name"] for s in client} == {"rotel-test-app"}
    by_status = _by_status(client)

    limited = by_status[429].attributes
    assert limited[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert limited[n.ATTR_ERROR_RETRYABLE] is True
    assert limited[n.ATTR_URL_TEMPLATE] == "/v1/projects/{project}/users/{user_id}"
    assert limited[n.ATTR_RATELIMIT_LIMIT] == 100
    assert limited[n.ATTR_RATELIMIT_REMAINING] == 0
    assert limited[n.ATTR_RATELIMIT_RESET] > 0
    assert limited[n.ATTR_REQUEST_ID].startswith("req_")
    assert "Rate limit" in limited[n.ATTR_ERROR_MESSAGE]
    assert by_status[429].name == "GET /v1/projects/{project}/users/{user_id}"

    assert by_status[500].attributes[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert by_status[500].attributes[n.ATTR_ERROR_RETRYABLE] is True
    assert by_status[404].attributes[n.ATTR_ERROR_CLASS] == n.CLASS_NOT_FOUND
    assert by_status[404].attributes[n.ATTR_ERROR_RETRYABLE] is False
    assert n.ATTR_ERROR_CLASS not in by_status[200].attributes

    batch = by_status[202].attributes
    assert batch[n.ATTR_URL_TEMPLATE] == "/v1/projects/{project}/events:batch"
    assert (batch[n.ATTR_BATCH_ITEMS], batch[n.ATTR_BATCH_FAILED_ITEMS]) == (4, 2)
    assert batch[n.ATTR_BATCH_OUTCOME] == n.BATCH_PARTIAL

    # Rotel's own view of the same spans (its --debug-log output).
    shown = rotel.debug_output()
    assert f"{n.ATTR_ERROR_CLASS}: Str({n.CLASS_RATE_LIMITED})" in shown
    assert f"{n.ATTR_ERROR_RETRYABLE}: Bool(true)" in shown


def test_transport_errors_arrive_tagged(collector: tuple[Rotel, OtlpSink]) -> None:
    """A call that gets no response still arrives tagged transport_error."""
    rotel, sink = collector
    with FakeProductApi() as api:
        closed = api.url  # nothing listens here once the server stops
    run_instrumented([str(ZERO_CODE_APP), closed, f"GET {USER}"], _export_env(rotel))
    (span,) = sink.wait_for(lambda got: len(got) >= 1)
    assert span.attributes[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert span.attributes[n.ATTR_ERROR_RETRYABLE] is True
    assert span.status == "ERROR"


def test_rotel_stops_cleanly() -> None:
    """stop() ends the agent's process group and removes its files."""
    with OtlpSink() as sink:
        rotel = Rotel(sink.endpoint).start()
        pid = rotel.pid
        assert pid is not None
        rotel.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert rotel.debug_output() == ""
