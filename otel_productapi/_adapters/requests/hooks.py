"""Hooks for ``opentelemetry-instrumentation-requests``, on the library-neutral tagger.

    Session.send (RequestsInstrumentor: CLIENT span starts)
    ├── request hook ....... tagger.on_request; the call rides on the PreparedRequest
    ├── Session.send ....... (ours, span current) on an exception without a response:
    │   │                    tagger.on_failure, or on_escape for the caller's own errors
    │   └── HTTPAdapter.send (ours) on an exception: tagger.on_failure
    └── response hook ...... tagger.on_response with the body requests already read

Every hook catches its own exceptions: telemetry must never break a call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

import requests
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span

from otel_productapi._adapters import zero_code
from otel_productapi._adapters.requests.private import header_reader, loaded_body
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH, CALL_ATTR, call_of
from otel_productapi._telemetry.metrics import metrics_for
from otel_productapi._telemetry.outcomes import outcome_of_status
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings
from otel_productapi._telemetry.tagger import Tagger, current_call

__all__ = ["HOOK_MARK", "ProductApiHooks", "RequestsHooks", "make_hooks"]

RequestHook = Callable[[Span, requests.PreparedRequest], None]
ResponseHook = Callable[[Span, requests.PreparedRequest, requests.Response], None]

#: Set on our hook functions, so zero-code recognises them wherever they moved.
HOOK_MARK: Final = zero_code.HOOK_MARK


class ProductApiHooks(NamedTuple):
    """The hooks to give ``RequestsInstrumentor().instrument``; unpacks as a pair."""

    request_hook: RequestHook
    response_hook: ResponseHook


class RequestsHooks:
    """The request and response hooks of one tagger."""

    __slots__ = ("tagger",)

    def __init__(self, tagger: Tagger) -> None:
        self.tagger = tagger

    def request_hook(self, span: Span, request: requests.PreparedRequest) -> None:
        """Start a Product API call; the call rides on the request to the later phases."""
        try:
            call = self.tagger.on_request(span, request.method, request.url or "")
            if call is not None:
                setattr(request, CALL_ATTR, call)
                call.origin = request.hooks  # shared by its redirect hops (copies)
        except Exception:  # noqa: BLE001, S110 - the tagger logs its own failures
            pass

    def response_hook(
        self, span: Span, request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """Finish a call that got a response, with the body only if already loaded."""
        try:
            call = call_of(request)
            if call is None or call.span is not span:
                # One PreparedRequest sent from two threads: the other send's
                # call rode on it last; this one is this context's.
                call = current_call()
                if call is None or call.span is not span:
                    return
            if call.tagger is not self.tagger:
                return
            outcome = outcome_of_status(response.status_code)
            body = loaded_body(response) if outcome.reads_body else None
            self.tagger.on_response(call, outcome, header_reader(response), body)
        except Exception:  # noqa: BLE001, S110 - the tagger logs its own failures
            pass

    def pair(self) -> ProductApiHooks:
        """``(request_hook, response_hook)`` as bound methods."""
        return ProductApiHooks(self.request_hook, self.response_hook)

    def by_slot(self) -> dict[str, Callable[..., None]]:
        """The hooks by ``RequestsInstrumentor().instrument`` keyword."""
        return self.pair()._asdict()


setattr(RequestsHooks.request_hook, HOOK_MARK, True)
setattr(RequestsHooks.response_hook, HOOK_MARK, True)


def make_hooks(
    settings: ProductApiSettings | None = None,
    *,
    meter_provider: MeterProvider | None = None,
) -> ProductApiHooks:
    """Build our request and response hooks, to compose with other hooks.

    ``instrument()`` uses the same hooks; call this yourself only to pass them
    to a ``RequestsInstrumentor().instrument(...)`` call you make (for
    example in a distro), calling ours from yours. It also installs the
    ``HTTPAdapter.send`` and ``Session.send`` patch that tags and counts
    calls that get no response (call it before instrumenting, so that the
    ``Session.send`` wrapper goes inside the instrumentation's); that patch
    stays for the life of the process (``otel_productapi.uninstrument()``
    does not remove it while hooks from here may be in use).

    Args:
        settings: Read once here; ``None`` loads them from the environment
            (``SettingsError`` names a bad variable).
        meter_provider: Where our metrics go; ``None`` means the global one.

    Returns:
        ``(request_hook, response_hook)``; neither ever raises.
    """
    resolved = settings if settings is not None else load_settings()
    hooks = RequestsHooks(Tagger(resolved, metrics_for(meter_provider)))
    ADAPTER_PATCH.acquire()
    return hooks.pair()
