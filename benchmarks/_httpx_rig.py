"""What the httpx benchmarks share: a canned connection pool, clients and the variants.

Mirrors ``_requests_rig``: the same canned statuses, headers (varying per
response) and bodies, one new item id per request, and the same three
variants (``instrumentor``: ``HTTPXClientInstrumentor`` alone; ``floor``:
hooks that set the same attributes from constants and count the call under
a lock; ``ours``: ``otel_productapi.instrument()``).

The canned part is the ``httpcore`` pool behind a real ``httpx.HTTPTransport``
(no socket), so the instrumentation's transport wrapper and ours run exactly
as they do in production. ``_httpx_async_rig`` is the ``AsyncClient`` twin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import httpcore
import httpx
from _requests_rig import HOST, PATHS, URL, providers, varying_headers
from _requests_rig import floor_hooks as requests_floor_hooks
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import Span

import otel_productapi

__all__ = ["HOST", "URL", "VARIANTS", "floor_hooks", "instrument", "run"]

VARIANTS: Final = ("instrumentor", "floor", "ours")


class CannedPool:
    """Stands in for the transport's ``httpcore`` pool: every request gets the same answer."""

    def __init__(self, path: str) -> None:
        self._status, self._headers, self._body = PATHS[path]
        self._count = 0

    def _response(self) -> httpcore.Response:
        self._count += 1
        headers = varying_headers(self._headers, self._count)
        headers["Content-Length"] = str(len(self._body))
        return httpcore.Response(self._status, headers=list(headers.items()), content=self._body)

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        return self._response()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        return self._response()

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def client(path: str) -> httpx.Client:
    """A client whose every request gets the canned answer of ``path``."""
    transport = httpx.HTTPTransport()
    transport._pool = CannedPool(path)  # type: ignore[assignment]  # the canned stand-in
    return httpx.Client(transport=transport, trust_env=False)


def floor_hooks(path: str, *, coroutines: bool = False) -> dict[str, Callable[..., Any]]:
    """The requests rig's floor hooks (they read neither request nor response),
    as the httpx instrumentation's sync or async hook keywords."""
    request_hook, response_hook = requests_floor_hooks(path)
    if not coroutines:
        return {"request_hook": request_hook, "response_hook": response_hook}

    async def async_request_hook(span: Span, request: Any) -> None:
        request_hook(span, request)

    async def async_response_hook(span: Span, request: Any, response: Any) -> None:
        response_hook(span, request, response)

    return {"async_request_hook": async_request_hook, "async_response_hook": async_response_hook}


def instrument(variant: str, path: str, *, coroutines: bool = False) -> Callable[[], None]:
    """Instrument httpx as ``variant`` says; returns the undo."""
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
        hooks = floor_hooks(path, coroutines=coroutines)
    elif variant != "instrumentor":
        raise ValueError(f"unknown variant {variant!r}")
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **hooks)

    def undo() -> None:
        instrumentor.uninstrument()

    return undo


_clients: dict[str, httpx.Client] = {}


def run(path: str, urls: Sequence[str]) -> None:
    """GET every URL in turn with one client (made on first use), reading each body."""
    http = _clients.get(path) or _clients.setdefault(path, client(path))
    for url in urls:
        http.get(url)
