"""The reference stack as local processes: what ``examples/collector/`` runs in Docker.

    app --OTLP/HTTP--> OtelCollector (examples/collector/otelcol-config.yaml, unchanged)
                        ├── traces --OTLP/gRPC--> Jaeger (v2, in-memory) <-- its query API
                        └── metrics: prometheus exporter <-- Prometheus 3 (scrapes it)
    app --OTLP/HTTP-------------------------------------> Prometheus 3 (OTLP receiver)
    Prometheus 3 (shipped rules, time-scaled) --> Alertmanager --> AlertWebhook

Each part binds free ports on 127.0.0.1, keeps its files in a folder it is
given, and stops its whole process group on ``stop()`` (they are context
managers). The configurations are the repository's examples with only
addresses, paths and timings changed: ``local_targets`` maps the compose
service addresses (``otel-collector:8889``...) to local ones and fails on any
it does not know. The binaries are the ones ``scripts/build-tools`` built
(``tool_path``), and Alertmanager is Debian's ``prometheus-alertmanager``.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from otel_productapi.testing._loopback import LoopbackServer
from otel_productapi.testing._processes import Process, free_port, http_ok, port_open
from otel_productapi.testing._tools import ToolMissingError, repository_file, tool_path

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
    "Prometheus",
    "ReferenceStack",
    "alertmanager_binary",
    "get_json",
    "local_targets",
    "render_rule_files",
    "span_attributes",
]

#: The shipped collector configuration, relative to the repository.
COLLECTOR_CONFIG: Final = "examples/collector/otelcol-config.yaml"
#: The alert the storm tests and the demo watch.
STORM_ALERT: Final = "ProductApiRateLimitStorm"
#: The page a storm sends: Alertmanager inhibits the service-wide alert while
#: an endpoint's storm fires (examples/alertmanager.yml), so one storm pages once.
ENDPOINT_STORM_ALERT: Final = "ProductApiEndpointRateLimitStorm"
#: The metric export (and scrape) interval the docs recommend when alerts matter.
RECOMMENDED_INTERVAL_S: Final = 15

_S = TypeVar("_S", bound="_Service")


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a loopback URL and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.load(response)


def _write_yaml(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def local_targets(document: Any, addresses: Mapping[str, str]) -> Any:
    """A copy of a Prometheus config with every ``targets`` entry mapped through ``addresses``.

    Raises:
        KeyError: A target the mapping does not know (the example changed).
    """
    if isinstance(document, dict):
        return {
            key: [addresses[t] for t in value]
            if key == "targets"
            else local_targets(value, addresses)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [local_targets(item, addresses) for item in document]
    return document


def render_rule_files(directory: Path, *, time_scale: float, scrape_interval: str) -> list[Path]:
    """Write the shipped rules, rendered with ``rules_time_scale`` and ``rules_scrape_interval``."""
    from otel_productapi.rules import RulesSettings, render_rules  # noqa: PLC0415 - pydantic

    settings = RulesSettings(rules_time_scale=time_scale, rules_scrape_interval=scrape_interval)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_rules(settings).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


class _Service:
    """A ``Process`` plus its folder; subclasses build the command line and the probe."""

    name = "service"
    ready_timeout = 60.0

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / self.name
        self.process: Process | None = None

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self: _S) -> _S:
        """Start it and wait until it is ready; returns ``self``."""
        if self.process is not None:
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        args, env = self._command()
        self.process = Process(self.name, args, log=self.dir / f"{self.name}.log", env=env)
        self.process.start()
        self.process.wait_ready(self._ready, self.ready_timeout)
        return self

    def stop(self) -> None:
        """Stop its process group. Safe twice."""
        if self.process is not None:
            self.process.stop()

    def log(self) -> str:
        """What it printed so far."""
        return self.process.output() if self.process is not None else ""

    def describe(self) -> str:
        """Its command line and log tail, for failure messages."""
        return self.process.describe() if self.process is not None else ""

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Jaeger(_Service):
    """Jaeger v2 with in-memory storage: OTLP/gRPC in, its HTTP query API out."""

    name = "jaeger"

    def __init__(self, workdir: Path, *, binary: Path | None = None) -> None:
        super().__init__(workdir)
        self.binary = binary or tool_path("jaeger")
        self.otlp_grpc_port = free_port()
        self.query_port = free_port()
        self.query_grpc_port = free_port()

    @property
    def otlp_grpc_endpoint(self) -> str:
        """``host:port`` of its OTLP/gRPC receiver."""
        return f"127.0.0.1:{self.otlp_grpc_port}"

    @property
    def url(self) -> str:
        """Its UI and HTTP query API (``/api/v3/...``)."""
        return f"http://127.0.0.1:{self.query_port}"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        config = {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query"],
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["batch"],
                        "exporters": ["jaeger_storage_exporter"],
                    }
                },
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}},
            },
            "extensions": {
                "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": 100000}}}},
                "jaeger_query": {
                    "storage": {"traces": "memstore"},
                    "http": {"endpoint": f"127.0.0.1:{self.query_port}"},
                    "grpc": {"endpoint": f"127.0.0.1:{self.query_grpc_port}"},
                },
            },
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": self.otlp_grpc_endpoint}}}},
            "processors": {"batch": {"timeout": "200ms"}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
        }
        path = _write_yaml(self.dir / "jaeger.yaml", config)
        return [str(self.binary), f"--config={path}"], None

    def _ready(self) -> bool:
        return port_open(self.otlp_grpc_port) and http_ok(f"{self.url}/api/v3/services")

    def services(self) -> list[str]:
        """Service names Jaeger has traces of."""
        services: list[str] = get_json(f"{self.url}/api/v3/services").get("services") or []
        return services

    def find_traces(
        self, service: str, *, lookback_seconds: float = 3600, num_traces: int = 1000
    ) -> list[dict[str, Any]]:
        """Spans of ``service``'s recent traces from ``/api/v3/traces``, as OTLP/JSON spans.

        Each span dict gets ``resource`` (its resource attributes, flattened by
        ``span_attributes``' rules).
        """
        import datetime as dt  # noqa: PLC0415

        now = dt.datetime.now(dt.timezone.utc)
        params = {
            "query.service_name": service,
            "query.start_time_min": (now - dt.timedelta(seconds=lookback_seconds)).isoformat(),
            "query.start_time_max": (now + dt.timedelta(seconds=60)).isoformat(),
            "query.num_traces": str(num_traces),
        }
        url = f"{self.url}/api/v3/traces?" + urllib.parse.urlencode(params)
        try:
            body = get_json(url)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # no trace yet
                return []
            raise
        spans: list[dict[str, Any]] = []
        for resource_spans in body.get("result", {}).get("resourceSpans", []):
            resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    spans.append({**span, "resource": resource})
        return spans


def span_attributes(span: dict[str, Any]) -> dict[str, Any]:
    """An OTLP/JSON span's attributes as a plain dict (``intValue`` strings made ints)."""
    return _attributes(span.get("attributes", []))


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP/JSON ``[{key, value: {stringValue|intValue|...}}]`` as a plain dict."""
    flat: dict[str, Any] = {}
    for pair in pairs:
        value = pair.get("value", {})
        if "stringValue" in value:
            flat[pair["key"]] = value["stringValue"]
        elif "intValue" in value:
            flat[pair["key"]] = int(value["intValue"])
        elif "boolValue" in value:
            flat[pair["key"]] = bool(value["boolValue"])
        elif "doubleValue" in value:
            flat[pair["key"]] = float(value["doubleValue"])
        else:
            flat[pair["key"]] = value
    return flat


class OtelCollector(_Service):
    """The OpenTelemetry Collector running ``examples/collector/otelcol-config.yaml``.

    The config is used unchanged: its ``${env:OTELCOL_*}`` addresses get local
    free ports (see ``environment``).

    Args:
        workdir: Folder for its log.
        jaeger_endpoint: ``host:port`` of Jaeger's OTLP/gRPC receiver.
        config: The config file; default: the shipped one.
    """

    name = "otelcol"

    def __init__(
        self,
        workdir: Path,
        *,
        jaeger_endpoint: str,
        config: Path | None = None,
        binary: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = binary or tool_path("otelcol")
        self.config = config or repository_file(COLLECTOR_CONFIG)
        self.jaeger_endpoint = jaeger_endpoint
        self.otlp_grpc_port = free_port()
        self.otlp_http_port = free_port()
        self.health_port = free_port()
        self.prometheus_port = free_port()
        self.telemetry_port = free_port()

    @property
    def environment(self) -> dict[str, str]:
        """The ``OTELCOL_*`` variables the shipped config reads, set to local addresses."""
        return {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.otlp_grpc_port}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.otlp_http_port}",
            "OTELCOL_HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{self.prometheus_port}",
            "OTELCOL_JAEGER_ENDPOINT": self.jaeger_endpoint,
            "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
            "OTELCOL_TELEMETRY_PORT": str(self.telemetry_port),
        }

    @property
    def endpoint(self) -> str:
        """OTLP/HTTP base URL apps export to (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def metrics_target(self) -> str:
        """``host:port`` of its prometheus exporter (what Prometheus scrapes)."""
        return f"127.0.0.1:{self.prometheus_port}"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        import os  # noqa: PLC0415

        env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
        return [str(self.binary), f"--config={self.config}"], {**env, **self.environment}

    def _ready(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.health_port}/") and port_open(self.otlp_http_port)


class Prometheus(_Service):
    """Prometheus (3, from ``scripts/build-tools``) with a given config and rule files.

    Args:
        workdir: Folder for its config, rules, data and log.
        config: The configuration (a parsed prometheus.yml); ``rule_files`` is
            replaced by the rendered rules when ``rules_time_scale`` is given.
        otlp_receiver: Also accept OTLP metrics on ``/api/v1/otlp/v1/metrics``.
        rules_time_scale: Render the shipped rules with this time scale...
        rules_scrape_interval: ...and this scrape (or push) interval.
        binary: Default: Prometheus 3 from the tools cache.
        port: The port to listen on; default: a free one.
    """

    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        *,
        config: dict[str, Any] | None = None,
        otlp_receiver: bool = False,
        rules_time_scale: float | None = None,
        rules_scrape_interval: str = "15s",
        binary: Path | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = binary or tool_path("prometheus")
        self.port = port or free_port()
        self.config: dict[str, Any] = dict(config or {})
        self.otlp_receiver = otlp_receiver
        self.rules_time_scale = rules_time_scale
        self.rules_scrape_interval = rules_scrape_interval

    @property
    def address(self) -> str:
        """``host:port`` it listens on."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Its UI and API base URL (the alerts page is ``/alerts``)."""
        return f"http://{self.address}"

    @property
    def otlp_metrics_endpoint(self) -> str:
        """``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` for apps pushing straight to it."""
        return f"{self.url}/api/v1/otlp/v1/metrics"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        config = dict(self.config)
        if self.rules_time_scale is not None:
            render_rule_files(
                self.dir / "rules",
                time_scale=self.rules_time_scale,
                scrape_interval=self.rules_scrape_interval,
            )
            config["rule_files"] = [str(self.dir / "rules" / "*.yml")]
        path = _write_yaml(self.dir / "prometheus.yml", config)
        args = [
            str(self.binary),
            f"--config.file={path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}",
        ]
        if self.otlp_receiver:
            args.append("--web.enable-otlp-receiver")
        return args, None

    def _ready(self) -> bool:
        return http_ok(f"{self.url}/-/ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = get_json(url)
        if body.get("status") != "success":
            raise RuntimeError(f"query failed: {expr}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The alerts named ``name`` Prometheus has pending or firing."""
        alerts: list[dict[str, Any]] = get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") == name]

    def alert_state(self, name: str) -> str:
        """``firing``, ``pending`` or ``""`` for the alert ``name``."""
        states = {a["state"] for a in self.alerts(name)}
        return "firing" if "firing" in states else ("pending" if states else "")


def alertmanager_binary() -> Path:
    """Debian's ``prometheus-alertmanager`` (or an ``alertmanager`` on PATH).

    Raises:
        ToolMissingError: Neither is installed (``scripts/test`` installs it).
    """
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ToolMissingError("Alertmanager is not installed: apt-get install prometheus-alertmanager")


class Alertmanager(_Service):
    """Alertmanager with ``examples/alertmanager.yml``, its webhooks sent to ``webhook_url``.

    Only the webhook host and the grouping delays (to ``group_wait``/``group_interval``)
    change; routes, receivers and inhibitions are the shipped ones.
    """

    name = "alertmanager"

    def __init__(
        self,
        workdir: Path,
        *,
        webhook_url: str,
        group_wait: str = "1s",
        group_interval: str = "2s",
        config: Path | None = None,
        binary: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = binary or alertmanager_binary()
        self.source = config or repository_file("examples/alertmanager.yml")
        self.webhook_url = webhook_url.rstrip("/")
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.port = free_port()

    @property
    def address(self) -> str:
        """``host:port`` it listens on (Prometheus' alerting target)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Its UI and API base URL."""
        return f"http://{self.address}"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        config = yaml.safe_load(self.source.read_text(encoding="utf-8"))
        config["route"].update(group_wait=self.group_wait, group_interval=self.group_interval)
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = self.webhook_url + urllib.parse.urlsplit(hook["url"]).path
        path = _write_yaml(self.dir / "alertmanager.yml", config)
        return [
            str(self.binary),
            f"--config.file={path}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ], None

    def _ready(self) -> bool:
        return http_ok(f"{self.url}/-/ready")

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """Active alerts named ``name`` (``/api/v2/alerts``)."""
        query = urllib.parse.urlencode({"filter": f'alertname="{name}"'})
        alerts: list[dict[str, Any]] = get_json(f"{self.url}/api/v2/alerts?{query}")
        return alerts


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook call from Alertmanager: the path it posted to and its JSON body."""

    path: str
    body: dict[str, Any]

    @property
    def status(self) -> str:
        """``firing`` or ``resolved``."""
        return str(self.body.get("status", ""))

    @property
    def alertnames(self) -> set[str]:
        """Names of the alerts in it."""
        return {str(a["labels"].get("alertname")) for a in self.body.get("alerts", [])}


class AlertWebhook(LoopbackServer):
    """An Alertmanager webhook receiver on 127.0.0.1 that keeps every notification."""

    _thread_name = "alert-webhook"

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._lock = threading.Lock()
        self._received: list[Notification] = []

    @property
    def url(self) -> str:
        """Base URL; Alertmanager posts to its paths (``/page``, ``/queue``)."""
        return f"http://127.0.0.1:{self.port}"

    def notifications(
        self, status: str | None = None, alert: str | None = None
    ) -> list[Notification]:
        """Notifications so far, optionally only one status and one alert name."""
        with self._lock:
            received = list(self._received)
        return [
            n
            for n in received
            if (status is None or n.status == status) and (alert is None or alert in n.alertnames)
        ]

    def _keep(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._received.append(Notification(path, body))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    webhook._keep(self.path, json.loads(self.rfile.read(length)))
                    status = 200
                except ValueError:
                    status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


class ReferenceStack:
    """``examples/collector/`` as processes: collector, Jaeger, Prometheus 3, Alertmanager.

    The collector runs the shipped config, Prometheus 3 the shipped
    prometheus.yml (targets made local) with the shipped rules, Alertmanager
    the shipped alertmanager.yml with its webhooks sent to ``webhook``. Every
    interval the rules assume (scrape, evaluation, the services' export) is
    ``RECOMMENDED_INTERVAL_S`` x ``time_scale``, rounded up to whole seconds:
    ``interval_s``. A context manager; constructing it raises
    ``ToolMissingError`` when a binary or example file is missing.
    """

    #: What ``scripts/build-tools`` must have built for it.
    TOOLS: Final = ("otelcol", "jaeger", "prometheus")

    def __init__(self, workdir: Path, *, time_scale: float = 1.0) -> None:
        missing = []
        for name in self.TOOLS:
            try:
                tool_path(name)
            except ToolMissingError:
                missing.append(name)
        if missing:
            raise ToolMissingError(
                f"not built: {', '.join(missing)}; run scripts/build-tools {' '.join(missing)}"
            )
        self.time_scale = time_scale
        self.interval_s = max(1, math.ceil(RECOMMENDED_INTERVAL_S * time_scale))
        webhook_port = free_port()
        self.webhook = AlertWebhook(port=webhook_port)
        self.alertmanager = Alertmanager(workdir, webhook_url=f"http://127.0.0.1:{webhook_port}")
        self.jaeger = Jaeger(workdir)
        self.collector = OtelCollector(workdir, jaeger_endpoint=self.jaeger.otlp_grpc_endpoint)
        port = free_port()
        self.prometheus = Prometheus(
            workdir,
            config=self._prometheus_config(f"127.0.0.1:{port}"),
            rules_time_scale=time_scale,
            rules_scrape_interval=f"{self.interval_s}s",
            port=port,
        )
        self._stack = contextlib.ExitStack()

    def _prometheus_config(self, own_address: str) -> dict[str, Any]:
        shipped = yaml.safe_load(
            repository_file("examples/collector/prometheus.yml").read_text(encoding="utf-8")
        )
        config: dict[str, Any] = local_targets(
            shipped,
            {
                "otel-collector:8889": self.collector.metrics_target,
                "alertmanager:9093": self.alertmanager.address,
                "localhost:9090": own_address,
            },
        )
        interval = f"{self.interval_s}s"
        config["global"].update(scrape_interval=interval, evaluation_interval=interval)
        return config

    @property
    def processes(self) -> list[Process]:
        """The running processes, for failure messages."""
        parts: list[_Service] = [self.jaeger, self.collector, self.prometheus, self.alertmanager]
        return [p.process for p in parts if p.process is not None]

    def start(self) -> ReferenceStack:
        """Start every part, each ready before the next; stop them all if one fails."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.webhook)
            for part in (self.alertmanager, self.jaeger, self.collector, self.prometheus):
                stack.enter_context(part)
            self._stack = stack.pop_all()
        return self

    def stop(self) -> None:
        """Stop every part. Safe twice."""
        self._stack.close()

    def __enter__(self) -> ReferenceStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
