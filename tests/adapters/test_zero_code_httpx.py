"""Zero-code for httpx: ``opentelemetry-instrument`` applies our hooks to sync and async clients.

Out of process, as users run it: an httpx app under the real
``opentelemetry-instrument`` exports over OTLP/HTTP to Rotel, which forwards
to an in-process sink; the tests read the spans the collector forwarded,
never the app's memory. Each run has its own ``service.name``; the app ends
an ``app.done`` span after its calls, so a run's spans are all in once the
marker is.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apps._run import ZERO_CODE_HTTPX_APP, run_instrumented
from apps.zero_code_httpx_app import DONE
from conftest import undo_zero_code
from opentelemetry.instrumentation import httpx as httpx_instrumentation
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_productapi._adapters import zero_code
from otel_productapi._adapters.httpx import zero_code as httpx_zero_code
from otel_productapi._adapters.httpx.transport import TRANSPORT_PATCH
from otel_productapi._core import names as n
from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi
from otel_productapi.testing._collector import OtlpSink, ReceivedSpan, Rotel, rotel_with_sink

USER = "/v1/projects/p1/users/u1"
BATCH = "/v1/projects/p1/events:batch"
USER_TEMPLATE = "/v1/projects/{project}/users/{user_id}"
TEMPLATES = {"PRODUCTAPI_OTEL_ROUTE_TEMPLATES": ",".join(ROUTE_TEMPLATES)}
HTTPX = zero_code.TARGETS[1]
MODES = ["sync", "async"]

_runs = itertools.count()


@pytest.fixture(autouse=True)
def _restore_instrumentors() -> Iterator[None]:
    """Every test ends with httpx and requests uninstrumented and our wrappers removed."""
    yield
    undo_zero_code()


def _wrapped(cls: type) -> bool:
    return hasattr(cls.__dict__.get("_instrument"), zero_code.WRAPPED_MARK)


# --- in process: the wrapper itself --------------------------------------------------


def test_the_httpx_instrumentor_is_wrapped_on_its_own_class() -> None:
    """HTTPXClientInstrumentor inherits _instrument; the wrapper goes on it alone, not on
    the base class it shares with HTTPX2ClientInstrumentor, and unwrap restores the
    inheritance."""
    base = httpx_instrumentation._BaseHTTPXClientInstrumentor
    original = base.__dict__["_instrument"]
    assert "_instrument" not in HTTPXClientInstrumentor.__dict__

    zero_code.pre_instrument()

    assert _wrapped(HTTPXClientInstrumentor)
    assert getattr(HTTPXClientInstrumentor._instrument, zero_code.WRAPPED_MARK) is original
    assert base.__dict__["_instrument"] is original
    assert httpx_instrumentation.HTTPX2ClientInstrumentor._instrument is original
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    zero_code.unwrap(HTTPX)
    assert "_instrument" not in HTTPXClientInstrumentor.__dict__
    assert "_uninstrument" not in HTTPXClientInstrumentor.__dict__
    assert HTTPXClientInstrumentor._instrument is original


def test_pre_instrument_wraps_httpx_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Both targets are wrapped and nothing says a method is missing."""
    with caplog.at_level(logging.WARNING, logger="otel_productapi"):
        zero_code.pre_instrument()
    assert _wrapped(HTTPXClientInstrumentor)
    assert _wrapped(RequestsInstrumentor)
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("disabled", "httpx_wrapped", "requests_wrapped"),
    [
        ("httpx", False, True),
        ("requests", True, False),
        ("flask, httpx", False, True),
        ("*", False, False),
        ("productapi", False, False),
    ],
    ids=["httpx", "requests", "in-a-list", "wildcard", "productapi"],
)
def test_disabled_instrumentations_turn_httpx_off(
    monkeypatch: pytest.MonkeyPatch, disabled: str, httpx_wrapped: bool, requests_wrapped: bool
) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS turns each library off on its own, or both."""
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", disabled)
    zero_code.pre_instrument()
    assert _wrapped(HTTPXClientInstrumentor) is httpx_wrapped
    assert _wrapped(RequestsInstrumentor) is requests_wrapped


def test_undoing_the_zero_code_httpx_instrumentation_releases_the_transport_patch() -> None:
    """The transport patch zero-code installed for httpx goes when httpx is uninstrumented."""
    zero_code.pre_instrument()
    HTTPXClientInstrumentor().instrument()
    assert TRANSPORT_PATCH.installed
    assert httpx_zero_code.carries_our_hooks()
    HTTPXClientInstrumentor().uninstrument()
    assert not TRANSPORT_PATCH.installed
    assert not httpx_zero_code.carries_our_hooks()


def test_in_process_async_spans_are_tagged_once(fake_product_api: FakeProductApi) -> None:
    """Wrapped, then instrumented as a distro would: one tagged span per async call."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    zero_code.pre_instrument()
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    fake_product_api.set_scenario("rate_limit_storm")

    async def two_calls() -> None:
        async with httpx.AsyncClient() as client:
            await client.get(fake_product_api.url + USER)
            await client.get(fake_product_api.url + USER)

    asyncio.run(two_calls())
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert [(s.attributes or {})[n.ATTR_ERROR_CLASS] for s in spans] == [n.CLASS_RATE_LIMITED] * 2


