"""Cardinality soak: many requests with ids of every shape and many hosts, through the real path.

Run from the repository root::

    .venv/bin/python benchmarks/bench_cardinality.py                 # 200,000 requests
    .venv/bin/python benchmarks/bench_cardinality.py --requests 20000

Every request goes through ``requests`` with ``RequestsInstrumentor`` and
``otel_productapi.instrument()`` (request hook, response hook, tagger,
route templater, metrics), answered by a canned transport adapter instead of
a socket (200k real HTTP calls would take far longer here). Paths mix the id
shapes of issue 8 (mixed-case base62, prefixed ``cus_``/``ord_`` ids, AWS-style
keys, short tokens, IPv4/IPv6, slugs with a random suffix, ULID/KSUID/nanoid,
ObjectIds, UUIDs, numbers) and user names as ids under a dozen collections;
hosts are two main API hosts (80% of calls) and 1,000 tenant subdomains
(``t<n>.api.product.test``, 20%), so ``server.address`` alone is enough to
reach the series cap. Statuses are
drawn from 200, 202, 404, 422, 429, 500 and 503, with rate-limit storms.

Printed: distinct span names and ``url.template`` values (bounded, whatever
the number of requests), the series of ``productapi.client.requests``
against the cap, totals per error class from the exported metric against
what was sent (must be equal), the overflow series (must be absent), and the
resident set size at the start and after 10%, 25%, 50%, 75% and 100% of
the requests (must stay flat once warm). Exits 1 if
a check fails. Not a timed test: the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

import otel_productapi
from otel_productapi._core import names as n
from otel_productapi._telemetry.metrics import FOLDED, MAX_SERIES

# The id generators of the property tests (they need only the standard library
# and hypothesis, which the test extra installs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from realistic_input import LEARNED, SHAPED

COLLECTIONS = [
    "customers",
    "orders",
    "users",
    "payment_intents",
    "subscriptions",
    "invoice-items",
    "keys",
    "hosts",
    "posts",
    "audiences",
    "members",
    "webhook_endpoints",
]
TENANTS = 1000
MAIN_HOSTS = ["api.product.test", "eu.api.product.test"]
#: (status, error class or "" for success, weight)
STATUSES: list[tuple[int, str, int]] = [
    (200, "", 60),
    (202, "", 5),
    (404, n.CLASS_NOT_FOUND, 10),
    (422, n.CLASS_VALIDATION_FAILED, 3),
    (429, n.CLASS_RATE_LIMITED, 15),
    (500, n.CLASS_SERVER_ERROR, 4),
    (503, n.CLASS_SERVER_ERROR, 3),
]
_NAMES = [
    "".join(random.Random(i).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4 + i % 6))
    for i in range(5000)
]
ID_MAKERS: dict[str, Callable[[random.Random], str]] = {
    **SHAPED,
    **LEARNED,
    "user-name": lambda r: r.choice(_NAMES),
}


class ScriptedAdapter(HTTPAdapter):
    """Answers with the status the soak drew for this request, without a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.next: tuple[int, bytes] = (200, b"{}")

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        status, body = self.next
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(
            {
                "Content-Type": "application/json",
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0" if status == 429 else "42",
                "X-RateLimit-Reset": "30",
                "X-Request-Id": f"req_{random.getrandbits(40):010x}",
            }
        )
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        response.reason = "scripted"
        response.encoding = "utf-8"
        response.connection = self
        return response


class NameCounter(SpanProcessor):
    """Keeps the distinct span names and url.template values, and counts spans."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.templates: set[str] = set()
        self.spans = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at the start."""

    def on_end(self, span: ReadableSpan) -> None:
        self.spans += 1
        self.names.add(span.name)
        self.templates.add(str((span.attributes or {}).get(n.ATTR_URL_TEMPLATE)))


