"""End to end with real parts: app → Prometheus (shipped rules) → Alertmanager → webhook.

Two stacks, each in one naming mode from end to end:

- ``prometheus-2``: Debian's Prometheus 2.42 scrapes the app (classic names),
  Debian's Alertmanager 0.25 runs ``examples/alertmanager.yml``, and the queries
  of ``examples/grafana/productapi-dashboard.json`` run against it;
- ``prometheus-3-utf8``: the app pushes OTLP to Prometheus 3's receiver
  (``NoUTF8EscapingWithSuffixes``: dotted names), the rules are rendered with
  ``PRODUCTAPI_OTEL_RULES_METRIC_NAMING=utf8``, Alertmanager 0.31 runs
  ``examples/alertmanager-utf8.yml``, and the queries of
  ``examples/grafana/productapi-dashboard-utf8.json`` run against it.

Everything runs on 127.0.0.1 with free ports and temporary directories and is
stopped in fixture teardown. The rules are the shipped ones rendered with
``rules_time_scale=0.1`` (5m windows become 30s), samples arrive and rules are
evaluated every second, and the configurations are the ones in ``examples/``
with only ports, paths and timings changed. Each test drives a 429 storm (one
page, from the endpoint alert; the service-wide alert is inhibited), then an
unreachable API (the simulated API is stopped, then started again).
"""

from __future__ import annotations

import functools
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from repo_paths import ROOT

from otel_productapi.rules import RulesSettings, render_rules
from otel_productapi.testing import FakeProductApi
from otel_productapi.testing._tools import tool_path

LIVE_APP = Path(__file__).with_name("live_app.py")
EXAMPLES = ROOT / "examples"
TIME_SCALE = 0.1
#: Grafana's variables, as the dashboard's "All" selection and a rate window of 10 samples.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$job": ".+", "$server_address": ".+"}

T = TypeVar("T")


@dataclass(frozen=True)
class Mode:
    """One stack: which Prometheus, how metrics get there, which names, which examples."""

    name: str
    utf8: bool
    alertmanager_config: Path
    dashboard: Path

    def label(self, classic: str) -> str:
        """A label name as the alerts and series carry it in this mode."""
        dotted = {"server_address": "server.address", "url_template": "url.template"}
        return dotted.get(classic, classic) if self.utf8 else classic


MODES = (
    Mode(
        "prometheus-2",
        False,
        EXAMPLES / "alertmanager.yml",
        EXAMPLES / "grafana" / "productapi-dashboard.json",
    ),
    Mode(
        "prometheus-3-utf8",
        True,
        EXAMPLES / "alertmanager-utf8.yml",
        EXAMPLES / "grafana" / "productapi-dashboard-utf8.json",
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float, logs: Callable[[], str]
) -> T:
    """Poll ``probe`` every 0.25s until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = probe()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{logs()}")


@dataclass
class Webhook:
    """A local Alertmanager webhook receiver: records every notification."""

    server: ThreadingHTTPServer
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def notifications(self, status: str, alertname: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (path, body)
            for path, body in list(self.received)
            if body["status"] == status and body["groupLabels"].get("alertname") == alertname
        ]

    def paged(self) -> set[str]:
        """The alert names that reached the pager receiver."""
        return {
            body["groupLabels"].get("alertname", "")
            for path, body in list(self.received)
            if path == "/page"
        }


def start_webhook() -> Webhook:
    received: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Webhook(server, received)


@dataclass
class Stack:
    mode: Mode
    api: FakeProductApi
    api_port: int
    webhook: Webhook
    prometheus: str
    alertmanager: str
    logs: Callable[[], str]
    exits: ExitStack


def start_process(stack: ExitStack, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process whose output goes to ``log``; always terminated on teardown."""
    handle = stack.enter_context(log.open("wb"))
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, cwd=log.parent)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    stack.callback(stop)
    return process


def binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"none of {names} on PATH: apt-get install prometheus prometheus-alertmanager")


def binaries(mode: Mode) -> tuple[str, str]:
    """Prometheus and Alertmanager: Debian's for Prometheus 2, scripts/build-tools' for 3."""
    if mode.utf8:
        return str(tool_path("prometheus")), str(tool_path("alertmanager"))
    return binary("prometheus"), binary("prometheus-alertmanager", "alertmanager")


