"""Shared fixtures: in-memory telemetry, clean global state, a local HTTP server.

Use ``telemetry`` to instrument with in-memory exporters and read back what
was emitted::

    def test_something(telemetry: Telemetry, httpserver: HTTPServer) -> None:
        telemetry.instrument(hosts=["127.0.0.1"])
        requests.get(httpserver.url_for("/v1/things"))
        assert telemetry.request_count(**{"http.response.status_code": 200}) == 1
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from scripted_api import ScriptedApi

from otel_productapi import instrument, make_hooks, uninstrument
from otel_productapi._adapters import zero_code
from otel_productapi._adapters.httpx.transport import TRANSPORT_PATCH
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH
from otel_productapi._core import names as n
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Bind pytest-httpserver to 127.0.0.1 so that both ``127.0.0.1`` and ``localhost`` reach it."""
    return ("127.0.0.1", 0)


@pytest.fixture(autouse=True)
def _clean_instrumentation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without PRODUCTAPI_OTEL_* variables and ends uninstrumented."""
    for name in list(os.environ):
        if name.startswith(n.ENV_PREFIX):
            monkeypatch.delenv(name)
    yield
    uninstrument()
    # make_hooks() and make_httpx_hooks() hold their patches for good; give every share back.
    for patch in (ADAPTER_PATCH, TRANSPORT_PATCH):
        while patch.users:
            patch.release()
    # A wrapper of ours left as a pass-through (someone wrapped it, then unwrapped
    # it again) is adopted by the next user and goes with it.
    ADAPTER_PATCH.acquire()
    ADAPTER_PATCH.release()


def undo_zero_code() -> None:
    """Undo ``pre_instrument`` in this process, for every library of ``zero_code.TARGETS``.

    Uninstruments each target's instrumentor (through our wrapper, which gives
    back the patch zero-code acquired), removes our wrappers, and has each
    adapter forget a patch it still holds (``compose`` without an instrument).
    """
    for target in zero_code.TARGETS:
        cls = zero_code.instrumentor_class(target)
        if cls is not None and cls().is_instrumented_by_opentelemetry:
            cls().uninstrument()
        zero_code.unwrap(target)
        importlib.import_module(target.adapter).undone()


Attrs = Mapping[str, Any]


@dataclass
class Telemetry:
    """In-memory span exporter and metric reader, and ways to read them back.

    Attributes:
        exporter: Receives every finished span (``SimpleSpanProcessor``).
        reader: Collects metrics on demand (cumulative).
        tracer_provider: Give it to code under test, or use ``instrument``.
        meter_provider: Likewise.
    """

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    settings: ProductApiSettings | None = field(default=None)

    def instrument(
        self, settings: ProductApiSettings | None = None, **overrides: Any
    ) -> ProductApiSettings:
        """``otel_productapi.instrument`` with these providers.

        Pass ``settings``, or settings fields as keywords (``hosts=["127.0.0.1"]``),
        which go through ``load_settings`` (environment, then overrides).
        """
        resolved = settings if settings is not None else load_settings(**overrides)
        instrument(
            resolved, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )
        self.settings = resolved
        return resolved

    def instrument_own_requests(self, **overrides: Any) -> None:
        """The user's own ``RequestsInstrumentor().instrument(...)`` with our
        ``make_hooks()`` (settings fields as keywords); uninstrument it yourself."""
        request_hook, response_hook = make_hooks(
            load_settings(**overrides), meter_provider=self.meter_provider
        )
        RequestsInstrumentor().instrument(
            tracer_provider=self.tracer_provider,
            request_hook=request_hook,
            response_hook=response_hook,
        )

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, oldest first."""
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        """The one finished span (fails if there is not exactly one)."""
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def points(self, metric: str) -> list[NumberDataPoint]:
        """Current data points of a counter or gauge (collects now)."""
        data = self.reader.get_metrics_data()
        found: list[NumberDataPoint] = []
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for m in scope_metrics.metrics:
                    if m.name == metric:
                        found.extend(
                            p for p in m.data.data_points if isinstance(p, NumberDataPoint)
                        )
        return found

    def series(self, metric: str) -> list[tuple[dict[str, Any], float]]:
        """``(attributes, value)`` of every series of ``metric``."""
        return [(dict(p.attributes or {}), p.value) for p in self.points(metric)]

    def value(self, metric: str, **attrs: Any) -> float:
        """Sum of the series of ``metric`` whose attributes include ``attrs``.

        Attribute keys contain dots, so pass them as ``**{"url.template": ...}``.
        """
        return sum(v for a, v in self.series(metric) if _includes(a, attrs))

    def request_count(self, **attrs: Any) -> float:
        """``value(productapi.client.requests, **attrs)``."""
        return self.value(n.METRIC_CLIENT_REQUESTS, **attrs)


def span_text(span: ReadableSpan) -> str:
    """Every string of ``span`` that an exporter sends (name, status, attributes,
    event attributes), one per line: what a leak check searches."""
    parts = [span.name, span.status.description or ""]
    parts += [f"{k}={v!s}" for k, v in (span.attributes or {}).items()]
    for event in span.events:
        parts += [f"{k}={v!s}" for k, v in (event.attributes or {}).items()]
    return "\n".join(parts)


def _includes(attributes: Attrs, wanted: Attrs) -> bool:
    return all(k in attributes and attributes[k] == v for k, v in wanted.items())


def make_telemetry(sampler: Sampler | None = None) -> Telemetry:
    """A fresh ``Telemetry`` (the fixture's factory; pass a sampler to test sampling)."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return Telemetry(exporter, reader, tracer_provider, meter_provider)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """In-memory traces and metrics; call ``telemetry.instrument(...)`` to start."""
    t = make_telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture(scope="module")
def api() -> Iterator[ScriptedApi]:
    """One scripted server (``tests/scripted_api.py``) for the module."""
    with ScriptedApi() as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A session that ignores proxy variables: every call stays on 127.0.0.1."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes connections (the backlog) and never answers (read timeouts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]
