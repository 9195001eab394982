"""``instrument()``/``uninstrument()`` cover httpx, and own only what they installed (by identity).

Someone else's ``HTTPXClientInstrumentor`` instrumentation, with their own
hooks, survives our ``uninstrument()``; so does the transport patch that
``make_httpx_hooks()`` users rely on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Telemetry
from httpx_support import KINDS, Kind, call, run
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import Span
from scripted_api import ScriptedApi, json_reply

from otel_productapi import instrument, make_httpx_hooks, uninstrument
from otel_productapi._adapters.httpx.transport import TRANSPORT_PATCH
from otel_productapi._core import names as n
from otel_productapi._telemetry.settings import load_settings
from otel_productapi.testing import FakeProductApi

USER = "/v1/projects/p1/users/u1"


def _methods() -> tuple[object, object]:
    return (
        httpx.HTTPTransport.__dict__["handle_request"],
        httpx.AsyncHTTPTransport.__dict__["handle_async_request"],
    )


@pytest.fixture(autouse=True)
def _their_instrumentation_is_undone() -> Iterator[None]:
    """A test that instrumented httpx as a user would leaves it uninstrumented."""
    yield
    if HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().uninstrument()


def _refused(kind: Kind, port: int) -> None:
    with pytest.raises(httpx.ConnectError):
        call(kind, "GET", f"http://127.0.0.1:{port}{USER}", timeout=5)


def _theirs(seen: list[str]) -> dict[str, Any]:
    """A user's own hooks, which record that they ran and what they saw."""

    def request_hook(span: Span, _request: Any) -> None:
        seen.append("request")
        span.set_attribute("vendor.hook", True)

    async def async_request_hook(span: Span, request: Any) -> None:
        request_hook(span, request)

    return {"request_hook": request_hook, "async_request_hook": async_request_hook}


