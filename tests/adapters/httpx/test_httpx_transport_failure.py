"""httpx calls that get no response, on 127.0.0.1: tagged, counted once, the exception unchanged.

How far the request got decides retryability (never sent: retryable; after
sending: only for idempotent methods). Plain TCP failures are made with
requests too and must emit the same; TLS failures use tests/tls_servers.py.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from conftest import Telemetry
from httpx_support import (
    CLIENTS,
    KINDS,
    Client,
    Emitted,
    Kind,
    call,
    call_with,
    each_client,
    run,
)
from opentelemetry.instrumentation.httpx import (
    AsyncOpenTelemetryTransport,
    SyncOpenTelemetryTransport,
)
from opentelemetry.trace import StatusCode
from raw_http import raw_server
from tls_servers import tls_server

from otel_productapi import make_httpx_hooks
from otel_productapi._adapters.httpx.transport import transport_failure_of
from otel_productapi._core import names as n
from otel_productapi._core.status import TransportFailure
from otel_productapi._telemetry.settings import load_settings

USER = "/v1/projects/p1/users/u1"
USER_TEMPLATE = "/v1/projects/{project}/users/{user_id}"


def _failure_series(method: str, retryable: bool, template: str) -> tuple[dict[str, Any], float]:
    return (
        {
            n.ATTR_HTTP_REQUEST_METHOD: method,
            n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR,
            n.ATTR_ERROR_RETRYABLE: retryable,
            n.ATTR_URL_TEMPLATE: template,
            n.ATTR_SERVER_ADDRESS: "127.0.0.1",
        },
        1.0,
    )


def _counted_failures(telemetry: Telemetry) -> list[tuple[dict[str, Any], float]]:
    return [
        (labels, value)
        for labels, value in telemetry.series(n.METRIC_CLIENT_REQUESTS)
        if value  # not the zero-initialised alerting series
    ]


def _raises_unchanged(
    kind: Kind,
    telemetry: Telemetry,
    expected: type[Exception],
    method: str,
    url: str,
    **kwargs: Any,
) -> Exception:
    """The call raises ``expected`` with the same text as before instrumenting."""
    with pytest.raises(expected) as plain:
        call(kind, method, url, **kwargs)
    telemetry.instrument(hosts=["127.0.0.1"], route_templates=[USER_TEMPLATE])
    with pytest.raises(expected) as tagged:
        call(kind, method, url, **kwargs)
    assert type(tagged.value) is type(plain.value)
    assert str(tagged.value) == str(plain.value)
    if isinstance(tagged.value, httpx.RequestError):
        assert tagged.value.request.method == method
        assert str(tagged.value.request.url) == url
    return tagged.value


def _assert_tagged(telemetry: Telemetry, method: str, retryable: bool) -> None:
    span = telemetry.span()
    attrs = span.attributes or {}
    assert span.name == f"{method} {USER_TEMPLATE}"
    assert span.status.status_code == StatusCode.ERROR
    assert {k: v for k, v in attrs.items() if k.startswith("productapi.")} == {
        n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR,
        n.ATTR_ERROR_RETRYABLE: retryable,
    }
    assert _counted_failures(telemetry) == [_failure_series(method, retryable, USER_TEMPLATE)]


def _identical(found: dict[Client, Emitted]) -> Emitted:
    assert set(found) == set(CLIENTS)
    for client in ("sync", "async"):
        assert found[client] == found["requests"], client
    return found["requests"]


# --- never sent ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_connection_refused_is_retryable(
    kind: Kind, method: str, telemetry: Telemetry, closed_port: int
) -> None:
    """A refused connection never sent the request: retryable even for POST."""
    url = f"http://127.0.0.1:{closed_port}{USER}"
    _raises_unchanged(kind, telemetry, httpx.ConnectError, method, url, timeout=5)
    _assert_tagged(telemetry, method, retryable=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tls_handshake_failure_is_retryable(kind: Kind, method: str, telemetry: Telemetry) -> None:
    """A server certificate the client does not trust fails the handshake, before a
    byte of the request went out: retryable even for POST."""
    with tls_server("handshake_only") as server:
        url = server.url.replace("/v1/things", USER)
        _raises_unchanged(kind, telemetry, httpx.ConnectError, method, url, timeout=5)
        assert server.requests == []
    _assert_tagged(telemetry, method, retryable=True)


# --- after sending -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "retryable"), [("GET", True), ("PUT", True), ("POST", False)])
def test_read_timeout_is_retryable_only_if_idempotent(
    kind: Kind, method: str, retryable: bool, telemetry: Telemetry, silent_port: int
) -> None:
    """A read timeout may have reached the server: retryable for GET and PUT, not POST."""
    url = f"http://127.0.0.1:{silent_port}{USER}"
    timeout = httpx.Timeout(5, read=0.1)
    _raises_unchanged(kind, telemetry, httpx.ReadTimeout, method, url, timeout=timeout)
    _assert_tagged(telemetry, method, retryable)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("reset", "expected"),
    [(False, httpx.RemoteProtocolError), (True, httpx.ReadError)],
    ids=["closed", "reset"],
)
@pytest.mark.parametrize(("method", "retryable"), [("GET", True), ("POST", False)])
def test_server_hanging_up_after_the_request_is_after_send(
    kind: Kind,
    *,
    reset: bool,
    expected: type[httpx.TransportError],
    method: str,
    retryable: bool,
    telemetry: Telemetry,
) -> None:
    """A server that reads the request and closes (a RemoteProtocolError) or resets
    (a ReadError) may have acted on it: POST is not retryable."""
    with raw_server(b"", reset=reset) as server:
        _raises_unchanged(kind, telemetry, expected, method, server.url(), content=b"{}")
        assert len(server.received) == 2  # once plain, once tagged: it was sent
        assert server.received[1].endswith(b"\r\n\r\n{}")
    _assert_tagged(telemetry, method, retryable)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "retryable"), [("GET", True), ("POST", False)])
def test_tls_garbage_after_the_request_is_after_send(
    kind: Kind, method: str, retryable: bool, telemetry: Telemetry
) -> None:
    """A TLS server that reads the request, then sends a record no key decrypts: the
    request went out, so POST is not retryable. (httpx.Client raises ReadError;
    AsyncClient lets the ssl.SSLError through, an OSError: after send too.)"""
    with tls_server("garbage_after_request") as server:
        url = server.url.replace("/v1/things", USER)
        _raises_unchanged(
            kind,
            telemetry,
            httpx.ReadError if kind == "sync" else ssl.SSLError,
            method,
            url,
            verify=server.client_context(),
            content=b"{}",
            timeout=5,
        )
        assert len(server.requests) == 2
    _assert_tagged(telemetry, method, retryable)


# --- not a network failure -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("scheme", "headers", "expected"),
    [
        ("http", {"X-Bad": "line\nbreak"}, httpx.LocalProtocolError),
        ("ftp", {}, httpx.UnsupportedProtocol),
    ],
    ids=["bad-header", "ftp"],
)
def test_a_request_httpx_refuses_to_send_is_not_retryable(
    kind: Kind,
    *,
    scheme: str,
    headers: dict[str, str],
    expected: type[httpx.TransportError],
    telemetry: Telemetry,
    silent_port: int,
) -> None:
    """A header h11 refuses or a scheme httpx cannot speak: the caller's fault, OTHER."""
    url = f"{scheme}://127.0.0.1:{silent_port}{USER}"
    _raises_unchanged(kind, telemetry, expected, "GET", url, headers=headers, timeout=5)
    _assert_tagged(telemetry, "GET", retryable=False)


