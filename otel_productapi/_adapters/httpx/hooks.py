"""Hooks for ``opentelemetry-instrumentation-httpx``, sync and async, on the tagger.

    HTTPTransport.handle_request (HTTPXClientInstrumentor: CLIENT span starts)
    ├── request hook ........ tagger.on_request; the call is the current call, its
    │                         origin the request's extensions dict
    ├── our transport patch . (the current call, if its origin is this request's)
    │                         on an exception: tagger.on_failure; on an error status:
    │                         the headers picked, a small body read (see transport)
    └── response hook ....... tagger.on_response, with those if they were read

httpx's response hook sees an unread stream: the hooks never read it.
``AsyncHTTPTransport`` gets the same through the async hooks. Every hook
catches its own exceptions: telemetry must never break a call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span

from otel_productapi._adapters import zero_code
from otel_productapi._adapters.httpx.private import picked_headers, url_text, wanted
from otel_productapi._adapters.httpx.transport import TRANSPORT_PATCH
from otel_productapi._telemetry.metrics import metrics_for
from otel_productapi._telemetry.outcomes import outcome_of_status
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings
from otel_productapi._telemetry.tagger import Tagger, current_call

__all__ = ["HttpxHooks", "ProductApiHttpxHooks", "make_httpx_hooks"]

SyncHook = Callable[..., None]
AsyncHook = Callable[..., Awaitable[None]]


class ProductApiHttpxHooks(NamedTuple):
    """The four hooks to give ``HTTPXClientInstrumentor().instrument``, by keyword.

    ``HTTPXClientInstrumentor().instrument(**make_httpx_hooks()._asdict())``.
    """

    request_hook: SyncHook
    response_hook: SyncHook
    async_request_hook: AsyncHook
    async_response_hook: AsyncHook


class HttpxHooks:
    """The sync and async request and response hooks of one tagger."""

    __slots__ = ("_wanted", "tagger")

    def __init__(self, tagger: Tagger) -> None:
        self.tagger = tagger
        # No body is handed over from here, so no Content-Type is needed.
        self._wanted = wanted(tagger.header_names)

    def request_hook(self, span: Span, request: Any) -> None:
        """Start a Product API call (``request`` is the instrumentation's ``RequestInfo``)."""
        # The tagger logs its own failures; a RequestInfo without a URL is not ours.
        try:
            call = self.tagger.on_request(span, request.method, url_text(request.url))
            if call is not None:
                # The transport patch recognises the call by it (see transport).
                call.origin = request.extensions
        except Exception:  # noqa: BLE001, S110
            pass

    def response_hook(self, span: Span, request: Any, response: Any) -> None:
        """Finish a call that got a response (``ResponseInfo``; its stream is never read)."""
        try:
            call = current_call()
            if call is None or call.tagger is not self.tagger or call.span is not span:
                return
            outcome = outcome_of_status(response.status_code)
            # Picked (and a small body read) by the transport patch on an error
            # status, if this response is the one it saw.
            headers, body = call.headers, call.body
            if headers is None or call.read_of is not response.headers:
                headers, body = picked_headers(response.headers, self._wanted), None
            self.tagger.on_response(call, outcome, headers, body)
        except Exception:  # noqa: BLE001, S110 - the tagger logs its own failures
            pass

    async def async_request_hook(self, span: Span, request: Any) -> None:
        """``request_hook`` for ``httpx.AsyncClient``."""
        self.request_hook(span, request)

    async def async_response_hook(self, span: Span, request: Any, response: Any) -> None:
        """``response_hook`` for ``httpx.AsyncClient``."""
        self.response_hook(span, request, response)

    def hooks(self) -> ProductApiHttpxHooks:
        """The four hooks as bound methods."""
        return ProductApiHttpxHooks(
            self.request_hook, self.response_hook, self.async_request_hook, self.async_response_hook
        )

    def by_slot(self) -> dict[str, SyncHook | AsyncHook]:
        """The hooks by ``HTTPXClientInstrumentor().instrument`` keyword."""
        return self.hooks()._asdict()


for _hook in (
    HttpxHooks.request_hook,
    HttpxHooks.response_hook,
    HttpxHooks.async_request_hook,
    HttpxHooks.async_response_hook,
):
    setattr(_hook, zero_code.HOOK_MARK, True)


def make_httpx_hooks(
    settings: ProductApiSettings | None = None,
    *,
    meter_provider: MeterProvider | None = None,
) -> ProductApiHttpxHooks:
    """Build our httpx hooks, for a ``HTTPXClientInstrumentor().instrument(...)`` you make.

    The httpx counterpart of ``make_hooks()``: call it *before* instrumenting
    (it installs the transport patch that tags and counts calls that get no
    response, and it must sit inside the instrumentation's wrapper), then
    pass the hooks, calling ours from yours if you have your own::

        HTTPXClientInstrumentor().instrument(**make_httpx_hooks()._asdict())

    The patch stays for the life of the process.

    Args:
        settings: Read once here; ``None`` loads them from the environment
            (``SettingsError`` names a bad variable).
        meter_provider: Where our metrics go; ``None`` means the global one.
    """
    resolved = settings if settings is not None else load_settings()
    hooks = HttpxHooks(Tagger(resolved, metrics_for(meter_provider)))
    TRANSPORT_PATCH.acquire()
    return hooks.hooks()