# --- out of process: opentelemetry-instrument -> Rotel -> sink ------------------------


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Rotel, OtlpSink]]:
    """One Rotel for the module, forwarding to a sink; runs are told apart by service name."""
    with rotel_with_sink(debug_log=False) as pair:
        yield pair


def _run(
    collector: tuple[Rotel, OtlpSink],
    mode: str,
    base_url: str,
    calls: list[str],
    env: dict[str, str] | None = None,
) -> list[ReceivedSpan]:
    """Run the httpx app; return the CLIENT spans of that run, as the collector forwarded them."""
    rotel, sink = collector
    service = f"zero-code-httpx-{next(_runs)}"
    result = run_instrumented(
        [str(ZERO_CODE_HTTPX_APP), mode, base_url, *calls],
        {
            "OTEL_SERVICE_NAME": service,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.endpoint,
            "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
            **(env or {}),
        },
    )
    assert result.stdout.strip().splitlines()[-1] == f"sent={len(calls)}"

    def ours(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in spans if s.resource.get("service.name") == service]

    spans = ours(sink.wait_for(lambda got: any(s.name == DONE for s in ours(got))))
    assert any(s.name == DONE for s in spans), f"no {DONE} span from {service}"
    time.sleep(0.2)  # anything that would arrive after the marker has had its chance
    return [s for s in ours(sink.spans) if s.kind == "CLIENT"]


def _by_status(spans: list[ReceivedSpan]) -> dict[int, ReceivedSpan]:
    return {int(s.attributes[n.ATTR_HTTP_RESPONSE_STATUS_CODE]): s for s in spans}


