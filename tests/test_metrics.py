"""The metrics module: one aggregator per provider, bounded series, exact attributes."""

from __future__ import annotations

import pytest
from conftest import Telemetry

from otel_productapi._core import names as n
from otel_productapi._core.status import classify_status
from otel_productapi._telemetry import metrics as _metrics


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


def test_series_past_the_limit_overflow_into_one(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_SERIES, new series are counted under otel.metric.overflow, nothing is lost."""
    monkeypatch.setattr(_metrics, "MAX_SERIES", 5)
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    for i in range(20):
        metrics.count_request("GET", f"/v1/route{i}", "api", 200, None)
    series = telemetry.series(n.METRIC_CLIENT_REQUESTS)
    assert len(series) <= 6
    assert sum(v for _, v in series) == 20
    assert (
        {"otel.metric.overflow": True},
        20 - sum(v for a, v in series if "otel.metric.overflow" not in a),
    ) in series


def test_gauges_keep_the_last_value_per_route(telemetry: Telemetry) -> None:
    """Rate-limit gauges report the last value seen for each route."""
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    metrics.record_ratelimit("/a", "api", 100, 7)
    metrics.record_ratelimit("/a", "api", None, 6)
    metrics.record_ratelimit("/b", "api", 50, None)
    route_a = {n.ATTR_URL_TEMPLATE: "/a", n.ATTR_SERVER_ADDRESS: "api"}
    route_b = {n.ATTR_URL_TEMPLATE: "/b", n.ATTR_SERVER_ADDRESS: "api"}
    assert sorted(telemetry.series(n.METRIC_RATELIMIT_LIMIT), key=str) == sorted(
        [(route_a, 100), (route_b, 50)], key=str
    )
    assert telemetry.series(n.METRIC_RATELIMIT_REMAINING) == [(route_a, 6)]


def test_transport_errors_have_no_status_code(telemetry: Telemetry) -> None:
    """A call without a response is counted without http.response.status_code."""
    metrics = _metrics.ProductApiMetrics(telemetry.meter_provider)
    failure = classify_status(503)
    assert failure is not None
    metrics.count_request("POST", "/v1/x", "api", None, failure)
    counted = [a for a, v in telemetry.series(n.METRIC_CLIENT_REQUESTS) if v == 1]
    assert counted == [
        {
            n.ATTR_HTTP_REQUEST_METHOD: "POST",
            n.ATTR_URL_TEMPLATE: "/v1/x",
            n.ATTR_SERVER_ADDRESS: "api",
            n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR,
            n.ATTR_ERROR_RETRYABLE: True,
        }
    ]
