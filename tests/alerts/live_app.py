"""An instrumented app for the live Prometheus test: calls a Product API in a loop.

Run as a subprocess by ``tests/alerts/test_live_prometheus.py``::

    python tests/alerts/live_app.py --api-url http://127.0.0.1:PORT --rate 20
    python tests/alerts/live_app.py --api-url ... --otlp-endpoint http://127.0.0.1:9090/api/v1/otlp/v1/metrics

It instruments ``requests`` with ``otel_productapi.instrument``. By default a
``PrometheusMetricReader`` serves ``/metrics`` with ``prometheus_client`` on a
free port of 127.0.0.1 and it prints ``metrics_port=<port>``; with
``--otlp-endpoint`` it pushes OTLP every ``--export-interval-ms`` instead (as
service ``checkout``) and prints ``otlp=<endpoint>``. Then it sends ``--rate``
GET requests per second until it is terminated.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType
from urllib.parse import urlsplit

import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

import otel_productapi

ROUTE = "/v1/projects/{project}/users/{user_id}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-url", required=True, help="base URL of the (fake) Product API")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--otlp-endpoint", help="push metrics over OTLP/HTTP to this URL")
    parser.add_argument("--export-interval-ms", type=int, default=1000)
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _terminate(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)

    reader: MetricReader
    if args.otlp_endpoint:
        exporter = OTLPMetricExporter(endpoint=args.otlp_endpoint)
        reader = PeriodicExportingMetricReader(
            exporter, export_interval_millis=args.export_interval_ms
        )
    else:
        reader = PrometheusMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "checkout"})
    )
    host = urlsplit(args.api_url).hostname or "127.0.0.1"
    otel_productapi.instrument(
        otel_productapi.ProductApiSettings(hosts=[host], route_templates=[ROUTE]),
        meter_provider=provider,
    )
    server = None
    if args.otlp_endpoint:
        print(f"otlp={args.otlp_endpoint}", flush=True)
    else:
        server, _thread = start_http_server(0, addr="127.0.0.1")
        print(f"metrics_port={server.server_port}", flush=True)

    session = requests.Session()
    # A new connection per call: FakeProductApi.stop() closes the listening socket but
    # not the kept-alive connections its handler threads still serve, and the live test
    # stops it to make the API unreachable.
    session.headers["Connection"] = "close"
    interval = 1.0 / args.rate
    next_call = time.monotonic()
    n = 0
    while not stop.is_set():
        n += 1
        try:
            session.get(f"{args.api_url}/v1/projects/p1/users/u{n % 7}", timeout=2)
        except requests.RequestException as exc:  # counted as transport_error; keep going
            print(f"request failed: {exc}", file=sys.stderr, flush=True)
        next_call += interval
        stop.wait(max(0.0, next_call - time.monotonic()))
    if server is not None:
        server.shutdown()
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
