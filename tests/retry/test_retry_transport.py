"""RetryingTransport and AsyncRetryingTransport against real servers on 127.0.0.1, instrumented.

Most tests run twice, through ``httpx.Client`` and ``httpx.AsyncClient``. Time
is fake: sleeps are recorded (and, for the async transport, awaited), never
waited, and the clocks move only when the transport sleeps.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Telemetry
from retry_rig import EPOCH, EVENTS, USER, USER_TEMPLATE, FakeTime, RetryRig, status_of
from tls_servers import tls_server

from otel_productapi._core import names as n
from otel_productapi.retry import (
    AsyncRetryingTransport,
    RetryBudget,
    RetryingTransport,
    RetryPolicy,
)
from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi, FakeResponse

MODES = ["sync", "async"]
#: An error body too large for the hooks to read ahead (64 KiB at most): only
#: closing the dropped response gives its connection back.
LARGE = b"x" * 100_000


class Rig(RetryRig):
    """The retry rig with transport factories and a one-call helper per mode."""

    def transport(
        self,
        budget: RetryBudget | None = None,
        inner: httpx.BaseTransport | None = None,
        **changes: Any,
    ) -> RetryingTransport:
        """A sync transport on fake time; keywords are RetryPolicy settings over no jitter."""
        return RetryingTransport(
            transport=inner, sleep=self.time.sleep, **self.options(budget, changes)
        )

    def async_transport(
        self,
        budget: RetryBudget | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
        **changes: Any,
    ) -> AsyncRetryingTransport:
        """The async twin of ``transport``."""
        return AsyncRetryingTransport(
            transport=inner, sleep=self.time.async_sleep, **self.options(budget, changes)
        )

    def call(
        self, mode: str, method: str, url: str, *, timeout: float = 5, **request: Any
    ) -> httpx.Response:
        """One call through a fresh client in ``mode``, its body read; ``request`` holds
        httpx's ``json``/``content``, a ``budget``, and RetryPolicy changes."""
        body = {k: request.pop(k) for k in ("json", "content") if k in request}
        budget = request.pop("budget", None)
        if mode == "sync":
            with httpx.Client(transport=self.transport(budget, **request), timeout=timeout) as c:
                response = c.request(method, url, **body)
                response.read()
                return response

        async def run() -> httpx.Response:
            transport = self.async_transport(budget, **request)
            async with httpx.AsyncClient(transport=transport, timeout=timeout) as c:
                response = await c.request(method, url, **body)
                await response.aread()
                return response

        return asyncio.run(run())


@pytest.fixture
def rig(telemetry: Telemetry) -> Iterator[Rig]:
    """Instrumented (requests and httpx) for 127.0.0.1 with the fake API's routes."""
    settings = telemetry.instrument(hosts=["127.0.0.1"], route_templates=list(ROUTE_TEMPLATES))
    with FakeProductApi() as api:
        yield Rig(api, telemetry, FakeTime(), settings)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- 429: wait for what the server said, one sibling span per attempt -----------------

