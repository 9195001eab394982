"""The UTF-8 editions of the Alertmanager config and the Grafana dashboard.

They are generated from the classic ones by ``tests/utf8_examples.py``; the
live test runs them against Prometheus 3 and Alertmanager 0.31
(``tests/alerts/test_live_prometheus.py``). Here: they are current, every query parses
(promtool 3 for the UTF-8 dashboard, 2.42 for the classic one), and no classic
name is left behind.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import utf8_examples as utf8
import yaml

from otel_productapi.testing._tools import tool_path

GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$job": ".+", "$server_address": ".+"}
CLASSIC_NAMES = re.compile(
    r"\b(?:server_address|url_template|http_request_method|productapi_error_class|"
    r"productapi_client_requests_total|productapi_ratelimit_remaining|productapi_batch_items_total)\b"
)


def test_committed_utf8_examples_are_generated_from_the_classic_ones() -> None:
    """examples/alertmanager-utf8.yml and the UTF-8 dashboard are the generator's output."""
    for path, text in utf8.render().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run .venv/bin/python tests/utf8_examples.py"
        )


def test_promql_translation() -> None:
    """Selectors, bare metrics, matchers, by-lists and label_replace strings; $variables kept."""
    assert utf8.promql(
        'sum by (job, server_address) (rate(productapi_client_requests_total{job=~"$job", '
        'server_address=~"$server_address", productapi_error_class="rate_limited"}[5m]))'
    ) == (
        'sum by (job, "server.address") (rate({"productapi.client.requests_total", '
        'job=~"$job", "server.address"=~"$server_address", '
        '"productapi.error.class"="rate_limited"}[5m]))'
    )
    assert utf8.promql("productapi_ratelimit_limit > 0") == '{"productapi.ratelimit.limit"} > 0'
    assert utf8.promql('label_replace(x, "productapi_error_class", "a", "url_template", "")') == (
        'label_replace(x, "productapi.error.class", "a", "url.template", "")'
    )
    assert utf8.legend("{{job}} {{ url_template }}") == "{{job}} {{url.template}}"


def dashboard_queries(path: Path) -> list[str]:
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            metric, _ = variable["definition"].removeprefix("label_values(")[:-1].rsplit(", ", 1)
            exprs.append(metric)
    return [grafana(expr) for expr in exprs]


def grafana(expr: str) -> str:
    """The query as Grafana sends it, with the dashboard's "All" selections."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@pytest.mark.parametrize(
    ("dashboard", "major"), [(utf8.DASHBOARD, 2), (utf8.DASHBOARD_UTF8, 3)], ids=["classic", "utf8"]
)
def test_every_dashboard_query_parses(tmp_path: Path, dashboard: Path, major: int) -> None:
    """Each panel and variable query, as a recording rule, passes promtool check rules."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": expr}
                    for i, expr in enumerate(dashboard_queries(dashboard))
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    if major == 2:
        found = shutil.which("promtool")
        assert found is not None, "promtool not found: apt-get install prometheus"
        binary = found
    else:
        binary = str(tool_path("promtool"))
    result = subprocess.run(
        [binary, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules['groups'][0]['rules'])} rules found" in result.stdout


def test_no_classic_name_is_left_in_the_utf8_dashboard() -> None:
    """Queries, legends and variable queries use dotted names; only $server_address stays."""
    dashboard = json.loads(utf8.DASHBOARD_UTF8.read_text(encoding="utf-8"))
    texts = [
        value
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for value in (target["expr"], target.get("legendFormat", ""))
    ]
    texts += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    leftovers = [t for t in texts if CLASSIC_NAMES.search(t.replace("$server_address", ""))]
    assert leftovers == []
    classic = json.loads(utf8.DASHBOARD.read_text(encoding="utf-8"))
    assert [p["title"] for p in dashboard["panels"]] == [p["title"] for p in classic["panels"]]


def test_utf8_alertmanager_config_groups_and_inhibits_by_the_dotted_labels() -> None:
    """Only group_by and equal change; Alertmanager 0.25's amtool rejects it, as expected."""
    classic = yaml.safe_load(utf8.ALERTMANAGER.read_text(encoding="utf-8"))
    config = yaml.safe_load(utf8.ALERTMANAGER_UTF8.read_text(encoding="utf-8"))
    assert config["route"]["group_by"] == ["alertname", "job", "server.address"]
    assert {tuple(rule["equal"]) for rule in config["inhibit_rules"]} == {("job", "server.address")}
    for rule in classic["inhibit_rules"]:
        rule["equal"] = ["job", "server.address"]
    classic["route"]["group_by"] = ["alertname", "job", "server.address"]
    assert config == classic
    amtool = shutil.which("amtool")
    assert amtool is not None, "amtool not found: apt-get install prometheus-alertmanager"
    old = subprocess.run(
        [amtool, "check-config", str(utf8.ALERTMANAGER_UTF8)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert old.returncode != 0  # 0.25 predates UTF-8 label names; the live test runs 0.31
