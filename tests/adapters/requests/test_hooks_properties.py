"""Whatever a response looks like, the hooks never raise and record only valid, bounded values."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from requests.structures import CaseInsensitiveDict

from otel_productapi import ProductApiHooks, make_hooks
from otel_productapi._adapters.requests import transport as _transport
from otel_productapi._adapters.requests.hooks import RequestsHooks
from otel_productapi._core import names as n
from otel_productapi._core.body import json_document, message_from_document
from otel_productapi._telemetry.settings import load_settings
from otel_productapi._telemetry.tagger import Tagger

HOST = "api.product.test"
MESSAGE_MAX = 40
REQUEST_ID_MAX = 24
MAX_BODY = 4096


@dataclass
class _Rig:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    hooks: ProductApiHooks


@functools.cache
def _rig() -> _Rig:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    hooks = make_hooks(
        load_settings(
            hosts=[HOST],
            message_max_length=MESSAGE_MAX,
            request_id_max_length=REQUEST_ID_MAX,
            max_body_bytes=MAX_BODY,
        ),
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    return _Rig(exporter, reader, tracer_provider, hooks)


def _requests_counted(reader: InMemoryMetricReader) -> tuple[float, list[dict[str, Any]]]:
    data = reader.get_metrics_data()
    total = 0.0
    attributes: list[dict[str, Any]] = []
    if data is None:
        return total, attributes
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    attributes.append(dict(point.attributes or {}))
                    if metric.name == n.METRIC_CLIENT_REQUESTS:
                        total += getattr(point, "value", 0)
    return total, attributes


_HEADER_NAMES = st.sampled_from(
    [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
        "X-Request-Id",
        "Content-Type",
    ]
) | st.text(min_size=1, max_size=20)
_HEADER_VALUES = st.one_of(
    st.text(max_size=200),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1e309", "nan", " 7 ", "1, 2"]),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)
_BATCH = st.fixed_dictionaries(
    {
        "items": st.lists(
            st.fixed_dictionaries(
                {"status": st.one_of(st.integers(-5, 700), st.sampled_from(["ok", "error", "x"]))}
            ),
            max_size=20,
        )
    }
)
_BODIES = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda m: json.dumps({"message": m}).encode(), st.text(max_size=400)),
    st.builds(lambda doc: json.dumps(doc).encode(), _JSON),
    st.builds(lambda doc: json.dumps(doc).encode(), _BATCH),
    st.builds(lambda k: b"[" * k, st.integers(0, 100_000)),
    st.builds(lambda k: b'{"message": "' + b"a" * k + b'"}', st.integers(0, 10_000)),
    st.text(max_size=300).map(lambda s: ("{" + s).encode("utf-8", "surrogatepass")),
)


def _response(
    status: int, headers: dict[str, str], body: bytes, consumed: bool
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    # What requests itself sets: the body once read, False while streamed.
    response._content = body if consumed else False  # type: ignore[assignment]
    setattr(response, "_content_consumed", consumed)  # noqa: B010 - not in the type stubs
    response.url = f"https://{HOST}/v1/things"
    return response


def _check_value(key: str, value: object) -> None:
    assert isinstance(value, str | bool | int | float), (key, value)
    if isinstance(value, float):
        assert math.isfinite(value), key
    if isinstance(value, str):
        assert len(value) <= 4096, key


def _check_span(span: ReadableSpan) -> None:
    attrs = dict(span.attributes or {})
    for key, value in attrs.items():
        _check_value(key, value)
    error_class = attrs.get(n.ATTR_ERROR_CLASS)
    if error_class is not None:
        assert error_class in n.ERROR_CLASSES
        assert isinstance(attrs[n.ATTR_ERROR_RETRYABLE], bool)
    else:
        assert n.ATTR_ERROR_RETRYABLE not in attrs
    message = attrs.get(n.ATTR_ERROR_MESSAGE)
    if message is not None:
        assert isinstance(message, str)
        assert 0 < len(message) <= MESSAGE_MAX
    rid = attrs.get(n.ATTR_REQUEST_ID)
    if rid is not None:
        assert isinstance(rid, str)
        assert 0 < len(rid) <= REQUEST_ID_MAX
    for key in (
        n.ATTR_RATELIMIT_LIMIT,
        n.ATTR_RATELIMIT_REMAINING,
        n.ATTR_BATCH_ITEMS,
        n.ATTR_BATCH_FAILED_ITEMS,
    ):
        if key in attrs:
            value = attrs[key]
            assert isinstance(value, int), key
            assert not isinstance(value, bool), key
            assert value >= 0, key
    if n.ATTR_RATELIMIT_RESET in attrs:
        reset = attrs[n.ATTR_RATELIMIT_RESET]
        assert isinstance(reset, float)
        assert math.isfinite(reset)
        assert reset >= 0
    if n.ATTR_BATCH_OUTCOME in attrs:
        assert attrs[n.ATTR_BATCH_OUTCOME] in (n.BATCH_COMPLETE, n.BATCH_PARTIAL, n.BATCH_FAILED)
        failed, items = attrs[n.ATTR_BATCH_FAILED_ITEMS], attrs[n.ATTR_BATCH_ITEMS]
        assert isinstance(failed, int)
        assert isinstance(items, int)
        assert failed <= items


def _call(rig: _Rig, path: str, method: str, response: requests.Response | None) -> ReadableSpan:
    prepared = requests.Request(method, f"https://{HOST}{path}").prepare()
    tracer = rig.tracer_provider.get_tracer("test")
    rig.exporter.clear()
    try:
        with tracer.start_as_current_span(
            "GET", kind=SpanKind.CLIENT, attributes={n.ATTR_HTTP_URL_OLD: str(prepared.url)}
        ) as span:
            rig.hooks.request_hook(span, prepared)
            if response is None:
                # What the HTTPAdapter.send patch does when the transport raises.
                _transport._report_failure(prepared, requests.ConnectionError("boom"))
                raise requests.ConnectionError("boom")
            rig.hooks.response_hook(span, prepared, response)
    except requests.ConnectionError:
        pass
    (span_data,) = rig.exporter.get_finished_spans()
    return span_data


_PATHS = st.one_of(
    st.just("/v1/things"),
    st.text(
        st.characters(codec="ascii", exclude_characters="?#"),
        max_size=200,
    ).map(lambda s: "/" + s),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.integers(100, 999),
    headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=8),
    body=_BODIES,
    consumed=st.booleans(),
    path=_PATHS,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "BREW", "get"]),
)
def test_hooks_never_raise_and_record_valid_bounded_values(
    *,
    status: int,
    headers: dict[str, str],
    body: bytes,
    consumed: bool,
    path: str,
    method: str,
) -> None:
    """Arbitrary statuses, headers and bodies: no exception, valid attributes, one count."""
    rig = _rig()
    before, _ = _requests_counted(rig.reader)
    response = _response(status, headers, body, consumed)

    span = _call(rig, path, method, response)

    _check_span(span)
    assert (span.attributes or {})[n.ATTR_URL_TEMPLATE]
    after, metric_attributes = _requests_counted(rig.reader)
    assert after == before + 1
    for attributes in metric_attributes:
        for key, value in attributes.items():
            _check_value(key, value)
    if not consumed:
        assert getattr(response, "_content") is False  # noqa: B009 - the hook read nothing


@settings(max_examples=50, deadline=None)
@given(path=_PATHS, method=st.sampled_from(["GET", "POST", "PATCH", "BREW"]))
def test_transport_errors_are_counted_once(path: str, method: str) -> None:
    """A call that raises in the transport is tagged transport_error and counted exactly once."""
    rig = _rig()
    before, _ = _requests_counted(rig.reader)

    span = _call(rig, path, method, None)

    _check_span(span)
    assert (span.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    after, _ = _requests_counted(rig.reader)
    assert after == before + 1


def test_a_broken_response_object_does_not_raise() -> None:
    """Even a Response with nonsense fields leaves the caller unharmed."""
    rig = _rig()
    response = requests.Response()
    response.status_code = "not a status"  # type: ignore[assignment]
    response.headers = None  # type: ignore[assignment]

    span = _call(rig, "/v1/things", "GET", response)

    _check_span(span)


_URL_PREFIXES = st.just(f"http://{HOST}/v1/items") | st.builds(
    lambda base, segments: f"http://{base}/" + "/".join(segments),
    st.sampled_from([HOST, "API.product.test:8443", "u:p@api.product.test", "other.test"]),
    st.lists(
        st.one_of(
            st.sampled_from(["v1", "items", "eyJhbGciOi", "abcdefghijkl", "", "a?b", "x#"]),
            st.text(st.sampled_from("ab1:._-~%@"), max_size=5),
        ),
        max_size=4,
    ),
)
_URL_TAILS = st.sampled_from(
    ["", "/7", "/42", "/12345678901", "/123456789012", "/1" + "0" * 39, "/0x", "/\u00b2", "?q=/5"]
)


@functools.cache
def _route_metrics() -> Any:
    from otel_productapi._telemetry.metrics import metrics_for

    return metrics_for(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def _hook_outcome(hooks: Any, tracer: Any, url: str) -> tuple[str, dict[str, Any]]:
    request = requests.PreparedRequest()
    request.method = "GET"
    request.url = url
    with tracer.start_as_current_span("GET", attributes={n.ATTR_HTTP_URL_OLD: url}) as span:
        hooks.request_hook(span, request)
        return span.name, dict(span.attributes)


@settings(max_examples=300, deadline=None)
@given(
    prefixes=st.lists(_URL_PREFIXES, min_size=1, max_size=3),
    tails=st.lists(_URL_TAILS, min_size=1, max_size=5),
    templates=st.sampled_from([(), ("/v1/items/{id}",), ("/v1/items/42",)]),
    padding=st.sampled_from([0, 2001, 2013]),
)
def test_route_cache_gives_what_a_cold_hook_gives(
    prefixes: list[str], tails: list[str], templates: tuple[str, ...], padding: int
) -> None:
    """Spans tagged from the route table's caches match those of a hook with no cache."""
    tracer = TracerProvider().get_tracer("test")
    settings_ = load_settings(hosts=[HOST], route_templates=list(templates))
    warm = RequestsHooks(Tagger(settings_, _route_metrics()))
    pad = "/pp" * (padding // 3)
    # The padding goes right after the host, to bring URLs near MAX_URL_LENGTH.
    urls = [prefix[:8] + prefix[8:].replace("/", pad + "/", 1) for prefix in prefixes]
    for url in [prefix + tail for prefix in urls for tail in tails + tails]:
        cold = RequestsHooks(Tagger(settings_, _route_metrics()))
        assert _hook_outcome(warm, tracer, url) == _hook_outcome(cold, tracer, url)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from([200, 201, 204, 302, 404, 429]),
    value=st.one_of(
        _HEADER_VALUES,
        st.sampled_from(
            ["", " ", "req-1", " req-1", "req-1 ", "r" * 24, "r" * 25, "r\u00e9", "\tr"]
        ),
    ),
    other=st.sampled_from([{}, {"Retry-After": "5"}, {"X-RateLimit-Limit": "10"}]),
)
def test_request_id_on_the_span_is_what_request_id_reads(
    status: int, value: str, other: dict[str, str]
) -> None:
    """The span records exactly what request_id() reads, whatever the status."""
    from otel_productapi._core.headers import request_id

    headers = {"X-Request-Id": value, **other}
    expected = request_id(
        CaseInsensitiveDict(headers), ("X-Request-Id",), max_length=REQUEST_ID_MAX
    )
    span = _call(_rig(), "/v1/things/1", "GET", _response(status, headers, b"", True))
    assert (span.attributes or {}).get(n.ATTR_REQUEST_ID) == expected


@settings(max_examples=300, deadline=None)
@given(
    body=_BODIES,
    content_type=st.sampled_from([None, "application/json", "text/plain", "application/x+json"]),
)
def test_cached_error_message_is_what_error_message_reads(
    body: bytes, content_type: str | None
) -> None:
    """A repeated error body gets, from the cache, the message a first parse gives."""
    expected = message_from_document(json_document(body, content_type, MAX_BODY), MESSAGE_MAX)
    if len(body) > MAX_BODY:  # the hook does not look at bodies this large
        expected = None
    headers = {} if content_type is None else {"Content-Type": content_type}
    for _ in range(2):
        span = _call(_rig(), "/v1/things/1", "GET", _response(404, headers, body, True))
        assert (span.attributes or {}).get(n.ATTR_ERROR_MESSAGE) == (expected or None)
