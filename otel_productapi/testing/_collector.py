"""A real collector on 127.0.0.1, and a way to read what it received.

Used by the demo and by the collector tests:

    app --OTLP/HTTP--> Rotel (rotel-agent, from the ``rotel`` package)
                        ├── --debug-log traces: each span printed as the collector shows it
                        └── --exporter otlp (http) --> OtlpSink (here): decoded spans

``OtlpSink`` needs ``opentelemetry-proto`` (installed with
``opentelemetry-exporter-otlp-proto-http``); ``Rotel`` needs the ``rotel``
package. Both are in the ``demo`` and ``test`` extras; nothing here is imported
by ``otel_productapi`` itself.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any

from otel_productapi.testing._loopback import LoopbackServer
from otel_productapi.testing._processes import Process, free_port, port_open

__all__ = [
    "OtlpSink",
    "ReceivedSpan",
    "Rotel",
    "decode_traces",
    "free_port",
    "rotel_binary",
    "rotel_with_sink",
]


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """A span as the collector forwarded it, decoded from OTLP.

    Attributes:
        name: Span name.
        kind: ``CLIENT``, ``SERVER``, ``INTERNAL``...
        attributes: Span attributes (bool, int, float, str or lists of them).
        resource: Resource attributes (``service.name``...).
        scope: Instrumentation scope name.
        status: ``UNSET``, ``OK`` or ``ERROR``.
        trace_id: Hex trace id.
    """

    name: str
    kind: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status: str
    trace_id: str


def _any_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


def decode_traces(payload: bytes) -> list[ReceivedSpan]:
    """Decode an OTLP ``ExportTraceServiceRequest`` (protobuf) into spans."""
    from opentelemetry.proto.collector.trace.v1 import (  # noqa: PLC0415 - optional dependency
        trace_service_pb2,
    )
    from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: PLC0415

    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(payload)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _any_value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        attributes={a.key: _any_value(a.value) for a in span.attributes},
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status=trace_pb2.Status.StatusCode.Name(span.status.code).removeprefix(
                            "STATUS_CODE_"
                        ),
                        trace_id=span.trace_id.hex(),
                    )
                )
    return spans


class OtlpSink(LoopbackServer):
    """A minimal OTLP/HTTP (protobuf) receiver on 127.0.0.1 that keeps the spans.

    Metrics and logs are accepted (200) and dropped.
    """

    _thread_name = "otlp-sink"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _sink_handler(self)

    @property
    def endpoint(self) -> str:
        """Base URL to export to, e.g. ``http://127.0.0.1:4318`` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far (a copy)."""
        with self._lock:
            return list(self._spans)

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0
    ) -> list[ReceivedSpan]:
        """Poll until ``predicate(spans)`` holds; returns the spans either way."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans
            if predicate(spans) or time.monotonic() >= deadline:
                return spans
            time.sleep(0.05)

    def _received(self, path: str, payload: bytes) -> None:
        if path.rstrip("/").endswith("/v1/traces"):
            batch = decode_traces(payload)
            with self._lock:
                self._spans.extend(batch)


def _sink_handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length)
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                payload = gzip.decompress(payload)
            try:
                sink._received(self.path, payload)
                status = 200
            except Exception:  # noqa: BLE001 - answer 400 and keep serving
                status = 400
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def rotel_binary() -> Path | None:
    """Path of the ``rotel-agent`` binary shipped by the ``rotel`` package, if installed."""
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "rotel-agent"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class Rotel:
    """Run ``rotel-agent`` in the foreground on 127.0.0.1, forwarding to an ``OtlpSink``.

    Args:
        export_to: OTLP/HTTP base URL Rotel forwards traces (and metrics) to.
        debug_log: Also print every span (Rotel's ``--debug-log traces``);
            read them with ``debug_output()``.
        binary: ``rotel-agent`` to run; default: the one from the ``rotel`` package.
    """

    def __init__(
        self, export_to: str, *, debug_log: bool = True, binary: Path | None = None
    ) -> None:
        found = binary or rotel_binary()
        if found is None:
            raise FileNotFoundError("rotel-agent not found: pip install rotel")
        self._binary = found
        self._export_to = export_to
        self._debug_log = debug_log
        self.http_port = free_port()
        self.grpc_port = free_port()
        self._process: Process | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        """OTLP/HTTP base URL apps export to (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        """The agent's process id while it runs."""
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> Rotel:
        """Start the agent and wait until its OTLP/HTTP port accepts connections."""
        self._directory = tempfile.TemporaryDirectory(prefix="otel-productapi-rotel-")
        directory = Path(self._directory.name)
        args = [
            str(self._binary),
            "start",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--pid-file",
            str(directory / "rotel.pid"),
            "--log-file",
            str(directory / "rotel.log"),
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self._export_to,
            "--otlp-exporter-protocol",
            "http",
            "--otlp-exporter-compression",
            "none",
            "--batch-timeout",
            "100ms",
        ]
        if self._debug_log:
            args += ["--debug-log", "traces", "--debug-log-verbosity", "detailed"]
        env = {**os.environ, "NO_COLOR": "1"}
        self._process = Process("rotel-agent", args, log=directory / "stdout.log", env=env)
        try:
            self._process.start()
            self._process.wait_ready(lambda: port_open(self.http_port), timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the agent (its whole process group) and remove its files; safe twice."""
        process, self._process = self._process, None
        if process is not None:
            process.stop()
        directory, self._directory = self._directory, None
        if directory is not None:
            directory.cleanup()

    def debug_output(self) -> str:
        """What the agent printed so far: its log and, with ``debug_log``, every span."""
        if self._process is None:
            return ""
        return _strip_ansi(self._process.output())

    def __enter__(self) -> Rotel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@contextlib.contextmanager
def rotel_with_sink(*, debug_log: bool = True) -> Iterator[tuple[Rotel, OtlpSink]]:
    """Start an ``OtlpSink`` and a ``Rotel`` forwarding to it; stop both on exit."""
    with OtlpSink() as sink, Rotel(sink.endpoint, debug_log=debug_log) as rotel:
        yield rotel, sink
