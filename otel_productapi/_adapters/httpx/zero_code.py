"""The httpx part of the zero-code path (see ``otel_productapi._adapters.zero_code``)."""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

import httpx

from otel_productapi._adapters.httpx.hooks import HttpxHooks
from otel_productapi._adapters.httpx.transport import TRANSPORT_PATCH
from otel_productapi._adapters.zero_code import compose_hook, is_ours
from otel_productapi._telemetry.metrics import metrics_for
from otel_productapi._telemetry.settings import load_settings
from otel_productapi._telemetry.tagger import Tagger

__all__ = ["carries_our_hooks", "compose", "installed", "undone"]

_LOG = logging.getLogger("otel_productapi")
_lock = threading.Lock()
_SLOTS: Final = ("request_hook", "response_hook", "async_request_hook", "async_response_hook")
# While zero-code's composition is in place: the transport patch is held, and
# ``_wrapper`` is the HTTPTransport.handle_request the instrumentor installed.
_holds_patch = False
_wrapper: object = None


def compose(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``HTTPXClientInstrumentor._instrument`` arguments with our hooks first; never raises."""
    global _holds_patch  # noqa: PLW0603 - one instrumentation per process
    if any(is_ours(kwargs.get(slot)) for slot in _SLOTS):
        return kwargs  # the programmatic instrument() already passed ours
    try:
        hooks = HttpxHooks(Tagger(load_settings(), metrics_for(kwargs.get("meter_provider"))))
    except Exception:  # noqa: BLE001 - a bad setting must not cost the user their spans
        _LOG.warning(
            "otel_productapi: could not build the Product API hooks; "
            "httpx is instrumented without them",
            exc_info=True,
        )
        return kwargs
    with _lock:
        if not _holds_patch:
            TRANSPORT_PATCH.acquire()  # before the instrumentation wraps the transports
            _holds_patch = True
    ours = hooks.hooks()._asdict()
    return {**kwargs, **{slot: compose_hook(ours[slot], kwargs.get(slot)) for slot in _SLOTS}}


def installed() -> None:
    """Remember the transport wrapper that carries the hooks ``compose`` added."""
    global _wrapper  # noqa: PLW0603 - see compose()
    with _lock:
        _wrapper = httpx.HTTPTransport.__dict__["handle_request"]


def carries_our_hooks() -> bool:
    """True while httpx's transport carries the hooks zero-code composed."""
    with _lock:
        return _wrapper is not None and httpx.HTTPTransport.__dict__["handle_request"] is _wrapper


def undone() -> None:
    """The httpx instrumentation was undone: release the transport patch we held."""
    global _holds_patch, _wrapper  # noqa: PLW0603 - see compose()
    with _lock:
        if _holds_patch:
            TRANSPORT_PATCH.release()
        _holds_patch = False
        _wrapper = None
