"""The requests part of the zero-code path (see ``otel_productapi._adapters.zero_code``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from requests import Session

from otel_productapi._adapters.requests.hooks import RequestsHooks
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH
from otel_productapi._adapters.zero_code import compose_hook, is_ours
from otel_productapi._telemetry.metrics import metrics_for
from otel_productapi._telemetry.settings import load_settings
from otel_productapi._telemetry.tagger import Tagger

__all__ = ["carries_our_hooks", "compose", "installed", "undone"]

_LOG = logging.getLogger("otel_productapi")
_lock = threading.Lock()
# While zero-code's composition is in place: the adapter patch is held, and
# ``_send`` is the Session.send the instrumentor installed with our hooks.
_holds_patch = False
_send: object = None


def compose(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``RequestsInstrumentor._instrument`` arguments with our hooks first; never raises."""
    global _holds_patch  # noqa: PLW0603 - one instrumentation per process
    if is_ours(kwargs.get("request_hook")) or is_ours(kwargs.get("response_hook")):
        return kwargs  # the programmatic instrument() already passed ours
    try:
        hooks = RequestsHooks(Tagger(load_settings(), metrics_for(kwargs.get("meter_provider"))))
    except Exception:  # noqa: BLE001 - a bad setting must not cost the user their spans
        _LOG.warning(
            "otel_productapi: could not build the Product API hooks; "
            "requests is instrumented without them",
            exc_info=True,
        )
        return kwargs
    with _lock:
        if not _holds_patch:
            ADAPTER_PATCH.acquire()
            _holds_patch = True
    return {
        **kwargs,
        "request_hook": compose_hook(hooks.request_hook, kwargs.get("request_hook")),
        "response_hook": compose_hook(hooks.response_hook, kwargs.get("response_hook")),
    }


def installed() -> None:
    """Remember the ``Session.send`` that carries the hooks ``compose`` added."""
    global _send  # noqa: PLW0603 - see compose()
    with _lock:
        _send = Session.__dict__["send"]


def carries_our_hooks() -> bool:
    """True while ``Session.send`` is the instrumentation zero-code composed our hooks into."""
    with _lock:
        return _send is not None and Session.__dict__["send"] is _send


def undone() -> None:
    """The requests instrumentation was undone: release the adapter patch we held."""
    global _holds_patch, _send  # noqa: PLW0603 - see compose()
    with _lock:
        if _holds_patch:
            ADAPTER_PATCH.release()
        _holds_patch = False
        _send = None
