"""The collector and compose examples agree with each other and with the repository.

Docker does not run here: these tests parse the files and cross-check every
port, path, mounted file and service reference instead.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "examples" / "collector"
COMPOSE_FILE = HERE / "docker-compose.yml"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


COMPOSE: dict[str, Any] = _load(COMPOSE_FILE)
SERVICES: dict[str, Any] = COMPOSE["services"]
OTELCOL: dict[str, Any] = _load(HERE / "otelcol-config.yaml")


def _volumes(service: str) -> list[tuple[Path, PurePosixPath]]:
    """(host path, container path) of each bind mount."""
    mounts = []
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts.append(((COMPOSE_FILE.parent / source).resolve(), PurePosixPath(target)))
    return mounts


def _host_path(service: str, container_path: str) -> Path:
    """Where a path inside ``service``'s container comes from on the host."""
    wanted = PurePosixPath(container_path)
    for source, target in _volumes(service):
        if wanted == target:
            return source
        if target in wanted.parents:
            return source / wanted.relative_to(target)
    raise AssertionError(f"{service}: nothing mounted at {container_path}")


def _container_ports(service: str) -> set[int]:
    """Ports a service listens on, as declared by ``ports`` (container side) or ``expose``."""
    ports = {int(str(p).split(":")[-1].split("/")[0]) for p in SERVICES[service].get("ports", [])}
    ports |= {int(str(p)) for p in SERVICES[service].get("expose", [])}
    return ports


def _flag(service: str, name: str) -> str:
    command = SERVICES[service].get("command", [])
    for arg in command:
        if arg.startswith(f"{name}="):
            return str(arg.split("=", 1)[1])
    raise AssertionError(f"{service}: no {name}= in its command")


def _assert_service_port(target: str) -> None:
    host, port = target.rsplit(":", 1)
    assert host in SERVICES, f"{target}: no service {host!r}"
    assert int(port) in _container_ports(host), f"{target}: {host} does not declare port {port}"


def _port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


# --- docker-compose.yml ----------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_mounted_path_exists(service: str) -> None:
    """Each bind mount's source exists relative to the compose file."""
    for source, target in _volumes(service):
        assert source.exists(), f"{service}: {source} (mounted at {target}) does not exist"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_depends_on_names_services(service: str) -> None:
    """depends_on only names services defined in the file."""
    for dependency in SERVICES[service].get("depends_on", []):
        assert dependency in SERVICES


def test_published_ports_bind_loopback_and_do_not_clash() -> None:
    """Every published port is on 127.0.0.1 and no host port is published twice."""
    host_ports: list[int] = []
    for service in SERVICES.values():
        for mapping in service.get("ports", []):
            address, host_port, _container = str(mapping).split(":")
            assert address == "127.0.0.1", mapping
            host_ports.append(int(host_port))
    assert len(host_ports) == len(set(host_ports))


def test_config_flags_point_at_mounted_files() -> None:
    """Each service's --config(.file) flag names a file mounted from the repository."""
    collector = _host_path("otel-collector", _flag("otel-collector", "--config"))
    assert collector == HERE / "otelcol-config.yaml"
    prometheus = _host_path("prometheus", _flag("prometheus", "--config.file"))
    assert prometheus == HERE / "prometheus.yml"
    alertmanager = _host_path("alertmanager", _flag("alertmanager", "--config.file"))
    assert alertmanager.is_file()
    assert "route" in _load(alertmanager)


# --- otelcol-config.yaml -----------------------------------------------------------------


@pytest.mark.parametrize("pipeline", sorted(OTELCOL["service"]["pipelines"]))
def test_pipelines_reference_defined_components(pipeline: str) -> None:
    """Receivers, processors and exporters of each pipeline are defined."""
    spec = OTELCOL["service"]["pipelines"][pipeline]
    for kind in ("receivers", "processors", "exporters"):
        for name in spec.get(kind, []):
            assert name in OTELCOL[kind], f"{pipeline}: {kind[:-1]} {name} is not defined"


@pytest.mark.parametrize("pipeline", ["traces", "metrics"])
def test_memory_limiter_first_and_batch_last(pipeline: str) -> None:
    """memory_limiter comes first and batch last, as the collector docs recommend."""
    processors = OTELCOL["service"]["pipelines"][pipeline]["processors"]
    assert processors[0] == "memory_limiter"
    assert processors[-1] == "batch"


def test_extensions_are_defined() -> None:
    """Every enabled extension is configured."""
    for name in OTELCOL["service"].get("extensions", []):
        assert name in OTELCOL["extensions"]


