"""Per-request CPU cost of our hooks, against plain requests and the plain instrumentation.

Run from the repository root::

    python benchmarks/bench_hooks.py            # CPU: success and error paths
    python benchmarks/bench_hooks.py --memory   # RSS over 1M requests with distinct ids
    python benchmarks/bench_hooks.py --profile  # cProfile of our error path

Requests go through a canned transport adapter (no network): an
``HTTPAdapter`` subclass whose ``send`` builds the ``Response`` itself, so
the figures are the client-side cost only. Each repeat runs every variant in
turn (interleaved, so machine drift hits them alike); the median of the
repeats is reported. Not a timed test: the numbers go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

import otel_productapi

HOST = "api.product.test"
#: Each request has its own item id, as real traffic does (no cache can hide the cost).
URL = f"http://{HOST}/v1/projects/acme/items/{{}}"

SUCCESS: tuple[int, dict[str, str], bytes] = (
    200,
    {"Content-Type": "application/json", "X-Request-Id": "req-1"},
    b'{"id": 12345, "name": "widget"}',
)
ERROR: tuple[int, dict[str, str], bytes] = (
    429,
    {
        "Content-Type": "application/json",
        "X-Request-Id": "req-2",
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "30",
    },
    json.dumps({"message": "Too many requests for this endpoint"}).encode(),
)


class CannedAdapter(HTTPAdapter):
    """Answers every request with the same status, headers and body, without a socket."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__()
        self._status = status
        self._headers = dict(headers)
        self._body = body

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = self._status
        response.headers = CaseInsensitiveDict(self._headers)
        response.raw = io.BytesIO(self._body)
        response.url = request.url or ""
        response.request = request
        response.reason = "canned"
        response.encoding = "utf-8"
        response.connection = self
        return response


def _session(canned: tuple[int, dict[str, str], bytes]) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no per-request proxy/netrc look-ups in any variant
    session.mount("http://", CannedAdapter(*canned))
    return session


def _providers() -> tuple[TracerProvider, MeterProvider]:
    return TracerProvider(), MeterProvider(metric_readers=[InMemoryMetricReader()])


def _setup_plain() -> Callable[[], None]:
    return lambda: None


def _setup_otel() -> Callable[[], None]:
    tracer_provider, meter_provider = _providers()
    RequestsInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider
    )

    def teardown() -> None:
        RequestsInstrumentor().uninstrument()

    return teardown


def _setup_ours() -> Callable[[], None]:
    tracer_provider, meter_provider = _providers()
    otel_productapi.instrument(
        otel_productapi.ProductApiSettings(hosts=[HOST]),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    return otel_productapi.uninstrument


VARIANTS: dict[str, Callable[[], Callable[[], None]]] = {
    "requests": _setup_plain,
    "RequestsInstrumentor": _setup_otel,
    "otel_productapi": _setup_ours,
}


def _run(session: requests.Session, iterations: int) -> float:
    """CPU seconds per request for ``iterations`` GETs, each to a distinct item."""
    get = session.get
    urls = [URL.format(100_000 + i) for i in range(iterations)]
    gc.collect()
    start = time.process_time()
    for url in urls:
        get(url)
    return (time.process_time() - start) / iterations


def bench_cpu(iterations: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median µs/request of each variant on each path."""
    results: dict[str, dict[str, float]] = {}
    for path_name, canned in (("success (200)", SUCCESS), ("error (429)", ERROR)):
        samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
        session = _session(canned)
        for setup in VARIANTS.values():  # warm-up
            teardown = setup()
            _run(session, max(iterations // 10, 100))
            teardown()
        for _ in range(repeats):
            for name, setup in VARIANTS.items():
                teardown = setup()
                samples[name].append(_run(session, iterations))
                teardown()
        results[path_name] = {
            name: statistics.median(values) * 1e6 for name, values in samples.items()
        }
    return results


def _rss_kib() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def bench_memory(requests_total: int, checkpoints: int) -> Iterator[tuple[int, int, int]]:
    """``(requests, RSS KiB, live Python objects)`` after each checkpoint; distinct ids in paths."""
    teardown = _setup_ours()
    session = _session(ERROR)
    get = session.get
    step = requests_total // checkpoints
    try:
        for checkpoint in range(checkpoints):
            base = checkpoint * step
            for i in range(base, base + step):
                get(f"http://{HOST}/v1/users/{i}/items/{i * 7}")
            gc.collect()
            yield base + step, _rss_kib(), len(gc.get_objects())
    finally:
        teardown()


def profile(iterations: int) -> None:
    """cProfile our error path (top functions by cumulative time)."""
    teardown = _setup_ours()
    session = _session(ERROR)
    profiler = cProfile.Profile()
    profiler.enable()
    _run(session, iterations)
    profiler.disable()
    teardown()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"requests {requests.__version__}, {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=5000, help="requests per sample")
    parser.add_argument("--repeats", type=int, default=7, help="samples per variant")
    parser.add_argument("--memory", action="store_true", help="measure RSS instead of CPU")
    parser.add_argument("--requests", type=int, default=1_000_000, help="--memory: requests")
    parser.add_argument("--profile", action="store_true", help="cProfile our error path")
    args = parser.parse_args(argv)
    print(f"machine: {_machine()}")
    if args.profile:
        profile(args.iterations)
        return 0
    if args.memory:
        print(f"RSS over {args.requests:,} requests (otel_productapi, 429 path, distinct ids)")
        print("| requests | RSS (MiB) | live objects |\n|---:|---:|---:|")
        for done, kib, objects in bench_memory(args.requests, 10):
            print(f"| {done:,} | {kib / 1024:.1f} | {objects:,} |", flush=True)
        return 0
    print(f"{args.iterations} requests x {args.repeats} repeats, median CPU µs/request")
    results = bench_cpu(args.iterations, args.repeats)
    print("| path | requests | RequestsInstrumentor | otel_productapi | ours vs instrumentor |")
    print("|---|---:|---:|---:|---:|")
    for path_name, by_variant in results.items():
        plain = by_variant["requests"]
        otel = by_variant["RequestsInstrumentor"]
        ours = by_variant["otel_productapi"]
        print(
            f"| {path_name} | {plain:.1f} | {otel:.1f} | {ours:.1f} | "
            f"{(ours - otel) / otel * 100:+.1f}% |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