# --- the same as requests ------------------------------------------------------------------


def _refused(closed_port: int, method: str) -> Callable[[Client], object]:
    def make(client: Client) -> object:
        url = f"http://127.0.0.1:{closed_port}{USER}"
        with pytest.raises((httpx.ConnectError, requests.ConnectionError)):
            call_with(client, method, url, timeout=5)
        return None

    return make


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_connection_refused_is_identical_to_requests(method: str, closed_port: int) -> None:
    """Refused: the same span name, attributes, status and series from every client."""
    emitted = _identical(each_client(_refused(closed_port, method)))
    assert emitted.attributes == {
        "http.method": method,
        "http.url": f"http://127.0.0.1:{closed_port}{USER}",
        n.ATTR_URL_TEMPLATE: USER_TEMPLATE,
        n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR,
        n.ATTR_ERROR_RETRYABLE: True,
    }
    assert [s for s in emitted.series() if s[1]] == [_failure_series(method, True, USER_TEMPLATE)]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_read_timeout_is_identical_to_requests(method: str, silent_port: int) -> None:
    """Read timeout: the same from every client; POST not retryable."""
    url = f"http://127.0.0.1:{silent_port}{USER}"

    def make(client: Client) -> None:
        timeout: Any = (5, 0.1) if client == "requests" else httpx.Timeout(5, read=0.1)
        with pytest.raises((httpx.ReadTimeout, requests.ReadTimeout)):
            call_with(client, method, url, timeout=timeout)

    emitted = _identical(each_client(make))
    assert emitted.attributes[n.ATTR_ERROR_RETRYABLE] is (method == "GET")
    assert [s for s in emitted.series() if s[1]] == [
        _failure_series(method, method == "GET", USER_TEMPLATE)
    ]


