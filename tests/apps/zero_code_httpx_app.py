"""An httpx program that knows nothing of otel_productapi, run under ``opentelemetry-instrument``.

Usage: ``zero_code_httpx_app.py sync|async BASE_URL "METHOD PATH" ...``. It
sends each request with one ``httpx.Client`` (``sync``) or one
``httpx.AsyncClient`` (``async``), then ends an INTERNAL span named ``app.done``
(the marker a reader waits for: every CLIENT span ended before it) and
flushes. Spans leave through the configured exporter (OTLP to a collector);
nothing is printed but ``sent=N``. ``APP_CALL_INSTRUMENT=1`` also calls
``otel_productapi.instrument()`` first. When no SDK is configured (no
distro), it installs a ``TracerProvider`` exporting over OTLP/HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT``, the way an app configuring its own SDK does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import httpx
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

#: Name of the span that ends after every call.
DONE = "app.done"


def main(argv: list[str]) -> int:
    """Send the requests named on the command line, then the marker span."""
    mode, base, calls = argv[0], argv[1], argv[2:]
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create())
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    if os.environ.get("APP_CALL_INSTRUMENT") == "1":
        import otel_productapi

        otel_productapi.instrument()
    if mode == "sync":
        _send(base, calls)
    elif mode == "async":
        asyncio.run(_send_async(base, calls))
    else:
        print(f"unknown mode {mode!r}: sync or async", file=sys.stderr)
        return 2
    with trace.get_tracer("zero-code-httpx-app").start_as_current_span(DONE):
        pass
    provider.force_flush()
    print(f"sent={len(calls)}")
    return 0


def _send(base: str, calls: list[str]) -> None:
    with httpx.Client(timeout=5) as client:
        for call in calls:
            method, _, path = call.partition(" ")
            with contextlib.suppress(httpx.HTTPError):
                client.request(method, base + path, json=_body(path))


async def _send_async(base: str, calls: list[str]) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for call in calls:
            method, _, path = call.partition(" ")
            with contextlib.suppress(httpx.HTTPError):
                await client.request(method, base + path, json=_body(path))


def _body(path: str) -> object:
    if path.endswith("events:batch"):
        return {"items": [{"event": f"e{i}"} for i in range(4)]}
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
