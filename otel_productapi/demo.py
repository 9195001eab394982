"""``otel-productapi demo``: the whole story on your laptop, in one command.

    FakeProductApi (127.0.0.1) <-- instrumented requests traffic (this process)
        scenarios in turn:           │ CLIENT spans, tagged by our hooks
        healthy -> 429 storm ->      ▼
        5xx burst -> batch partial   Rotel collector (127.0.0.1) --> OTLP sink: what it received
                                     (console exporter when Rotel is not installed)
    --prometheus: metrics on 127.0.0.1:<port>/metrics <-- Prometheus with the shipped
                  rules (windows scaled down) --> the storm alert fires

Everything binds 127.0.0.1, lives in a temporary directory and is stopped on
the way out (normal end, Ctrl-C or SIGTERM): child processes run in their own
process groups and are killed as groups, with an ``atexit`` safety net.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.util
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import requests
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind

from otel_productapi._core import names as n

__all__ = ["add_arguments", "run"]

SERVICE_NAME: Final = "productapi-demo"
STORM_ALERT: Final = "ProductApiRateLimitStorm"
_PROJECT: Final = "demo"
_OK: Final = "ok"


@dataclass(frozen=True, slots=True)
class _Phase:
    scenario: str
    title: str
    share: float


_PHASES: Final = (
    _Phase("healthy", "healthy traffic", 0.2),
    _Phase("rate_limit_storm", "429 storm (X-RateLimit-*, Retry-After)", 0.35),
    _Phase("server_errors", "5xx burst (500/502/503)", 0.2),
    _Phase("batch_partial", "batches partly failing (202 partial, 422)", 0.25),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="traffic time over all four scenarios (default 40; 70 with --prometheus)",
    )
    parser.add_argument(
        "--rate", type=float, default=25.0, metavar="RPS", help="requests per second (default 25)"
    )
    parser.add_argument(
        "--prometheus",
        action="store_true",
        help="also run Prometheus (must be on PATH) with the shipped rules and show the "
        "storm alert firing",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.1,
        metavar="FACTOR",
        help="with --prometheus: multiply every rule window and 'for' by this (default 0.1)",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="print spans with the console exporter instead of running the Rotel collector",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 on success, 130 when interrupted."""
    duration = args.duration if args.duration is not None else (70.0 if args.prometheus else 40.0)
    out = sys.stdout
    previous = _raise_on_termination()
    try:
        with contextlib.ExitStack() as stack:
            return _Demo(args, duration, out, stack).run()
    except KeyboardInterrupt:
        print("\ninterrupted: everything the demo started has been stopped", file=out)
        return 130
    finally:
        _ChildProcesses.kill_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --- child processes: own process groups, always killed ----------------------------