_RESET_IN_2 = str(int(EPOCH) + 2)
_RESET_IN_7 = str(int(EPOCH) + 7)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("expected_sleeps", "headers"),
    [
        ([2.0, 3.0], [{"X-RateLimit-Reset": "2"}, {"X-RateLimit-Reset": "3"}]),
        ([2.0, 5.0], [{"X-RateLimit-Reset": _RESET_IN_2}, {"X-RateLimit-Reset": _RESET_IN_7}]),
        ([2.0, 1.5], [{"Retry-After": "2"}, {"Retry-After": "1.5"}]),
        ([2.0, 1.0], [{"X-RateLimit-Reset": "2", "Retry-After": "6"}, {"X-RateLimit-Reset": "1"}]),
    ],
    ids=["reset-delta", "reset-epoch", "retry-after", "reset-wins"],
)
def test_429_429_200_gives_three_sibling_spans_and_waits_what_each_429_said(
    rig: Rig, mode: str, expected_sleeps: list[float], headers: list[dict[str, str]]
) -> None:
    """Two 429s then a 200: the caller gets the 200; three sibling CLIENT spans with
    resend counts absent, 1, 2; the sleeps are the headers' waits."""
    rig.api.script("GET", USER, [*(FakeResponse(429, headers=h) for h in headers), 200])
    tracer = rig.telemetry.tracer_provider.get_tracer("test")

    with tracer.start_as_current_span("caller") as caller:
        response = rig.call(mode, "GET", rig.url())

    assert response.status_code == 200
    assert rig.sleeps == expected_sleeps
    assert len(rig.api.requests) == 3
    spans = rig.client_spans()
    assert [status_of(s) for s in spans] == [429, 429, 200]
    assert rig.resend_counts() == [None, 1, 2]
    caller_context = caller.get_span_context()
    assert {s.parent.span_id if s.parent else None for s in spans} == {caller_context.span_id}
    assert len({s.context.span_id for s in spans if s.context}) == 3
    assert [(s.attributes or {}).get(n.ATTR_ERROR_CLASS) for s in spans] == [
        n.CLASS_RATE_LIMITED,
        n.CLASS_RATE_LIMITED,
        None,
    ]
    assert (
        rig.retries(
            **{
                n.ATTR_HTTP_REQUEST_METHOD: "GET",
                n.ATTR_SERVER_ADDRESS: "127.0.0.1",
                n.ATTR_URL_TEMPLATE: USER_TEMPLATE,
                n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED,
            }
        )
        == 2
    )
    assert rig.refusals() == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_429_with_a_one_hour_reset_is_returned_at_once(rig: Rig, mode: str) -> None:
    """A reset beyond max_ratelimit_wait returns the 429 unchanged, without sleeping."""
    hour = FakeResponse(429, body=b"slow down", headers={"X-RateLimit-Reset": "3600"})
    rig.api.script("GET", USER, [hour, 200])

    response = rig.call(mode, "GET", rig.url())

    assert response.status_code == 429
    assert response.content == b"slow down"
    assert rig.sleeps == []
    assert len(rig.api.requests) == 1
    assert rig.retries() == 0


@pytest.mark.parametrize("mode", MODES)
def test_5xx_back_off_and_stop_at_max_attempts(rig: Rig, mode: str) -> None:
    """Three 5xx with max_attempts=3: backoff 1 then 2 s, the third returned as is."""
    rig.api.script(
        "GET",
        USER,
        [FakeResponse(500), FakeResponse(502), FakeResponse(503, body=b"last"), 200],
    )

    response = rig.call(mode, "GET", rig.url(), max_attempts=3)

    assert response.status_code == 503
    assert response.content == b"last"
    assert rig.sleeps == [1.0, 2.0]
    assert rig.resend_counts() == [None, 1, 2]
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR}) == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_other_than_429_are_tried_once(rig: Rig, mode: str, status: int) -> None:
    """A 4xx but 429 says the request is wrong: one attempt, no sleep."""
    rig.api.script("GET", USER, [FakeResponse(status, body={"message": "nope"}), 200])

    response = rig.call(mode, "GET", rig.url())

    assert response.status_code == status
    assert response.json() == {"message": "nope"}
    assert rig.sleeps == []
    assert rig.resend_counts() == [None]


# --- the async wait does not block the event loop -------------------------------------


class _Journal(httpx.AsyncBaseTransport):
    """An AsyncBaseTransport (not AsyncHTTPTransport) that notes each send and answer."""

    def __init__(self, events: list[str], first_answer: asyncio.Event) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._events = events
        self._first_answer = first_answer
        self._count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        number = self._count
        self._count += 1
        self._events.append(f"send {number}")
        response = await self._inner.handle_async_request(request)
        self._events.append(f"answer {number}")
        self._first_answer.set()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_the_default_async_wait_lets_other_tasks_run(rig: Rig) -> None:
    """With the default sleep (asyncio.sleep), another task makes a whole call while the
    transport waits out a 429's Retry-After: the event loop is not blocked."""
    rig.api.script("GET", USER, [FakeResponse(429, headers={"Retry-After": "2"}), 200])
    other = "/v1/projects/p1/users/u2"
    events: list[str] = []

    async def run() -> int:
        first_answer = asyncio.Event()
        transport = AsyncRetryingTransport(
            RetryPolicy(jitter="none"),
            transport=_Journal(events, first_answer),
            settings=rig.settings,
            meter_provider=rig.telemetry.meter_provider,
        )

        async def meanwhile() -> None:
            await first_answer.wait()
            async with httpx.AsyncClient() as plain:
                await plain.get(rig.url(other))
            events.append("other call done")

        async with httpx.AsyncClient(transport=transport) as client:
            retried, _ = await asyncio.gather(client.get(rig.url()), meanwhile())
        return retried.status_code

    assert asyncio.run(run()) == 200
    assert events == ["send 0", "answer 0", "other call done", "send 1", "answer 1"]