def rss_mib() -> float:
    """The resident set size now (Linux ``/proc``), in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def request_points(reader: InMemoryMetricReader) -> list[NumberDataPoint]:
    data = reader.get_metrics_data()
    points: list[NumberDataPoint] = []
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == n.METRIC_CLIENT_REQUESTS:
                    points += [p for p in metric.data.data_points if isinstance(p, NumberDataPoint)]
    return points


BODIES = {
    404: b'{"message": "Not found"}',
    422: b'{"message": "Invalid items", "items": [{"status": "error"}]}',
    429: b'{"message": "Too many requests"}',
    500: b'{"message": "Internal error"}',
    503: b'{"message": "Unavailable"}',
    202: b'{"accepted": 3, "failed": 1}',
}


@dataclass
class Soak:
    """What one run sent, and what the telemetry made of it."""

    total: int
    sent: Counter[str] = field(default_factory=Counter)
    rss: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    cpu: float = 0.0
    names: NameCounter = field(default_factory=NameCounter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)


def _draw(r: random.Random, storm: int) -> tuple[int, str, int]:
    """(status, error class, storm left): a 429 storm now and then, else the weights."""
    if storm == 0 and r.random() < 0.0002:
        storm = r.randint(200, 2000)
    if storm:
        return 429, n.CLASS_RATE_LIMITED, storm - 1
    status, error_class = r.choice(_WEIGHTED)
    return status, error_class, 0


_WEIGHTED = [(s, c) for s, c, w in STATUSES for _ in range(w)]


def run(total: int, seed: int) -> Soak:
    """Send ``total`` requests through the instrumented session."""
    soak = Soak(total)
    r = random.Random(seed)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(soak.names)
    meter_provider = MeterProvider(metric_readers=[soak.reader])
    otel_productapi.instrument(
        otel_productapi.ProductApiSettings(hosts=["api.product.test", "*.api.product.test"]),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    adapter = ScriptedAdapter()
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", adapter)
    makers = list(ID_MAKERS.values())
    gc.collect()
    soak.rss["start"] = rss_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    storm = 0
    for i in range(total):
        status, error_class, storm = _draw(r, storm)
        adapter.next = (status, BODIES.get(status, b'{"id": 1}'))
        if r.random() < 0.8:
            host = r.choice(MAIN_HOSTS)
        else:
            host = f"t{r.randrange(TENANTS)}.api.product.test"
        path = f"/v1/{r.choice(COLLECTIONS)}/{r.choice(makers)(r)}"
        if r.random() < 0.5:
            path += r.choice(["/events", "/members", f"/items/{r.randrange(10**6)}"])
        method = "POST" if status in (202, 422) else "GET"
        session.request(method, f"http://{host}{path}", timeout=5)
        soak.sent[error_class or "none"] += 1
        done = i + 1
        if done in {total // 10, total // 4, total // 2, 3 * total // 4}:
            gc.collect()
            soak.rss[f"{round(done / total * 100)}%"] = rss_mib()
    soak.wall = time.perf_counter() - started
    soak.cpu = time.process_time() - cpu_started
    gc.collect()
    soak.rss["100%"] = rss_mib()
    otel_productapi.uninstrument()
    return soak


@dataclass
class Series:
    """The series of productapi.client.requests, summed the ways the checks need."""

    count: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    folded: int = 0
    overflow: int = 0
    templates: set[str] = field(default_factory=set)


def read_series(reader: InMemoryMetricReader) -> Series:
    series = Series()
    for point in request_points(reader):
        series.count += 1
        attributes = dict(point.attributes or {})
        if attributes.get("otel.metric.overflow"):
            series.overflow += int(point.value)
            continue
        if attributes.get(n.ATTR_URL_TEMPLATE) == FOLDED:
            series.folded += int(point.value)
        series.templates.add(str(attributes.get(n.ATTR_URL_TEMPLATE)))
        series.by_class[str(attributes.get(n.ATTR_ERROR_CLASS, "none"))] += int(point.value)
    return series


def report(soak: Soak, series: Series) -> list[str]:
    """Print the figures; the failed checks."""
    total = soak.total
    print(
        f"requests: {total:,} in {soak.wall:.1f} s wall, {soak.cpu:.1f} s CPU "
        f"({soak.cpu / total * 1e6:.0f} µs CPU each)"
    )
    print(
        f"hosts: {len(MAIN_HOSTS)} main + {TENANTS:,} tenants; id shapes: {len(ID_MAKERS)}; "
        f"collections: {len(COLLECTIONS)}"
    )
    print(f"spans: {soak.names.spans:,}")
    print(f"distinct span names: {len(soak.names.names):,}")
    print(f"distinct url.template (spans): {len(soak.names.templates):,}")
    print(f"distinct url.template (metric series): {len(series.templates):,}")
    print(f"series of {n.METRIC_CLIENT_REQUESTS}: {series.count:,} (cap {MAX_SERIES:,})")
    print(f"requests counted in folded series ({FOLDED}): {series.folded:,}")
    print(f"requests counted in the SDK overflow series: {series.overflow:,}")
    print("per class: sent / exported")
    for name in sorted(set(soak.sent) | set(series.by_class)):
        sent, exported = soak.sent[name], series.by_class[name]
        mark = "" if sent == exported else "   <-- differs"
        print(f"  {name:20} {sent:>9,} / {exported:>9,}{mark}")
    print("RSS (MiB): " + ", ".join(f"{k} {v:.1f}" for k, v in soak.rss.items()))
    checks = {
        "a request made no span": soak.names.spans != total,
        "more series than the cap": series.count > MAX_SERIES,
        "requests in the overflow series": series.overflow > 0,
        "per-class totals differ": soak.sent != series.by_class,
        "templates unbounded": len(soak.names.templates) > MAX_SERIES,
        "RSS grew by more than 10 MiB in the second half": (
            soak.rss["100%"] - soak.rss["50%"] > 10
        ),
    }
    return [name for name, failed in checks.items() if failed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    soak = run(args.requests, args.seed)
    failures = report(soak, read_series(soak.reader))
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