class _ChildProcesses:
    """Every process the demo starts, killed as a group on exit whatever happens."""

    _live: list[subprocess.Popen[bytes]] = []  # noqa: RUF012 - process-wide registry
    _lock = threading.Lock()

    @classmethod
    def start(cls, args: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        with cls._lock:
            cls._live.append(process)
        return process

    @classmethod
    def stop(cls, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        with cls._lock, contextlib.suppress(ValueError):
            cls._live.remove(process)

    @classmethod
    def kill_all(cls) -> None:
        with cls._lock:
            live = list(cls._live)
        for process in live:
            cls.stop(process)


atexit.register(_ChildProcesses.kill_all)


def _raise_on_termination() -> dict[int, Any]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every ``finally`` runs."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, interrupt)
    return previous


# --- what the demo counts locally ------------------------------------------------------


class _Tally(SpanProcessor):
    """Counts finished CLIENT spans by error class and keeps one example of each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_class: Counter[str] = Counter()
        self.retryable = 0
        self.examples: dict[str, ReadableSpan] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at start."""

    def on_end(self, span: ReadableSpan) -> None:
        """Count the span."""
        if span.kind is not SpanKind.CLIENT:
            return
        attributes = span.attributes or {}
        error_class = str(attributes.get(n.ATTR_ERROR_CLASS, _OK))
        with self._lock:
            self.by_class[error_class] += 1
            self.retryable += attributes.get(n.ATTR_ERROR_RETRYABLE) is True
            self.examples.setdefault(error_class, span)

    def snapshot(self) -> tuple[Counter[str], int]:
        """Counts by class, and how many were retryable."""
        with self._lock:
            return Counter(self.by_class), self.retryable


def _counts_of(spans: list[Any]) -> tuple[Counter[str], int]:
    by_class: Counter[str] = Counter()
    retryable = 0
    for span in spans:
        if span.kind != "CLIENT":
            continue
        by_class[str(span.attributes.get(n.ATTR_ERROR_CLASS, _OK))] += 1
        retryable += span.attributes.get(n.ATTR_ERROR_RETRYABLE) is True
    return by_class, retryable


# --- the demo ----------------------------------------------------------------------


class _Demo:
    def __init__(
        self, args: argparse.Namespace, duration: float, out: IO[str], stack: contextlib.ExitStack
    ) -> None:
        self.args = args
        self.duration = duration
        self.out = out
        self.stack = stack
        self.live = out.isatty()
        self.tally = _Tally()
        self.sink: Any = None
        self.rotel: Any = None
        self.console_file: Path | None = None
        self.prometheus: _Prometheus | None = None
        self.started = time.monotonic()
        self.phase = _PHASES[0]
        self.alert_state = ""

    def say(self, text: str = "") -> None:
        if self.live:
            self.out.write("\r\x1b[2K")
        self.out.write(text + "\n")
        self.out.flush()

    def run(self) -> int:
        from otel_productapi import instrument, uninstrument  # noqa: PLC0415 - after arg parsing
        from otel_productapi._telemetry.settings import load_settings  # noqa: PLC0415
        from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi  # noqa: PLC0415

        workdir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="productapi-")))
        self.say("otel-productapi demo: a simulated Product API, a collector and tagged traffic")
        api = self.stack.enter_context(FakeProductApi(retry_after=1))
        self.say(f"  simulated Product API ... {api.url}")
        tracer_provider = self._tracer_provider(workdir)
        meter_provider = self._meter_provider(workdir)
        settings = load_settings(route_templates=list(ROUTE_TEMPLATES), hosts=["127.0.0.1"])
        instrument(settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
        self.stack.callback(uninstrument)
        rate, duration = self.args.rate, self.duration
        self.say(f"  traffic ................. {rate:g} requests/s for {duration:g} s")
        self.say()
        self._traffic(api)
        tracer_provider.force_flush()
        self._summary()
        return 0

    # --- set-up --------------------------------------------------------------------

    def _tracer_provider(self, workdir: Path) -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        provider.add_span_processor(self.tally)
        exporter = None if self.args.console else self._start_rotel()
        if exporter is None:
            self.console_file = workdir / "spans.json"
            stream = self.stack.enter_context(self.console_file.open("w", encoding="utf-8"))
            exporter = ConsoleSpanExporter(out=stream)
            self.say("  collector ............... none: console exporter (install rotel for one)")
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=250))
        self.stack.callback(provider.shutdown)
        return provider

    def _start_rotel(self) -> SpanExporter | None:
        from otel_productapi.testing._collector import (  # noqa: PLC0415 - optional parts
            OtlpSink,
            Rotel,
            rotel_binary,
        )

        needed = ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.proto")
        if rotel_binary() is None or not all(importlib.util.find_spec(m) for m in needed):
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        self.sink = self.stack.enter_context(OtlpSink())
        self.rotel = self.stack.enter_context(Rotel(self.sink.endpoint))
        self.say(f"  Rotel collector ......... OTLP/HTTP on {self.rotel.endpoint}")
        return OTLPSpanExporter(endpoint=f"{self.rotel.endpoint}/v1/traces")

    def _meter_provider(self, workdir: Path) -> MeterProvider:
        if not self.args.prometheus:
            provider = MeterProvider()
            self.stack.callback(provider.shutdown)
            return provider
        prometheus_bin = shutil.which("prometheus")
        if prometheus_bin is None:
            raise SystemExit("--prometheus: no 'prometheus' on PATH (apt-get install prometheus)")
        from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415
        from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

        from otel_productapi.testing._collector import free_port  # noqa: PLC0415

        registry = CollectorRegistry()
        reader = PrometheusMetricReader(registry=registry)
        metrics_port = free_port()
        server, _thread = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
        self.stack.callback(server.server_close)
        self.stack.callback(server.shutdown)
        provider = MeterProvider(
            resource=Resource.create({"service.name": SERVICE_NAME}), metric_readers=[reader]
        )
        self.stack.callback(provider.shutdown)
        self.prometheus = _Prometheus(prometheus_bin, workdir, metrics_port, self.args.time_scale)
        self.prometheus.start()
        self.stack.callback(self.prometheus.stop)
        self.say(f"  app metrics ............. http://127.0.0.1:{metrics_port}/metrics")
        self.say(
            f"  Prometheus .............. {self.prometheus.url} "
            f"(rules scaled x{self.args.time_scale:g})"
        )
        return provider

    # --- traffic -------------------------------------------------------------------

    def _traffic(self, api: Any) -> None:
        stop = threading.Event()
        workers = [
            threading.Thread(target=_client, args=(api.url, self, stop, i), daemon=True)
            for i in range(4)
        ]
        for worker in workers:
            worker.start()
        try:
            for phase in _PHASES:
                self.phase = phase
                api.set_scenario(phase.scenario)
                self.say(f"▶ {phase.title}")
                self._run_phase(phase)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=10)
        self.say()

    def _run_phase(self, phase: _Phase) -> None:
        planned = self.duration * phase.share
        deadline = time.monotonic() + planned
        if self.prometheus is not None and phase.scenario == "rate_limit_storm":
            # Keep storming until the alert fires (or a cap), so the story completes.
            deadline = time.monotonic() + max(planned, 12.0)
            cap = time.monotonic() + max(planned, 45.0)
        else:
            cap = deadline
        last_line = 0.0
        while True:
            now = time.monotonic()
            if self.prometheus is not None:
                self._check_alert()
            if now >= deadline and (
                now >= cap or phase.scenario != "rate_limit_storm" or self.alert_state == "firing"
            ):
                return
            if self.live or now - last_line >= 3.0:
                self._progress()
                last_line = now
            time.sleep(0.25)

    def _check_alert(self) -> None:
        assert self.prometheus is not None
        state = self.prometheus.storm_state()
        if state and state != self.alert_state:
            self.alert_state = state
            self.say(f"  🔔 {STORM_ALERT}: {state} (Prometheus /api/v1/alerts)")

    def _progress(self) -> None:
        by_class, retryable = self.tally.snapshot()
        total = sum(by_class.values())
        failed = total - by_class[_OK]
        share = f"{100 * retryable / failed:.0f}%" if failed else "-"
        classes = " ".join(f"{k}={v}" for k, v in sorted(by_class.items()))
        received = f" | collector received {len(self.sink.spans)}" if self.sink else ""
        elapsed = time.monotonic() - self.started
        line = (
            f"  [{elapsed:5.1f}s] {self.phase.scenario:<16} requests={total} {classes} "
            f"| retryable {share}{received}"
        )
        if self.live:
            self.out.write("\r\x1b[2K" + line[:200])
            self.out.flush()
        else:
            self.say(line)

    # --- the end ---------------------------------------------------------------------

    def _summary(self) -> None:
        local, _ = self.tally.snapshot()
        expected = sum(local.values())
        if self.sink is not None:
            spans = self.sink.wait_for(
                lambda got: sum(1 for s in got if s.kind == "CLIENT") >= expected, timeout=10
            )
            by_class, retryable = _counts_of(spans)
            source = f"as the Rotel collector received them ({len(spans)} spans)"
        else:
            by_class, retryable = self.tally.snapshot()
            source = f"as exported to the console exporter ({self.console_file})"
        total = sum(by_class.values())
        failed = total - by_class[_OK]
        self.say(f"Requests by productapi.error.class, {source}:")
        for name, count in sorted(by_class.items(), key=lambda item: -item[1]):
            label = "(success: no class)" if name == _OK else name
            self.say(f"  {label:<22}{count:>6}")
        if failed:
            self.say(
                f"Retryable share of failed requests: {100 * retryable / failed:.0f}% "
                f"({retryable} of {failed}) - productapi.error.retryable=true"
            )
        self.say()
        self._examples()
        if self.prometheus is not None:
            verdict = self.alert_state or "not seen"
            self.say(f"{STORM_ALERT} during the storm: {verdict}")
            self.say()
        self._next_steps()

    def _examples(self) -> None:
        wanted = (
            (n.CLASS_RATE_LIMITED, f"{n.ATTR_ERROR_CLASS}: Str({n.CLASS_RATE_LIMITED})"),
            (n.CLASS_SERVER_ERROR, f"{n.ATTR_ERROR_CLASS}: Str({n.CLASS_SERVER_ERROR})"),
            ("batch partial", f"{n.ATTR_BATCH_OUTCOME}: Str({n.BATCH_PARTIAL})"),
        )
        if self.rotel is not None:
            self.say("Example spans, as the collector printed them (Rotel --debug-log):")
            blocks = _span_blocks(self.rotel.debug_output())
            for title, marker in wanted:
                block = next((b for b in blocks if marker in b), None)
                if block is not None:
                    self.say(f"  --- {title}")
                    for line in _interesting(block):
                        self.say(f"  {line}")
        else:
            self.say("Example spans (console exporter):")
            for error_class in (n.CLASS_RATE_LIMITED, n.CLASS_SERVER_ERROR):
                span = self.tally.examples.get(error_class)
                if span is not None:
                    self.say(f"  --- {error_class}: {span.name}")
                    for key, value in sorted((span.attributes or {}).items()):
                        if key.startswith(("productapi.", "url.template", "http.")):
                            self.say(f"     {key}: {value!r}")
        self.say()

    def _next_steps(self) -> None:
        self.say("Where to look next:")
        self.say("  - every attribute and metric name ...... docs/telemetry.md")
        self.say(
            "  - your own app, no code change ......... "
            "opentelemetry-instrument python app.py (docs/zero-code.md)"
        )
        self.say(
            "  - a full stack (collector, Jaeger, Prometheus, Grafana) ... "
            "examples/collector/README.md"
        )
        self.say("  - the alert rules ....................... otel-productapi rules")
        self.say("  - test against the simulated API ........ docs/testing.md")
        if not self.args.prometheus:
            self.say(
                "  - see the storm alert fire .............. otel-productapi demo --prometheus"
            )


