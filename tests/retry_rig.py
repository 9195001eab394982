"""What the retry tests share: fake time and a rig around the simulated Product API.

``tests/retry/test_retry_session.py`` (requests) and ``test_retry_transport.py``
(httpx) subclass ``RetryRig`` with their client factories; everything they
read back (spans, resend counts, retry and refusal counters, requests the
fake API answered) is here once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from conftest import Telemetry
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from otel_productapi._core import names as n
from otel_productapi._telemetry.settings import ProductApiSettings
from otel_productapi.retry import RetryBudget, RetryPolicy
from otel_productapi.testing import FakeProductApi

USER = "/v1/projects/p1/users/u1"
USER_TEMPLATE = "/v1/projects/{project}/users/{user_id}"
EVENTS = "/v1/projects/p1/events"
#: The wall clock the retry helpers see: epoch resets are written relative to it.
EPOCH = 1_800_000_000.0


@dataclass
class FakeTime:
    """A clock that only moves when the helper sleeps; sleeps are recorded, not waited."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return EPOCH + self.now


@dataclass
class RetryRig:
    """A simulated Product API, in-memory telemetry and fake time."""

    api: FakeProductApi
    telemetry: Telemetry
    time: FakeTime
    settings: ProductApiSettings

    def url(self, path: str = USER) -> str:
        return f"{self.api.url}{path}"

    def options(self, budget: RetryBudget | None, changes: dict[str, Any]) -> dict[str, Any]:
        """The options every retry helper takes, on fake time; ``changes`` are
        RetryPolicy settings over ``jitter="none"``."""
        return {
            "policy": RetryPolicy(**{"jitter": "none", **changes}),
            "budget": budget,
            "settings": self.settings,
            "meter_provider": self.telemetry.meter_provider,
            "clock": self.time.clock,
            "wall_clock": self.time.wall_clock,
        }

    @property
    def sleeps(self) -> list[float]:
        return self.time.sleeps

    def client_spans(self) -> list[ReadableSpan]:
        return [s for s in self.telemetry.spans() if s.kind is SpanKind.CLIENT]

    def resend_counts(self) -> list[Any]:
        return [(s.attributes or {}).get(n.ATTR_HTTP_RESEND_COUNT) for s in self.client_spans()]

    def retries(self, **attrs: Any) -> float:
        return self.telemetry.value(n.METRIC_CLIENT_RETRIES, **attrs)

    def refusals(self, **attrs: Any) -> float:
        return self.telemetry.value(n.METRIC_RETRY_BUDGET_REFUSALS, **attrs)

    def wait_for_requests(self, count: int, timeout: float = 3.0) -> None:
        """The fake records a request when it answers; wait for delayed answers to land."""
        deadline = time.monotonic() + timeout
        while len(self.api.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)


def status_of(span: ReadableSpan) -> Any:
    """The span's status code, under the stable or the old semantic-convention key."""
    attrs = span.attributes or {}
    return attrs.get(n.ATTR_HTTP_RESPONSE_STATUS_CODE, attrs.get("http.status_code"))
