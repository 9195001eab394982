"""What the requests benchmarks share: canned responses, sessions and the variants compared.

Requests go through a canned transport adapter (an ``HTTPAdapter`` subclass
whose ``send`` builds the ``Response`` itself): no network, so the figures
are the client side only. Every response carries what the Product API sends
on every call: ``X-RateLimit-Limit/Remaining/Reset`` and ``X-Request-Id``.
Every request has its own numeric id in the path, as real traffic does.

The variants, all on the same kind of providers (an SDK ``TracerProvider``
whose batch export stays idle during the run, a ``MeterProvider`` with an
in-memory reader that is never collected):

- ``instrumentor``: ``RequestsInstrumentor`` alone;
- ``floor``: the instrumentor with a hook pair that sets the same attributes
  from constants and counts the call under a lock: the least any
  implementation of this contract can cost;
- ``ours``: ``otel_productapi.instrument()``.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

import otel_productapi

HOST: Final = "api.product.test"
#: Each request has its own item id, as real traffic does (no URL cache can hide the cost).
URL: Final = f"http://{HOST}/v1/projects/acme/items/{{}}"
TEMPLATE: Final = "/v1/projects/acme/items/{id}"

_RATE_LIMITS: Final = {
    "X-RateLimit-Limit": "100",
    "X-RateLimit-Remaining": "42",
    "X-RateLimit-Reset": "30",
    "X-Request-Id": "req_7f9c2b1e4a",
}
Canned = tuple[int, dict[str, str], bytes]
PATHS: Final[dict[str, Canned]] = {
    "200": (
        200,
        {"Content-Type": "application/json", **_RATE_LIMITS},
        b'{"id": 12345, "name": "widget"}',
    ),
    "429": (
        429,
        {"Content-Type": "application/json", **_RATE_LIMITS, "X-RateLimit-Remaining": "0"},
        json.dumps({"message": "Too many requests for this endpoint"}).encode(),
    ),
}


def varying_headers(headers: Mapping[str, str], count: int) -> dict[str, str]:
    """``headers`` as the ``count``-th response carries them: what changes per call in
    real traffic changes here too (the remaining count, the request id), so that no
    cache of header values can hide their cost."""
    varying = dict(headers)
    if varying.get("X-RateLimit-Remaining") != "0":
        varying["X-RateLimit-Remaining"] = str(99 - count % 100)
    varying["X-Request-Id"] = f"req_{count:010x}"
    return varying


class CannedAdapter(HTTPAdapter):
    """Answers every request with the same status and body, without a socket."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__()
        self._status = status
        self._headers = dict(headers)
        self._body = body
        self._count = 0

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self._count += 1
        response = requests.Response()
        response.status_code = self._status
        response.headers = CaseInsensitiveDict(varying_headers(self._headers, self._count))
        response.raw = io.BytesIO(self._body)
        response.url = request.url or ""
        response.request = request
        response.reason = "canned"
        response.encoding = "utf-8"
        response.connection = self
        return response


def session(path: str) -> requests.Session:
    """A session whose every ``http://`` request gets the canned answer of ``path``."""
    result = requests.Session()
    result.trust_env = False  # no per-request proxy/netrc look-ups in any variant
    result.mount("http://", CannedAdapter(*PATHS[path]))
    return result


class _Idle(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def providers() -> tuple[TracerProvider, MeterProvider]:
    """Providers whose export stays idle while a benchmark runs."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        BatchSpanProcessor(_Idle(), max_queue_size=1 << 20, schedule_delay_millis=3_600_000)
    )
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def floor_attributes(path: str) -> tuple[dict[str, str], dict[str, str | bool | int | float]]:
    """What our hooks set on a request and on its response for ``path``, as constants."""
    status = PATHS[path][0]
    response_attributes: dict[str, str | bool | int | float] = {
        "productapi.ratelimit.limit": 100,
        "productapi.ratelimit.remaining": 42 if status == 200 else 0,
        "productapi.ratelimit.reset": 30.0,
        "productapi.request_id": "req_7f9c2b1e4a",
    }
    if status == 429:
        response_attributes |= {
            "productapi.error.class": "rate_limited",
            "productapi.error.retryable": True,
            "productapi.error.message": "Too many requests for this endpoint",
        }
    return {"url.template": TEMPLATE}, response_attributes


def floor_hooks(path: str) -> tuple[Callable[..., None], Callable[..., None]]:
    """Hooks that set what ours set, from constants, and count the call under a lock."""
    status = PATHS[path][0]
    request_attributes, response_attributes = floor_attributes(path)
    name = f"GET {TEMPLATE}"
    lock = threading.Lock()
    counts: dict[tuple[str, str, str, int], int] = {}
    key = ("GET", TEMPLATE, HOST, status)

    def request_hook(span: Span, request: requests.PreparedRequest) -> None:
        span.update_name(name)
        span.set_attributes(request_attributes)

    def response_hook(
        span: Span, request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        with lock:
            counts[key] = counts.get(key, 0) + 1
        span.set_attributes(response_attributes)

    return request_hook, response_hook


def instrument(variant: str, path: str) -> Callable[[], None]:
    """Instrument ``requests`` as ``variant`` says; returns the undo."""
    tracer_provider, meter_provider = providers()
    if variant == "ours":
        otel_productapi.instrument(
            otel_productapi.ProductApiSettings(hosts=[HOST]),
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        return otel_productapi.uninstrument
    hooks: dict[str, Any] = {}
    if variant == "floor":
        request_hook, response_hook = floor_hooks(path)
        hooks = {"request_hook": request_hook, "response_hook": response_hook}
    elif variant != "instrumentor":
        raise ValueError(f"unknown variant {variant!r}")
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **hooks)

    def undo() -> None:
        instrumentor.uninstrument()

    return undo


VARIANTS: Final = ("instrumentor", "floor", "ours")

_sessions: dict[str, requests.Session] = {}


def run(path: str, urls: Sequence[str]) -> None:
    """GET every URL in turn with one session (made on first use)."""
    send = (_sessions.get(path) or _sessions.setdefault(path, session(path))).get
    for url in urls:
        send(url)
