"""``otel-productapi demo``: options, set-up, the run and its report.

Three ways to carry the telemetry, all on 127.0.0.1 and all stopped on the
way out (normal end, Ctrl-C or SIGTERM; child processes are killed as
process groups, with an ``atexit`` safety net):

- default: spans to the Rotel collector (``rotel`` package) and from it to
  a local OTLP sink that counts what arrived; ``--console`` prints them instead;
- ``--prometheus``: metrics on a local endpoint scraped by Prometheus with the
  shipped rules scaled down, so the storm alert fires;
- ``--stack``: the reference stack (OpenTelemetry Collector with the shipped
  config, Jaeger v2, Prometheus 3 with the shipped rules, Alertmanager), as
  built by ``scripts/build-tools``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from otel_productapi.demo.report import Console, example_blocks, print_counts
from otel_productapi.demo.traffic import (
    ATTR_BATCH_OUTCOME,
    ATTR_ERROR_CLASS,
    OK,
    PHASES,
    RATE_LIMITED,
    SERVER_ERROR,
    Phase,
    Tally,
    Traffic,
    counts_of,
)
from otel_productapi.testing.stack import (
    ENDPOINT_STORM_ALERT,
    STORM_ALERT,
    OtlpSink,
    Prometheus,
    ReferenceStack,
    Rotel,
    ToolMissingError,
    rotel_binary,
    span_attributes,
    stop_all,
)

__all__ = ["SERVICE_NAME", "add_arguments", "run"]

SERVICE_NAME: Final = "productapi-demo"
_STORM: Final = "rate_limit_storm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="traffic time over all four scenarios (default 40; 70 with --prometheus; "
        "90 with --stack)",
    )
    parser.add_argument(
        "--rate", type=float, default=25.0, metavar="RPS", help="requests per second (default 25)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--prometheus",
        action="store_true",
        help="also run Prometheus (must be on PATH) with the shipped rules and show the "
        "storm alert firing",
    )
    where.add_argument(
        "--stack",
        action="store_true",
        help="run the reference stack instead of Rotel: the OpenTelemetry Collector with "
        "examples/collector/otelcol-config.yaml, Jaeger, Prometheus 3 with the shipped rules "
        "and Alertmanager (build them first with scripts/build-tools)",
    )
    where.add_argument(
        "--console",
        action="store_true",
        help="print spans with the console exporter instead of running the Rotel collector",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        metavar="FACTOR",
        help="with --prometheus or --stack: multiply every rule window and 'for' (and, with "
        "--stack, the 15 s scrape and export interval) by this (default 0.1; 0.2 with --stack)",
    )


@dataclass
class _Options:
    duration: float
    rate: float
    prometheus: bool
    stack: bool
    console: bool
    time_scale: float

    @classmethod
    def parse(cls, args: argparse.Namespace) -> _Options:
        default_duration = 90.0 if args.stack else (70.0 if args.prometheus else 40.0)
        return cls(
            duration=args.duration if args.duration is not None else default_duration,
            rate=args.rate,
            prometheus=args.prometheus,
            stack=args.stack,
            console=args.console,
            time_scale=args.time_scale or (0.2 if args.stack else 0.1),
        )


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 on success, 2 when --stack is not built, 130 when interrupted."""
    options = _Options.parse(args)
    console = Console(sys.stdout)
    previous = _raise_on_termination()
    try:
        with contextlib.ExitStack() as stack:
            return _Demo(options, console, stack).run()
    except KeyboardInterrupt:
        console.say("\ninterrupted: everything the demo started has been stopped")
        return 130
    except ToolMissingError as exc:
        console.say(f"otel-productapi demo --stack: {exc}")
        console.say(
            "  --stack runs the reference implementations built from source: run "
            "scripts/build-tools in a clone of the repository first (the first build takes "
            "a while; later runs reuse the cache)."
        )
        return 2
    finally:
        stop_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_Handler = Callable[[int, FrameType | None], object] | int | None


def _raise_on_termination() -> dict[int, _Handler]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every ``finally`` runs."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous: dict[int, _Handler] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, interrupt)
    return previous


