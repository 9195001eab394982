"""The one module that creates instruments: every Product API metric comes from here.

The hooks call the small ``record_*``/``count_*`` methods below with plain
values on every request; those only update dictionaries under a lock, and
observable instruments report the totals when the SDK collects (see
``ProductApiMetrics`` for why).

Metrics never look at the span: the decision to count a request must not
depend on whether its trace was sampled.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Meter,
    MeterProvider,
    Observation,
    get_meter,
)
from opentelemetry.util.types import Attributes

from otel_productapi._core import names as n
from otel_productapi._core.status import Classification, classify_status

__all__ = [
    "ProductApiMetrics",
    "RetryInstruments",
    "create_retry_instruments",
    "meter_of",
    "metrics_for",
]

#: Series kept per metric (the SDK's default cardinality limit); the rest overflow.
MAX_SERIES: Final = 2000

# The two series that alerts fire on: born at 0 so that Prometheus sees their
# first increment (a series that appears with value 1 has no rate yet).
_ZERO_INIT: Final[tuple[tuple[int, Classification], ...]] = tuple(
    (status, c) for status in (429, 500) if (c := classify_status(status)) is not None
)

_RequestKey = tuple[str, str, str, "int | None", "str | None", "bool | None"]
_RouteKey = tuple[str, str]
_ItemKey = tuple[str, str, str]
# Keys no real series can have (methods are upper-case words, templates paths).
_REQUEST_OVERFLOW: Final[_RequestKey] = ("", "", "", None, None, None)
_ROUTE_OVERFLOW: Final[_RouteKey] = ("", "")
_ITEM_OVERFLOW: Final[_ItemKey] = ("", "", "")
_OVERFLOW_ATTRIBUTES: Final[Attributes] = {"otel.metric.overflow": True}


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


_retry_by_provider: weakref.WeakKeyDictionary[MeterProvider, RetryInstruments] = (
    weakref.WeakKeyDictionary()
)
_retry_for_global: list[RetryInstruments] = []
_retry_lock = threading.Lock()


def create_retry_instruments(meter_provider: MeterProvider | None = None) -> RetryInstruments:
    """The retry helper's counters on our meter (global provider if ``None``).

    Created once per provider and then handed out again: the SDK logs a
    warning each time an instrument name is created twice on a meter.
    """
    with _retry_lock:
        if meter_provider is None:
            if not _retry_for_global:
                _retry_for_global.append(_new_retry_instruments(None))
            return _retry_for_global[0]
        found = _retry_by_provider.get(meter_provider)
        if found is None:
            found = _new_retry_instruments(meter_provider)
            _retry_by_provider[meter_provider] = found
        return found


def _new_retry_instruments(meter_provider: MeterProvider | None) -> RetryInstruments:
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
    """Our per-request metrics, aggregated here and reported when the SDK collects.

    Why not synchronous instruments: one ``Counter.add`` in the SDK costs
    about as much as everything else the hooks do together (attribute
    cleaning, hashing, exemplar sampling), and the hooks run on every request.
    So each request costs a locked dictionary increment, and observable
    instruments report the totals (counters, cumulative) and last values
    (gauges) at collection time. Exporters see the same names, units and
    attributes; data points carry no exemplars.

    Thread-safe: every update takes one lock, held for a dictionary update.
    Memory is bounded: past ``MAX_SERIES`` series per metric, new series are
    folded into one with the SDK's overflow attribute
    (``otel.metric.overflow=true``), as the SDK does past its own limit.
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        """Create every instrument on the meter of ``meter_provider`` (global if ``None``)."""
        meter = meter_of(meter_provider)
        self._lock = threading.Lock()
        self._requests: dict[_RequestKey, int] = {}
        self._limits: dict[_RouteKey, int] = {}
        self._remaining: dict[_RouteKey, int] = {}
        self._items: dict[_ItemKey, int] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._attrs: dict[object, Attributes] = {}
        self.requests = meter.create_observable_counter(
            n.METRIC_CLIENT_REQUESTS,
            callbacks=[self._observe_requests],
            unit=n.METRIC_CLIENT_REQUESTS_UNIT,
            description="Product API requests, by outcome class and retryability.",
        )
        self.ratelimit_remaining = meter.create_observable_gauge(
            n.METRIC_RATELIMIT_REMAINING,
            callbacks=[self._observe_remaining],
            unit=n.METRIC_RATELIMIT_UNIT,
            description="Requests left in the current rate-limit window (X-RateLimit-Remaining).",
        )
        self.ratelimit_limit = meter.create_observable_gauge(
            n.METRIC_RATELIMIT_LIMIT,
            callbacks=[self._observe_limits],
            unit=n.METRIC_RATELIMIT_UNIT,
            description="Requests allowed per rate-limit window (X-RateLimit-Limit).",
        )
        self.batch_items = meter.create_observable_counter(
            n.METRIC_BATCH_ITEMS,
            callbacks=[self._observe_items],
            unit=n.METRIC_BATCH_ITEMS_UNIT,
            description="Items of batched writes, by outcome (accepted, failed).",
        )

    # --- per request (hot path) -----------------------------------------------

    def count_request(
        self,
        method: str,
        template: str,
        server: str,
        status: int | None,
        classification: Classification | None,
    ) -> None:
        """Count one request; ``status`` is ``None`` when no response arrived."""
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
        with self._lock:
            requests = self._requests
            if key in requests:
                requests[key] += 1
                return
            if (template, method, server) not in self._seen:
                self._first_seen(method, template, server)
            _bump(requests, key, 1, _REQUEST_OVERFLOW)

    def record_ratelimit(
        self, template: str, server: str, limit: int | None, remaining: int | None
    ) -> None:
        """Record the rate-limit gauges that the response carried."""
        route = (template, server)
        with self._lock:
            if limit is not None:
                _store(self._limits, route, limit)
            if remaining is not None:
                _store(self._remaining, route, remaining)

    def count_batch_items(self, template: str, server: str, accepted: int, failed: int) -> None:
        """Count the items of one batched write by outcome (zero counts are skipped)."""
        with self._lock:
            if accepted > 0:
                _bump(self._items, (template, server, n.ITEM_ACCEPTED), accepted, _ITEM_OVERFLOW)
            if failed > 0:
                _bump(self._items, (template, server, n.ITEM_FAILED), failed, _ITEM_OVERFLOW)

    def _first_seen(self, method: str, template: str, server: str) -> None:
        # Called with the lock held. The alerting series are born at 0 so that
        # Prometheus sees their first increment.
        if len(self._seen) >= MAX_SERIES:
            return
        self._seen.add((template, method, server))
        for status, classification in _ZERO_INIT:
            key: _RequestKey = (
                method,
                template,
                server,
                status,
                classification.error_class,
                classification.retryable,
            )
            if key not in self._requests and len(self._requests) < MAX_SERIES:
                self._requests[key] = 0

    # --- at collection -----------------------------------------------------------

    def _observe_requests(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            snapshot = list(self._requests.items())
        return [Observation(v, self._attributes(k, _request_attributes)) for k, v in snapshot]

    def _observe_limits(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            snapshot = list(self._limits.items())
        return [Observation(v, self._attributes(k, _route_attributes)) for k, v in snapshot]

    def _observe_remaining(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            snapshot = list(self._remaining.items())
        return [Observation(v, self._attributes(k, _route_attributes)) for k, v in snapshot]

    def _observe_items(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            snapshot = list(self._items.items())
        return [Observation(v, self._attributes(k, _item_attributes)) for k, v in snapshot]

    def _attributes(self, key: _K, build: Callable[[_K], Attributes]) -> Attributes:
        # Collections run one at a time per reader; a lost race builds twice.
        attrs = self._attrs.get(key)
        if attrs is None:
            attrs = build(key)
            self._attrs[key] = attrs
        return attrs


_K = TypeVar("_K")

_by_provider: weakref.WeakKeyDictionary[MeterProvider, ProductApiMetrics] = (
    weakref.WeakKeyDictionary()
)
_for_global: list[ProductApiMetrics] = []
_by_provider_lock = threading.Lock()


def metrics_for(meter_provider: MeterProvider | None = None) -> ProductApiMetrics:
    """The one ``ProductApiMetrics`` of ``meter_provider`` (``None``: the global one).

    One per provider because a meter hands back the first instrument created
    under a name: a second set of observable instruments (after a second
    ``instrument()``) would never be observed. Counts therefore carry over
    re-configuration, as cumulative counters should.
    """
    with _by_provider_lock:
        if meter_provider is None:
            if not _for_global:
                _for_global.append(ProductApiMetrics(None))
            return _for_global[0]
        found = _by_provider.get(meter_provider)
        if found is None:
            found = ProductApiMetrics(meter_provider)
            _by_provider[meter_provider] = found
        return found


def _bump(counts: dict[_K, int], key: _K, amount: int, overflow: _K) -> None:
    if key in counts or len(counts) < MAX_SERIES:
        counts[key] = counts.get(key, 0) + amount
    else:
        counts[overflow] = counts.get(overflow, 0) + amount


def _store(values: dict[_RouteKey, int], key: _RouteKey, value: int) -> None:
    if key in values or len(values) < MAX_SERIES:
        values[key] = value
    else:
        values[_ROUTE_OVERFLOW] = value


def _request_attributes(key: _RequestKey) -> Attributes:
    if key == _REQUEST_OVERFLOW:
        return _OVERFLOW_ATTRIBUTES
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


def _route_attributes(key: _RouteKey) -> Attributes:
    if key == _ROUTE_OVERFLOW:
        return _OVERFLOW_ATTRIBUTES
    template, server = key
    return {n.ATTR_URL_TEMPLATE: template, n.ATTR_SERVER_ADDRESS: server}


def _item_attributes(key: _ItemKey) -> Attributes:
    if key == _ITEM_OVERFLOW:
        return _OVERFLOW_ATTRIBUTES
    template, server, outcome = key
    return {
        n.ATTR_ITEM_OUTCOME: outcome,
        n.ATTR_URL_TEMPLATE: template,
        n.ATTR_SERVER_ADDRESS: server,
    }
