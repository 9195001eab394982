"""The collector and compose examples agree with each other and with the repository.

Docker does not run here: these tests parse the files and cross-check every
port, path, mounted file, environment variable, service reference and image
version instead (tests/e2e/test_reference_stack.py runs the same configs as
local processes). The collector config takes its addresses from
``${env:NAME:-default}`` variables whose defaults are what compose runs.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from repo_paths import ROOT

from otel_productapi.testing.stack import (
    OtelCollector,
    alertmanager_binary,
    tool_path,
    tools_manifest,
)

HERE = ROOT / "examples" / "collector"
COMPOSE_FILE = HERE / "docker-compose.yml"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


COMPOSE: dict[str, Any] = _load(COMPOSE_FILE)
SERVICES: dict[str, Any] = COMPOSE["services"]
OTELCOL_FILE = HERE / "otelcol-config.yaml"
OTELCOL_TEXT = OTELCOL_FILE.read_text(encoding="utf-8")
#: ``${env:NAME:-default}`` (the collector's syntax); a default is required.
ENV_REFERENCE = re.compile(r"\$\{env:([A-Z0-9_]+)(?::-([^}]*))?\}")
#: The collector config as compose runs it: every variable at its default.
OTELCOL: dict[str, Any] = yaml.safe_load(
    ENV_REFERENCE.sub(lambda m: m.group(2) or "", OTELCOL_TEXT)
)


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


def test_every_collector_variable_has_a_compose_default_and_is_documented() -> None:
    """Each ${env:...} in the collector config has a default (compose sets none), is one the
    local runner sets, and is listed in the config's header and the examples README."""
    references = ENV_REFERENCE.findall(OTELCOL_TEXT)
    assert references
    names = {name for name, _default in references}
    assert all(default for _name, default in references), references
    assert "environment" not in SERVICES["otel-collector"]
    runner = OtelCollector(Path("unused"), jaeger_endpoint="127.0.0.1:1", binary=Path("unused"))
    assert set(runner.environment) == names
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    header = OTELCOL_TEXT.split("\nextensions:", 1)[0]
    for name in names:
        assert name in header, name
        assert f"`{name}`" in readme, name


def test_otlp_receiver_ports_are_published() -> None:
    """The OTLP gRPC and HTTP receiver ports are the ones compose publishes."""
    protocols = OTELCOL["receivers"]["otlp"]["protocols"]
    ports = _container_ports("otel-collector")
    assert _port_of(protocols["grpc"]["endpoint"]) == 4317 in ports
    assert _port_of(protocols["http"]["endpoint"]) == 4318 in ports
    assert _port_of(OTELCOL["extensions"]["health_check"]["endpoint"]) in ports


def test_trace_exporter_reaches_jaeger() -> None:
    """The OTLP/gRPC trace exporter points at the jaeger service's OTLP gRPC port."""
    exporters = OTELCOL["service"]["pipelines"]["traces"]["exporters"]
    otlp = [e for e in exporters if e.split("/")[0] == "otlp_grpc"]
    assert otlp == ["otlp_grpc/jaeger"]
    endpoint = OTELCOL["exporters"]["otlp_grpc/jaeger"]["endpoint"]
    _assert_service_port(endpoint)
    assert endpoint == "jaeger:4317"
    assert "debug" in exporters


def test_no_deprecated_component_or_option() -> None:
    """No `otlp` exporter alias, no resource_to_telemetry_conversion, no add_metric_suffixes
    (deprecated in the collector release scripts/tools.txt pins)."""
    assert not [name for name in OTELCOL["exporters"] if name.split("/")[0] == "otlp"]
    for deprecated in ("resource_to_telemetry_conversion", "add_metric_suffixes"):
        assert deprecated not in OTELCOL_TEXT.replace(f"# {deprecated}", "")


def test_metrics_go_to_prometheus_with_classic_names() -> None:
    """Metrics are exposed by the prometheus exporter with the names the rules query."""
    assert "prometheus" in OTELCOL["service"]["pipelines"]["metrics"]["exporters"]
    exporter = OTELCOL["exporters"]["prometheus"]
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert _port_of(exporter["endpoint"]) in _container_ports("otel-collector")


def _otelcol(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool_path("otelcol")), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_otelcol_validate_passes_with_compose_and_local_addresses() -> None:
    """`otelcol validate` accepts the shipped config as compose runs it and as the tests do."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    compose = _otelcol("validate", f"--config={OTELCOL_FILE}", env=plain)
    assert compose.returncode == 0, compose.stderr
    runner = OtelCollector(Path("unused"), jaeger_endpoint="127.0.0.1:4317")
    local = _otelcol("validate", f"--config={OTELCOL_FILE}", env={**plain, **runner.environment})
    assert local.returncode == 0, local.stderr


def test_the_built_collector_has_exactly_the_configs_components() -> None:
    """scripts/build-tools' collector has the components the config uses, and no others."""
    result = _otelcol("components")
    assert result.returncode == 0, result.stderr
    built = yaml.safe_load(result.stdout)
    for kind in ("receivers", "processors", "exporters", "extensions"):
        used = {name.split("/")[0] for name in OTELCOL[kind]}
        assert {c["name"] for c in built[kind]} == used, kind
    assert built["connectors"] == []


# --- images: the versions the tests run ---------------------------------------------------


def _image_tag(service: str) -> str:
    return str(SERVICES[service]["image"]).rsplit(":", 1)[1]


def test_images_are_the_versions_the_tests_build() -> None:
    """Compose pins the releases the tests run: those scripts/tools.txt builds (each
    project's own numbering) and Debian's Alertmanager."""
    versions = tools_manifest()
    # Core and the otelcol-contrib distribution share release numbers.
    assert _image_tag("otel-collector") == versions["otelcol"].removeprefix("v")
    # Prometheus' Go module v0.3MM.P is Prometheus 3.MM.P.
    major, minor, patch = versions["prometheus"].removeprefix("v").split(".")
    assert major == "0"
    assert _image_tag("prometheus") == f"v3.{int(minor) - 300}.{patch}"
    # Jaeger tags every release twice: v1.N.P (the Go module) and v2.(N-63).P (Jaeger v2).
    _, minor, patch = versions["jaeger"].removeprefix("v").split(".")
    assert _image_tag("jaeger") == f"2.{int(minor) - 63}.{patch}"
    # Alertmanager is not built (its UI needs npm): the tests run Debian's.
    banner = subprocess.run(
        [str(alertmanager_binary()), "--version"], capture_output=True, text=True, check=True
    )
    debian = re.search(r"version (\d+\.\d+\.\d+)", banner.stdout + banner.stderr)
    assert debian is not None, banner
    assert _image_tag("alertmanager") == f"v{debian.group(1)}"


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
