"""``otel-productapi demo``: the whole story on your laptop, in one command.

    FakeProductApi (127.0.0.1) <-- instrumented requests traffic (this process)
        scenarios in turn:           │ CLIENT spans, tagged by our hooks
        healthy -> 429 storm ->      ▼
        5xx burst -> batch partial   Rotel collector --> OTLP sink: what it received
                                     (console exporter with --console or without Rotel)
    --prometheus: metrics on 127.0.0.1:<port>/metrics <-- Prometheus with the shipped
                  rules (windows scaled down) --> the storm alert fires
    --stack:      OTLP --> OpenTelemetry Collector (shipped config) --> Jaeger v2
                                 └─ metrics <-- Prometheus 3 (shipped rules) --> Alertmanager

The package: ``command`` (options, set-up, the run, the report), ``traffic``
(scenarios, client workers, the span tally), ``report`` (terminal output),
``prometheus`` (``--prometheus``) and ``stack`` (``--stack``). Processes are
run by ``otel_productapi.testing.stack``, shared with the end-to-end tests.
"""

from __future__ import annotations

from otel_productapi.demo.command import add_arguments, run

__all__ = ["add_arguments", "run"]
