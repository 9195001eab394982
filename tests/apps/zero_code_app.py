"""A program that knows nothing about otel_productapi, run under ``opentelemetry-instrument``.

Usage: ``zero_code_app.py BASE_URL "METHOD PATH" ...``. It sends each request
with one ``requests.Session`` and, unless ``APP_PRINT_SPANS=0``, prints the
finished spans as one JSON list on the last line of stdout. ``APP_CALL_INSTRUMENT=1``
also calls ``otel_productapi.instrument()`` first, as an app that does both would.
When no SDK is configured (no distro), it installs a bare ``TracerProvider``
the way an app configuring its own SDK does.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import requests
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def main(argv: list[str]) -> int:
    """Send the requests named on the command line; print the spans."""
    base, calls = argv[0], argv[1:]
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if os.environ.get("APP_CALL_INSTRUMENT") == "1":
        import otel_productapi

        otel_productapi.instrument()
    with requests.Session() as session:
        for call in calls:
            method, _, path = call.partition(" ")
            with contextlib.suppress(requests.RequestException):
                session.request(method, base + path, json=_body(path), timeout=5)
    provider.force_flush()
    spans = [
        {"name": s.name, "kind": s.kind.name, "attributes": dict(s.attributes or {})}
        for s in exporter.get_finished_spans()
    ]
    if os.environ.get("APP_PRINT_SPANS", "1") == "1":
        print(json.dumps(spans))
    return 0


def _body(path: str) -> object:
    if path.endswith("events:batch"):
        return {"items": [{"event": f"e{i}"} for i in range(4)]}
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
