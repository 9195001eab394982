"""The reference stack, run as local processes, for the end-to-end tests and the demo.

What ``examples/collector/docker-compose.yml`` runs in containers, started here
on 127.0.0.1 with free ports, every process in its own process group and
always stopped::

    from otel_productapi.testing.stack import Jaeger, OtelCollector

    with Jaeger(workdir) as jaeger, OtelCollector(
        workdir, jaeger_endpoint=jaeger.otlp_grpc_endpoint
    ) as collector:
        ...  # export to collector.endpoint, read jaeger.find_traces("checkout")

- ``OtelCollector`` runs ``examples/collector/otelcol-config.yaml`` unchanged
  (only its ``${env:OTELCOL_*}`` addresses are set); ``Jaeger`` is Jaeger v2
  with in-memory storage; ``Prometheus`` is Prometheus 3 with the shipped
  rules rendered at a time scale, scraping or receiving OTLP;
  ``Alertmanager`` runs ``examples/alertmanager.yml`` with its webhooks sent
  to an ``AlertWebhook``; ``ReferenceStack`` starts them all as compose
  would, every interval scaled by one time scale. ``Rotel`` and ``OtlpSink`` are the demo's
  lightweight collector and a receiver that decodes what it is sent.
- ``Process`` is the runner underneath: start, wait until ready, stop the
  whole process group (``stop_all()`` at exit).

The collector, Jaeger and Prometheus 3 are built from source by
``scripts/build-tools`` into a per-user cache (``tool_path``); Alertmanager is
Debian's ``prometheus-alertmanager``. The examples are read from the
repository checkout, so this module is for a clone installed with
``pip install -e``; ``ToolMissingError`` says what is missing.
"""

from __future__ import annotations

from otel_productapi.testing._collector import (
    OtlpSink,
    ReceivedSpan,
    Rotel,
    decode_traces,
    rotel_binary,
    rotel_with_sink,
)
from otel_productapi.testing._processes import (
    Process,
    free_port,
    http_ok,
    port_open,
    stop_all,
    wait_until,
)
from otel_productapi.testing._stack import (
    COLLECTOR_CONFIG,
    ENDPOINT_STORM_ALERT,
    RECOMMENDED_INTERVAL_S,
    STORM_ALERT,
    Alertmanager,
    AlertWebhook,
    Jaeger,
    Notification,
    OtelCollector,
    Prometheus,
    ReferenceStack,
    alertmanager_binary,
    get_json,
    local_targets,
    render_rule_files,
    span_attributes,
)
from otel_productapi.testing._tools import (
    ToolMissingError,
    repository_file,
    tool_path,
    tools_dir,
    tools_manifest,
)

__all__ = [
    "COLLECTOR_CONFIG",
    "ENDPOINT_STORM_ALERT",
    "RECOMMENDED_INTERVAL_S",
    "STORM_ALERT",
    "AlertWebhook",
    "Alertmanager",
    "Jaeger",
    "Notification",
    "OtelCollector",
    "OtlpSink",
    "Process",
    "Prometheus",
    "ReceivedSpan",
    "ReferenceStack",
    "Rotel",
    "ToolMissingError",
    "alertmanager_binary",
    "decode_traces",
    "free_port",
    "get_json",
    "http_ok",
    "local_targets",
    "port_open",
    "render_rule_files",
    "repository_file",
    "rotel_binary",
    "rotel_with_sink",
    "span_attributes",
    "stop_all",
    "tool_path",
    "tools_dir",
    "tools_manifest",
    "wait_until",
]