def test_server_closing_after_the_request_is_identical_to_requests() -> None:
    """Closed after reading a POST: the same from every client, not retryable."""
    with raw_server(b"") as server:

        def make(client: Client) -> None:
            with pytest.raises((httpx.RemoteProtocolError, requests.ConnectionError)):
                call_with(client, "POST", server.url(), content=b"{}", timeout=5)

        emitted = _identical(each_client(make))
    assert [s for s in emitted.series() if s[1]] == [_failure_series("POST", False, USER_TEMPLATE)]


# --- what the mapping says ---------------------------------------------------------------------


def test_the_mapping_covers_every_transport_error() -> None:
    """Every httpx.TransportError subclass httpx defines maps where the docs say."""
    request = httpx.Request("GET", "http://127.0.0.1/")
    expected = {
        httpx.ConnectTimeout: TransportFailure.NOT_SENT,
        httpx.PoolTimeout: TransportFailure.NOT_SENT,
        httpx.ConnectError: TransportFailure.NOT_SENT,
        httpx.ProxyError: TransportFailure.NOT_SENT,
        httpx.ReadTimeout: TransportFailure.AFTER_SEND,
        httpx.WriteTimeout: TransportFailure.AFTER_SEND,
        httpx.ReadError: TransportFailure.AFTER_SEND,
        httpx.WriteError: TransportFailure.AFTER_SEND,
        httpx.CloseError: TransportFailure.AFTER_SEND,
        httpx.RemoteProtocolError: TransportFailure.AFTER_SEND,
        httpx.LocalProtocolError: TransportFailure.OTHER,
        httpx.UnsupportedProtocol: TransportFailure.OTHER,
        httpx.TimeoutException: TransportFailure.AFTER_SEND,
        httpx.NetworkError: TransportFailure.AFTER_SEND,
        httpx.ProtocolError: TransportFailure.AFTER_SEND,
        httpx.TransportError: TransportFailure.AFTER_SEND,
    }
    leaves = set(_subclasses(httpx.TransportError))
    assert leaves <= set(expected), leaves - set(expected)
    found = {cls: transport_failure_of(cls("x", request=request)) for cls in expected}
    assert found == expected
    assert transport_failure_of(ConnectionResetError()) == TransportFailure.AFTER_SEND
    assert transport_failure_of(ValueError()) == TransportFailure.OTHER


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


class _Rebuilds(httpx.BaseTransport):
    """A user's transport that sends a new ``httpx.Request`` (its own extensions) for each."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        again = httpx.Request(request.method, request.url, headers=request.headers)
        return self.inner.handle_request(again)


class _AsyncRebuilds(httpx.AsyncBaseTransport):
    """``_Rebuilds`` for ``AsyncClient``."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        again = httpx.Request(request.method, request.url, headers=request.headers)
        return await self.inner.handle_async_request(again)


@pytest.mark.parametrize("kind", KINDS)
def test_refused_below_a_span_over_a_transport_that_rebuilds_the_request(
    kind: Kind, telemetry: Telemetry, closed_port: int
) -> None:
    """OpenTelemetryTransport over a user's transport that sends a new Request: a refused
    connection is still tagged and counted once as a retryable transport_error."""
    hooks = make_httpx_hooks(
        load_settings(hosts=["127.0.0.1"], route_templates=[USER_TEMPLATE]),
        meter_provider=telemetry.meter_provider,
    )
    url = f"http://127.0.0.1:{closed_port}{USER}"
    if kind == "sync":
        transport = SyncOpenTelemetryTransport(
            _Rebuilds(),
            tracer_provider=telemetry.tracer_provider,
            request_hook=hooks.request_hook,
            response_hook=hooks.response_hook,
        )
        with (
            httpx.Client(trust_env=False, transport=transport) as client,
            pytest.raises(httpx.ConnectError),
        ):
            client.get(url)
    else:

        async def go() -> None:
            transport = AsyncOpenTelemetryTransport(
                _AsyncRebuilds(),
                tracer_provider=telemetry.tracer_provider,
                request_hook=hooks.async_request_hook,
                response_hook=hooks.async_response_hook,
            )
            async with httpx.AsyncClient(trust_env=False, transport=transport) as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get(url)

        run(go())
    _assert_tagged(telemetry, "GET", retryable=True)
