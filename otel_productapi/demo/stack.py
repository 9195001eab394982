"""``--stack``: the reference stack of ``examples/collector/``, run as local processes.

    traffic (this process) --OTLP/HTTP--> OpenTelemetry Collector (shipped config)
        ├── traces --> Jaeger v2 ........................ its UI and /api/v3 query API
        └── metrics --> prometheus exporter <-- Prometheus 3 (shipped prometheus.yml and
                                                  rules, scaled by --time-scale)
                                                  --> Alertmanager --> a local webhook

``ReferenceStack`` (``otel_productapi.testing.stack``) starts the parts; this
module points the demo's telemetry at its collector.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter

from otel_productapi.testing.stack import ReferenceStack

__all__ = ["stack_meter_provider", "stack_span_exporter"]


def stack_span_exporter(stack: ReferenceStack) -> SpanExporter:
    """OTLP/HTTP span exporter to the stack's collector."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter(endpoint=f"{stack.collector.endpoint}/v1/traces")


def stack_meter_provider(stack: ReferenceStack, service_name: str) -> MeterProvider:
    """Metrics pushed over OTLP/HTTP to the collector every ``stack.interval_s`` seconds."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter,
    )

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{stack.collector.endpoint}/v1/metrics"),
        export_interval_millis=stack.interval_s * 1000,
    )
    return MeterProvider(
        resource=Resource.create({"service.name": service_name}), metric_readers=[reader]
    )