@dataclass
class _Carriers:
    """Where the telemetry goes, as set up for this run."""

    sink: OtlpSink | None = None
    rotel: Rotel | None = None
    console_file: Path | None = None
    prometheus: Prometheus | None = None
    reference: ReferenceStack | None = None
    alert_states: list[str] = field(default_factory=list)

    @property
    def alert_state(self) -> str:
        return self.alert_states[-1] if self.alert_states else ""


class _Demo:
    def __init__(self, options: _Options, console: Console, stack: contextlib.ExitStack) -> None:
        self.options = options
        self.console = console
        self.stack = stack
        self.tally = Tally()
        self.carriers = _Carriers()
        self.started = time.monotonic()

    def run(self) -> int:
        from otel_productapi import ProductApiSettings, instrument, uninstrument  # noqa: PLC0415
        from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi  # noqa: PLC0415

        say = self.console.say
        workdir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="productapi-")))
        say("otel-productapi demo: a simulated Product API, a collector and tagged traffic")
        if self.options.stack:
            self._start_reference_stack(workdir)
        api = self.stack.enter_context(FakeProductApi(retry_after=1))
        say(f"  simulated Product API ... {api.url}")
        tracer_provider = self._tracer_provider(workdir)
        meter_provider = self._meter_provider(workdir)
        settings = ProductApiSettings(route_templates=list(ROUTE_TEMPLATES), hosts=["127.0.0.1"])
        instrument(settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
        self.stack.callback(uninstrument)
        say(
            f"  traffic ................. {self.options.rate:g} requests/s for "
            f"{self.options.duration:g} s"
        )
        say()
        with Traffic(api.url, self.options.rate) as traffic:
            for phase in PHASES:
                traffic.phase = phase
                api.set_scenario(phase.scenario)
                say(f"▶ {phase.title}")
                self._run_phase(phase)
        say()
        tracer_provider.force_flush()
        meter_provider.force_flush()
        self._summary()
        self._linger()
        return 0

    # --- set-up --------------------------------------------------------------------

    def _start_reference_stack(self, workdir: Path) -> None:
        say = self.console.say
        reference = ReferenceStack(workdir, time_scale=self.options.time_scale)
        say("  starting the reference stack (collector, Jaeger, Prometheus 3, Alertmanager)")
        self.stack.enter_context(reference)
        self.carriers.reference = reference
        self.carriers.prometheus = reference.prometheus
        say(f"  OpenTelemetry Collector . OTLP/HTTP on {reference.collector.endpoint}")
        self._point_to_the_stack()
        say(
            f"  intervals ............... {reference.interval_s} s (scrape, evaluation, export; "
            f"rules scaled x{self.options.time_scale:g})"
        )

    def _point_to_the_stack(self) -> None:
        reference = self.carriers.reference
        assert reference is not None
        say = self.console.say
        say(f"  Jaeger UI ............... {reference.jaeger.url}/search?service={SERVICE_NAME}")
        say(
            f"  Jaeger query API ........ {reference.jaeger.url}/api/v3/traces"
            f"?query.service_name={SERVICE_NAME}&query.start_time_min=...&query.start_time_max=..."
        )
        say(f"  Prometheus alerts page .. {reference.prometheus.url}/alerts")
        say(f"  Alertmanager ............ {reference.alertmanager.url}/#/alerts")

    def _tracer_provider(self, workdir: Path) -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        provider.add_span_processor(self.tally)
        exporter: SpanExporter | None
        if self.carriers.reference is not None:
            from otel_productapi.demo.stack import stack_span_exporter  # noqa: PLC0415

            exporter = stack_span_exporter(self.carriers.reference)
        else:
            exporter = None if self.options.console else self._start_rotel()
        if exporter is None:
            self.carriers.console_file = workdir / "spans.json"
            stream = self.stack.enter_context(
                self.carriers.console_file.open("w", encoding="utf-8")
            )
            exporter = ConsoleSpanExporter(out=stream)
            self.console.say(
                "  collector ............... none: console exporter (install rotel for one)"
            )
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=250))
        self.stack.callback(provider.shutdown)
        return provider

    def _start_rotel(self) -> SpanExporter | None:
        needed = ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.proto")
        if rotel_binary() is None or not all(importlib.util.find_spec(m) for m in needed):
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        self.carriers.sink = self.stack.enter_context(OtlpSink())
        rotel = self.stack.enter_context(Rotel(self.carriers.sink.endpoint))
        self.carriers.rotel = rotel
        self.console.say(f"  Rotel collector ......... OTLP/HTTP on {rotel.endpoint}")
        return OTLPSpanExporter(endpoint=f"{rotel.endpoint}/v1/traces")

    def _meter_provider(self, workdir: Path) -> MeterProvider:
        if self.carriers.reference is not None:
            from otel_productapi.demo.stack import stack_meter_provider  # noqa: PLC0415

            provider = stack_meter_provider(self.carriers.reference, SERVICE_NAME)
        elif self.options.prometheus:
            from otel_productapi.demo.prometheus import scraped_meter_provider  # noqa: PLC0415

            provider, prometheus, metrics_url = scraped_meter_provider(
                self.stack, workdir, SERVICE_NAME, self.options.time_scale
            )
            self.carriers.prometheus = prometheus
            self.console.say(f"  app metrics ............. {metrics_url}")
            self.console.say(
                f"  Prometheus .............. {prometheus.url} "
                f"(rules scaled x{self.options.time_scale:g})"
            )
            return provider
        else:
            provider = MeterProvider()
        self.stack.callback(provider.shutdown)
        return provider

    # --- the run -----------------------------------------------------------------------

    def _run_phase(self, phase: Phase) -> None:
        planned = self.options.duration * phase.share
        now = time.monotonic()
        deadline = cap = now + planned
        if self.carriers.prometheus is not None and phase.scenario == _STORM:
            # Keep storming until the alert fires (or a cap), so the story completes.
            scaled = 150.0 * self.options.time_scale / 0.1 if self.options.stack else 45.0
            deadline, cap = now + max(planned, 12.0), now + max(planned, scaled)
        last_line = 0.0
        while True:
            now = time.monotonic()
            if self.carriers.prometheus is not None:
                self._check_alert(self.carriers.prometheus)
            fired = self.carriers.alert_state == "firing"
            if now >= deadline and (now >= cap or phase.scenario != _STORM or fired):
                return
            if self.console.live or now - last_line >= 3.0:
                self._progress(phase)
                last_line = now
            time.sleep(0.25)

    def _check_alert(self, prometheus: Prometheus) -> None:
        try:
            state = prometheus.alert_state(STORM_ALERT)
        except OSError:
            return
        if state and state != self.carriers.alert_state:
            self.carriers.alert_states.append(state)
            self.console.say(f"  🔔 {STORM_ALERT}: {state} (Prometheus /api/v1/alerts)")

    def _progress(self, phase: Phase) -> None:
        by_class, retryable = self.tally.snapshot()
        total = sum(by_class.values())
        failed = total - by_class[OK]
        share = f"{100 * retryable / failed:.0f}%" if failed else "-"
        classes = " ".join(f"{k}={v}" for k, v in sorted(by_class.items()))
        sink = self.carriers.sink
        received = f" | collector received {len(sink.spans)}" if sink else ""
        elapsed = time.monotonic() - self.started
        self.console.progress(
            f"  [{elapsed:5.1f}s] {phase.scenario:<16} requests={total} {classes} "
            f"| retryable {share}{received}"
        )

    # --- the end -------------------------------------------------------------------------

    def _summary(self) -> None:
        by_class, retryable, source = self._received()
        print_counts(self.console, by_class, retryable, source)
        self._examples()
        if self.carriers.prometheus is not None:
            verdict = self.carriers.alert_state or "not seen"
            self.console.say(f"{STORM_ALERT} during the storm: {verdict}")
            if self.carriers.reference is not None:
                self._notifications(self.carriers.reference)
            self.console.say()
        self._next_steps()

    def _received(self) -> tuple[Counter[str], int, str]:
        """Counts as the collector received them, else as the tally counted them."""
        expected = sum(self.tally.snapshot()[0].values())
        reference, sink = self.carriers.reference, self.carriers.sink
        if reference is not None:
            spans = _wait_for(lambda: _jaeger_client_attributes(reference), expected, timeout=15)
            by_class, retryable = counts_of(spans)
            source = f"as Jaeger stored them ({len(spans)} of the {expected} spans sent)"
            return by_class, retryable, source
        if sink is not None:
            received = sink.wait_for(
                lambda got: sum(1 for s in got if s.kind == "CLIENT") >= expected, timeout=10
            )
            client = [s.attributes for s in received if s.kind == "CLIENT"]
            by_class, retryable = counts_of(client)
            source = f"as the Rotel collector received them ({len(received)} spans)"
            return by_class, retryable, source
        by_class, retryable = self.tally.snapshot()
        return (
            by_class,
            retryable,
            f"as exported to the console exporter ({self.carriers.console_file})",
        )

    def _examples(self) -> None:
        markers = [
            (RATE_LIMITED, f"{ATTR_ERROR_CLASS}: Str({RATE_LIMITED})"),
            (SERVER_ERROR, f"{ATTR_ERROR_CLASS}: Str({SERVER_ERROR})"),
            ("batch partial", f"{ATTR_BATCH_OUTCOME}: Str(partial)"),
        ]
        say = self.console.say
        debug_output, printer = "", ""
        if self.carriers.reference is not None:
            debug_output = self.carriers.reference.collector.log()
            printer = "the OpenTelemetry Collector's debug exporter"
        elif self.carriers.rotel is not None:
            debug_output, printer = self.carriers.rotel.debug_output(), "Rotel --debug-log"
        if printer:
            say(f"Example spans, as the collector printed them ({printer}):")
            for line in example_blocks(debug_output, markers):
                say(line)
        else:
            say("Example spans (console exporter):")
            for error_class in (RATE_LIMITED, SERVER_ERROR):
                span = self.tally.examples.get(error_class)
                if span is not None:
                    say(f"  --- {error_class}: {span.name}")
                    for key, value in sorted((span.attributes or {}).items()):
                        if key.startswith(("productapi.", "url.template", "http.")):
                            say(f"     {key}: {value!r}")
        say()

    def _notifications(self, reference: ReferenceStack) -> None:
        # The page comes from the endpoints' storm alert; Alertmanager inhibits
        # the service-wide one meanwhile (one storm, one page).
        for status in ("firing", "resolved"):
            seen = reference.webhook.notifications(status, ENDPOINT_STORM_ALERT)
            if seen:
                receiver = seen[0].body.get("receiver", "?")
                routes = sorted(
                    {a["labels"].get("url_template", "?") for a in seen[0].body["alerts"]}
                )
                self.console.say(
                    f"Alertmanager notified the webhook: {ENDPOINT_STORM_ALERT} {status} "
                    f"(receiver {receiver}, {seen[0].path}) for {', '.join(routes)}"
                )

    def _next_steps(self) -> None:
        say = self.console.say
        say("Where to look next:")
        say("  - every attribute and metric name ...... docs/telemetry.md")
        say(
            "  - your own app, no code change ......... "
            "opentelemetry-instrument python app.py (docs/zero-code.md)"
        )
        say(
            "  - a full stack (collector, Jaeger, Prometheus, Grafana) ... "
            "examples/collector/README.md"
        )
        say("  - the alert rules ....................... otel-productapi rules")
        say("  - test against the simulated API ........ docs/testing.md")
        if not (self.options.prometheus or self.options.stack):
            say("  - see the storm alert fire .............. otel-productapi demo --prometheus")
        if not self.options.stack:
            say(
                "  - the reference stack as processes ...... scripts/build-tools, then "
                "otel-productapi demo --stack"
            )

    def _linger(self) -> None:
        """With --stack on a terminal: keep the stack up until the user is done looking."""
        if self.carriers.reference is None:
            return
        if not (sys.stdin.isatty() and self.console.live):
            self.console.say("The stack stops now (run in a terminal to keep it up for a look).")
            return
        self.console.say("The stack stays up for a look:")
        self._point_to_the_stack()
        self.console.say("Press Enter (or Ctrl-C) to stop it.")
        with contextlib.suppress(EOFError):
            input()


def _jaeger_client_attributes(reference: ReferenceStack) -> list[dict[str, object]]:
    """Attributes of the demo's CLIENT spans in Jaeger (OTLP/JSON values unwrapped)."""
    spans = reference.jaeger.find_traces(SERVICE_NAME, num_traces=100_000)
    return [span_attributes(s) for s in spans if s.get("kind") in (3, "SPAN_KIND_CLIENT")]


def _wait_for(
    fetch: Callable[[], list[dict[str, object]]], expected: int, timeout: float
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = fetch()
        except OSError:
            found = []
        if len(found) >= expected or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)