# --- never resend what may have been applied ------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_post_read_timeout_is_not_resent(rig: Rig, mode: str) -> None:
    """POST may have been applied: a read timeout after sending is raised at once."""
    rig.api.script("POST", EVENTS, [FakeResponse(201, delay=0.3)] * 3)

    with pytest.raises(httpx.ReadTimeout):
        rig.call(mode, "POST", rig.url(EVENTS), json={"e": 1}, timeout=0.05)

    rig.wait_for_requests(1)
    time.sleep(0.35)  # long enough for a second attempt's answer to land, were there one
    assert len(rig.api.requests) == 1
    assert rig.sleeps == []
    assert rig.retries() == 0
    assert rig.resend_counts() == [None]


@pytest.mark.parametrize("mode", MODES)
def test_a_get_read_timeout_is_resent(rig: Rig, mode: str) -> None:
    """GET is idempotent: the same read timeout is retried until max_attempts, then raised."""
    rig.api.script("GET", USER, [FakeResponse(200, delay=0.3)] * 3)

    with pytest.raises(httpx.ReadTimeout):
        rig.call(mode, "GET", rig.url(), timeout=0.05, max_attempts=3)

    rig.wait_for_requests(3)
    assert len(rig.api.requests) == 3
    assert rig.sleeps == [1.0, 2.0]
    assert rig.resend_counts() == [None, 1, 2]
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 2


def _tls_call(rig: Rig, mode: str, method: str, url: str, verify: Any) -> None:
    """One call with a TLS-configured inner transport, wrapped by the retrying one."""
    if mode == "sync":
        transport = rig.transport(inner=httpx.HTTPTransport(verify=verify), max_attempts=3)
        with httpx.Client(transport=transport, timeout=5) as client:
            client.request(method, url, json={"e": 1})
        return

    async def run() -> None:
        inner = httpx.AsyncHTTPTransport(verify=verify)
        transport = rig.async_transport(inner=inner, max_attempts=3)
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            await client.request(method, url, json={"e": 1})

    asyncio.run(run())


#: What httpx raises when the TLS record after the request is garbage: httpcore's
#: sync backend maps the SSLError to ReadError, its anyio backend lets it through.
_BROKEN_AFTER_SEND: dict[str, type[Exception]] = {"sync": httpx.ReadError, "async": ssl.SSLError}


@pytest.mark.parametrize("mode", MODES)
def test_a_post_that_breaks_after_the_server_read_it_is_not_resent(rig: Rig, mode: str) -> None:
    """A TLS server reads the whole POST, then sends garbage: httpx's exception is raised
    unchanged after one attempt, never resent."""
    with tls_server("garbage_after_request") as server:
        with pytest.raises(_BROKEN_AFTER_SEND[mode]):
            _tls_call(rig, mode, "POST", server.url, server.client_context())
        assert len(server.requests) == 1
        assert server.requests[0].startswith(b"POST /v1/things")
    assert rig.sleeps == []
    assert rig.retries() == 0
    assert rig.resend_counts() == [None]


@pytest.mark.parametrize("mode", MODES)
def test_a_get_that_breaks_after_the_server_read_it_is_resent(rig: Rig, mode: str) -> None:
    """The same failure on an idempotent GET is retried up to max_attempts."""
    with tls_server("garbage_after_request") as server:
        with pytest.raises(_BROKEN_AFTER_SEND[mode]):
            _tls_call(rig, mode, "GET", server.url, server.client_context())
        assert len(server.requests) == 3
    assert rig.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("mode", MODES)
def test_a_post_refused_in_the_tls_handshake_is_resent(rig: Rig, mode: str) -> None:
    """An untrusted certificate fails the handshake before a byte of the request is sent:
    even a POST is retried."""
    with tls_server("handshake_only") as server:
        with pytest.raises(httpx.ConnectError):
            _tls_call(rig, mode, "POST", server.url, True)
        assert server.requests == []
    assert rig.sleeps == [1.0, 2.0]
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_post_refused_at_connect_is_resent(rig: Rig, mode: str) -> None:
    """Nothing listens: the request never left, so even a POST is retried, then raised."""
    url = f"http://127.0.0.1:{_closed_port()}{EVENTS}"

    with pytest.raises(httpx.ConnectError):
        rig.call(mode, "POST", url, json={"e": 1}, max_attempts=3)

    assert rig.sleeps == [1.0, 2.0]
    assert rig.resend_counts() == [None, 1, 2]
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_post_that_gets_a_5xx_is_resent_with_the_same_body(rig: Rig, mode: str) -> None:
    """A 5xx is an answer the table calls retryable whatever the method; the JSON body
    goes out whole each time."""
    rig.api.script("POST", EVENTS, [FakeResponse(500), FakeResponse(201, body={"id": "e1"})])

    response = rig.call(mode, "POST", rig.url(EVENTS), json={"e": 1})

    assert response.status_code == 201
    assert [r.json() for r in rig.api.requests] == [{"e": 1}, {"e": 1}]