@pytest.fixture(params=MODES, ids=[mode.name for mode in MODES])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    mode: Mode = request.param
    prometheus_bin, alertmanager_bin = binaries(mode)
    with ExitStack() as stack:
        log_files: list[Path] = []

        def logs() -> str:
            return "\n".join(
                f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
                for path in log_files
            )

        webhook = start_webhook()
        stack.callback(webhook.server.server_close)
        stack.callback(webhook.server.shutdown)
        api = FakeProductApi().start()
        stack.callback(api.stop)
        api_port = api.port

        # Alertmanager: the example config, webhooks pointed at our receiver, fast timings.
        am_config = yaml.safe_load(mode.alertmanager_config.read_text(encoding="utf-8"))
        am_config["route"].update(group_wait="1s", group_interval="2s")
        for receiver in am_config["receivers"]:
            for hook in receiver["webhook_configs"]:
                hook["url"] = webhook.url + urllib.parse.urlsplit(hook["url"]).path
        am_dir = tmp_path / "alertmanager"
        am_dir.mkdir()
        (am_dir / "alertmanager.yml").write_text(yaml.safe_dump(am_config), encoding="utf-8")
        am_port = free_port()
        log_files.append(am_dir / "alertmanager.log")
        start_process(
            stack,
            [
                alertmanager_bin,
                "--config.file=alertmanager.yml",
                f"--storage.path={am_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            log_files[-1],
        )

        # Prometheus: examples/prometheus.yml with the rules rendered at 1/10 time scale.
        prom_dir = tmp_path / "prometheus"
        (prom_dir / "rules").mkdir(parents=True)
        settings = RulesSettings(
            rules_time_scale=TIME_SCALE,
            rules_scrape_interval="1s",
            rules_metric_naming="utf8" if mode.utf8 else "classic",
        )
        for name, text in render_rules(settings).items():
            (prom_dir / "rules" / name).write_text(text, encoding="utf-8")
        config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text(encoding="utf-8"))
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = ["rules/*.rules.yml"]
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
            f"127.0.0.1:{am_port}"
        ]
        prom_port = free_port()
        prometheus = f"http://127.0.0.1:{prom_port}"

        # The instrumented app, calling the fake Product API: scraped, or pushing OTLP.
        app_args = [sys.executable, str(LIVE_APP), "--api-url", api.url]
        if mode.utf8:
            app_args += ["--otlp-endpoint", f"{prometheus}/api/v1/otlp/v1/metrics"]
        app_log = tmp_path / "app.log"
        app = subprocess.Popen(
            app_args,
            stdout=subprocess.PIPE,
            stderr=stack.enter_context(app_log.open("wb")),
            text=True,
        )

        def stop_app() -> None:
            app.terminate()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait(timeout=10)
            if app.stdout is not None:
                app.stdout.close()

        stack.callback(stop_app)
        log_files.append(app_log)
        assert app.stdout is not None
        line = app.stdout.readline()
        prom_args = [
            prometheus_bin,
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        if mode.utf8:
            assert line.startswith("otlp="), line + logs()
            # What the OTLP receiver needs: its flag, and names kept as OpenTelemetry sends them.
            config["scrape_configs"] = []
            config["otlp"] = {"translation_strategy": "NoUTF8EscapingWithSuffixes"}
            prom_args.append("--web.enable-otlp-receiver")
        else:
            assert line.startswith("metrics_port="), line + logs()
            metrics_port = int(line.strip().split("=", 1)[1])
            config["scrape_configs"][0]["static_configs"][0]["targets"] = [
                f"127.0.0.1:{metrics_port}"
            ]
        (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        log_files.append(prom_dir / "prometheus.log")
        start_process(stack, prom_args, log_files[-1])
        alertmanager = f"http://127.0.0.1:{am_port}"
        for url in (prometheus, alertmanager):
            wait_for(f"{url}/-/ready", functools.partial(_ready, url), 30, logs)
        yield Stack(mode, api, api_port, webhook, prometheus, alertmanager, logs, stack)


def _ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
        return bool(response.status == 200)


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """An instant query; fails the test on any Prometheus error."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        body = get_json(url)
    except urllib.error.HTTPError as exc:
        pytest.fail(f"query failed ({exc.code}): {expr}\n{exc.read().decode(errors='replace')}")
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def alerts_in_alertmanager(alertmanager: str, alertname: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = get_json(
        f"{alertmanager}/api/v2/alerts?"
        + urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
    )
    return alerts


def dashboard_panels_without_data(stack: Stack) -> set[str]:
    """Run every query of the mode's dashboard; the titles of the panels that returned nothing."""
    dashboard = json.loads(stack.mode.dashboard.read_text(encoding="utf-8"))
    empty = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if not query(stack.prometheus, grafana(target["expr"])):
                empty.add(panel["title"])
    for variable in dashboard["templating"]["list"][1:]:
        metric, label = variable["definition"].removeprefix("label_values(")[:-1].rsplit(", ", 1)
        url = f"{stack.prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": grafana(metric)}
        )
        assert get_json(url)["data"], variable["name"]
    return empty


