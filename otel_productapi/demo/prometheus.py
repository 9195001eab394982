"""``--prometheus``: the demo's metrics on a local endpoint, scraped by Prometheus.

traffic (this process) --> PrometheusMetricReader --> 127.0.0.1:<port>/metrics
    <-- Prometheus (on PATH) scraping every second, shipped rules scaled by --time-scale
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from otel_productapi.testing.stack import Prometheus, free_port

__all__ = ["scraped_meter_provider"]


def scraped_meter_provider(
    stack: contextlib.ExitStack, workdir: Path, service_name: str, time_scale: float
) -> tuple[MeterProvider, Prometheus, str]:
    """A meter provider served on ``/metrics``, and a started Prometheus scraping it.

    Returns the provider, the Prometheus and the metrics URL; everything is
    stopped by ``stack``.

    Raises:
        SystemExit: No ``prometheus`` on PATH.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("--prometheus: no 'prometheus' on PATH (apt-get install prometheus)")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    metrics_port = free_port()
    server, _thread = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service_name}), metric_readers=[reader]
    )
    stack.callback(provider.shutdown)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": service_name,
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
            }
        ],
    }
    prometheus = Prometheus(
        workdir,
        config=config,
        rules_time_scale=time_scale,
        rules_scrape_interval="1s",
        binary=Path(binary),
    )
    stack.enter_context(prometheus)
    return provider, prometheus, f"http://127.0.0.1:{metrics_port}/metrics"