_BATCH_ITEMS: Final = 6


def _client(base: str, demo: _Demo, stop: threading.Event, worker: int) -> None:
    """One worker's loop: Product API calls shaped by the current scenario."""
    rng = random.Random(worker)  # noqa: S311 - traffic shape, not security
    pause = 4 / max(demo.args.rate, 0.1)
    counter = itertools.count()
    with requests.Session() as session:
        while not stop.is_set():
            i = next(counter)
            user = f"{base}/v1/projects/{_PROJECT}/users/u{rng.randint(1, 500)}"
            batch_share = 0.6 if demo.phase.scenario == "batch_partial" else 0.1
            roll = rng.random()
            call: Callable[[], requests.Response]
            if roll < batch_share:
                items: list[dict[str, str]] = [{"event": f"e{j}"} for j in range(_BATCH_ITEMS)]
                if i % 5 == 0:
                    items = [{"name": "no event"} for _ in range(_BATCH_ITEMS)]  # 422
                url = f"{base}/v1/projects/{_PROJECT}/events:batch"
                call = functools_partial(session.post, url, json={"items": items}, timeout=5)
            elif roll < batch_share + 0.1:
                call = functools_partial(session.put, user, json={"name": "Ada"}, timeout=5)
            elif roll < batch_share + 0.13:
                missing = f"{base}/v1/projects/{_PROJECT}/users/missing-{i}"
                call = functools_partial(session.get, missing, timeout=5)
            else:
                call = functools_partial(session.get, user, timeout=5)
            with contextlib.suppress(requests.RequestException):
                call()
            stop.wait(pause)