def test_a_storm_pages_once_and_an_unreachable_api_pages_then_resolves(stack: Stack) -> None:
    """A live 429 storm pages once (the endpoint alert; the service-wide one is inhibited),
    every dashboard query runs, and it resolves; then the API stops answering: the
    unreachable page arrives, and resolves once the API is back."""
    mode, host = stack.mode, stack.mode.label("server_address")
    series = (
        '{"productapi.client.requests_total", job="checkout"}'
        if mode.utf8
        else ('productapi_client_requests_total{job="checkout"}')
    )
    wait_for("the app's first samples", lambda: query(stack.prometheus, series), 30, stack.logs)
    time.sleep(3)  # some healthy traffic first

    # --- a 429 storm on the app's one endpoint: one page -----------------------------
    stack.api.set_scenario("rate_limit_storm")
    storm_start = time.monotonic()
    path, page = wait_for(
        "the storm page at the webhook",
        lambda: next(
            iter(stack.webhook.notifications("firing", "ProductApiEndpointRateLimitStorm")), None
        ),
        60,
        stack.logs,
    )
    detected = time.monotonic() - storm_start
    assert path == "/page"  # severity=critical routes to the pager receiver
    assert page["receiver"] == "productapi-page"
    assert page["groupLabels"] == {
        "alertname": "ProductApiEndpointRateLimitStorm",
        "job": "checkout",
        host: "127.0.0.1",
    }
    (fired,) = page["alerts"]
    assert fired["labels"] == {
        "alertname": "ProductApiEndpointRateLimitStorm",
        "job": "checkout",
        host: "127.0.0.1",
        mode.label("url_template"): "/v1/projects/{project}/users/{user_id}",
        "severity": "critical",
    }
    assert fired["annotations"]["runbook_url"].endswith(
        "/alerts/runbook.md#productapiendpointratelimitstorm"
    )
    assert (
        "of checkout's calls to /v1/projects/{project}/users/{user_id} on 127.0.0.1"
        in (fired["annotations"]["description"])
    )
    # The service-wide storm fires too, but Alertmanager holds it back: one storm, one page.
    service = wait_for(
        "the service-wide storm in Alertmanager",
        lambda: alerts_in_alertmanager(stack.alertmanager, "ProductApiRateLimitStorm"),
        30,
        stack.logs,
    )
    assert service[0]["status"]["state"] == "suppressed"
    assert service[0]["status"]["inhibitedBy"]

    # Every dashboard query, against the live Prometheus mid-storm.
    empty = dashboard_panels_without_data(stack)
    # Retries, batches and transport errors do not happen in this phase.
    assert empty <= {"Batch items failed ratio", "Retries and budget refusals", "No response ratio"}

    stack.api.set_scenario("healthy")
    recovery_start = time.monotonic()
    wait_for(
        "the storm's resolved notification",
        lambda: stack.webhook.notifications("resolved", "ProductApiEndpointRateLimitStorm"),
        60,
        stack.logs,
    )
    storm_resolved = time.monotonic() - recovery_start
    assert stack.webhook.notifications("firing", "ProductApiRateLimitStorm") == []

    # --- the API stops answering: calls are refused -----------------------------------
    stack.api.stop()
    outage_start = time.monotonic()
    path, page = wait_for(
        "the unreachable page at the webhook",
        lambda: next(iter(stack.webhook.notifications("firing", "ProductApiUnreachable")), None),
        60,
        stack.logs,
    )
    unreachable_detected = time.monotonic() - outage_start
    assert path == "/page"
    (fired,) = page["alerts"]
    assert fired["labels"] == {
        "alertname": "ProductApiUnreachable",
        "job": "checkout",
        host: "127.0.0.1",
        "severity": "critical",
    }
    assert fired["annotations"]["runbook_url"].endswith("/alerts/runbook.md#productapiunreachable")
    assert "of checkout's calls to 127.0.0.1 got no response" in fired["annotations"]["description"]
    assert "No response ratio" not in dashboard_panels_without_data(stack)

    # Back on the same port: the alert resolves.
    stack.exits.callback(FakeProductApi(port=stack.api_port).start().stop)
    back = time.monotonic()
    wait_for(
        "the unreachable alert's resolved notification",
        lambda: stack.webhook.notifications("resolved", "ProductApiUnreachable"),
        60,
        stack.logs,
    )
    unreachable_resolved = time.monotonic() - back
    print(
        f"\nlive {mode.name}: storm paged after {detected:.1f}s, resolved {storm_resolved:.1f}s "
        f"after recovery; unreachable paged after {unreachable_detected:.1f}s, resolved "
        f"{unreachable_resolved:.1f}s after the API came back"
    )
    # Scaled by 1/10: promtool proves about 3-4 minutes for both, detection and reset.
    for seconds in (detected, storm_resolved, unreachable_detected, unreachable_resolved):
        assert seconds < 45
    # Nothing else paged: no service-wide storm, no 5xx or auth alert.
    assert stack.webhook.paged() == {
        "ProductApiEndpointRateLimitStorm",
        "ProductApiUnreachable",
    }