def test_a_streamed_request_body_is_not_resent(rig: Rig) -> None:
    """An iterator body is consumed by the first attempt: the 500 is returned."""
    rig.api.script("POST", EVENTS, [FakeResponse(500), 201])

    def chunks() -> Iterator[bytes]:
        yield b'{"e": '
        yield b"1}"

    with httpx.Client(transport=rig.transport()) as client:
        response = client.post(rig.url(EVENTS), content=chunks())

    assert response.status_code == 500
    assert len(rig.api.requests) == 1
    assert rig.retries() == 0


# --- the budget under concurrency -----------------------------------------------------


class _Gate(httpx.AsyncBaseTransport):
    """Holds the first ``count`` sends until all have arrived, so every call has
    started (and paid into the budget) before any answer comes back."""

    def __init__(self, count: int) -> None:
        self._inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=20))
        self._count = count
        self._arrived = 0
        self._open = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._arrived < self._count:
            self._arrived += 1
            if self._arrived == self._count:
                self._open.set()
            await self._open.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_the_budget_holds_across_100_concurrent_async_calls(rig: Rig) -> None:
    """100 concurrent calls to an always-failing API on the default budget (burst 10,
    0.1 a call, capped at the burst): exactly 10 resends in all, whichever calls get
    them; every call that did not use its 5 attempts ends in a counted refusal."""
    rig.api.set_scenario("server_errors")

    async def run() -> list[int]:
        transport = rig.async_transport(inner=_Gate(100), max_attempts=5, base_delay=0.0)
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            responses = await asyncio.gather(*(client.get(rig.url()) for _ in range(100)))
        assert transport.budget.tokens == 0
        return [r.status_code for r in responses]

    statuses = asyncio.run(run())

    assert len(statuses) == 100
    assert all(s >= 500 for s in statuses)
    assert len(rig.api.requests) == 110
    assert rig.retries() == 10
    counts = rig.resend_counts()
    assert (counts.count(None), len(counts)) == (100, 110)
    assert rig.refusals() == 100 - counts.count(4)
    assert rig.sleeps == [0.0] * 10


@pytest.mark.parametrize("mode", MODES)
def test_a_shared_budget_is_spent_by_every_transport(rig: Rig, mode: str) -> None:
    """Two calls through transports sharing a 2-token budget get two resends between them."""
    rig.api.set_scenario("server_errors")
    shared = RetryBudget(ratio=0.0, burst=2)

    rig.call(mode, "GET", rig.url(), budget=shared)
    rig.call(mode, "GET", rig.url(), budget=shared)

    assert len(rig.api.requests) == 3 + 1
    assert rig.refusals() == 2


# --- dropped responses are closed ------------------------------------------------------


class _Keeper(httpx.BaseTransport):
    """A BaseTransport (not HTTPTransport) that keeps every response it returns."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.responses: list[httpx.Response] = []
        self.entered = False
        self.closed = False

    def __enter__(self) -> _Keeper:
        self.entered = True
        self.inner.__enter__()
        return self

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.responses.append(response)
        return response

    def close(self) -> None:
        self.closed = True
        self.inner.close()


class _AsyncKeeper(httpx.AsyncBaseTransport):
    """The async twin of ``_Keeper``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.responses: list[httpx.Response] = []
        self.entered = False
        self.closed = False

    async def __aenter__(self) -> _AsyncKeeper:
        self.entered = True
        await self.inner.__aenter__()
        return self

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.responses.append(response)
        return response

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


def _one_connection() -> httpx.Limits:
    return httpx.Limits(max_connections=1, max_keepalive_connections=1)