def functools_partial(func: Callable[..., requests.Response], *args: Any, **kwargs: Any) -> Any:
    """``functools.partial`` with a name that reads well in the loop above."""

    def call() -> requests.Response:
        return func(*args, **kwargs)

    return call


_BLOCK_START: Final = re.compile(r"^Span #\d+", re.MULTILINE)
_SHOWN_KEYS: Final = (
    "productapi.",
    "url.template",
    "http.response.status_code",
    "http.status_code",
)


def _span_blocks(text: str) -> list[str]:
    starts = [m.start() for m in _BLOCK_START.finditer(text)]
    return [text[a:b] for a, b in itertools.pairwise([*starts, len(text)])]


def _interesting(block: str) -> Iterator[str]:
    for raw in block.splitlines():
        line = raw.strip()
        if line.startswith("Events:"):
            return
        shown = line.startswith(("Name", "Kind", "Status code")) or (
            line.startswith("->") and line[3:].startswith(_SHOWN_KEYS)
        )
        if shown:
            yield "   " + line


# --- Prometheus with the shipped rules ---------------------------------------------


class _Prometheus:
    def __init__(self, binary: str, workdir: Path, metrics_port: int, time_scale: float) -> None:
        from otel_productapi.testing._collector import free_port  # noqa: PLC0415

        self.binary = binary
        self.dir = workdir / "prometheus"
        self.metrics_port = metrics_port
        self.time_scale = time_scale
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from otel_productapi.rules import RulesSettings, render_rules  # noqa: PLC0415

        rules_dir = self.dir / "rules"
        rules_dir.mkdir(parents=True)
        settings = RulesSettings(rules_time_scale=self.time_scale, rules_scrape_interval="1s")
        for name, text in render_rules(settings).items():
            (rules_dir / name).write_text(text, encoding="utf-8")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_dir / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": SERVICE_NAME,
                    "static_configs": [{"targets": [f"127.0.0.1:{self.metrics_port}"]}],
                }
            ],
        }
        # JSON is YAML: no YAML writer needed.
        (self.dir / "prometheus.yml").write_text(json.dumps(config, indent=2), encoding="utf-8")
        self.log = (self.dir / "prometheus.log").open("wb")
        self.process = _ChildProcesses.start(
            [
                self.binary,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            self.log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {self.dir / 'prometheus.log'}")
            if _get(f"{self.url}/-/ready") is not None:
                return
            time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready within 30 s")

    def storm_state(self) -> str:
        """``pending``, ``firing`` or ``""`` for the storm alert."""
        body = _get(f"{self.url}/api/v1/alerts")
        try:
            alerts = json.loads(body or b"")["data"]["alerts"]
        except (ValueError, KeyError, TypeError):
            return ""
        states = {a["state"] for a in alerts if a["labels"].get("alertname") == STORM_ALERT}
        return "firing" if "firing" in states else ("pending" if states else "")

    def stop(self) -> None:
        if self.process is not None:
            _ChildProcesses.stop(self.process)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None


def _get(url: str) -> bytes | None:
    """GET a loopback URL; the body on 200, else ``None``."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - 127.0.0.1 only
            body: bytes = response.read()
            return body if response.status == 200 else None
    except OSError:
        return None
