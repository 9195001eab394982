"""Retry Product API calls as the API's error page says, with a span per attempt.

``RetryingSession`` (a ``requests.Session``) and ``RetryingTransport`` /
``AsyncRetryingTransport`` (``httpx`` transports) retry 429s, 5xx and
retryable transport failures (the status table decides, nothing else), wait
for ``X-RateLimit-Reset`` / ``Retry-After`` on a 429, and spend a shared
``RetryBudget`` so retries cannot turn a storm into a bigger one. Each
attempt goes through the instrumented send, so it is its own CLIENT span
with ``http.request.resend_count`` set from the second attempt.

    policy = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30)
    session = RetryingSession(policy=policy)
    session.get("https://api.example.com/v1/projects/acme/users/42", timeout=10)

    client = httpx.Client(transport=RetryingTransport(policy=policy), timeout=10)

The httpx transports are imported on first use: importing this package does
not import ``httpx``.
"""

from __future__ import annotations

import importlib
import typing

from otel_productapi.retry.budget import RetryBudget
from otel_productapi.retry.planner import RetryOptions
from otel_productapi.retry.policy import Jitter, RetryPolicy
from otel_productapi.retry.session import RetryingSession

if typing.TYPE_CHECKING:
    from otel_productapi.retry.transport import AsyncRetryingTransport, RetryingTransport

__all__ = [
    "AsyncRetryingTransport",
    "Jitter",
    "RetryBudget",
    "RetryOptions",
    "RetryPolicy",
    "RetryingSession",
    "RetryingTransport",
]

_LAZY: typing.Final = frozenset({"RetryingTransport", "AsyncRetryingTransport"})


def __getattr__(name: str) -> typing.Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("otel_productapi.retry.transport"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