def test_dropped_responses_are_closed_sync(rig: Rig) -> None:
    """On one pooled connection, two large 503s and a 200 all go through: each dropped
    response is closed (its connection given back) before the next attempt; the final
    streamed one is returned unread; closing the client closes the wrapped transport."""
    rig.api.script("GET", USER, [FakeResponse(503, body=LARGE), FakeResponse(503, body=LARGE), 200])
    keeper = _Keeper(httpx.HTTPTransport(limits=_one_connection()))
    timeout = httpx.Timeout(5, pool=1)

    with (
        httpx.Client(transport=rig.transport(inner=keeper), timeout=timeout) as client,
        client.stream("GET", rig.url()) as response,
    ):
        assert response.status_code == 200
        assert [r.is_closed for r in keeper.responses] == [True, True, False]
        assert keeper.responses[-1] is response
        assert not response.is_stream_consumed  # returned unread: the caller streams it
        response.read()
        assert response.json()["id"] == "u1"
    assert keeper.closed
    assert [status_of(s) for s in rig.client_spans()] == [503, 503, 200]


def test_dropped_responses_are_closed_async(rig: Rig) -> None:
    """The async transport awaits aclose() on each dropped response before the next attempt."""
    rig.api.script("GET", USER, [FakeResponse(503, body=LARGE), FakeResponse(503, body=LARGE), 200])

    async def run() -> _AsyncKeeper:
        keeper = _AsyncKeeper(httpx.AsyncHTTPTransport(limits=_one_connection()))
        transport = rig.async_transport(inner=keeper)
        async with (
            httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, pool=1)) as client,
            client.stream("GET", rig.url()) as response,
        ):
            assert response.status_code == 200
            assert [r.is_closed for r in keeper.responses] == [True, True, False]
            assert keeper.responses[-1] is response
        return keeper

    keeper = asyncio.run(run())
    assert keeper.closed
    assert rig.resend_counts() == [None, 1, 2]


# --- what is wrapped ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_default_inner_transport_is_the_standard_one(rig: Rig, mode: str) -> None:
    """With no transport given, each attempt goes through httpx.HTTPTransport (or
    AsyncHTTPTransport), the class the instrumentation wraps: one CLIENT span each."""
    rig.api.script("GET", USER, [FakeResponse(503), 200])
    if mode == "sync":
        transport: Any = RetryingTransport(sleep=rig.time.sleep, settings=rig.settings)
        assert isinstance(transport._transport, httpx.HTTPTransport)
        with httpx.Client(transport=transport) as client:
            status = client.get(rig.url()).status_code
    else:
        transport = AsyncRetryingTransport(sleep=rig.time.async_sleep, settings=rig.settings)
        assert isinstance(transport._transport, httpx.AsyncHTTPTransport)

        async def run() -> int:
            async with httpx.AsyncClient(transport=transport) as client:
                return (await client.get(rig.url())).status_code

        status = asyncio.run(run())

    assert status == 200
    assert transport.policy == RetryPolicy()
    assert (transport.budget.ratio, transport.budget.burst) == (0.1, 10.0)
    assert [status_of(s) for s in rig.client_spans()] == [503, 200]
    assert rig.resend_counts() == [None, 1]


def test_any_base_transport_can_be_wrapped(rig: Rig) -> None:
    """A plain BaseTransport subclass is wrapped: it sees every attempt, and is entered
    and closed with the client."""
    rig.api.script("GET", USER, [FakeResponse(502), FakeResponse(503), 200])
    keeper = _Keeper(httpx.HTTPTransport())

    with httpx.Client(transport=rig.transport(inner=keeper)) as client:
        response = client.get(rig.url())

    assert response.status_code == 200
    assert [r.status_code for r in keeper.responses] == [502, 503, 200]
    assert keeper.entered
    assert keeper.closed
    assert rig.sleeps == [1.0, 2.0]


def test_any_async_base_transport_can_be_wrapped(rig: Rig) -> None:
    """A plain AsyncBaseTransport subclass is wrapped, entered and closed with the client."""
    rig.api.script("GET", USER, [FakeResponse(502), 200])

    async def run() -> tuple[int, _AsyncKeeper]:
        keeper = _AsyncKeeper(httpx.AsyncHTTPTransport())
        async with httpx.AsyncClient(transport=rig.async_transport(inner=keeper)) as client:
            response = await client.get(rig.url())
        return response.status_code, keeper

    status, keeper = asyncio.run(run())

    assert status == 200
    assert [r.status_code for r in keeper.responses] == [502, 200]
    assert keeper.entered
    assert keeper.closed
