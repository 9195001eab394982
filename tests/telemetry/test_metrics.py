"""The metrics module: one aggregator per provider, bounded series, exact attributes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from conftest import Telemetry

from otel_productapi._core import names as n
from otel_productapi._core.status import TransportFailure
from otel_productapi._telemetry import metrics as _metrics
from otel_productapi._telemetry.outcomes import FAILURE_OUTCOMES, outcome_of_status


@dataclass(frozen=True)
class Route:
    """What metrics read of a route."""

    template: str
    host: str


def test_one_aggregator_and_one_set_of_retry_counters_per_provider(telemetry: Telemetry) -> None:
    """Asking twice for the same provider hands back the same objects (no duplicate instruments)."""
    provider = telemetry.meter_provider
    assert _metrics.metrics_for(provider) is _metrics.metrics_for(provider)
    assert _metrics.create_retry_instruments(provider) is _metrics.create_retry_instruments(
        provider
    )


def test_retry_counters_are_exported_under_their_names(telemetry: Telemetry) -> None:
    """The retry helper's counters reach the reader with their names and units."""
    retry = _metrics.create_retry_instruments(telemetry.meter_provider)
    retry.retries.add(2, {"productapi.error.class": "rate_limited"})
    retry.refusals.add(1)
    assert telemetry.value(n.METRIC_CLIENT_RETRIES) == 2
    assert telemetry.value(n.METRIC_RETRY_BUDGET_REFUSALS) == 1


def test_past_the_fold_point_routes_fold_and_classes_stay_exact(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New routes past MAX_SERIES - FOLD_RESERVE are counted under url.template=_OTHER
    with their method, status, class and retryability, so per-class totals stay exact."""
    monkeypatch.setattr(_metrics, "MAX_SERIES", 20)
    monkeypatch.setattr(_metrics, "FOLD_RESERVE", 6)
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    for i in range(50):
        status = 429 if i % 5 == 0 else 200
        metrics.record_call(
            "GET", Route(f"/v1/route{i}", "api"), outcome_of_status(status), None, None
        )
    series = telemetry.series(n.METRIC_CLIENT_REQUESTS)
    assert len(series) <= 20
    assert sum(v for _, v in series) == 50
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED}) == 10
    folded = {
        a[n.ATTR_HTTP_RESPONSE_STATUS_CODE]: v
        for a, v in series
        if a.get(n.ATTR_URL_TEMPLATE) == _metrics.FOLDED
    }
    kept = [a for a, v in series if a.get(n.ATTR_URL_TEMPLATE, "").startswith("/v1/route")]
    assert {
        a[n.ATTR_SERVER_ADDRESS] for a, _ in series if a.get(n.ATTR_URL_TEMPLATE) == "_OTHER"
    } == {"_OTHER"}
    # Routes 0..6 fill the 14 per-route series (with their zero-born 429/500
    # series); the 43 calls to routes 7..49 are folded by status.
    assert len(kept) == 14
    assert len(series) == 16
    assert folded == {200: 35, 429: 8}


def test_zero_series_stop_at_half_the_table(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Series born at 0 (429, 500) are only made while the table is under half full,
    so they never crowd out series of real calls."""
    monkeypatch.setattr(_metrics, "MAX_SERIES", 20)
    monkeypatch.setattr(_metrics, "FOLD_RESERVE", 2)
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    for i in range(18):
        metrics.record_call(
            "GET", Route(f"/v1/route{i}", "api"), outcome_of_status(200), None, None
        )
    series = telemetry.series(n.METRIC_CLIENT_REQUESTS)
    zeros = [a for a, v in series if v == 0]
    real_routes = [a for a, v in series if v == 1]
    folded = [v for a, v in series if a.get(n.ATTR_URL_TEMPLATE) == _metrics.FOLDED]
    # Routes 0..3 brought 2 zero series each (the table reached 10 of 20), routes
    # 0..9 keep a series of their own, routes 10..17 are folded into one.
    assert len(zeros) == 8
    assert len(real_routes) == 10
    assert folded == [8]
    assert len(series) == 19


def test_the_last_resort_is_the_sdk_overflow_series(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When even folded series fill the table, the rest go to otel.metric.overflow=true;
    nothing is lost."""
    monkeypatch.setattr(_metrics, "MAX_SERIES", 6)
    monkeypatch.setattr(_metrics, "FOLD_RESERVE", 3)
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    for status in range(200, 230):
        metrics.record_call(
            "GET", Route(f"/v1/route{status}", "api"), outcome_of_status(status), None, None
        )
    series = telemetry.series(n.METRIC_CLIENT_REQUESTS)
    # route200 with its two zero series, statuses 201 and 202 folded, 203..229 overflowed.
    assert len(series) == 6
    assert sum(v for _, v in series) == 30
    assert ({"otel.metric.overflow": True}, 27) in series
    folded = {
        a[n.ATTR_HTTP_RESPONSE_STATUS_CODE]: v
        for a, v in series
        if a.get(n.ATTR_URL_TEMPLATE) == _metrics.FOLDED
    }
    assert folded == {201: 1, 202: 1}


def test_counts_saturate_at_int64(telemetry: Telemetry) -> None:
    """A cumulative batch count never exceeds what OTLP can encode."""
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    for _ in range(5):
        metrics.count_batch_items("/v1/b", "api", 2**62, 0)
    assert telemetry.value(n.METRIC_BATCH_ITEMS) == 2**63 - 1


def test_gauges_keep_the_last_value_per_route(telemetry: Telemetry) -> None:
    """Rate-limit gauges report the last value seen for each route."""
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    ok = outcome_of_status(200)
    metrics.record_call("GET", Route("/a", "api"), ok, 100, 7)
    metrics.record_call("GET", Route("/a", "api"), ok, None, 6)
    metrics.record_call("GET", Route("/b", "api"), ok, 50, None)
    route_a = {n.ATTR_URL_TEMPLATE: "/a", n.ATTR_SERVER_ADDRESS: "api"}
    route_b = {n.ATTR_URL_TEMPLATE: "/b", n.ATTR_SERVER_ADDRESS: "api"}
    assert sorted(telemetry.series(n.METRIC_RATELIMIT_LIMIT), key=str) == sorted(
        [(route_a, 100), (route_b, 50)], key=str
    )
    assert telemetry.series(n.METRIC_RATELIMIT_REMAINING) == [(route_a, 6)]


def test_transport_errors_have_no_status_code(telemetry: Telemetry) -> None:
    """A call without a response is counted without http.response.status_code."""
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    outcome = FAILURE_OUTCOMES[TransportFailure.AFTER_SEND, False]
    metrics.record_call("POST", Route("/v1/x", "api"), outcome, None, None)
    counted = [a for a, v in telemetry.series(n.METRIC_CLIENT_REQUESTS) if v == 1]
    assert counted == [
        {
            n.ATTR_HTTP_REQUEST_METHOD: "POST",
            n.ATTR_URL_TEMPLATE: "/v1/x",
            n.ATTR_SERVER_ADDRESS: "api",
            n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR,
            n.ATTR_ERROR_RETRYABLE: False,
        }
    ]
