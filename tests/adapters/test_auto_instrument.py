"""The zero-code path: ``opentelemetry-instrument`` applies our hooks via the entry point."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from apps._run import OPENTELEMETRY_INSTRUMENT, app_spans, clean_env
from conftest import undo_zero_code
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span

from otel_productapi._adapters import zero_code
from otel_productapi._adapters.requests import zero_code as requests_zero_code
from otel_productapi._adapters.requests.hooks import make_hooks
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH
from otel_productapi._core import names as n
from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi

USER = "/v1/projects/p1/users/u1"
BATCH = "/v1/projects/p1/events:batch"
TEMPLATES = {"PRODUCTAPI_OTEL_ROUTE_TEMPLATES": ",".join(ROUTE_TEMPLATES)}


REQUESTS = zero_code.TARGETS[0]


def _is_wrapped() -> bool:
    return hasattr(RequestsInstrumentor.__dict__["_instrument"], zero_code.WRAPPED_MARK)


@pytest.fixture(autouse=True)
def _restore_instrumentors() -> Iterator[None]:
    """Every test ends with requests and httpx uninstrumented, our wrappers removed
    and the patches zero-code acquired released (conftest releases the rest)."""
    yield
    undo_zero_code()


# --- in process: the wrapper itself --------------------------------------------------


def test_pre_instrument_wraps_without_instrumenting() -> None:
    """pre_instrument wraps RequestsInstrumentor._instrument but does not instrument requests."""
    zero_code.pre_instrument()
    assert _is_wrapped()
    assert not RequestsInstrumentor().is_instrumented_by_opentelemetry


def test_pre_instrument_twice_wraps_once() -> None:
    """A second call finds the wrapper and leaves it; one unwrap restores the original."""
    original = RequestsInstrumentor.__dict__["_instrument"]
    original_undo = RequestsInstrumentor.__dict__["_uninstrument"]
    zero_code.pre_instrument()
    zero_code.pre_instrument()
    assert getattr(RequestsInstrumentor.__dict__["_instrument"], zero_code.WRAPPED_MARK) is original
    zero_code.unwrap(REQUESTS)
    assert RequestsInstrumentor.__dict__["_instrument"] is original
    assert RequestsInstrumentor.__dict__["_uninstrument"] is original_undo


@pytest.mark.parametrize(
    "disabled",
    ["requests", "flask, requests", "*", "productapi"],
    ids=["requests", "in-a-list", "wildcard", "productapi"],
)
def test_disabled_instrumentations_turn_us_off(
    monkeypatch: pytest.MonkeyPatch, disabled: str
) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS naming requests, productapi or * means no wrapper."""
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", disabled)
    zero_code.pre_instrument()
    assert not _is_wrapped()


def test_pre_instrument_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Any failure is logged, never raised: it would stop every auto-instrumentation."""

    def boom(_target: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(zero_code, "_wrap", boom)
    with caplog.at_level(logging.WARNING, logger="otel_productapi"):
        zero_code.pre_instrument(unexpected="argument")
    assert "zero-code set-up for requests failed" in caplog.text


def test_a_renamed_instrument_method_is_reported_not_silently_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If contrib renames what we wrap, a warning says tagging is off and why."""
    original = RequestsInstrumentor.__dict__["_instrument"]
    monkeypatch.delattr(RequestsInstrumentor, "_instrument")
    with caplog.at_level(logging.WARNING, logger="otel_productapi"):
        zero_code.pre_instrument()
    assert "RequestsInstrumentor has no _instrument/_uninstrument to wrap" in caplog.text
    monkeypatch.setattr(RequestsInstrumentor, "_instrument", original)
    assert not _is_wrapped()


def test_hooks_that_fail_to_build_leave_the_call_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If our hooks cannot be built (e.g. a bad setting), the distro's kwargs pass unchanged."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_MESSAGE_MAX_LENGTH", "lots")
    theirs = {"request_hook": print, "excluded_urls": "health"}
    with caplog.at_level(logging.WARNING, logger="otel_productapi"):
        assert requests_zero_code.compose(theirs) is theirs
    assert "could not build" in caplog.text
    assert "PRODUCTAPI_OTEL_MESSAGE_MAX_LENGTH" in caplog.text
    assert not requests_zero_code.carries_our_hooks()


def test_our_hooks_are_never_added_twice() -> None:
    """kwargs that already carry our hooks (the programmatic instrument()) pass unchanged;
    our hooks are recognised by their mark, not by the module that built them."""
    ours = make_hooks()
    assert zero_code.is_ours(ours.request_hook)
    kwargs = {"request_hook": ours.request_hook, "response_hook": ours.response_hook}
    assert requests_zero_code.compose(kwargs) is kwargs
    composed = requests_zero_code.compose({"request_hook": print})
    assert zero_code.is_ours(composed["request_hook"])
    assert requests_zero_code.compose(composed) is composed
    requests_zero_code.undone()


