"""``instrument()``/``uninstrument()`` for ``requests``: exactly what we install, by identity.

What ``instrument`` puts in place, and how ``uninstrument`` undoes it:

    requests.Session.send .... RequestsInstrumentor's wrapper carrying our hooks;
                               remembered as an object, and uninstrumented only
                               while it is still the one in place
    HTTPAdapter.send ......... our marked wrapper (``ADAPTER_PATCH``): one user
                               more, one user less; removed with the last user

Someone else's instrumentation is never removed or replaced: if they
re-instrumented requests since (their hooks, their ``Session.send``), ours is
gone already and theirs stays.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from requests import Session

from otel_productapi._adapters.requests import zero_code
from otel_productapi._adapters.requests.hooks import RequestsHooks
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH
from otel_productapi._telemetry.tagger import Tagger

__all__ = ["instrument", "uninstrument"]

_LOG = logging.getLogger("otel_productapi")
_lock = threading.Lock()
#: The ``Session.send`` our last ``instrument`` installed, while we own it.
_installed: object = None


def instrument(
    tagger: Tagger,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Instrument ``requests`` with our hooks, unless someone else already did."""
    global _installed  # noqa: PLW0603 - one instrumentation per process, like Session.send
    with _lock:
        instrumentor = RequestsInstrumentor()
        current = Session.__dict__["send"]
        if _installed is not None and current is _installed:
            instrumentor.uninstrument()  # ours: re-configure
            ADAPTER_PATCH.release()
            _installed = None
        elif instrumentor.is_instrumented_by_opentelemetry or _installed is not None:
            _release_lost()
            if zero_code.carries_our_hooks():
                _LOG.info(
                    "requests was instrumented by opentelemetry-instrument with the Product "
                    "API hooks already; instrument() arguments are ignored for requests"
                )
            else:
                _LOG.warning(
                    "requests is already instrumented by someone else; Product API tagging "
                    "is off for requests (pass otel_productapi.make_hooks() to that "
                    "instrumentation instead)"
                )
            return
        hooks = RequestsHooks(tagger)
        ADAPTER_PATCH.acquire()
        instrumentor.instrument(
            request_hook=hooks.request_hook,
            response_hook=hooks.response_hook,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        now = Session.__dict__["send"]
        if now is current:  # the instrumentor declined (it logged why)
            ADAPTER_PATCH.release()
            return
        _installed = now


def uninstrument() -> None:
    """Undo ``instrument``: only what it installed, and harmless if nothing is."""
    global _installed  # noqa: PLW0603 - see instrument()
    with _lock:
        if _installed is None:
            return
        if Session.__dict__["send"] is _installed:
            RequestsInstrumentor().uninstrument()
        ADAPTER_PATCH.release()
        _installed = None


def _release_lost() -> None:
    # Our instrumentation was replaced behind our back: its patch share is ours to give back.
    global _installed  # noqa: PLW0603 - see instrument()
    if _installed is not None:
        ADAPTER_PATCH.release()
        _installed = None
