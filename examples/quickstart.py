"""A 30-second quickstart: tag Product API calls, against the simulated API.

Run: ``python examples/quickstart.py``. Spans print to the console; look for
``productapi.error.class`` and ``productapi.error.retryable``.
"""

from __future__ import annotations

import requests
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import otel_productapi
from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi


def main() -> None:
    """Instrument, call the simulated API healthy and in a 429 storm, print the spans."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    # Route templates keep ids out of span names and metric labels.
    settings = otel_productapi.ProductApiSettings(route_templates=list(ROUTE_TEMPLATES))
    otel_productapi.instrument(settings, tracer_provider=tracer_provider)
    try:
        with FakeProductApi() as api:
            requests.get(f"{api.url}/v1/projects/p1/users/u1", timeout=5)  # 200: no class
            api.set_scenario("rate_limit_storm")
            requests.get(f"{api.url}/v1/projects/p1/users/u1", timeout=5)  # 429: rate_limited
    finally:
        otel_productapi.uninstrument()
        tracer_provider.shutdown()


if __name__ == "__main__":
    main()
