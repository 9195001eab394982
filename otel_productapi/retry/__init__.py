"""Retry Product API calls as the API's error page says, with a span per attempt.

``RetryingSession`` is a ``requests.Session`` that retries 429s, 5xx and
retryable transport failures (the status table decides, nothing else), waits
for ``X-RateLimit-Reset`` / ``Retry-After`` on a 429, and spends a shared
``RetryBudget`` so retries cannot turn a storm into a bigger one. Each
attempt goes through the instrumented ``Session.send``, so it is its own
CLIENT span with ``http.request.resend_count`` set from the second attempt.

    policy = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30)
    session = RetryingSession(policy=policy)
    session.get("https://api.example.com/v1/projects/acme/users/42", timeout=10)
"""

from __future__ import annotations

from otel_productapi.retry.budget import RetryBudget
from otel_productapi.retry.policy import Jitter, RetryPolicy
from otel_productapi.retry.session import RetryingSession

__all__ = ["Jitter", "RetryBudget", "RetryPolicy", "RetryingSession"]
