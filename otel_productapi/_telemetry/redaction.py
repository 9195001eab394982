"""Make what a span records of an escaping exception safe to export.

When a call raises, the tracer's ``use_span`` records an ``exception`` event
and sets the status description to ``"{type}: {message}"``, and HTTP
libraries quote the URL in their messages ("Max retries exceeded with url:
/v1/users/bob@example.com?token=..."). ``redact_exception_event`` replaces
those two methods on one span, only on this (rare) path: the status code
stays as the instrumentation sets it, the caller gets the exception
unchanged, and other calls pay nothing.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.trace import Span, Status, StatusCode

from otel_productapi._core.scrub import scrub_text
from otel_productapi._core.urls import redact_url

__all__ = ["redact_exception_event", "redact_text"]

#: Longest exception message or stack trace recorded (scrubbed after the cut).
MAX_EXCEPTION_TEXT = 8192


def redact_exception_event(span: Span, url: str) -> None:
    """Have ``span`` redact ``url`` (and any personal data) out of exception text."""
    original_record = span.record_exception
    original_status = span.set_status

    def record_exception(
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        safe: dict[str, Any] = {
            "exception.message": redact_text(str(exception), url),
            "exception.stacktrace": redact_text(
                "".join(traceback.format_exception(exception)), url
            ),
        }
        if attributes:
            safe.update(attributes)
        original_record(exception, attributes=safe, timestamp=timestamp, escaped=escaped)

    def set_status(status: Status | StatusCode, description: str | None = None) -> None:
        if isinstance(status, Status) and status.description:
            status = Status(status.status_code, redact_text(status.description, url))
        if description:
            description = redact_text(description, url)
        original_status(status, description)

    try:
        span.record_exception = record_exception  # type: ignore[method-assign]
        span.set_status = set_status  # type: ignore[method-assign]
    except AttributeError:  # a span type without an instance dict: nothing to patch
        return


# A URL, or a path with a query, quoted in exception text: a redirect hop's
# ("Max retries exceeded with url: /v1/invite?code=..."), not only the call's.
_QUOTED_URL: Final = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]{0,15}://[^\s'\"<>()]+|(?<![^\s'\"(=:])/[^\s'\"<>()?]*\?[^\s'\"<>()]+"
)


def redact_text(text: str, url: str) -> str:
    """``text`` with ``url`` (whole, or its path and query) and any other URL or
    path with a query in it redacted, then scrubbed."""
    # Cut first (with room for what redaction shortens), so the cost is bounded.
    text = text[: 2 * MAX_EXCEPTION_TEXT]
    if url:
        redacted = redact_url(url)
        text = text.replace(url, redacted)
        path, safe_path = _path_and_query(url), _path_and_query(redacted)
        if len(path) > 1:
            text = text.replace(path, safe_path)
    text = _QUOTED_URL.sub(_redacted_match, text)
    return scrub_text(text, max_length=MAX_EXCEPTION_TEXT)


def _redacted_match(match: re.Match[str]) -> str:
    return redact_url(match.group())


def _path_and_query(url: str) -> str:
    start = url.find("/", url.find("://") + 3) if "://" in url else 0
    return url[start:] if start >= 0 else ""