def test_otlp_receiver_ports_are_published() -> None:
    """The OTLP gRPC and HTTP receiver ports are the ones compose publishes."""
    protocols = OTELCOL["receivers"]["otlp"]["protocols"]
    ports = _container_ports("otel-collector")
    assert _port_of(protocols["grpc"]["endpoint"]) == 4317 in ports
    assert _port_of(protocols["http"]["endpoint"]) == 4318 in ports
    assert _port_of(OTELCOL["extensions"]["health_check"]["endpoint"]) in ports


def test_trace_exporter_reaches_jaeger() -> None:
    """The OTLP trace exporter points at the jaeger service's OTLP gRPC port."""
    exporters = OTELCOL["service"]["pipelines"]["traces"]["exporters"]
    otlp = [e for e in exporters if e.split("/")[0] == "otlp"]
    assert otlp, "no OTLP exporter in the traces pipeline"
    for name in otlp:
        endpoint = OTELCOL["exporters"][name]["endpoint"]
        _assert_service_port(endpoint)
        assert endpoint.startswith("jaeger:")
    assert "debug" in exporters


def test_metrics_go_to_prometheus_with_resource_labels() -> None:
    """Metrics are exposed by the prometheus exporter, resource attributes as labels."""
    assert "prometheus" in OTELCOL["service"]["pipelines"]["metrics"]["exporters"]
    exporter = OTELCOL["exporters"]["prometheus"]
    assert exporter["resource_to_telemetry_conversion"]["enabled"] is True
    assert _port_of(exporter["endpoint"]) in _container_ports("otel-collector")


# --- prometheus.yml ----------------------------------------------------------------------

PROMETHEUS: dict[str, Any] = _load(HERE / "prometheus.yml")


def test_prometheus_scrapes_the_collectors_exporter() -> None:
    """A scrape target is the collector service on its prometheus exporter port."""
    targets = [
        target
        for job in PROMETHEUS["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    exporter_port = _port_of(OTELCOL["exporters"]["prometheus"]["endpoint"])
    assert f"otel-collector:{exporter_port}" in targets
    for target in targets:
        if not target.startswith("localhost:"):
            _assert_service_port(target)
    collector_job = next(
        job
        for job in PROMETHEUS["scrape_configs"]
        if f"otel-collector:{exporter_port}" in job["static_configs"][0]["targets"]
    )
    assert collector_job.get("honor_labels") is True


def test_prometheus_loads_the_shipped_rules() -> None:
    """rule_files, mapped through the mounts, match the files in alerts/."""
    loaded: set[Path] = set()
    for pattern in PROMETHEUS["rule_files"]:
        host_pattern = _host_path("prometheus", pattern)
        loaded |= {Path(p) for p in glob.glob(str(host_pattern))}
    shipped = {p.resolve() for p in (ROOT / "alerts").glob("*.rules.yml")}
    assert shipped, "no rule files in alerts/"
    assert shipped <= loaded
    for path in loaded:
        assert "groups" in _load(path), f"{path} is not a rule file"


def test_prometheus_sends_alerts_to_alertmanager() -> None:
    """The alerting target is the alertmanager service's port."""
    for manager in PROMETHEUS["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            for target in static["targets"]:
                _assert_service_port(target)
                assert target.startswith("alertmanager:")


# --- Grafana provisioning ----------------------------------------------------------------


def _provisioning(kind: str) -> list[dict[str, Any]]:
    directory = _host_path("grafana", f"/etc/grafana/provisioning/{kind}")
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    assert files, f"no {kind} provisioning files in {directory}"
    return [_load(f) for f in files]


def test_grafana_datasources_point_at_services() -> None:
    """Each provisioned data source URL is a service and port from the compose file."""
    for document in _provisioning("datasources"):
        for source in document["datasources"]:
            url = source["url"].removeprefix("http://")
            _assert_service_port(url)


def test_grafana_loads_the_dashboard() -> None:
    """The dashboards path holds productapi-dashboard.json; its data sources are provisioned."""
    uids = {
        source["uid"]
        for document in _provisioning("datasources")
        for source in document["datasources"]
    }
    types = {
        source["type"]
        for document in _provisioning("datasources")
        for source in document["datasources"]
    }
    for document in _provisioning("dashboards"):
        for provider in document["providers"]:
            folder = _host_path("grafana", provider["options"]["path"])
            dashboard = folder / "productapi-dashboard.json"
            assert dashboard.is_file(), f"{dashboard} is missing"
            for reference in _datasource_references(json.loads(dashboard.read_text())):
                uid = reference.get("uid", "")
                if uid and not uid.startswith("$"):
                    assert uid in uids, f"dashboard uses data source uid {uid!r}"
                if reference.get("type"):
                    assert reference["type"] in types | {"datasource", "grafana"}


def _datasource_references(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        reference = node.get("datasource")
        if isinstance(reference, dict):
            found.append(reference)
        for value in node.values():
            found += _datasource_references(value)
    elif isinstance(node, list):
        for value in node:
            found += _datasource_references(value)
    return found
