"""The same call made with ``httpx.Client``, ``httpx.AsyncClient`` or ``requests``.

Tests parametrise over ``KINDS`` and call ``call(kind, ...)``, so a sync and
an async test never duplicate code; ``emitted`` reads back what one call left
(span name, attributes, metric series) in a form that compares across clients::

    result = call("async", "GET", url)          # body read, as the caller sees it
    with opened("sync", "GET", url) as stream:  # client.stream(...): headers only
        ...
        body = stream.read()

Every client ignores proxy variables (``trust_env=False``): nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
import requests
from conftest import Telemetry, make_telemetry
from opentelemetry.trace import StatusCode

from otel_productapi._core import names as n
from otel_productapi.testing import ROUTE_TEMPLATES

Kind = Literal["sync", "async"]
#: Parametrise over these: ``@pytest.mark.parametrize("kind", KINDS)``.
KINDS: tuple[Kind, ...] = ("sync", "async")
#: The three clients of the parity tests.
Client = Literal["requests", "sync", "async"]
CLIENTS: tuple[Client, ...] = ("requests", "sync", "async")

#: Instrumentation-only attributes that differ by client (requests sends a User-Agent
#: attribute, httpx does not); everything else on the span must be identical.
INSTRUMENTATION_ONLY = frozenset({"user_agent.original"})

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run one coroutine on a fresh event loop."""
    return asyncio.run(coroutine)


@dataclass(frozen=True)
class Result:
    """What the caller got: status, headers and the body, read in full."""

    status: int
    headers: dict[str, str]
    content: bytes


def call(
    kind: Kind,
    method: str,
    url: str,
    *,
    verify: ssl.SSLContext | bool = True,
    **kwargs: Any,
) -> Result:
    """``client.request(method, url, **kwargs)`` on a new client of ``kind``, as httpx raises."""
    if kind == "sync":
        with httpx.Client(trust_env=False, verify=verify) as client:
            response = client.request(method, url, **kwargs)
            return Result(response.status_code, dict(response.headers), response.content)

    async def go() -> Result:
        async with httpx.AsyncClient(trust_env=False, verify=verify) as client:
            response = await client.request(method, url, **kwargs)
            return Result(response.status_code, dict(response.headers), response.content)

    return run(go())


def call_with(client: Client, method: str, url: str, **kwargs: Any) -> Result:
    """``call`` for httpx kinds, or the same call with ``requests`` (redirects not followed)."""
    if client != "requests":
        return call(client, method, url, **kwargs)
    if "content" in kwargs:
        kwargs["data"] = kwargs.pop("content")
    with requests.Session() as session:
        session.trust_env = False
        response = session.request(method, url, allow_redirects=False, **kwargs)
        return Result(response.status_code, dict(response.headers), response.content)


class Opened:
    """A ``client.stream(...)`` response whose headers arrived, for a test to look at
    before it reads the body (``read``), whatever the client's kind."""

    def __init__(self, response: httpx.Response, read: Callable[[], bytes]) -> None:
        self.response = response
        self.read = read


@contextlib.contextmanager
def opened(kind: Kind, method: str, url: str, **kwargs: Any) -> Iterator[Opened]:
    """``client.stream(method, url)``: yields once the headers are in.

    For the async kind the client runs on its own event loop in a thread, so a
    sync test body can look at things between the headers and the body.
    """
    if kind == "sync":
        with (
            httpx.Client(trust_env=False) as client,
            client.stream(method, url, **kwargs) as response,
        ):
            yield Opened(response, lambda: b"".join(response.iter_raw()))
        return
    with _AsyncStream(method, url, kwargs) as stream:
        yield stream.opened


class _AsyncStream:
    """An ``AsyncClient.stream(...)`` driven from a thread with its own loop."""

    def __init__(self, method: str, url: str, kwargs: dict[str, Any]) -> None:
        self._method, self._url, self._kwargs = method, url, kwargs
        self._headers_in = threading.Event()
        self._read_now = threading.Event()
        self._done = threading.Event()
        self._body = b""
        self._error: BaseException | None = None
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=lambda: run(self._main()), daemon=True)

    async def _main(self) -> None:
        try:
            async with (
                httpx.AsyncClient(trust_env=False) as client,
                client.stream(self._method, self._url, **self._kwargs) as response,
            ):
                self._response = response
                self._headers_in.set()
                while not self._read_now.is_set():
                    await asyncio.sleep(0.005)
                self._body = b"".join([chunk async for chunk in response.aiter_raw()])
        except BaseException as exc:
            self._error = exc
        finally:
            self._headers_in.set()
            self._done.set()

    def _read(self) -> bytes:
        self._read_now.set()
        assert self._done.wait(30), "the async stream did not finish"
        if self._error is not None:
            raise self._error
        return self._body

    def __enter__(self) -> _AsyncStream:
        self._thread.start()
        assert self._headers_in.wait(30), "no headers from the async stream"
        if self._error is not None:
            raise self._error
        assert self._response is not None
        self.opened = Opened(self._response, self._read)
        return self

    def __exit__(self, *exc: object) -> None:
        self._read_now.set()
        self._thread.join(30)


# --- what one call emitted ---------------------------------------------------------------

Series = list[tuple[tuple[tuple[str, Any], ...], float]]


@dataclass(frozen=True)
class Emitted:
    """One call's span (name, attributes, status code) and every metric series, comparable."""

    name: str
    attributes: dict[str, Any]
    status: StatusCode
    requests: Series
    ratelimit: Series
    batch: Series

    def series(self) -> list[tuple[dict[str, Any], float]]:
        """The ``productapi.client.requests`` series as (labels, value)."""
        return [(dict(labels), value) for labels, value in self.requests]


def _sorted(series: list[tuple[dict[str, Any], float]]) -> Series:
    return sorted((tuple(sorted(labels.items())), value) for labels, value in series)


def emitted(telemetry: Telemetry) -> Emitted:
    """What ``telemetry`` holds after exactly one call."""
    span = telemetry.span()
    attributes = {k: v for k, v in (span.attributes or {}).items() if k not in INSTRUMENTATION_ONLY}
    ratelimit = [
        *telemetry.series(n.METRIC_RATELIMIT_LIMIT),
        *[
            ({**labels, "gauge": "remaining"}, value)
            for labels, value in telemetry.series(n.METRIC_RATELIMIT_REMAINING)
        ],
    ]
    return Emitted(
        span.name,
        attributes,
        span.status.status_code,
        _sorted(telemetry.series(n.METRIC_CLIENT_REQUESTS)),
        _sorted(ratelimit),
        _sorted(telemetry.series(n.METRIC_BATCH_ITEMS)),
    )


def instrumented(**settings: Any) -> Telemetry:
    """Fresh in-memory providers, instrumented for 127.0.0.1 and the fake API's templates."""
    telemetry = make_telemetry()
    telemetry.instrument(
        **{"hosts": ["127.0.0.1"], "route_templates": list(ROUTE_TEMPLATES), **settings}
    )
    return telemetry


def each_client(
    make_call: Callable[[Client], object], clients: tuple[Client, ...] = CLIENTS, **settings: Any
) -> dict[Client, Emitted]:
    """Make the same call once per client, each on fresh providers; what each emitted."""
    found: dict[Client, Emitted] = {}
    for client in clients:
        telemetry = instrumented(**settings)
        try:
            make_call(client)
            found[client] = emitted(telemetry)
        finally:
            telemetry.tracer_provider.shutdown()
            telemetry.meter_provider.shutdown()
    return found
