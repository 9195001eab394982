"""The hooks that put the status table on every Product API span and metric.

One short function per phase of a call:

    Session.send (RequestsInstrumentor: CLIENT span starts)
    ├── request hook ....... host match; url.template, span name, redacted URL,
    │                        resend count; per-call state on the PreparedRequest
    ├── HTTPAdapter.send ... (span current) on an exception: transport_error,
    │                        counted once
    └── response hook ...... only when a Response exists: class, rate limits,
                             request id, message, batch outcome; counted once

Every hook catches its own exceptions: telemetry must never break a call.
Nothing here logs a URL, header or body.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, cast

import requests
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, Status, StatusCode, get_current_span
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from otel_productapi._adapters.requests.transport import transport_failure_of
from otel_productapi._core import names as n
from otel_productapi._core.body import (
    BatchExtractor,
    error_message,
    error_message_of_document,
    parse_json,
)
from otel_productapi._core.headers import header_value, ratelimit_fields, request_id
from otel_productapi._core.scrub import scrub_text
from otel_productapi._core.status import (
    Classification,
    classify_status,
    classify_transport_failure,
)
from otel_productapi._core.urls import MAX_URL_LENGTH, needs_redaction, redact_url, split_url
from otel_productapi._telemetry.context import RESEND_COUNT
from otel_productapi._telemetry.metrics import ProductApiMetrics, metrics_for
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings

__all__ = ["ProductApiHooks", "make_hooks"]

_LOG = logging.getLogger(__name__)

RequestHook = Callable[[Span, requests.PreparedRequest], None]
ResponseHook = Callable[[Span, requests.PreparedRequest, requests.Response], None]

# Methods kept as they are; any other becomes "_OTHER" (semconv), so a caller
# cannot blow up metric cardinality with made-up methods.
_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
_BATCH_STATUSES: Final = frozenset({202, 422})
_STATE_ATTR: Final = "_otel_productapi_call"
_MAX_HOST_CACHE: Final = 1024
_MAX_ROUTE_CACHE: Final = 1024
_MAX_MESSAGE_CACHE: Final = 256
_MAX_CACHED_BODY: Final = 1024
_MISSING: Final = object()

#: Clock for rate-limit resets sent as epoch times; tests patch it.
_now: Callable[[], float] = time.time


@dataclass(slots=True)
class _Call:
    """What the request hook learnt, for the later phases of the same call."""

    hooks: _Hooks
    span: Span
    method: str
    template: str
    server: str
    #: Set once the call is counted: a call is counted exactly once.
    done: bool = False


# The call whose span is current; the adapter patch finds it here (redirects
# send copies of the PreparedRequest, so the request attribute is not enough).
_CURRENT: ContextVar[_Call | None] = ContextVar("otel_productapi_call", default=None)


class ProductApiHooks(NamedTuple):
    """The hooks to give ``RequestsInstrumentor().instrument``; unpacks as a pair."""

    request_hook: RequestHook
    response_hook: ResponseHook


def make_hooks(
    settings: ProductApiSettings | None = None,
    *,
    meter_provider: MeterProvider | None = None,
) -> ProductApiHooks:
    """Build our request and response hooks, to compose with other hooks.

    ``instrument()`` uses this; call it yourself only to pass the hooks to a
    ``RequestsInstrumentor().instrument(...)`` call you make (for example in a
    distro), calling ours from yours. It also patches
    ``HTTPAdapter.send`` (once) so that calls that get no response are tagged
    and counted; ``uninstrument()`` removes that patch.

    Args:
        settings: Read once here; ``None`` loads them from the environment
            (``SettingsError`` names a bad variable).
        meter_provider: Where our metrics go; ``None`` means the global one.

    Returns:
        ``(request_hook, response_hook)``; neither ever raises.
    """
    resolved = settings if settings is not None else load_settings()
    hooks = _Hooks(resolved, metrics_for(meter_provider))
    install_adapter_patch()
    return ProductApiHooks(hooks.request_hook, hooks.response_hook)


class _Hooks:
    """Settings read once, and the per-phase functions that use them."""

    def __init__(self, settings: ProductApiSettings, metrics: ProductApiMetrics) -> None:
        self._metrics = metrics
        self._host_matcher = settings.host_matcher()
        self._templater = settings.route_templater()
        self._batch: BatchExtractor | None = settings.resolved_batch_extractor()
        self._request_id_names = tuple(settings.request_id_headers)
        self._request_id_lower = tuple(name.lower() for name in self._request_id_names)
        self._request_id_max = settings.request_id_max_length
        self._capture_message = settings.capture_message
        self._message_max = settings.message_max_length
        self._max_body = settings.max_body_bytes
        self._reset_unit = settings.ratelimit_reset_unit
        self._url_keys = _url_keys_from_env()
        self._hosts: dict[str, bool] = {}
        #: (error body, Content-Type) -> error_message's answer (see _body_attributes).
        self._messages: dict[tuple[bytes, str | None], str | None] = {}
        #: URL up to its last "/" -> _route_of's answer (see there).
        self._routes: dict[str, tuple[str, str, bool]] = {}
        #: The templater's generation the cached routes were computed in.
        self._routes_generation = self._templater.generation

    # --- request phase ------------------------------------------------------

    def request_hook(self, span: Span, request: requests.PreparedRequest) -> None:
        """Start a Product API call: template, span name, redacted URL, state."""
        # One flat function: this runs on every request, between hundreds of
        # microseconds of other code, where each call and look-up is costly.
        try:
            url = request.url
            if not url:
                return
            # A URL ending in an ASCII id is answered by what comes before the
            # id (see _route_of); any other URL takes the general path.
            head, _, last = url.rpartition("/")
            if self._routes_generation != self._templater.generation:
                # The templater learned a new id position: cached routes may be stale.
                self._routes_generation = self._templater.generation
                self._routes.clear()
            route = self._routes.get(head) if last.isdigit() and last.isascii() else None
            if route is None:
                route = self._route_of(url, last)
                if route is None:
                    return
                host, template, redact = route
            else:
                host, template, redact = route
                # What the id itself adds to the redaction pre-check.
                redact = redact or len(last) >= _LONG_RUN_LENGTH or len(url) > MAX_URL_LENGTH
            method = request.method
            if method not in _KNOWN_METHODS:
                method = _method(method)
            call = _Call(self, span, method, template, host)
            setattr(request, _STATE_ATTR, call)
            _CURRENT.set(call)
            if not span.is_recording():
                return
            span.update_name(f"{'HTTP' if method == '_OTHER' else method} {template}")
            resend = RESEND_COUNT.get()
            if not redact and resend <= 0:
                span.set_attribute(n.ATTR_URL_TEMPLATE, template)
                return
            attrs: dict[str, str | int] = {n.ATTR_URL_TEMPLATE: template}
            if redact:
                redacted = redact_url(url)
                for key in self._url_keys_of(span):
                    attrs[key] = redacted
            if resend > 0:
                attrs[n.ATTR_HTTP_RESEND_COUNT] = resend
            span.set_attributes(attrs)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the call
            _log_failure("request", exc)

    def _route_of(self, url: str, last: str) -> tuple[str, str, bool] | None:
        """``(host, template, redaction pre-check)`` of a URL, or None if not ours.

        When the URL has no query or fragment and its path ends in an ASCII
        id (``last``), the answer holds for every URL that differs only in
        that id, but for the pre-check's id length and URL length: it is
        cached by the text before the id (``_MAX_ROUTE_CACHE`` entries, then
        the cache starts over). test_hooks_properties checks cached answers
        against this function.
        """
        split = split_url(url)
        if split is None:
            return None
        host, path = split
        known = self._hosts.get(host)
        if known is None:
            known = self._is_product_host(host)
        if not known:
            return None
        template = self._templater.template(path)
        redact = needs_redaction(url)
        route = (host, template, redact)
        if (
            last.isdigit()
            and last.isascii()
            and len(last) < _LONG_RUN_LENGTH
            and len(url) <= MAX_URL_LENGTH
            and path.endswith("/" + last)
            and "?" not in url
            and "#" not in url
            and self._templater.digits_are_ids
        ):
            routes = self._routes
            if len(routes) >= _MAX_ROUTE_CACHE:
                routes.clear()
            routes[url[: -len(last) - 1]] = route
        return route

    def _is_product_host(self, host: str) -> bool:
        known = self._hosts.get(host)
        if known is None:
            known = bool(self._host_matcher(host))
            if len(self._hosts) < _MAX_HOST_CACHE:
                self._hosts[host] = known
        return known

    def _url_keys_of(self, span: Span) -> tuple[str, ...]:
        # Overwrite exactly the URL attributes the instrumentation set (which
        # depends on OTEL_SEMCONV_STABILITY_OPT_IN); read them off the SDK span.
        attrs = getattr(span, "attributes", None)
        if isinstance(attrs, Mapping):
            return tuple(k for k in (n.ATTR_URL_FULL, n.ATTR_HTTP_URL_OLD) if k in attrs)
        return self._url_keys

    # --- response phase -----------------------------------------------------

    def response_hook(
        self, span: Span, request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """Finish a call that got a response: count it, then tag the span."""
        try:
            call = getattr(request, _STATE_ATTR, None)
            if call is None or call.done or call.hooks is not self:
                return
            call.done = True
            status = response.status_code
            classification = classify_status(status)
            self._metrics.count_request(
                call.method, call.template, call.server, status, classification
            )
            headers = response.headers
            if (
                classification is None
                and status not in _BATCH_STATUSES
                and type(headers) is CaseInsensitiveDict
            ):
                # The usual success, inlined: _on_response would only look for
                # rate limits (none here) and set the request id.
                store: dict[str, tuple[str, object]] = headers._store  # type: ignore[attr-defined]
                if not (
                    "x-ratelimit-limit" in store
                    or "x-ratelimit-remaining" in store
                    or "x-ratelimit-reset" in store
                    or "retry-after" in store
                ):
                    if not span.is_recording():
                        return
                    for name in self._request_id_lower:
                        entry = store.get(name)
                        if entry is not None:
                            break
                    else:
                        return
                    raw = entry[1]
                    # What request_id returns for a clean value (printable
                    # ASCII, short enough, no surrounding spaces); else ask it.
                    if not (
                        type(raw) is str
                        and raw
                        and len(raw) <= self._request_id_max
                        and raw.isascii()
                        and raw.isprintable()
                        and raw[0] != " "
                        and raw[-1] != " "
                    ):
                        raw = request_id(
                            headers, self._request_id_names, max_length=self._request_id_max
                        )
                    if raw:
                        span.set_attribute(n.ATTR_REQUEST_ID, raw)
                    return
            self._on_response(span, call, response, classification)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the call
            _log_failure("response", exc)

    def _on_response(
        self,
        span: Span,
        call: _Call,
        response: requests.Response,
        classification: Classification | None,
    ) -> None:
        recording = span.is_recording()
        attrs: dict[str, str | bool | int | float] = {}
        if recording and classification is not None:
            attrs[n.ATTR_ERROR_CLASS] = classification.error_class
            attrs[n.ATTR_ERROR_RETRYABLE] = classification.retryable
        headers = response.headers
        if _may_have_ratelimit(headers):
            self._rate_limit(attrs, call, headers, recording)
        status = response.status_code
        if classification is not None or status in _BATCH_STATUSES:
            body = self._loaded_body(response)
            if body is not None:
                self._body_attributes(
                    attrs,
                    call,
                    status,
                    body,
                    headers=headers,
                    message=recording and classification is not None,
                )
        if not recording:
            return
        rid = request_id(headers, self._request_id_names, max_length=self._request_id_max)
        if rid:
            attrs[n.ATTR_REQUEST_ID] = rid
        if len(attrs) == 1:
            span.set_attribute(*attrs.popitem())
        elif attrs:
            span.set_attributes(attrs)

    def _body_attributes(
        self,
        attrs: dict[str, str | bool | int | float],
        call: _Call,
        status: int,
        body: bytes,
        *,
        headers: Mapping[str, str],
        message: bool,
    ) -> None:
        # The JSON is parsed once: by the batch extractor's caller when it runs
        # (202/422), else by error_message.
        parsed = status in _BATCH_STATUSES and self._batch is not None
        document = parse_json(body, self._max_body) if parsed else None
        if parsed:
            self._batch_outcome(attrs, call, status, document)
        if not (message and self._capture_message):
            return
        # Passed on as it is, like headers.get() would be (only its lookup is faster).
        content_type = cast("str | None", header_value(headers, "Content-Type"))
        if parsed:
            text = error_message_of_document(
                body, document, content_type=content_type, max_length=self._message_max
            )
        elif len(body) <= _MAX_CACHED_BODY and (content_type is None or type(content_type) is str):
            # Error bodies repeat (every 429 of an API says the same thing):
            # the answer is cached per (body, Content-Type), bounded.
            key = (body, content_type)
            messages = self._messages
            text = messages.get(key, _MISSING)  # type: ignore[arg-type]
            if text is _MISSING:
                text = error_message(body, content_type=content_type, max_length=self._message_max)
                if len(messages) >= _MAX_MESSAGE_CACHE:
                    messages.clear()
                messages[key] = text
        else:
            text = error_message(body, content_type=content_type, max_length=self._message_max)
        if text:
            attrs[n.ATTR_ERROR_MESSAGE] = text

    def _rate_limit(
        self,
        attrs: dict[str, str | bool | int | float],
        call: _Call,
        headers: Mapping[str, str],
        recording: bool,
    ) -> None:
        raw_limit, raw_remaining, reset = ratelimit_fields(headers, _now(), self._reset_unit)
        limit = _count(raw_limit)
        remaining = _count(raw_remaining)
        if limit is not None or remaining is not None:
            self._metrics.record_ratelimit(call.template, call.server, limit, remaining)
        if not recording:
            return
        if limit is not None:
            attrs[n.ATTR_RATELIMIT_LIMIT] = limit
        if remaining is not None:
            attrs[n.ATTR_RATELIMIT_REMAINING] = remaining
        if isinstance(reset, (int, float)) and math.isfinite(reset):
            attrs[n.ATTR_RATELIMIT_RESET] = max(float(reset), 0.0)

    def _loaded_body(self, response: requests.Response) -> bytes | None:
        # Only a body requests already read (never a streamed one: reading it
        # would delay the call and change what the caller reads), and only if
        # it is small enough to look at.
        if not getattr(response, "_content_consumed", False):
            return None
        content = getattr(response, "_content", None)
        if not isinstance(content, bytes) or not content or len(content) > self._max_body:
            return None
        return content

    def _batch_outcome(
        self, attrs: dict[str, str | bool | int | float], call: _Call, status: int, document: object
    ) -> None:
        if self._batch is None or document is None:
            return
        outcome = self._batch(document, status)
        if outcome is None:
            return
        items = _count(outcome.items)
        failed = _count(outcome.failed_items)
        if items is None or failed is None or failed > items:
            return
        self._metrics.count_batch_items(call.template, call.server, items - failed, failed)
        attrs[n.ATTR_BATCH_ITEMS] = items
        attrs[n.ATTR_BATCH_FAILED_ITEMS] = failed
        attrs[n.ATTR_BATCH_OUTCOME] = outcome.outcome

    # --- transport-error phase ----------------------------------------------

    def transport_error(
        self, call: _Call, request: requests.PreparedRequest, exc: BaseException
    ) -> None:
        """Finish a call that got no response: classify the exception, count once."""
        try:
            call.done = True
            failure = transport_failure_of(exc)
            classification = classify_transport_failure(failure, request.method or call.method)
            self._metrics.count_request(
                call.method, call.template, call.server, None, classification
            )
            if call.span.is_recording():
                call.span.set_attribute(n.ATTR_ERROR_CLASS, classification.error_class)
                call.span.set_attribute(n.ATTR_ERROR_RETRYABLE, classification.retryable)
                _redact_exception_event(call.span, request.url or "")
        except Exception as failure_exc:  # noqa: BLE001 - never mask the caller's error
            _log_failure("transport error", failure_exc)


def _redact_exception_event(span: Span, url: str) -> None:
    """Make what the span records of the escaping exception safe to export.

    When the call raises, the tracer's ``use_span`` records an ``exception``
    event and sets the status description to ``"{type}: {message}"``, and
    urllib3's messages quote the URL ("Max retries exceeded with url:
    /v1/users/bob@example.com?token=..."). Only this span's two methods are
    replaced, only on this (rare) path: the status code stays as the
    instrumentation sets it, the caller gets the exception unchanged, and
    other calls pay nothing.
    """
    original_record = span.record_exception
    original_status = span.set_status

    def record_exception(
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        safe: dict[str, Any] = {
            "exception.message": _redact_text(str(exception), url),
            "exception.stacktrace": _redact_text(
                "".join(traceback.format_exception(exception)), url
            ),
        }
        if attributes:
            safe.update(attributes)
        original_record(exception, attributes=safe, timestamp=timestamp, escaped=escaped)

    def set_status(status: Status | StatusCode, description: str | None = None) -> None:
        if isinstance(status, Status) and status.description:
            status = Status(status.status_code, _redact_text(status.description, url))
        if description:
            description = _redact_text(description, url)
        original_status(status, description)

    try:
        span.record_exception = record_exception  # type: ignore[method-assign]
        span.set_status = set_status  # type: ignore[method-assign]
    except AttributeError:  # a span type without an instance dict: nothing to patch
        return


def _redact_text(text: str, url: str) -> str:
    """``text`` with ``url`` (whole, or its path and query) redacted, then scrubbed."""
    if url:
        redacted = redact_url(url)
        text = text.replace(url, redacted)
        path, safe_path = _path_and_query(url), _path_and_query(redacted)
        if len(path) > 1:
            text = text.replace(path, safe_path)
    return scrub_text(text)


def _path_and_query(url: str) -> str:
    start = url.find("/", url.find("://") + 3) if "://" in url else 0
    return url[start:] if start >= 0 else ""


# --- the HTTPAdapter.send patch ---------------------------------------------

_PATCH_MARK: Final = "_otel_productapi_patched"
_patch_lock = threading.Lock()


def _on_adapter_error(request: requests.PreparedRequest, exc: BaseException) -> None:
    call = _CURRENT.get()
    # The span check keeps a stale call (one whose span ended without a
    # response hook) from claiming another call's failure.
    if call is None or call.done or call.span is not get_current_span():
        return
    call.hooks.transport_error(call, request, exc)


def _wrap_send(original: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
    @functools.wraps(original)
    def send(
        self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        try:
            return original(self, request, *args, **kwargs)
        except Exception as exc:
            _on_adapter_error(request, exc)
            raise

    setattr(send, _PATCH_MARK, True)
    return send


def install_adapter_patch() -> None:
    """Wrap ``HTTPAdapter.send`` so calls that get no response are tagged (idempotent)."""
    with _patch_lock:
        current = HTTPAdapter.__dict__["send"]
        if not getattr(current, _PATCH_MARK, False):
            HTTPAdapter.send = _wrap_send(current)  # type: ignore[method-assign]


def remove_adapter_patch() -> None:
    """Undo ``install_adapter_patch`` if our wrapper is still the outermost one.

    If someone wrapped ours since, theirs is left in place (removing ours would
    drop theirs); our wrapper then stays as a harmless pass-through, since no
    call state is created once the hooks are gone.
    """
    with _patch_lock:
        current = HTTPAdapter.__dict__["send"]
        if getattr(current, _PATCH_MARK, False):
            HTTPAdapter.send = current.__wrapped__  # type: ignore[method-assign]


# --- small helpers ----------------------------------------------------------


# An id of this many digits may be a phone number to needs_redaction (ten
# digits in a row), so it adds to the redaction pre-check of its route.
_LONG_RUN_LENGTH: Final = 10


def _method(method: str | None) -> str:
    upper = (method or "").upper()
    return upper if upper in _KNOWN_METHODS else "_OTHER"


def _may_have_ratelimit(headers: object) -> bool:
    """Cheap pre-check: parsing the rate-limit headers of every response is not free."""
    # requests' CaseInsensitiveDict keeps lower-cased names in ``_store``.
    store = getattr(headers, "_store", None)
    if isinstance(store, dict):
        return (
            "x-ratelimit-limit" in store
            or "x-ratelimit-remaining" in store
            or "x-ratelimit-reset" in store
            or "retry-after" in store
        )
    return True


def _count(value: object) -> int | None:
    """A valid non-negative count, or None (``bool`` is not a count)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


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


def _log_failure(phase: str, exc: BaseException) -> None:
    # Once per (phase, exception type), and only the type: exception messages
    # can carry URLs, headers or body text.
    key = (phase, type(exc).__name__)
    if key in _logged or len(_logged) > 64:
        return
    _logged.add(key)
    _LOG.debug("otel_productapi %s hook failed (%s); telemetry skipped", phase, key[1])
