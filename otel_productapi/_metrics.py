"""The one module that creates instruments: every Product API metric comes from here.

The hooks call the small ``record_*``/``count_*`` methods below with plain
values; attribute dictionaries are built once per series and reused, because
these run on every request.

Metrics never look at the span: the decision to count a request must not
depend on whether its trace was sampled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from opentelemetry.metrics import Counter, Meter, MeterProvider, get_meter
from opentelemetry.util.types import Attributes

from otel_productapi import _names as n
from otel_productapi._status_table import Classification, classify_status

__all__ = ["ProductApiMetrics", "RetryInstruments", "create_retry_instruments", "meter_of"]

#: Series kept in each attribute cache; past it, dictionaries are built per call.
MAX_CACHED_SERIES: Final = 4096
#: Routes (template, method, server) whose error series are zero-initialised.
MAX_SEEN_ROUTES: Final = 2048

# The two series that alerts fire on: born at 0 so that Prometheus sees their
# first increment (a series that appears with value 1 has no rate yet).
_ZERO_INIT: Final[tuple[tuple[int, Classification], ...]] = tuple(
    (status, c) for status in (429, 500) if (c := classify_status(status)) is not None
)

_RequestKey = tuple[str, str, str, "int | None", "str | None", "bool | None"]


def meter_of(meter_provider: MeterProvider | None) -> Meter:
    """Our meter (scope ``otel_productapi``) from ``meter_provider`` or the global one."""
    # The package imports this module before it sets __version__.
    from otel_productapi import __version__  # noqa: PLC0415

    return get_meter(n.SCOPE, __version__, meter_provider)


@dataclass(frozen=True, slots=True)
class RetryInstruments:
    """The retry helper's two counters.

    Attributes:
        retries: ``productapi.client.retries``, one per attempt after the first.
        refusals: ``productapi.client.retry_budget.refusals``, one per retry the
            budget refused.
    """

    retries: Counter
    refusals: Counter


def create_retry_instruments(meter_provider: MeterProvider | None = None) -> RetryInstruments:
    """Create the retry helper's counters on our meter (global provider if ``None``)."""
    meter = meter_of(meter_provider)
    return RetryInstruments(
        retries=meter.create_counter(
            n.METRIC_CLIENT_RETRIES,
            unit=n.METRIC_CLIENT_RETRIES_UNIT,
            description="Product API requests sent again after a retryable outcome.",
        ),
        refusals=meter.create_counter(
            n.METRIC_RETRY_BUDGET_REFUSALS,
            unit=n.METRIC_RETRY_BUDGET_REFUSALS_UNIT,
            description="Retries the retry budget refused; the outcome was returned instead.",
        ),
    )


