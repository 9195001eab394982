"""The one module that creates instruments: every Product API metric comes from here.

The tagger calls ``record_response``/``count_batch_items`` with plain values
on every call; those update dictionaries under one lock, and observable
instruments report the totals when the SDK collects (see
``ProductApiMetrics`` for why).

Metrics never look at the span: the decision to count a request must not
depend on whether its trace was sampled.

Bounded whatever the traffic, without losing a call::

    series kept per metric ........ at most MAX_SERIES
    ├── per route (url.template, server.address) ... until FOLD_AT series
    ├── folded: url.template = server.address = "_OTHER", method, status,
    │   class and retryable kept, so per-class totals stay exact ... until MAX_SERIES - 1
    └── otel.metric.overflow=true (the SDK's own overflow series) ... the rest
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

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
from otel_productapi._core.numbers import MAX_INT64
from otel_productapi._telemetry.outcomes import OUTCOME_429, OUTCOME_500, Outcome

__all__ = [
    "FOLDED",
    "ProductApiMetrics",
    "RetryInstruments",
    "create_retry_instruments",
    "meter_of",
    "metrics_for",
]

#: Series kept per metric (the SDK's default cardinality limit).
MAX_SERIES: Final = 2000
#: Room kept for folded series: per-route series stop at ``MAX_SERIES - FOLD_RESERVE``.
FOLD_RESERVE: Final = 200
#: What ``url.template`` and ``server.address`` read on series folded under
#: cardinality pressure (the semantic conventions' word for "anything else").
FOLDED: Final = "_OTHER"

_K = TypeVar("_K")
_V = TypeVar("_V")
# (method, url.template, server.address, outcome)
_RequestKey = tuple[str, str, str, Outcome]
# (url.template, server.address)
_RouteKey = tuple[str, str]
# (url.template, server.address, item outcome)
_ItemKey = tuple[str, str, str]
_OVERFLOW: Final = "\x00overflow"  # no real template or host can be this
_OVERFLOW_ATTRIBUTES: Final[Attributes] = {"otel.metric.overflow": True}


def meter_of(meter_provider: MeterProvider | None) -> Meter:
    """Our meter (scope ``otel_productapi``) from ``meter_provider`` or the global one."""
    # The package imports this module before it sets __version__.
    from otel_productapi import __version__  # noqa: PLC0415

    return get_meter(n.SCOPE, __version__, meter_provider)


@dataclass(frozen=True, slots=True)
class RetryInstruments:
    """The retry helpers' two counters.

    Attributes:
        retries: ``productapi.client.retries``, one per attempt after the first.
        refusals: ``productapi.client.retry_budget.refusals``, one per retry the
            budget refused.
    """

    retries: Counter
    refusals: Counter


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


class RouteKey(Protocol):
    """What metrics need of a route."""

    @property
    def template(self) -> str:
        """``url.template``."""
        ...

    @property
    def host(self) -> str:
        """``server.address``."""
        ...


class _Series(dict[_K, _V]):
    """Values by key, bounded: per-route keys until the fold point, then folded, then overflow."""

    __slots__ = ("_fold", "_overflow")

    def __init__(self, fold: Callable[[_K], _K], overflow: _K) -> None:
        super().__init__()
        self._fold = fold
        self._overflow = overflow

    def slot(self, key: _K) -> _K:
        """The key ``key`` is stored under now (itself, folded, or the overflow key)."""
        if key in self or len(self) < MAX_SERIES - FOLD_RESERVE:
            return key
        folded = self._fold(key)
        if folded in self or len(self) < MAX_SERIES - 1:
            return folded
        return self._overflow

    def add(self: _Series[_K, int], key: _K, amount: int) -> None:
        """Add ``amount``; the total saturates at int64's maximum (OTLP's limit)."""
        key = self.slot(key)
        self[key] = min(self.get(key, 0) + amount, MAX_INT64)


def _fold_request(key: _RequestKey) -> _RequestKey:
    return (key[0], FOLDED, FOLDED, key[3])


def _fold_route(key: _RouteKey) -> _RouteKey:
    return (FOLDED, FOLDED)


def _fold_item(key: _ItemKey) -> _ItemKey:
    return (FOLDED, FOLDED, key[2])


class ProductApiMetrics:
    """Our per-request metrics, aggregated here and reported when the SDK collects.

    Why not synchronous instruments: one ``Counter.add`` in the SDK costs
    about as much as everything else the hooks do together (attribute
    cleaning, hashing, exemplar sampling), and the hooks run on every request.
    So each call costs one locked dictionary update, and observable
    instruments report the totals (counters, cumulative) and last values
    (gauges) at collection time. Exporters see the same names, units and
    attributes; data points carry no exemplars.

    Thread-safe: every update takes one lock, held for a few dictionary
    updates. Memory is bounded (see the module docstring): under cardinality
    pressure new series fold their route into ``FOLDED`` and keep method,
    status, class and retryability, so the totals per class that the alerts
    read stay exact.
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        """Create every instrument on the meter of ``meter_provider`` (global if ``None``)."""
        meter = meter_of(meter_provider)
        self._lock = threading.Lock()
        self._requests: _Series[_RequestKey, int] = _Series(
            _fold_request, ("", _OVERFLOW, _OVERFLOW, OUTCOME_500)
        )
        # (template, server) -> [last X-RateLimit-Limit, last X-RateLimit-Remaining]
        self._gauges: _Series[_RouteKey, list[int | None]] = _Series(
            _fold_route, (_OVERFLOW, _OVERFLOW)
        )
        self._items: _Series[_ItemKey, int] = _Series(_fold_item, (_OVERFLOW, _OVERFLOW, ""))
        self._attributes: dict[object, Attributes] = {}
        self.requests = meter.create_observable_counter(
            n.METRIC_CLIENT_REQUESTS,
            callbacks=[self._observe(self._requests, _request_attributes)],
            unit=n.METRIC_CLIENT_REQUESTS_UNIT,
            description="Product API requests, by outcome class and retryability.",
        )
        self.ratelimit_remaining = meter.create_observable_gauge(
            n.METRIC_RATELIMIT_REMAINING,
            callbacks=[self._observe_gauge(1)],
            unit=n.METRIC_RATELIMIT_UNIT,
            description="Requests left in the current rate-limit window (X-RateLimit-Remaining).",
        )
        self.ratelimit_limit = meter.create_observable_gauge(
            n.METRIC_RATELIMIT_LIMIT,
            callbacks=[self._observe_gauge(0)],
            unit=n.METRIC_RATELIMIT_UNIT,
            description="Requests allowed per rate-limit window (X-RateLimit-Limit).",
        )
        self.batch_items = meter.create_observable_counter(
            n.METRIC_BATCH_ITEMS,
            callbacks=[self._observe(self._items, _item_attributes)],
            unit=n.METRIC_BATCH_ITEMS_UNIT,
            description="Items of batched writes, by outcome (accepted, failed).",
        )

    # --- per call (hot path) ---------------------------------------------------------

    def record_call(
        self,
        method: str,
        route: RouteKey,
        outcome: Outcome,
        limit: int | None,
        remaining: int | None,
    ) -> None:
        """Count one call, and keep the rate-limit gauges its response carried.

        Args:
            method: Normalised method (``_OTHER`` for unknown ones).
            route: Its ``url.template`` and ``server.address``.
            outcome: The status's or transport failure's ``Outcome``.
            limit: ``X-RateLimit-Limit``, if sent.
            remaining: ``X-RateLimit-Remaining``, if sent.
        """
        template, server = route.template, route.host
        key = (method, template, server, outcome)
        with self._lock:
            try:
                self._requests[key] += 1
            except KeyError:
                self._new_request_series(key)
            if limit is None and remaining is None:
                return
            gauges = (template, server)
            gauge = self._gauges.get(gauges)
            if gauge is None:
                gauge = self._gauges.setdefault(self._gauges.slot(gauges), [None, None])
            if limit is not None:
                gauge[0] = limit
            if remaining is not None:
                gauge[1] = remaining

    def count_batch_items(self, template: str, server: str, accepted: int, failed: int) -> None:
        """Count the items of one batched write by outcome (zero counts are skipped)."""
        with self._lock:
            if accepted > 0:
                self._items.add((template, server, n.ITEM_ACCEPTED), accepted)
            if failed > 0:
                self._items.add((template, server, n.ITEM_FAILED), failed)

    def _new_request_series(self, key: _RequestKey) -> None:
        # Called with the lock held. The series the storm and 5xx alerts read
        # are born at 0 with a route's first call, so that Prometheus sees
        # their first increment; only while the table is less than half full,
        # so that zeros never crowd out series that count real calls.
        requests = self._requests
        if len(requests) < MAX_SERIES // 2:
            method, template, server, _ = key
            for outcome in (OUTCOME_429, OUTCOME_500):
                requests.setdefault((method, template, server, outcome), 0)
        requests.add(key, 1)

    # --- at collection ---------------------------------------------------------------

    def _observe(
        self, values: dict[_K, int], build: Callable[[_K], Attributes]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                snapshot = list(values.items())
            return [Observation(v, self._attributes_of(k, build)) for k, v in snapshot]

        return callback

    def _observe_gauge(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                snapshot = [(k, v[index]) for k, v in self._gauges.items()]
            return [
                Observation(v, self._attributes_of(k, _route_attributes))
                for k, v in snapshot
                if v is not None
            ]

        return callback

    def _attributes_of(self, key: _K, build: Callable[[_K], Attributes]) -> Attributes:
        # Collections run one at a time per reader; a lost race builds twice.
        attrs = self._attributes.get(key)
        if attrs is None:
            attrs = self._attributes[key] = build(key)
        return attrs


def _request_attributes(key: _RequestKey) -> Attributes:
    method, template, server, outcome = key
    if template == _OVERFLOW:
        return _OVERFLOW_ATTRIBUTES
    return {
        n.ATTR_HTTP_REQUEST_METHOD: method,
        n.ATTR_URL_TEMPLATE: template,
        n.ATTR_SERVER_ADDRESS: server,
        **outcome.metric_attributes,
    }


def _route_attributes(key: _RouteKey) -> Attributes:
    template, server = key
    if template == _OVERFLOW:
        return _OVERFLOW_ATTRIBUTES
    return {n.ATTR_URL_TEMPLATE: template, n.ATTR_SERVER_ADDRESS: server}


def _item_attributes(key: _ItemKey) -> Attributes:
    template, server, outcome = key
    if template == _OVERFLOW:
        return _OVERFLOW_ATTRIBUTES
    return {
        n.ATTR_ITEM_OUTCOME: outcome,
        n.ATTR_URL_TEMPLATE: template,
        n.ATTR_SERVER_ADDRESS: server,
    }


class _PerProvider(Generic[_K]):
    """One object per meter provider (and one for the global provider), made on first use."""

    def __init__(self, make: Callable[[MeterProvider | None], _K]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._global: _K | None = None
        self._by_provider: weakref.WeakKeyDictionary[MeterProvider, _K] = (
            weakref.WeakKeyDictionary()
        )

    def of(self, meter_provider: MeterProvider | None) -> _K:
        with self._lock:
            if meter_provider is None:
                if self._global is None:
                    self._global = self._make(None)
                return self._global
            found = self._by_provider.get(meter_provider)
            if found is None:
                found = self._by_provider[meter_provider] = self._make(meter_provider)
            return found


_metrics: Final = _PerProvider(ProductApiMetrics)
_retry_instruments: Final = _PerProvider(_new_retry_instruments)


def metrics_for(meter_provider: MeterProvider | None = None) -> ProductApiMetrics:
    """The one ``ProductApiMetrics`` of ``meter_provider`` (``None``: the global one).

    One per provider because a meter hands back the first instrument created
    under a name: a second set of observable instruments (after a second
    ``instrument()``) would never be observed. Counts therefore carry over
    re-configuration, as cumulative counters should.
    """
    return _metrics.of(meter_provider)


def create_retry_instruments(meter_provider: MeterProvider | None = None) -> RetryInstruments:
    """The retry helpers' counters on our meter (global provider if ``None``).

    Created once per provider and then handed out again: the SDK logs a
    warning each time an instrument name is created twice on a meter.
    """
    return _retry_instruments.of(meter_provider)
