"""``instrument()`` and ``uninstrument()``: switch the Product API telemetry on and off.

What ``instrument()`` patches, and how each patch is undone:

    requests.Session.send .... by RequestsInstrumentor (its own mark); undone by
                               RequestsInstrumentor().uninstrument(), and only
                               if *we* instrumented it
    HTTPAdapter.send ......... by us (marked); restored only while ours is the
                               outermost wrapper
"""

from __future__ import annotations

import logging
import threading

from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_productapi._adapters.requests.hooks import make_hooks, remove_adapter_patch
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_LOG = logging.getLogger(__name__)
_lock = threading.Lock()
# True while RequestsInstrumentor carries *our* hooks (we instrumented it).
_ours = False


def instrument(
    settings: ProductApiSettings | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Tag and count every ``requests`` call to a Product API host.

    Instruments ``requests`` with ``RequestsInstrumentor`` carrying our hooks,
    and patches ``HTTPAdapter.send`` so that calls without a response are
    tagged too.

    Calling it again re-configures: our previous instrumentation is removed
    and installed anew with the new settings and providers (so the last call
    wins). If ``requests`` was already instrumented by someone else (for
    example ``opentelemetry-instrument`` without this package's entry point),
    it is left alone and no second span is created: if that was
    ``opentelemetry-instrument`` with this package installed, our hooks are
    already composed into it (its entry point did that) and this call does
    nothing; otherwise Product API tagging stays off and a warning says so
    (pass ``make_hooks()`` to that ``RequestsInstrumentor().instrument(...)``
    call instead).

    Args:
        settings: Read once, now. ``None`` loads them from ``PRODUCTAPI_OTEL_*``
            variables (and ``.env``); a bad value raises ``SettingsError``
            naming the variable, before anything is patched.
        tracer_provider: For the CLIENT spans; ``None`` means the global one.
        meter_provider: For the request-duration histogram and our metrics;
            ``None`` means the global one.
    """
    global _ours  # noqa: PLW0603 - one process-wide switch, guarded by _lock
    resolved = settings if settings is not None else load_settings()
    with _lock:
        instrumentor = RequestsInstrumentor()
        if _ours and instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        elif instrumentor.is_instrumented_by_opentelemetry:
            if _zero_code_composed():
                _LOG.info(
                    "requests was instrumented by opentelemetry-instrument with the Product "
                    "API hooks already; instrument() arguments are ignored"
                )
                return
            _LOG.warning(
                "requests is already instrumented by someone else; Product API tagging "
                "is off (pass otel_productapi.make_hooks() to that instrumentation instead)"
            )
            return
        request_hook, response_hook = make_hooks(resolved, meter_provider=meter_provider)
        instrumentor.instrument(
            request_hook=request_hook,
            response_hook=response_hook,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        _ours = True


def uninstrument() -> None:
    """Undo ``instrument()``: only what we patched, and harmless if nothing is.

    Someone else's ``requests`` instrumentation is left alone.
    """
    global _ours  # noqa: PLW0603 - see instrument()
    with _lock:
        if _ours:
            instrumentor = RequestsInstrumentor()
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
            _ours = False
        remove_adapter_patch()


def _zero_code_composed() -> bool:
    """True when the zero-code entry point put our hooks into RequestsInstrumentor."""
    # Both: the wrapper is in place, and it actually added our hooks (building
    # them can fail on a bad setting and leave spans untagged).
    from otel_productapi._adapters.requests.auto import _WRAPPED_MARK, hooks_composed  # noqa: PLC0415 - stdlib-only

    wrapped = hasattr(RequestsInstrumentor.__dict__.get("_instrument"), _WRAPPED_MARK)
    return wrapped and hooks_composed()


def is_instrumented() -> bool:
    """True while ``requests`` carries our hooks."""
    return _ours and RequestsInstrumentor().is_instrumented_by_opentelemetry