class ProductApiMetrics:
    """Instruments for Product API calls, with cached attribute sets.

    Thread-safe: caches are plain dicts (single lookups and stores are atomic
    in CPython, and a lost race only builds an equal dictionary twice); the
    first-seen set, whose check-then-add must not zero-initialise twice, takes
    a lock on the rare first-seen path only.
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        """Create every instrument on the meter of ``meter_provider`` (global if ``None``)."""
        meter = meter_of(meter_provider)
        self.requests = meter.create_counter(
            n.METRIC_CLIENT_REQUESTS,
            unit=n.METRIC_CLIENT_REQUESTS_UNIT,
            description="Product API requests, by outcome class and retryability.",
        )
        self.ratelimit_remaining = meter.create_gauge(
            n.METRIC_RATELIMIT_REMAINING,
            unit=n.METRIC_RATELIMIT_UNIT,
            description="Requests left in the current rate-limit window (X-RateLimit-Remaining).",
        )
        self.ratelimit_limit = meter.create_gauge(
            n.METRIC_RATELIMIT_LIMIT,
            unit=n.METRIC_RATELIMIT_UNIT,
            description="Requests allowed per rate-limit window (X-RateLimit-Limit).",
        )
        self.batch_items = meter.create_counter(
            n.METRIC_BATCH_ITEMS,
            unit=n.METRIC_BATCH_ITEMS_UNIT,
            description="Items of batched writes, by outcome (accepted, failed).",
        )
        self.retry = create_retry_instruments(meter_provider)
        self._request_attrs: dict[_RequestKey, Attributes] = {}
        self._route_attrs: dict[tuple[str, str], Attributes] = {}
        self._item_attrs: dict[tuple[str, str, str], Attributes] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._seen_lock = threading.Lock()

    def count_request(
        self,
        method: str,
        template: str,
        server: str,
        status: int | None,
        classification: Classification | None,
    ) -> None:
        """Count one request; ``status`` is ``None`` when no response arrived."""
        if (template, method, server) not in self._seen:
            self._first_seen(method, template, server)
        if classification is None:
            key: _RequestKey = (method, template, server, status, None, None)
        else:
            key = (
                method,
                template,
                server,
                status,
                classification.error_class,
                classification.retryable,
            )
        attrs = self._request_attrs.get(key)
        if attrs is None:
            attrs = _request_attributes(key)
            if len(self._request_attrs) < MAX_CACHED_SERIES:
                self._request_attrs[key] = attrs
        self.requests.add(1, attrs)

    def record_ratelimit(
        self, template: str, server: str, limit: int | None, remaining: int | None
    ) -> None:
        """Record the rate-limit gauges that the response carried."""
        attrs = self._route(template, server)
        if limit is not None:
            self.ratelimit_limit.set(limit, attrs)
        if remaining is not None:
            self.ratelimit_remaining.set(remaining, attrs)

    def count_batch_items(self, template: str, server: str, accepted: int, failed: int) -> None:
        """Count the items of one batched write by outcome (zero counts are skipped)."""
        if accepted > 0:
            self.batch_items.add(accepted, self._item(template, server, n.ITEM_ACCEPTED))
        if failed > 0:
            self.batch_items.add(failed, self._item(template, server, n.ITEM_FAILED))

    def _first_seen(self, method: str, template: str, server: str) -> None:
        route = (template, method, server)
        with self._seen_lock:
            if route in self._seen or len(self._seen) >= MAX_SEEN_ROUTES:
                return
            self._seen.add(route)
        for status, classification in _ZERO_INIT:
            key: _RequestKey = (
                method,
                template,
                server,
                status,
                classification.error_class,
                classification.retryable,
            )
            self.requests.add(0, _request_attributes(key))

    def _route(self, template: str, server: str) -> Attributes:
        key = (template, server)
        attrs = self._route_attrs.get(key)
        if attrs is None:
            attrs = {n.ATTR_URL_TEMPLATE: template, n.ATTR_SERVER_ADDRESS: server}
            if len(self._route_attrs) < MAX_CACHED_SERIES:
                self._route_attrs[key] = attrs
        return attrs

    def _item(self, template: str, server: str, outcome: str) -> Attributes:
        key = (template, server, outcome)
        attrs = self._item_attrs.get(key)
        if attrs is None:
            attrs = {
                n.ATTR_ITEM_OUTCOME: outcome,
                n.ATTR_URL_TEMPLATE: template,
                n.ATTR_SERVER_ADDRESS: server,
            }
            if len(self._item_attrs) < MAX_CACHED_SERIES:
                self._item_attrs[key] = attrs
        return attrs


def _request_attributes(key: _RequestKey) -> Attributes:
    method, template, server, status, error_class, retryable = key
    attrs: dict[str, str | bool | int] = {
        n.ATTR_HTTP_REQUEST_METHOD: method,
        n.ATTR_URL_TEMPLATE: template,
        n.ATTR_SERVER_ADDRESS: server,
    }
    if status is not None:
        attrs[n.ATTR_HTTP_RESPONSE_STATUS_CODE] = status
    if error_class is not None and retryable is not None:
        attrs[n.ATTR_ERROR_CLASS] = error_class
        attrs[n.ATTR_ERROR_RETRYABLE] = retryable
    return attrs
