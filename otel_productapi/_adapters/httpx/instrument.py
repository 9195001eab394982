"""``instrument()``/``uninstrument()`` for ``httpx``: exactly what we install, by identity.

    HTTPTransport.handle_request ....... our marked wrapper (TRANSPORT_PATCH), installed
    AsyncHTTPTransport.handle_async_... first, then HTTPXClientInstrumentor's wrapper
                                         carrying our hooks around it; the instrumentor's
                                         wrapper is remembered and uninstrumented only
                                         while it is still the one in place

Someone else's httpx instrumentation is never removed or replaced.
"""

from __future__ import annotations

import logging
import threading

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_productapi._adapters.httpx import zero_code
from otel_productapi._adapters.httpx.hooks import HttpxHooks
from otel_productapi._adapters.httpx.transport import TRANSPORT_PATCH
from otel_productapi._telemetry.tagger import Tagger

__all__ = ["instrument", "uninstrument"]

_LOG = logging.getLogger("otel_productapi")
_lock = threading.Lock()
#: ``HTTPTransport.handle_request`` as our last ``instrument`` left it, while we own it.
_installed: object = None


def _current() -> object:
    return httpx.HTTPTransport.__dict__["handle_request"]


def instrument(
    tagger: Tagger,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Instrument ``httpx`` (sync and async) with our hooks, unless someone else already did."""
    global _installed  # noqa: PLW0603 - one instrumentation per process, like the transports
    with _lock:
        instrumentor = HTTPXClientInstrumentor()
        if _installed is not None and _current() is _installed:
            instrumentor.uninstrument()  # ours: re-configure
            TRANSPORT_PATCH.release()
            _installed = None
        elif instrumentor.is_instrumented_by_opentelemetry or _installed is not None:
            if _installed is not None:  # ours was replaced behind our back
                TRANSPORT_PATCH.release()
                _installed = None
            if zero_code.carries_our_hooks():
                _LOG.info(
                    "httpx was instrumented by opentelemetry-instrument with the Product API "
                    "hooks already; instrument() arguments are ignored for httpx"
                )
            else:
                _LOG.warning(
                    "httpx is already instrumented by someone else; Product API tagging is "
                    "off for httpx (pass otel_productapi.make_httpx_hooks() to that "
                    "instrumentation instead)"
                )
            return
        before = _current()
        TRANSPORT_PATCH.acquire()  # first: the instrumentation must wrap our patch
        instrumentor.instrument(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            **HttpxHooks(tagger).hooks()._asdict(),
        )
        if not instrumentor.is_instrumented_by_opentelemetry:  # it declined (it logged why)
            TRANSPORT_PATCH.release()
            return
        del before
        _installed = _current()


def uninstrument() -> None:
    """Undo ``instrument``: only what it installed, and harmless if nothing is."""
    global _installed  # noqa: PLW0603 - see instrument()
    with _lock:
        if _installed is None:
            return
        if _current() is _installed:
            HTTPXClientInstrumentor().uninstrument()
        TRANSPORT_PATCH.release()
        _installed = None