@pytest.mark.parametrize("mode", MODES)
def test_opentelemetry_instrument_alone_tags_httpx_spans(
    collector: tuple[Rotel, OtlpSink], fake_product_api: FakeProductApi, mode: str
) -> None:
    """Installed is enough: the distro's httpx instrumentation carries our tags, one span
    per call, for httpx.Client and httpx.AsyncClient alike."""
    fake_product_api.script("GET", USER, [429, 503, 200])
    fake_product_api.set_scenario("batch_partial")
    calls = [f"GET {USER}"] * 3 + [f"POST {BATCH}"]

    client = _run(collector, mode, fake_product_api.url, calls, TEMPLATES)

    assert len(client) == 4
    assert len(fake_product_api.requests) == 4
    by_status = _by_status(client)
    assert sorted(by_status) == [200, 202, 429, 503]
    limited = by_status[429].attributes
    assert limited[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert limited[n.ATTR_ERROR_RETRYABLE] is True
    assert limited[n.ATTR_RATELIMIT_REMAINING] == 0
    assert limited[n.ATTR_REQUEST_ID].startswith("req_")
    assert limited[n.ATTR_URL_TEMPLATE] == USER_TEMPLATE
    assert by_status[429].name == f"GET {USER_TEMPLATE}"
    assert by_status[503].attributes[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert n.ATTR_ERROR_CLASS not in by_status[200].attributes
    assert by_status[200].attributes[n.ATTR_URL_TEMPLATE] == USER_TEMPLATE
    assert by_status[202].attributes[n.ATTR_BATCH_OUTCOME] == n.BATCH_PARTIAL


@pytest.mark.parametrize("mode", MODES)
def test_httpx_without_a_distro(
    collector: tuple[Rotel, OtlpSink], fake_product_api: FakeProductApi, mode: str
) -> None:
    """No distro and no configurator (the app sets up its own SDK): spans are still tagged.

    Naming a distro and a configurator that do not exist makes
    opentelemetry-instrument fall back to its DefaultDistro and skip SDK
    configuration, exactly as without the opentelemetry-distro package.
    """
    fake_product_api.set_scenario("rate_limit_storm")

    client = _run(
        collector,
        mode,
        fake_product_api.url,
        [f"GET {USER}"],
        {"OTEL_PYTHON_DISTRO": "absent", "OTEL_PYTHON_CONFIGURATOR": "absent"},
    )

    (span,) = client
    assert span.attributes[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert span.attributes[n.ATTR_HTTP_RESPONSE_STATUS_CODE] == 429


def _vendor_distro(directory: Path) -> dict[str, str]:
    """A vendor distro, installed as a dist-info on PYTHONPATH, that passes its own httpx
    hooks, sync and async, each recording what it saw of our attributes."""
    (directory / "vendor_distro.py").write_text(
        textwrap.dedent(
            """
            from opentelemetry.instrumentation.distro import BaseDistro

            def _saw(span, kind):
                span.set_attribute("vendor.request_hook", kind)
                span.set_attribute("vendor.saw_template", span.attributes.get("url.template", ""))

            def _saw_response(span, kind):
                span.set_attribute("vendor.response_hook", kind)
                span.set_attribute(
                    "vendor.saw_class", span.attributes.get("productapi.error.class", "")
                )

            def request_hook(span, request):
                _saw(span, "sync")

            def response_hook(span, request, response):
                _saw_response(span, "sync")

            async def async_request_hook(span, request):
                _saw(span, "async")

            async def async_response_hook(span, request, response):
                _saw_response(span, "async")

            class VendorDistro(BaseDistro):
                def _configure(self, **kwargs):
                    pass

                def load_instrumentor(self, entry_point, **kwargs):
                    if entry_point.name == "httpx":
                        kwargs.update(
                            request_hook=request_hook,
                            response_hook=response_hook,
                            async_request_hook=async_request_hook,
                            async_response_hook=async_response_hook,
                        )
                    entry_point.load()().instrument(**kwargs)
            """
        )
    )
    info = directory / "vendor_distro-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vendor-distro\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[opentelemetry_distro]\nvendor = vendor_distro:VendorDistro\n"
    )
    return {"PYTHONPATH": str(directory), "OTEL_PYTHON_DISTRO": "vendor"}


@pytest.mark.parametrize("mode", MODES)
def test_a_vendor_distros_httpx_hooks_still_run(
    collector: tuple[Rotel, OtlpSink], fake_product_api: FakeProductApi, tmp_path: Path, mode: str
) -> None:
    """A distro that passes its own httpx hooks keeps them: both run, theirs after ours,
    seeing our attributes (the async client gets the async hooks)."""
    fake_product_api.set_scenario("rate_limit_storm")

    client = _run(
        collector,
        mode,
        fake_product_api.url,
        [f"GET {USER}"],
        {**TEMPLATES, **_vendor_distro(tmp_path)},
    )

    (span,) = client
    attributes = span.attributes
    assert attributes[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert attributes[n.ATTR_URL_TEMPLATE] == USER_TEMPLATE
    assert attributes["vendor.request_hook"] == mode
    assert attributes["vendor.response_hook"] == mode
    assert attributes["vendor.saw_template"] == USER_TEMPLATE
    assert attributes["vendor.saw_class"] == n.CLASS_RATE_LIMITED


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("disabled", "expected"),
    [("httpx", "no span"), ("*", "no span"), ("productapi", "plain"), ("requests", "tagged")],
    ids=["httpx-off", "all-off", "only-us-off", "other-off"],
)
def test_disabled_instrumentations_are_respected_for_httpx(
    collector: tuple[Rotel, OtlpSink],
    fake_product_api: FakeProductApi,
    mode: str,
    disabled: str,
    expected: str,
) -> None:
    """Disabling httpx (or everything) means no span; disabling productapi, a plain span;
    disabling another library leaves httpx tagged. The call is made in every case."""
    fake_product_api.set_scenario("rate_limit_storm")

    client = _run(
        collector,
        mode,
        fake_product_api.url,
        [f"GET {USER}"],
        {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled},
    )

    assert len(fake_product_api.requests) == 1
    if expected == "no span":
        assert client == []
        return
    (span,) = client
    assert span.attributes[n.ATTR_HTTP_RESPONSE_STATUS_CODE] == 429
    assert (n.ATTR_ERROR_CLASS in span.attributes) is (expected == "tagged")


@pytest.mark.parametrize("mode", MODES)
def test_programmatic_instrument_as_well_still_gives_one_httpx_span(
    collector: tuple[Rotel, OtlpSink], fake_product_api: FakeProductApi, mode: str
) -> None:
    """An httpx app that also calls otel_productapi.instrument() gets one tagged span per call."""
    fake_product_api.set_scenario("rate_limit_storm")

    client = _run(
        collector,
        mode,
        fake_product_api.url,
        [f"GET {USER}", f"GET {USER}"],
        {"APP_CALL_INSTRUMENT": "1", **TEMPLATES},
    )

    assert len(client) == 2
    assert len(fake_product_api.requests) == 2
    for span in client:
        assert span.attributes[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
        assert span.attributes[n.ATTR_URL_TEMPLATE] == USER_TEMPLATE