def test_their_hooks_run_after_ours(fake_product_api: FakeProductApi) -> None:
    """A distro's or user's hooks still run, after ours, and see our attributes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: dict[str, Any] = {}

    def their_request_hook(span: Span, _request: requests.PreparedRequest) -> None:
        seen["template"] = span.attributes.get(n.ATTR_URL_TEMPLATE)  # type: ignore[attr-defined]
        span.set_attribute("vendor.request_hook", True)

    def their_response_hook(
        span: Span, _request: requests.PreparedRequest, _response: requests.Response
    ) -> None:
        seen["class"] = span.attributes.get(n.ATTR_ERROR_CLASS)  # type: ignore[attr-defined]
        span.set_attribute("vendor.response_hook", True)

    zero_code.pre_instrument()
    RequestsInstrumentor().instrument(
        tracer_provider=provider,
        request_hook=their_request_hook,
        response_hook=their_response_hook,
    )
    fake_product_api.set_scenario("rate_limit_storm")
    requests.get(fake_product_api.url + USER, timeout=5)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["vendor.request_hook"] is True
    assert attributes["vendor.response_hook"] is True
    assert attributes[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert seen == {"template": attributes[n.ATTR_URL_TEMPLATE], "class": n.CLASS_RATE_LIMITED}
    assert requests_zero_code.carries_our_hooks()


def test_undoing_the_zero_code_instrumentation_removes_its_adapter_patch(
    fake_product_api: FakeProductApi,
) -> None:
    """When the distro's requests instrumentation is undone, the HTTPAdapter.send
    patch zero-code installed goes with it."""
    zero_code.pre_instrument()
    RequestsInstrumentor().instrument()
    assert ADAPTER_PATCH.installed
    RequestsInstrumentor().uninstrument()
    assert not ADAPTER_PATCH.installed
    assert not requests_zero_code.carries_our_hooks()


# --- out of process: opentelemetry-instrument, as users run it -----------------------


def _client_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if s["kind"] == "CLIENT"]


def _status(attributes: dict[str, Any]) -> int:
    # The old semconv (the default) says http.status_code; the stable one, ours.
    status: int = attributes.get(n.ATTR_HTTP_RESPONSE_STATUS_CODE) or attributes["http.status_code"]
    return status


def _by_status(spans: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {_status(s["attributes"]): s["attributes"] for s in spans}


def test_opentelemetry_instrument_alone_tags_spans(fake_product_api: FakeProductApi) -> None:
    """Installed is enough: the distro's instrumentation carries our tags, one span per call."""
    fake_product_api.script("GET", USER, [429, 503, 200])
    fake_product_api.set_scenario("batch_partial")
    spans, _ = app_spans(
        fake_product_api.url, [f"GET {USER}", f"GET {USER}", f"GET {USER}", f"POST {BATCH}"]
    )
    client = _client_spans(spans)
    assert len(client) == 4
    by_status = _by_status(client)
    limited = by_status[429]
    assert limited[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert limited[n.ATTR_ERROR_RETRYABLE] is True
    assert limited[n.ATTR_RATELIMIT_REMAINING] == 0
    assert limited[n.ATTR_REQUEST_ID].startswith("req_")
    assert limited[n.ATTR_URL_TEMPLATE].startswith("/v1/projects/")
    assert by_status[503][n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert n.ATTR_ERROR_CLASS not in by_status[200]
    assert by_status[202][n.ATTR_BATCH_OUTCOME] == n.BATCH_PARTIAL


def test_configured_templates_apply_under_opentelemetry_instrument(
    fake_product_api: FakeProductApi,
) -> None:
    """PRODUCTAPI_OTEL_* settings are read by the zero-code path too."""
    spans, _ = app_spans(fake_product_api.url, [f"GET {USER}"], TEMPLATES)
    (span,) = _client_spans(spans)
    assert span["attributes"][n.ATTR_URL_TEMPLATE] == "/v1/projects/{project}/users/{user_id}"
    assert span["name"] == "GET /v1/projects/{project}/users/{user_id}"


@pytest.mark.parametrize(
    ("disabled", "expected_spans", "tagged"),
    [("requests", 0, False), ("productapi", 1, False), ("urllib3", 1, True)],
    ids=["requests-off", "only-us-off", "other-off"],
)
def test_disabled_instrumentations_are_respected(
    fake_product_api: FakeProductApi, disabled: str, expected_spans: int, tagged: bool
) -> None:
    """Disabling requests means no span at all; disabling productapi, plain spans."""
    fake_product_api.set_scenario("rate_limit_storm")
    spans, _ = app_spans(
        fake_product_api.url,
        [f"GET {USER}"],
        {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled},
    )
    client = _client_spans(spans)
    assert len(client) == expected_spans
    assert all((n.ATTR_ERROR_CLASS in s["attributes"]) is tagged for s in client)


def test_without_a_distro(fake_product_api: FakeProductApi) -> None:
    """With no distro and no configurator (the app sets up its own SDK), spans are still tagged.

    opentelemetry-distro is installed here; naming a distro and a configurator
    that do not exist makes opentelemetry-instrument fall back to its
    DefaultDistro and skip SDK configuration, exactly as without the package.
    """
    fake_product_api.set_scenario("rate_limit_storm")
    spans, _ = app_spans(
        fake_product_api.url,
        [f"GET {USER}"],
        {"OTEL_PYTHON_DISTRO": "absent", "OTEL_PYTHON_CONFIGURATOR": "absent"},
    )
    (span,) = _client_spans(spans)
    assert span["attributes"][n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED


def _vendor_distro(directory: Path) -> dict[str, str]:
    """A vendor distro, installed as a dist-info on PYTHONPATH, that passes its own hooks."""
    (directory / "vendor_distro.py").write_text(
        textwrap.dedent(
            """
            from opentelemetry.instrumentation.distro import BaseDistro

            def _request_hook(span, request):
                span.set_attribute("vendor.saw_template", span.attributes.get("url.template", ""))

            def _response_hook(span, request, response):
                span.set_attribute("vendor.saw_class", span.attributes.get(
                    "productapi.error.class", ""))

            class VendorDistro(BaseDistro):
                def _configure(self, **kwargs):
                    pass

                def load_instrumentor(self, entry_point, **kwargs):
                    if entry_point.name == "requests":
                        kwargs.update(request_hook=_request_hook, response_hook=_response_hook)
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


def test_a_vendor_distros_hooks_still_run(fake_product_api: FakeProductApi, tmp_path: Path) -> None:
    """A distro that passes its own hooks keeps them, and they see our attributes."""
    fake_product_api.set_scenario("rate_limit_storm")
    spans, _ = app_spans(fake_product_api.url, [f"GET {USER}"], _vendor_distro(tmp_path))
    (span,) = _client_spans(spans)
    attributes = span["attributes"]
    assert attributes[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert attributes["vendor.saw_class"] == n.CLASS_RATE_LIMITED
    assert attributes["vendor.saw_template"] == attributes[n.ATTR_URL_TEMPLATE]


def test_programmatic_instrument_as_well_still_gives_one_span(
    fake_product_api: FakeProductApi,
) -> None:
    """An app that also calls otel_productapi.instrument() gets one tagged span per request."""
    fake_product_api.set_scenario("rate_limit_storm")
    spans, _ = app_spans(
        fake_product_api.url,
        [f"GET {USER}", f"GET {USER}"],
        {"APP_CALL_INSTRUMENT": "1", **TEMPLATES},
    )
    client = _client_spans(spans)
    assert len(client) == 2
    for span in client:
        assert span["attributes"][n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert len(fake_product_api.requests) == 2


def test_a_bad_setting_costs_the_tags_not_the_spans(fake_product_api: FakeProductApi) -> None:
    """An invalid PRODUCTAPI_OTEL_* value: a warning names it, spans still flow, untagged."""
    fake_product_api.set_scenario("rate_limit_storm")
    spans, stderr = app_spans(
        fake_product_api.url, [f"GET {USER}"], {"PRODUCTAPI_OTEL_MESSAGE_MAX_LENGTH": "lots"}
    )
    (span,) = _client_spans(spans)
    assert n.ATTR_ERROR_CLASS not in span["attributes"]
    assert "PRODUCTAPI_OTEL_MESSAGE_MAX_LENGTH" in stderr


def _program_in_a_cloned_repository(directory: Path) -> Path:
    """A directory like a cloned repository whose .env names code of its own to import."""
    marker = directory / "imported.txt"
    (directory / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\ndef f(document, status):\n    return None\n"
    )
    (directory / ".env").write_text(
        "PRODUCTAPI_OTEL_HOSTS=api.example.com\nPRODUCTAPI_OTEL_BATCH_EXTRACTOR=planted:f\n"
    )
    return marker


@pytest.mark.parametrize("explicit", [False, True], ids=["implicit", "named-by-env-file"])
def test_a_dotenv_in_the_working_directory_imports_nothing_under_zero_code(
    tmp_path: Path, explicit: bool
) -> None:
    """opentelemetry-instrument run inside a directory with a .env does not read it, so the
    code it names is not imported; named by PRODUCTAPI_OTEL_ENV_FILE, it is (the check works)."""
    marker = _program_in_a_cloned_repository(tmp_path)
    env = {"PRODUCTAPI_OTEL_ENV_FILE": str(tmp_path / ".env")} if explicit else {}
    result = subprocess.run(
        [str(OPENTELEMETRY_INSTRUMENT), sys.executable, "-c", "import requests; print('ran')"],
        env=clean_env(env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ran"), result.stderr
    assert marker.exists() is explicit
