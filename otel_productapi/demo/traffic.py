"""The demo's traffic: instrumented ``requests`` calls shaped by the current scenario.

Four scenarios in turn (``PHASES``), each a share of the run; worker threads
call the simulated Product API at the requested rate, and ``Tally`` counts
the finished CLIENT spans by ``productapi.error.class`` as they end.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import requests
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

from otel_productapi import classify_status

__all__ = [
    "ATTR_BATCH_OUTCOME",
    "ATTR_ERROR_CLASS",
    "ATTR_ERROR_RETRYABLE",
    "OK",
    "PHASES",
    "RATE_LIMITED",
    "SERVER_ERROR",
    "Phase",
    "Tally",
    "Traffic",
    "counts_of",
]

# Telemetry names from docs/telemetry.md (the public contract).
ATTR_ERROR_CLASS: Final = "productapi.error.class"
ATTR_ERROR_RETRYABLE: Final = "productapi.error.retryable"
ATTR_BATCH_OUTCOME: Final = "productapi.batch.outcome"


def _class_of(status: int) -> str:
    classification = classify_status(status)
    assert classification is not None
    return classification.error_class


RATE_LIMITED: Final = _class_of(429)
SERVER_ERROR: Final = _class_of(500)
#: How a span without an error class (a success) is counted.
OK: Final = "ok"

_PROJECT: Final = "demo"
_BATCH_ITEMS: Final = 6
_WORKERS: Final = 4


@dataclass(frozen=True, slots=True)
class Phase:
    """One scenario of the run and its share of the traffic time."""

    scenario: str
    title: str
    share: float


PHASES: Final = (
    Phase("healthy", "healthy traffic", 0.2),
    Phase("rate_limit_storm", "429 storm (X-RateLimit-*, Retry-After)", 0.35),
    Phase("server_errors", "5xx burst (500/502/503)", 0.2),
    Phase("batch_partial", "batches partly failing (202 partial, 422)", 0.25),
)


class Tally(SpanProcessor):
    """Counts finished CLIENT spans by error class and keeps one example of each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_class: Counter[str] = Counter()
        self._retryable = 0
        self.examples: dict[str, ReadableSpan] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at start."""

    def on_end(self, span: ReadableSpan) -> None:
        """Count the span."""
        if span.kind is not SpanKind.CLIENT:
            return
        attributes = span.attributes or {}
        error_class = str(attributes.get(ATTR_ERROR_CLASS, OK))
        with self._lock:
            self._by_class[error_class] += 1
            self._retryable += attributes.get(ATTR_ERROR_RETRYABLE) is True
            self.examples.setdefault(error_class, span)

    def snapshot(self) -> tuple[Counter[str], int]:
        """Counts by class, and how many were retryable."""
        with self._lock:
            return Counter(self._by_class), self._retryable


def counts_of(attribute_sets: Iterable[Mapping[str, object]]) -> tuple[Counter[str], int]:
    """Counts by class and retryable count of CLIENT spans given by their attributes."""
    by_class: Counter[str] = Counter()
    retryable = 0
    for attributes in attribute_sets:
        by_class[str(attributes.get(ATTR_ERROR_CLASS, OK))] += 1
        retryable += attributes.get(ATTR_ERROR_RETRYABLE) is True
    return by_class, retryable


class Traffic:
    """Worker threads calling the simulated API; ``phase`` shapes what they send.

    Args:
        base_url: The simulated Product API.
        rate: Requests per second, over all workers.
    """

    def __init__(self, base_url: str, rate: float) -> None:
        self.base_url = base_url
        self.rate = rate
        self.phase = PHASES[0]
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> Traffic:
        self._workers = [
            threading.Thread(target=self._work, args=(i,), name=f"demo-client-{i}", daemon=True)
            for i in range(_WORKERS)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def _work(self, worker: int) -> None:
        """One worker's loop: Product API calls shaped by the current scenario."""
        rng = random.Random(worker)  # noqa: S311 - traffic shape, not security
        pause = _WORKERS / max(self.rate, 0.1)
        with requests.Session() as session:
            for i in itertools.count():
                if self._stop.is_set():
                    return
                with contextlib.suppress(requests.RequestException):
                    self._call(session, rng, i)()
                self._stop.wait(pause)

    def _call(
        self, session: requests.Session, rng: random.Random, i: int
    ) -> Callable[[], requests.Response]:
        base = f"{self.base_url}/v1/projects/{_PROJECT}"
        user = f"{base}/users/u{rng.randint(1, 500)}"
        batch_share = 0.6 if self.phase.scenario == "batch_partial" else 0.1
        roll = rng.random()
        if roll < batch_share:
            items = [{"event": f"e{j}"} for j in range(_BATCH_ITEMS)]
            if i % 5 == 0:
                items = [{"name": "no event"} for _ in range(_BATCH_ITEMS)]  # 422
            return functools.partial(
                session.post, f"{base}/events:batch", json={"items": items}, timeout=5
            )
        if roll < batch_share + 0.1:
            return functools.partial(session.put, user, json={"name": "Ada"}, timeout=5)
        if roll < batch_share + 0.13:
            return functools.partial(session.get, f"{base}/users/missing-{i}", timeout=5)
        return functools.partial(session.get, user, timeout=5)
