"""End to end with real parts: app → Prometheus (shipped rules) → Alertmanager → webhook.

Everything runs on 127.0.0.1 with free ports and temporary directories, and
is stopped in fixture teardown. The rules are the shipped ones rendered with
``rules_time_scale=0.1`` (5m windows become 30s), Prometheus scrapes and
evaluates every second, and the configurations are the ones in ``examples/``
with only ports, paths and timings changed.
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

from otel_productapi.rules import RulesSettings, render_rules
from otel_productapi.testing import FakeProductApi

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DASHBOARD = EXAMPLES / "grafana" / "productapi-dashboard.json"
TIME_SCALE = 0.1
#: Grafana's variables, as the dashboard's "All" selection and a rate window of 10 scrapes.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$job": ".+", "$server_address": ".+"}

T = TypeVar("T")


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

    def notifications(self, status: str) -> list[tuple[str, dict[str, Any]]]:
        return [(path, body) for path, body in list(self.received) if body["status"] == status]


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
    api: FakeProductApi
    webhook: Webhook
    prometheus: str
    alertmanager: str
    logs: Callable[[], str]


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


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    prometheus_bin = binary("prometheus")
    alertmanager_bin = binary("prometheus-alertmanager", "alertmanager")
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
        api = stack.enter_context(FakeProductApi())

        # Alertmanager: examples/alertmanager.yml, webhooks pointed at our receiver, fast timings.
        am_config = yaml.safe_load((EXAMPLES / "alertmanager.yml").read_text(encoding="utf-8"))
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

        # The instrumented app, calling the fake Product API.
        app_log = tmp_path / "app.log"
        app = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "live_app.py"), "--api-url", api.url],
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
        assert line.startswith("metrics_port="), line + logs()
        metrics_port = int(line.strip().split("=", 1)[1])

        # Prometheus: examples/prometheus.yml with the rules rendered at 1/10 time scale.
        prom_dir = tmp_path / "prometheus"
        (prom_dir / "rules").mkdir(parents=True)
        settings = RulesSettings(rules_time_scale=TIME_SCALE, rules_scrape_interval="1s")
        for name, text in render_rules(settings).items():
            (prom_dir / "rules" / name).write_text(text, encoding="utf-8")
        config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text(encoding="utf-8"))
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = ["rules/*.rules.yml"]
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
            f"127.0.0.1:{am_port}"
        ]
        config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{metrics_port}"]
        (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        prom_port = free_port()
        log_files.append(prom_dir / "prometheus.log")
        start_process(
            stack,
            [
                prometheus_bin,
                "--config.file=prometheus.yml",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            log_files[-1],
        )
        prometheus = f"http://127.0.0.1:{prom_port}"
        alertmanager = f"http://127.0.0.1:{am_port}"
        for url in (prometheus, alertmanager):
            wait_for(f"{url}/-/ready", functools.partial(_ready, url), 30, logs)
        yield Stack(api, webhook, prometheus, alertmanager, logs)


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


def storm_alert(alertmanager: str) -> dict[str, Any] | None:
    alerts = get_json(
        f"{alertmanager}/api/v2/alerts?"
        + urllib.parse.urlencode({"filter": 'alertname="ProductApiRateLimitStorm"'})
    )
    return alerts[0] if alerts else None


def test_a_429_storm_pages_through_alertmanager_and_resolves(stack: Stack) -> None:
    """A live 429 storm fires ProductApiRateLimitStorm into Alertmanager and the webhook,
    every dashboard query runs, and the alert resolves once the storm ends."""
    wait_for(
        "the first scrape of the app",
        lambda: query(stack.prometheus, 'productapi_client_requests_total{job="checkout"}'),
        30,
        stack.logs,
    )
    time.sleep(3)  # some healthy traffic first
    stack.api.set_scenario("rate_limit_storm")
    storm_start = time.monotonic()

    alert = wait_for(
        "the storm alert in Alertmanager", lambda: storm_alert(stack.alertmanager), 60, stack.logs
    )
    detected = time.monotonic() - storm_start
    assert alert["labels"] == {
        "alertname": "ProductApiRateLimitStorm",
        "job": "checkout",
        "server_address": "127.0.0.1",
        "severity": "critical",
    }
    assert alert["annotations"]["runbook_url"].endswith(
        "/alerts/runbook.md#productapiratelimitstorm"
    )
    assert "of checkout's calls to 127.0.0.1 got 429" in alert["annotations"]["description"]
    assert alert["status"]["state"] == "active"

    path, notification = wait_for(
        "the page at the webhook",
        lambda: next(iter(stack.webhook.notifications("firing")), None),
        30,
        stack.logs,
    )
    assert path == "/page"  # severity=critical routes to the pager receiver
    assert notification["receiver"] == "productapi-page"
    assert notification["groupLabels"] == {
        "alertname": "ProductApiRateLimitStorm",
        "job": "checkout",
        "server_address": "127.0.0.1",
    }
    (fired,) = notification["alerts"]
    assert fired["labels"]["severity"] == "critical"
    assert fired["annotations"]["summary"].startswith("The Product API is rejecting")

    # Every dashboard query, against the live Prometheus mid-storm.
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if not query(stack.prometheus, grafana(target["expr"])):
                empty.append(panel["title"])
    # Retries and batches are not exercised by this app; everything else has data.
    assert set(empty) <= {"Batch items failed ratio", "Retries and budget refusals"}, empty
    for variable in dashboard["templating"]["list"][1:]:
        metric, label = variable["definition"].removeprefix("label_values(")[:-1].rsplit(", ", 1)
        url = f"{stack.prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": grafana(metric)}
        )
        assert get_json(url)["data"], variable["name"]

    # Healthy again: the alert resolves, and the webhook hears about it.
    stack.api.set_scenario("healthy")
    recovery_start = time.monotonic()
    wait_for(
        "the resolved notification",
        lambda: stack.webhook.notifications("resolved"),
        60,
        stack.logs,
    )
    resolved = time.monotonic() - recovery_start
    print(f"\nlive: storm paged after {detected:.1f}s, resolved {resolved:.1f}s after recovery")
    # Scaled by 1/10: promtool proves 3m15s (50% storm) and 2m45s; 100% storms are faster.
    assert detected < 40
    assert resolved < 40
