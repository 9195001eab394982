"""``instrument()`` and ``uninstrument()``: Product API telemetry on and off, for every client.

One tagger (settings, route and message caches, metrics) serves every HTTP
library that is installed, so a dashboard cannot tell which client made a
call. Each library's adapter installs and removes only its own parts.
"""

from __future__ import annotations

import threading

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_productapi._adapters import installed_adapters
from otel_productapi._adapters.binding import Binding
from otel_productapi._telemetry.metrics import metrics_for
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings
from otel_productapi._telemetry.tagger import Tagger

__all__ = ["instrument", "uninstrument"]

_lock = threading.Lock()
# The adapters instrument() ran, for uninstrument() to undo.
_used: list[Binding] = []


def instrument(
    settings: ProductApiSettings | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Tag and count every call to a Product API host, with each installed HTTP client.

    For ``requests`` (always) and ``httpx`` (when it and
    ``opentelemetry-instrumentation-httpx`` are installed), instruments the
    library with the OpenTelemetry instrumentation carrying our hooks, and
    installs the small patch that tags calls which get no response.

    Calling it again re-configures: our previous instrumentation is removed
    and installed anew with the new settings and providers (so the last call
    wins). A library already instrumented by someone else is left alone and
    no second span is created: under ``opentelemetry-instrument`` our entry
    point has composed our hooks already and this call does nothing for it;
    otherwise a warning says tagging is off for it (pass ``make_hooks()`` to
    that instrumentation instead).

    Args:
        settings: Read once, now. ``None`` loads them from ``PRODUCTAPI_OTEL_*``
            variables; a bad value raises ``SettingsError`` naming the
            variable, before anything is patched.
        tracer_provider: For the CLIENT spans; ``None`` means the global one.
        meter_provider: For the request-duration histogram and our metrics;
            ``None`` means the global one.
    """
    resolved = settings if settings is not None else load_settings()
    tagger = Tagger(resolved, metrics_for(meter_provider))
    with _lock:
        for adapter in installed_adapters():
            adapter.instrument(
                tagger, tracer_provider=tracer_provider, meter_provider=meter_provider
            )
            if adapter not in _used:
                _used.append(adapter)


def uninstrument() -> None:
    """Undo ``instrument()``: exactly what it installed, and harmless if nothing is.

    Someone else's instrumentation stays, and so does the patch that hooks
    from ``make_hooks()`` rely on.
    """
    with _lock:
        for adapter in _used:
            adapter.uninstrument()
