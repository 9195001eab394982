"""The library-neutral tagger: what a Product API call records, from plain values.

Every HTTP-library adapter calls the same three methods, so a dashboard
cannot tell which client made a call::

    adapter                        tagger
    request hook ... on_request(span, method, url) -> Call | None
    response hook .. on_response(call, outcome, headers, body)     counted once
    no response .... on_failure(call, failure, url)                counted once

``on_request`` looks the route up (``RouteTable``: host verdict, template,
span names, redaction need, decided once per route); ``on_response`` looks
the status up (``Outcome``: class and retryability, decided once per
status) and reads only what the response itself adds: rate-limit headers,
the request id, and, for errors and batches, a body the adapter already had.

Nothing here raises into the caller (each entry point catches and logs the
exception type once), and nothing here logs a URL, header or body.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Final

from opentelemetry.trace import Span

from otel_productapi._core import names as n
from otel_productapi._core.body import (
    BatchExtractor,
    BatchOutcome,
    json_document,
    message_from_document,
)
from otel_productapi._core.cache import BoundedCache
from otel_productapi._core.headers import RATELIMIT_HEADERS, Headers, ratelimit_fields, request_id
from otel_productapi._core.numbers import MAX_BATCH_ITEMS, count
from otel_productapi._core.status import (
    IDEMPOTENT_METHODS,
    METHOD_NAMES,
    TransportFailure,
    normalize_method,
)
from otel_productapi._core.urls import redact_url
from otel_productapi._telemetry.context import RESEND_COUNT
from otel_productapi._telemetry.metrics import ProductApiMetrics
from otel_productapi._telemetry.outcomes import FAILURE_OUTCOMES, Outcome
from otel_productapi._telemetry.redaction import redact_exception_event
from otel_productapi._telemetry.routes import Route, RouteTable
from otel_productapi._telemetry.settings import ProductApiSettings

__all__ = ["Call", "Tagger", "current_call"]

_LOG = logging.getLogger("otel_productapi")

#: Clock for rate-limit resets sent as epoch times; tests patch it.
_now: Callable[[], float] = time.time

# Error bodies repeat (every 429 of an API says the same thing): the message
# is worked out once per (body, Content-Type), for bodies up to this size.
_MAX_CACHED_BODY: Final = 1024
_MAX_MESSAGES: Final = 256

AttributeValue = str | bool | int | float

_LIMIT: Final = n.ATTR_RATELIMIT_LIMIT
_REMAINING: Final = n.ATTR_RATELIMIT_REMAINING
_RESET: Final = n.ATTR_RATELIMIT_RESET
_REQUEST_ID: Final = n.ATTR_REQUEST_ID
_CONTENT_TYPE: Final = "content-type"
_MESSAGE: Final = n.ATTR_ERROR_MESSAGE


class Call:
    """One Product API call between its request and its response (or failure).

    Attributes:
        tagger: The tagger that started it (an adapter ignores other taggers' calls).
        route: Its ``Route``.
        method: Normalised method.
        span: Its CLIENT span.
        url: The request URL as sent (to redact it out of exception text).
        done: Set once the call is counted: a call is counted exactly once.
        body: A body an adapter captured for the response phase, if any.
        headers: Response headers an adapter already read for the response
            phase (see ``Tagger.body_header_names``), if any.
        read_of: What the adapter read ``headers`` and ``body`` from (httpx:
            that response's ``Headers``): one call may get several responses
            (a retry below the span), and only that one's may be reused.
        origin: What an adapter recognises the call's other sends by (requests:
            the hooks dict its redirect hops share), if it needs to.
    """

    __slots__ = (
        "body",
        "done",
        "headers",
        "method",
        "origin",
        "read_of",
        "route",
        "span",
        "tagger",
        "url",
    )

    def __init__(self, tagger: Tagger, route: Route, method: str, span: Span, url: str) -> None:
        self.tagger = tagger
        self.route = route
        self.method = method
        self.span = span
        self.url = url
        self.done = False
        self.body: bytes | None = None
        self.headers: Headers | None = None
        self.read_of: object = None
        self.origin: object = None


# The call whose span is current. Adapters whose failure path cannot carry
# the call (requests sends redirect hops as copies of the request, with the
# instrumentation suppressed) find it here, and check its span is current.
_CURRENT: ContextVar[Call | None] = ContextVar("otel_productapi_call", default=None)


#: ``current_call()``: the last call started in this context (check
#: ``call.span`` before trusting it). The context variable's own ``get``:
#: adapters ask on every response, and a function around it would add a frame.
current_call: Final[Callable[[], Call | None]] = _CURRENT.get


class Tagger:
    """Settings read once, and the per-phase methods every adapter calls.

    Args:
        settings: Validated settings (read once, at instrumentation time).
        metrics: Where calls are counted.
    """

    def __init__(self, settings: ProductApiSettings, metrics: ProductApiMetrics) -> None:
        self._metrics = metrics
        self._routes = RouteTable(settings.host_matcher(), settings.route_templater())
        self._batch: BatchExtractor = settings.resolved_batch_extractor()
        self._request_id_names = tuple(name.lower() for name in settings.request_id_headers)
        #: The response headers the tagger reads (lower-case): an adapter may
        #: hand over a plain ``dict`` of just these (see ``on_response``)...
        self.header_names: tuple[str, ...] = tuple(
            dict.fromkeys((*RATELIMIT_HEADERS, *self._request_id_names))
        )
        #: ...and of these when it hands over a body too.
        self.body_header_names: tuple[str, ...] = (*self.header_names, _CONTENT_TYPE)
        self._request_id_max = settings.request_id_max_length
        self._capture_message = settings.capture_message
        self._message_max = settings.message_max_length
        self._max_body = settings.max_body_bytes
        #: Largest body the adapters should hand over (``max_body_bytes``).
        self.max_body_bytes = settings.max_body_bytes
        self._reset_unit = settings.ratelimit_reset_unit
        self._url_keys = _url_keys_from_env()
        self._messages: BoundedCache[tuple[bytes, str | None], str | None] = BoundedCache(
            _MAX_MESSAGES
        )

    # --- request -------------------------------------------------------------------

    def on_request(self, span: Span, method: str | bytes | None, url: str) -> Call | None:
        """Start a call: template, span name and a safe URL on the span.

        Returns:
            The call to hand to ``on_response``/``on_failure``, or ``None``
            when ``url`` is not the Product API's (nothing was recorded).
        """
        try:
            route = self._routes.lookup(url)
            if route is None:
                return None
            name = METHOD_NAMES.get(method)  # None: not a known method as sent
            call = Call(self, route, name or normalize_method(method), span, url)
            _CURRENT.set(call)
            # No is_recording() check: on a non-recording span both are no-ops.
            span.update_name(route.span_names[call.method])
            resend = RESEND_COUNT.get()
            if route.redact or resend > 0:
                span.set_attributes(self._request_attributes(span, route, url, resend))
            else:
                span.set_attributes(route.attributes)
            return call
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the call
            _log_once("request", exc)
            return None

    def _request_attributes(
        self, span: Span, route: Route, url: str, resend: int
    ) -> dict[str, AttributeValue]:
        attrs: dict[str, AttributeValue] = dict(route.attributes)
        if route.redact:
            redacted = redact_url(url)
            for key in self._url_keys_of(span):
                attrs[key] = redacted
        if resend > 0:
            attrs[n.ATTR_HTTP_RESEND_COUNT] = resend
        return attrs

    def _url_keys_of(self, span: Span) -> tuple[str, ...]:
        # Overwrite exactly the URL attributes the instrumentation set (which
        # depends on OTEL_SEMCONV_STABILITY_OPT_IN); read them off the SDK span.
        attrs = getattr(span, "attributes", None)
        if isinstance(attrs, Mapping):
            return tuple(k for k in (n.ATTR_URL_FULL, n.ATTR_HTTP_URL_OLD) if k in attrs)
        return self._url_keys

    # --- response ------------------------------------------------------------------

    def on_response(
        self, call: Call, outcome: Outcome, headers: Headers, body: bytes | None
    ) -> None:
        """Finish a call that got a response: count it, then tag its span.

        Args:
            call: From ``on_request``.
            outcome: ``outcome_of_status(status)``: the adapter looks it up,
                since ``outcome.reads_body`` says whether to fetch the body.
            headers: Response headers, ``get`` finding lower-case names: the
                client's own object, or a ``dict`` of those of ``header_names``
                (``body_header_names`` with a body) the response carries (one
                pass in the adapter; every read here is then a C look-up).
            body: The body, only if the adapter already had it in memory
                (never read a stream for this) and ``outcome.reads_body``.
        """
        try:
            if call.done:
                return
            call.done = True
            limit, remaining, reset = ratelimit_fields(headers, _now(), self._reset_unit)
            route = call.route
            self._metrics.record_call(call.method, route, outcome, limit, remaining)
            span = call.span
            if not span.is_recording():
                if outcome.batch and body is not None:
                    self._batch_attributes({}, call, outcome, headers, body, recording=False)
                return
            attrs: dict[str, AttributeValue | None] = {
                **outcome.span_attributes,
                _LIMIT: limit,
                _REMAINING: remaining,
                _RESET: reset,
                _REQUEST_ID: request_id(headers, self._request_id_names, self._request_id_max),
            }
            if body is not None and outcome.reads_body:
                if outcome.batch:
                    self._batch_attributes(attrs, call, outcome, headers, body, recording=True)
                elif self._capture_message:  # an error status
                    attrs[_MESSAGE] = self._message(body, headers)
            # The SDK refuses None values (with a warning): drop what the response lacked.
            if None in attrs.values():
                attrs = {key: value for key, value in attrs.items() if value is not None}
            span.set_attributes(attrs)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the call
            _log_once("response", exc)

    def _batch_attributes(
        self,
        attrs: dict[str, AttributeValue | None],
        call: Call,
        outcome: Outcome,
        headers: Headers,
        body: bytes,
        *,
        recording: bool,
    ) -> None:
        """Batch outcome (counted even on a non-recording span) and error message."""
        content_type = headers.get(_CONTENT_TYPE)
        # (not text: a headers object of the caller's making)
        if len(body) > self._max_body or not (content_type is None or type(content_type) is str):
            return
        # Parsed once, for the batch extractor and the message alike.
        document = json_document(body, content_type, self._max_body)
        if document is not None:
            self._batch_outcome(attrs, call, outcome, document, recording=recording)
        if recording and outcome.classification is not None and self._capture_message:
            attrs[_MESSAGE] = message_from_document(document, self._message_max)

    def _message(self, body: bytes, headers: Headers) -> str | None:
        """The message of an error body (``None``: none), worked out once per
        (body, ``Content-Type``) for bodies up to ``_MAX_CACHED_BODY``."""
        content_type = headers.get(_CONTENT_TYPE)
        # (not text: a headers object of the caller's making)
        if len(body) > self._max_body or not (content_type is None or type(content_type) is str):
            return None
        if len(body) > _MAX_CACHED_BODY:
            document = json_document(body, content_type, self._max_body)
            return message_from_document(document, self._message_max)
        key = (body, content_type)
        try:
            return self._messages[key]
        except KeyError:
            document = json_document(body, content_type, self._max_body)
            return self._messages.put(key, message_from_document(document, self._message_max))

    def _batch_outcome(
        self,
        attrs: dict[str, AttributeValue | None],
        call: Call,
        outcome: Outcome,
        document: object,
        *,
        recording: bool,
    ) -> None:
        try:
            found = self._batch(document, outcome.status or 0)
            if found is None:
                return
            # A user's extractor may return anything: check before recording.
            items = count(found.items, MAX_BATCH_ITEMS)
            failed = count(found.failed_items, MAX_BATCH_ITEMS)
            if items is None or failed is None or failed > items:
                raise TypeError("batch extractor returned impossible counts")
            # The label follows from the counts; an extractor's own could be anything.
            label = BatchOutcome(items, failed).outcome
        except Exception as exc:  # noqa: BLE001 - a user's extractor must not cost the core tags
            _log_once("batch extractor", exc, level=logging.WARNING)
            return
        route = call.route
        self._metrics.count_batch_items(route.template, route.host, items - failed, failed)
        if not recording:
            return
        attrs[n.ATTR_BATCH_ITEMS] = items
        attrs[n.ATTR_BATCH_FAILED_ITEMS] = failed
        attrs[n.ATTR_BATCH_OUTCOME] = label

    # --- no response ---------------------------------------------------------------

    def on_failure(self, call: Call, failure: TransportFailure) -> None:
        """Finish a call that got no response: count it, tag it, make its exception safe.

        Args:
            call: From ``on_request``.
            failure: How far the request got (the adapter's exception mapping).
        """
        try:
            if call.done:
                return
            call.done = True
            outcome = FAILURE_OUTCOMES[failure, call.method in IDEMPOTENT_METHODS]
            route = call.route
            self._metrics.record_call(call.method, route, outcome, None, None)
            if call.span.is_recording():
                call.span.set_attributes(outcome.span_attributes)
                redact_exception_event(call.span, call.url)
        except Exception as exc:  # noqa: BLE001 - never mask the caller's error
            _log_once("transport error", exc)

    def on_escape(self, call: Call, *, finish: bool) -> None:
        """An exception that is not the exchange's (the caller's own code raised
        inside the client) is about to end the call's span: make what the span
        records of it safe. ``finish``: the call ends here, uncounted (the API
        did nothing wrong); otherwise the adapter counts it by its response."""
        try:
            if call.done:
                return
            call.done = finish
            if call.span.is_recording():
                redact_exception_event(call.span, call.url)
        except Exception as exc:  # noqa: BLE001 - never mask the caller's error
            _log_once("escaping exception", exc)


def _url_keys_from_env() -> tuple[str, ...]:
    """URL attributes the instrumentation sets, for spans that cannot tell us."""
    opt_in = {
        part.strip().lower()
        for part in os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(",")
    }
    if "http/dup" in opt_in:
        return (n.ATTR_URL_FULL, n.ATTR_HTTP_URL_OLD)
    if "http" in opt_in:
        return (n.ATTR_URL_FULL,)
    return (n.ATTR_HTTP_URL_OLD,)


_logged: set[tuple[str, str]] = set()


def _log_once(phase: str, exc: BaseException, level: int = logging.DEBUG) -> None:
    """Log a failure once per (phase, exception type), naming only the type:
    exception messages can carry URLs, headers or body text."""
    key = (phase, type(exc).__name__)
    if key in _logged or len(_logged) > 64:
        return
    _logged.add(key)
    _LOG.log(level, "otel_productapi: %s failed (%s); telemetry skipped", phase, key[1])
