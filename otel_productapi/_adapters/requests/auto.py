"""The zero-code path: our hooks under ``opentelemetry-instrument``.

``opentelemetry-instrument`` (through ``sitecustomize``) configures the distro
and the SDK, then calls every ``opentelemetry_pre_instrument`` entry point,
then has the distro call ``RequestsInstrumentor().instrument(**kwargs)``:

    sitecustomize
    ├── distro.configure(), configurators (SDK providers, exporters)
    ├── pre_instrument()  <- us: wrap RequestsInstrumentor._instrument
    └── distro.load_instrumentor(requests entry point)
        └── RequestsInstrumentor().instrument(**distro_kwargs)
            └── our wrapper: request_hook = ours, then the distro's/user's
                             response_hook = ours, then the distro's/user's

So we never instrument ``requests`` ourselves (the distro decides whether and
when), we never replace a distro, and whatever hooks the distro or the user
passes still run, after ours, seeing the attributes we set. The wrapper stays
in place for later ``instrument()`` calls (e.g. the programmatic
``otel_productapi.instrument()``) and adds nothing when our hooks are already
among the arguments, so every request still gets exactly one CLIENT span,
tagged once.

This module imports only the standard library at load time: if loading an
entry point raises, ``opentelemetry-instrument`` stops every instrumentation.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, Final

__all__ = ["hooks_composed", "pre_instrument"]

_LOG = logging.getLogger(__name__)

#: Set on our ``_instrument`` wrapper; holds the wrapped original.
_WRAPPED_MARK: Final = "_otel_productapi_original"
#: Set on hooks we built or composed, so they are never added twice.
_HOOK_MARK: Final = "_otel_productapi_hook"
#: Names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` that turn us off.
_OFF_NAMES: Final = frozenset({"*", "requests", "productapi"})

Hook = Callable[..., None]

# Whether the last RequestsInstrumentor._instrument call through our wrapper
# ended up carrying our hooks (read by the programmatic instrument()).
_composed = False


def pre_instrument(**kwargs: Any) -> None:
    """Entry point for ``opentelemetry_pre_instrument``; never raises.

    Wraps ``RequestsInstrumentor._instrument`` so that our request and
    response hooks are composed with the ones in its arguments, and does
    nothing when ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names
    ``requests``, ``productapi`` or ``*``.
    """
    del kwargs  # the loader passes none today; accept any it adds later
    try:
        if _disabled():
            _LOG.debug("otel_productapi: requests instrumentation disabled; not composing hooks")
            return
        _wrap_requests_instrumentor()
    except Exception:  # noqa: BLE001 - an exception here would stop all auto-instrumentation
        _LOG.warning("otel_productapi: zero-code set-up failed; spans stay untagged", exc_info=True)


def hooks_composed() -> bool:
    """True when ``requests`` was last instrumented, through our wrapper, with our hooks."""
    return _composed


def _disabled() -> bool:
    raw = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    names = {part.strip() for part in raw.split(",")}
    return not names.isdisjoint(_OFF_NAMES)


def _wrap_requests_instrumentor() -> None:
    try:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor  # noqa: PLC0415
    except ImportError:
        _LOG.debug("otel_productapi: opentelemetry-instrumentation-requests is not importable")
        return
    current = RequestsInstrumentor.__dict__.get("_instrument")
    if current is None or hasattr(current, _WRAPPED_MARK):
        return
    RequestsInstrumentor._instrument = _wrap(current)  # type: ignore[method-assign]


def _unwrap_requests_instrumentor() -> None:
    """Undo ``pre_instrument``'s wrapper if it is still in place (tests use this)."""
    global _composed  # noqa: PLW0603 - see _with_our_hooks
    _composed = False
    from opentelemetry.instrumentation.requests import RequestsInstrumentor  # noqa: PLC0415

    current = RequestsInstrumentor.__dict__.get("_instrument")
    original = getattr(current, _WRAPPED_MARK, None)
    if original is not None:
        RequestsInstrumentor._instrument = original  # type: ignore[method-assign]


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _instrument(self: Any, **kwargs: Any) -> Any:
        return original(self, **_with_our_hooks(kwargs))

    setattr(_instrument, _WRAPPED_MARK, original)
    return _instrument


def _with_our_hooks(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with our hooks first in each hook slot; unchanged on any failure."""
    global _composed  # noqa: PLW0603 - one process-wide fact, like the patch itself
    _composed = False
    try:
        if _is_ours(kwargs.get("request_hook")) or _is_ours(kwargs.get("response_hook")):
            _composed = True
            return kwargs  # the programmatic instrument() already passed ours
        from otel_productapi._adapters.requests.hooks import make_hooks  # noqa: PLC0415 - heavy, and may fail

        ours = make_hooks(meter_provider=kwargs.get("meter_provider"))
        composed = {
            **kwargs,
            "request_hook": _compose(ours.request_hook, kwargs.get("request_hook")),
            "response_hook": _compose(ours.response_hook, kwargs.get("response_hook")),
        }
        _composed = True
        return composed
    except Exception:  # noqa: BLE001 - a bad setting must not cost the user their spans
        _LOG.warning(
            "otel_productapi: could not build the Product API hooks; "
            "requests is instrumented without them",
            exc_info=True,
        )
        return kwargs


def _is_ours(hook: object) -> bool:
    if hook is None:
        return False
    if getattr(hook, _HOOK_MARK, False):
        return True
    # Bound methods of the hooks object that make_hooks() builds.
    owner = getattr(hook, "__self__", None)
    return type(owner).__module__ == "otel_productapi._adapters.requests.hooks"


def _compose(ours: Hook, theirs: object) -> Hook:
    """Call ours, then theirs: theirs sees our attributes and may override them.

    Ours never raises; theirs behaves exactly as it would without us (an
    exception it raises reaches the caller, as the instrumentation does).
    """
    if not callable(theirs):
        return ours  # recognised by _is_ours: no extra call per request

    def composed(*args: Any) -> None:
        ours(*args)
        theirs(*args)

    setattr(composed, _HOOK_MARK, True)
    return composed
