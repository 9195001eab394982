"""An instrumented app for the live Prometheus test: calls a Product API in a loop.

Run as a subprocess by ``tests/test_live_prometheus.py``::

    python tests/live_app.py --api-url http://127.0.0.1:PORT --rate 20

It instruments ``requests`` with ``otel_productapi.instrument`` and a
``PrometheusMetricReader``, serves ``/metrics`` with ``prometheus_client`` on a
free port of 127.0.0.1, prints ``metrics_port=<port>`` once ready, then sends
``--rate`` GET requests per second until it is terminated.
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
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import start_http_server

import otel_productapi

ROUTE = "/v1/projects/{project}/users/{user_id}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-url", required=True, help="base URL of the (fake) Product API")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _terminate(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)

    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    host = urlsplit(args.api_url).hostname or "127.0.0.1"
    otel_productapi.instrument(
        otel_productapi.ProductApiSettings(hosts=[host], route_templates=[ROUTE]),
        meter_provider=provider,
    )
    server, _thread = start_http_server(0, addr="127.0.0.1")
    print(f"metrics_port={server.server_port}", flush=True)

    session = requests.Session()
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
    server.shutdown()
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