@pytest.mark.parametrize("kind", KINDS)
def test_instrument_covers_httpx_and_uninstrument_restores_it(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi
) -> None:
    """instrument() wraps both transports (our patch inside the instrumentation);
    uninstrument() puts back the very same methods, and nothing is emitted after."""
    before = _methods()
    telemetry.instrument(hosts=["127.0.0.1"])
    assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert TRANSPORT_PATCH.installed
    assert all(now is not then for now, then in zip(_methods(), before, strict=True))
    fake_product_api.set_scenario("rate_limit_storm")
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    assert (telemetry.span().attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED

    uninstrument()
    uninstrument()  # harmless when nothing is instrumented

    assert all(now is then for now, then in zip(_methods(), before, strict=True))
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert TRANSPORT_PATCH.users == 0
    assert not TRANSPORT_PATCH.installed
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    assert len(telemetry.spans()) == 1
    assert telemetry.request_count() == 1


@pytest.mark.parametrize("kind", KINDS)
def test_instrument_twice_reconfigures_without_a_second_span(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi, closed_port: int
) -> None:
    """The last instrument() wins: one span and one count per call, for responses and
    for failures, and one share of the transport patch."""
    telemetry.instrument(hosts=["localhost"])
    telemetry.instrument(hosts=["127.0.0.1"])
    assert TRANSPORT_PATCH.users == 1
    fake_product_api.set_scenario("server_errors")
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    _refused(kind, closed_port)
    first, second = telemetry.spans()
    assert (first.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert (second.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert telemetry.request_count() == 2


@pytest.mark.parametrize("kind", KINDS)
def test_someone_elses_instrumentation_is_left_alone(
    kind: Kind,
    telemetry: Telemetry,
    fake_product_api: FakeProductApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """httpx instrumented by a user with their own hooks: instrument() warns and tags
    nothing (one span per call, theirs); uninstrument() leaves theirs in place."""
    seen: list[str] = []
    HTTPXClientInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, **_theirs(seen))
    theirs = _methods()
    with caplog.at_level("WARNING"):
        telemetry.instrument(hosts=["127.0.0.1"])
    assert "httpx is already instrumented by someone else" in caplog.text
    assert "make_httpx_hooks()" in caplog.text
    assert _methods() == theirs

    uninstrument()

    assert all(now is then for now, then in zip(_methods(), theirs, strict=True))
    assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    fake_product_api.set_scenario("server_errors")
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    attrs = telemetry.span().attributes or {}
    assert attrs["vendor.hook"] is True
    assert seen == ["request"]
    assert n.ATTR_ERROR_CLASS not in attrs
    assert telemetry.series(n.METRIC_CLIENT_REQUESTS) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_user_who_reinstrumented_after_us_keeps_it(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi
) -> None:
    """We instrument; the user uninstruments and instruments httpx with their hooks;
    our uninstrument() sees the method is no longer ours and leaves theirs."""
    telemetry.instrument(hosts=["127.0.0.1"])
    HTTPXClientInstrumentor().uninstrument()
    seen: list[str] = []
    HTTPXClientInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, **_theirs(seen))
    theirs = _methods()

    uninstrument()

    assert all(now is then for now, then in zip(_methods(), theirs, strict=True))
    assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    assert (telemetry.span().attributes or {})["vendor.hook"] is True
    assert seen == ["request"]
    assert TRANSPORT_PATCH.users == 0


@pytest.mark.parametrize("kind", KINDS)
def test_make_httpx_hooks_users_keep_the_patch_after_a_stray_uninstrument(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi, closed_port: int
) -> None:
    """A user instruments httpx with make_httpx_hooks(); a stray instrument() and
    uninstrument() of ours change nothing: responses and failures stay tagged."""
    settings = load_settings(hosts=["127.0.0.1"])
    hooks = make_httpx_hooks(settings, meter_provider=telemetry.meter_provider)
    HTTPXClientInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, **hooks._asdict()
    )
    theirs = _methods()
    instrument(settings, tracer_provider=telemetry.tracer_provider)

    uninstrument()

    assert all(now is then for now, then in zip(_methods(), theirs, strict=True))
    assert TRANSPORT_PATCH.installed
    assert TRANSPORT_PATCH.users == 1
    fake_product_api.set_scenario("rate_limit_storm")
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    _refused(kind, closed_port)
    limited, refused = telemetry.spans()
    assert (limited.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert str((limited.attributes or {})[n.ATTR_ERROR_MESSAGE]).startswith("Rate limit")
    assert (refused.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert telemetry.request_count() == 2


def test_make_httpx_hooks_share_survives_our_uninstrument(
    telemetry: Telemetry, closed_port: int
) -> None:
    """instrument(), then make_httpx_hooks() (say, for a client instrumented on its
    own), then uninstrument(): the patch stays, held by the hooks' user."""
    telemetry.instrument(hosts=["127.0.0.1"])
    make_httpx_hooks(load_settings(hosts=["127.0.0.1"]))
    assert TRANSPORT_PATCH.users == 2

    uninstrument()

    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert TRANSPORT_PATCH.users == 1
    assert TRANSPORT_PATCH.installed
    # Without an instrumentation there is no span to tag: the patch stays out of the way.
    _refused("sync", closed_port)
    assert telemetry.spans() == []
    assert telemetry.series(n.METRIC_CLIENT_REQUESTS) == []


@pytest.mark.parametrize("kind", KINDS)
def test_make_httpx_hooks_after_someone_instrumented_httpx_breaks_nothing(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi, closed_port: int
) -> None:
    """make_httpx_hooks() called while someone's instrumentation is in place: calls still
    work (one span each), that instrumentation can still be removed, and when it is
    made again with our hooks, failures are tagged (the patch sits inside it)."""
    original = _methods()
    HTTPXClientInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    hooks = make_httpx_hooks(
        load_settings(hosts=["127.0.0.1"]), meter_provider=telemetry.meter_provider
    )
    assert TRANSPORT_PATCH.installed

    assert call(kind, "GET", fake_product_api.url + USER, timeout=5).status == 200
    assert len(telemetry.spans()) == 1

    HTTPXClientInstrumentor().uninstrument()
    call(kind, "GET", fake_product_api.url + USER, timeout=5)
    assert len(telemetry.spans()) == 1  # their wrapper is gone; ours stays, held by the hooks
    assert TRANSPORT_PATCH.installed

    HTTPXClientInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, **hooks._asdict()
    )
    _refused(kind, closed_port)
    refused = telemetry.spans()[-1]
    assert (refused.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 1

    # The last share goes while wrapped: our patch leaves from inside their wrapper.
    TRANSPORT_PATCH.release()
    assert not TRANSPORT_PATCH.installed
    HTTPXClientInstrumentor().uninstrument()
    assert all(now is then for now, then in zip(_methods(), original, strict=True))


@pytest.mark.parametrize("kind", KINDS)
def test_make_httpx_hooks_on_one_client(
    kind: Kind, telemetry: Telemetry, fake_product_api: FakeProductApi, closed_port: int
) -> None:
    """HTTPXClientInstrumentor.instrument_client(client, ...) with our hooks tags that
    client's responses and failures (the transport patch is inside the client's wrapper)."""
    hooks = make_httpx_hooks(
        load_settings(hosts=["127.0.0.1"]), meter_provider=telemetry.meter_provider
    )
    fake_product_api.set_scenario("rate_limit_storm")
    refused = f"http://127.0.0.1:{closed_port}{USER}"
    if kind == "sync":
        with httpx.Client(trust_env=False) as client:
            HTTPXClientInstrumentor.instrument_client(
                client,
                tracer_provider=telemetry.tracer_provider,
                request_hook=hooks.request_hook,
                response_hook=hooks.response_hook,
            )
            client.get(fake_product_api.url + USER)
            with pytest.raises(httpx.ConnectError):
                client.get(refused)
    else:

        async def go() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                HTTPXClientInstrumentor.instrument_client(
                    client,
                    tracer_provider=telemetry.tracer_provider,
                    request_hook=hooks.async_request_hook,
                    response_hook=hooks.async_response_hook,
                )
                await client.get(fake_product_api.url + USER)
                with pytest.raises(httpx.ConnectError):
                    await client.get(refused)

        run(go())
    limited, failed = telemetry.spans()
    assert (limited.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert n.ATTR_ERROR_MESSAGE in (limited.attributes or {})
    assert (failed.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert telemetry.request_count() == 2


class _SendsAgain(httpx.BaseTransport):
    """A user's own retry: one more send after an error status."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code >= 400:
            response.read()
            response.close()
            response = self.inner.handle_request(request)
        return response


class _AsyncSendsAgain(httpx.AsyncBaseTransport):
    """``_SendsAgain`` for ``AsyncClient``."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            response = await self.inner.handle_async_request(request)
        return response


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("last", [200, 503])
def test_one_span_over_a_users_retry_transport_tags_the_last_response(
    kind: Kind, last: int, telemetry: Telemetry, api: ScriptedApi
) -> None:
    """instrument_client on a client whose own transport sends again after a 429: the one
    span gets the last response's request id, rate-limit headers and message (none for a
    body too large to read ahead), never the 429's."""
    hooks = make_httpx_hooks(
        load_settings(hosts=["127.0.0.1"], max_body_bytes=1024),
        meter_provider=telemetry.meter_provider,
    )
    first = [(b"X-Request-Id", b"first"), (b"X-RateLimit-Remaining", b"0")]
    second = [(b"X-Request-Id", b"second"), (b"X-RateLimit-Remaining", b"7")]
    api.reset()
    api.script(
        json_reply(429, {"message": "slow down"}, first),
        json_reply(last, {"message": "x" * 2000} if last == 503 else {"id": 1}, second),
    )
    url = api.url + USER
    if kind == "sync":
        with httpx.Client(trust_env=False, transport=_SendsAgain()) as client:
            HTTPXClientInstrumentor.instrument_client(
                client,
                tracer_provider=telemetry.tracer_provider,
                request_hook=hooks.request_hook,
                response_hook=hooks.response_hook,
            )
            status = client.get(url).status_code
    else:

        async def go() -> int:
            async with httpx.AsyncClient(trust_env=False, transport=_AsyncSendsAgain()) as client:
                HTTPXClientInstrumentor.instrument_client(
                    client,
                    tracer_provider=telemetry.tracer_provider,
                    request_hook=hooks.async_request_hook,
                    response_hook=hooks.async_response_hook,
                )
                return (await client.get(url)).status_code

        status = run(go())
    assert status == last
    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_REQUEST_ID] == "second"
    assert attrs[n.ATTR_RATELIMIT_REMAINING] == 7
    assert n.ATTR_ERROR_MESSAGE not in attrs
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: last}) == 1
    assert telemetry.request_count() == 1
