"""The alert rules: committed files, promtool checks and unit tests, rendered variants."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import alert_scenarios
import pytest
import yaml
from repo_paths import ROOT

from otel_productapi.rules import RULE_FILES, RulesSettings, command, render_groups, render_rules
from otel_productapi.rules.settings import parse_duration

ALERTS = ROOT / "alerts"
ALERT_NAMES = (
    "ProductApiRateLimitStorm",
    "ProductApiEndpointRateLimitStorm",
    "ProductApiServerErrorsPersistent",
    "ProductApiAuthFailures",
    "ProductApiUnreachable",
    "ProductApiRateLimitNearlyExhausted",
    "ProductApiBatchItemsFailing",
    "ProductApiRetryBudgetExhausted",
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; it is a test dependency (scripts/test installs it), never skipped."""
    binary = shutil.which("promtool")
    assert binary is not None, "promtool not found: apt-get install prometheus"
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def all_rules(files: dict[str, str]) -> Iterator[dict[str, Any]]:
    for text in files.values():
        for group in yaml.safe_load(text)["groups"]:
            yield from group["rules"]


def alerts_by_name(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in all_rules(files) if "alert" in rule}


@pytest.fixture(autouse=True)
def _no_rules_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the developer's environment."""
    import os

    for name in list(os.environ):
        if name.startswith("PRODUCTAPI_OTEL_RULES_"):
            monkeypatch.delenv(name)


# --- the committed files ----------------------------------------------------------


def test_committed_rule_files_are_the_rendered_defaults() -> None:
    """alerts/*.rules.yml are render_rules() byte for byte: regenerate, never hand-edit."""
    rendered = render_rules()
    committed = {path.name: path.read_text(encoding="utf-8") for path in ALERTS.glob("*.rules.yml")}
    assert committed == rendered


def test_promtool_check_rules_accepts_the_committed_files() -> None:
    """promtool check rules: the shipped files load in Prometheus as they are."""
    assert_ok(promtool("check", "rules", *(ALERTS / name for name in RULE_FILES)))


def test_every_alert_has_severity_annotations_and_a_runbook_section() -> None:
    """severity, summary, description (job, host, value) and runbook_url anchored in runbook.md."""
    runbook = (ALERTS / "runbook.md").read_text(encoding="utf-8")
    alerts = alerts_by_name(render_rules())
    assert sorted(alerts) == sorted(ALERT_NAMES)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}
        assert "{{ $labels.job }}" in annotations["description"]
        assert "{{ $labels.server_address }}" in annotations["description"]
        assert "{{ $value" in annotations["description"]
        assert annotations["runbook_url"] == (
            "https://github.com/otel-productapi/otel-productapi/blob/main/alerts/runbook.md#"
            + name.lower()
        )
        assert f"\n## {name}\n" in runbook
        assert parse_duration(rule["keep_firing_for"]) > 0


def test_recording_rules_follow_level_metric_operations() -> None:
    """Recording rules are named level:metric:operations (kubernetes-mixin style)."""
    for rule in all_rules(render_rules()):
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:productapi_[a-z_]+:[a-z0-9_]+", rule["record"])


def test_alerts_aggregate_by_service_and_host() -> None:
    """Every request-based alert sums by (job, server_address): one alert per service and host."""
    for rule in all_rules(render_rules()):
        for match in re.finditer(r"\b(?:sum|min) by \(([^)]*)\)", rule["expr"]):
            assert match.group(1).split(", ")[:2] == ["job", "server_address"]


# --- rendered variants --------------------------------------------------------------


def write_rules(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def adapt_tests(directory: Path, *, matcher_labels: str, severities: dict[str, str]) -> None:
    """The scenarios' promtool tests (Prometheus 2, 15 s) into ``directory/tests``, against
    the rules in ``directory``, with labels added to the input series and expected
    severities renamed, so the same scenarios run against a rendered variant."""
    tests_dir = directory / "tests"
    tests_dir.mkdir()
    for scenario in alert_scenarios.scenarios():
        text = alert_scenarios.render_file(
            scenario, alert_scenarios.VARIANTS[0], rules_dir=str(directory)
        )
        text = re.sub(r"(series: '[a-z_]+\{)", rf"\g<1>{matcher_labels}, ", text)
        for old, new in severities.items():
            text = text.replace(f"severity: {old}", f"severity: {new}")
            text = text.replace(f'severity="{old}"', f'severity="{new}"')
        (tests_dir / scenario.name).write_text(text, encoding="utf-8")


def test_matchers_and_severities_variant_passes_check_and_the_same_unit_tests(
    tmp_path: Path,
) -> None:
    """env="prod" and custom severities render rules that pass the same promtool scenarios."""
    settings = RulesSettings(
        rules_extra_matchers='env="prod", region=~"eu-.*"',
        rules_storm_severity="page",
        rules_server_errors_severity="page",
        rules_auth_severity="page",
        rules_unreachable_severity="page",
        rules_ratelimit_severity="ticket",
        rules_batch_severity="ticket",
        rules_retry_budget_severity="ticket",
    )
    files = render_rules(settings)
    for rule in all_rules(files):
        for selector in re.findall(
            r"productapi_[a-z_]+(?:_total|remaining|limit)\{[^}]*\}|"
            r"productapi_[a-z_]+_total\[",
            rule["expr"],
        ):
            assert 'env="prod", region=~"eu-.*"' in selector, selector
    write_rules(tmp_path, files)
    assert_ok(promtool("check", "rules", *(tmp_path / name for name in RULE_FILES)))
    adapt_tests(
        tmp_path,
        matcher_labels='env="prod", region="eu-west-1"',
        severities={"critical": "page", "warning": "ticket"},
    )
    assert_ok(promtool("test", "rules", *sorted((tmp_path / "tests").glob("*.yml"))))


def test_the_extra_matchers_exclude_other_environments(tmp_path: Path) -> None:
    """With env="prod", a storm in env="staging" does not page."""
    write_rules(tmp_path, render_rules(RulesSettings(rules_extra_matchers='env="prod"')))
    adapt_tests(tmp_path, matcher_labels='env="staging"', severities={})
    result = promtool("test", "rules", tmp_path / "tests" / "rate-limit-storm.yml")
    assert result.returncode != 0
    assert "exp:[" in result.stdout + result.stderr


STORM_TEST = """
rule_files: [{rules}]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'productapi_client_requests_total{{{service}, http_response_status_code="200"}}'
        values: '0+120x40 {ok}'
      - series: 'productapi_client_requests_total{{{service}, {limited_labels}}}'
        values: '0x40 {limited}'
    alert_rule_test:
      - eval_time: 25m
        alertname: ProductApiRateLimitStorm
        exp_alerts: {expected}
"""


@pytest.mark.parametrize(
    ("expected", "ok", "limited"),
    [
        ("[]", "4875+75x79", "75+75x79"),  # half the calls: below a 60% threshold
        (
            "[{exp_labels: {severity: critical, job: checkout, server_address: api.example.com},"
            " exp_annotations: {summary: \"The Product API is rejecting a service's calls with"
            ' 429 Too Many Requests.", description: "92.5% of checkout\'s calls to'
            " api.example.com got 429 Too Many Requests over the last 5m (and more than 60%"
            ' over the last 3m).", runbook_url: "https://github.com/otel-productapi/'
            'otel-productapi/blob/main/alerts/runbook.md#productapiratelimitstorm"}}]',
            "4809+9x79",
            "111+111x79",
        ),  # 92.5% of the calls
    ],
    ids=["half-429-silent", "most-429-fires"],
)
def test_a_custom_threshold_changes_what_pages(
    tmp_path: Path, expected: str, ok: str, limited: str
) -> None:
    """PRODUCTAPI_OTEL_RULES_STORM_THRESHOLD=0.6: a 50% storm is silent, a 92% storm pages."""
    write_rules(tmp_path, render_rules(RulesSettings(rules_storm_threshold=0.6)))
    test = tmp_path / "storm.yml"
    test.write_text(
        STORM_TEST.format(
            rules=RULE_FILES[0],
            service='job="checkout", server_address="api.example.com"',
            limited_labels='http_response_status_code="429", productapi_error_class="rate_limited"',
            ok=ok,
            limited=limited,
            expected=expected,
        ),
        encoding="utf-8",
    )
    result = promtool("test", "rules", test)
    assert result.returncode == 0, result.stdout + result.stderr


def test_time_scale_shrinks_every_duration_and_still_passes_check(tmp_path: Path) -> None:
    """time_scale 0.1 turns 5m into 30s and 3m into 18s; 0.001 rounds 1m up to 1s."""
    settings = RulesSettings(rules_time_scale=0.1, rules_scrape_interval="1s")
    files = render_rules(settings)
    storm = alerts_by_name(files)["ProductApiRateLimitStorm"]
    assert "ratio_rate30s > 0.25" in storm["expr"]
    assert "ratio_rate18s > 0.25" in storm["expr"]
    assert (storm["for"], storm["keep_firing_for"]) == ("6s", "12s")
    tiny = RulesSettings.model_construct(rules_time_scale=0.001)
    assert str(tiny.span("rules_storm_for", "1m")) == "1s"
    odd = RulesSettings.model_construct(rules_time_scale=0.15)
    assert str(odd.span("rules_server_errors_for", "3m")) == "27s"
    write_rules(tmp_path, files)
    assert_ok(promtool("check", "rules", *(tmp_path / name for name in RULE_FILES)))


def to_classic(text: str) -> str:
    """Undo the UTF-8 spelling: quoted dotted names back to underscores."""
    text = re.sub(r'\{"([a-z._]+)", ', lambda m: m.group(1).replace(".", "_") + "{", text)
    text = re.sub(r'\{"([a-z._]+)"\}', lambda m: m.group(1).replace(".", "_"), text)
    text = re.sub(
        r'index \$labels "([a-z._]+)"', lambda m: "$labels." + m.group(1).replace(".", "_"), text
    )
    return re.sub(r'"([a-z_]+\.[a-z._]+)"', lambda m: m.group(1).replace(".", "_"), text)


def test_utf8_naming_is_the_classic_rules_with_prometheus_3_names() -> None:
    """utf8 rules quote the dotted OTel names; spelled back, they equal the classic rules.

    Prometheus 2.42's promtool cannot parse quoted UTF-8 names (a Prometheus 3
    feature), so this variant is checked structurally: as YAML, by its names,
    and by equivalence with the classic rules that promtool does test.
    """
    matchers = 'env="prod"'
    utf8 = render_rules(RulesSettings(rules_metric_naming="utf8", rules_extra_matchers=matchers))
    classic = render_rules(RulesSettings(rules_extra_matchers=matchers))
    exprs = "\n".join(rule["expr"] for rule in all_rules(utf8))
    assert '{"productapi.client.requests_total", "productapi.error.class"="rate_limited", ' in exprs
    assert '{"productapi.ratelimit.remaining", env="prod"}' in exprs
    assert '{"productapi.batch.items_total", outcome="failed", env="prod"}' in exprs
    assert '{"productapi.client.retry_budget.refusals_total", env="prod"}' in exprs
    assert 'sum by (job, "server.address")' in exprs
    assert "productapi_client_requests_total" not in exprs
    descriptions = [rule["annotations"]["description"] for rule in alerts_by_name(utf8).values()]
    assert all('{{ index $labels "server.address" }}' in text for text in descriptions)
    assert {name: to_classic(text) for name, text in utf8.items()} == classic


def test_utf8_naming_accepts_quoted_label_names_in_matchers() -> None:
    """Dotted resource attributes can be matched in utf8 mode."""
    files = render_rules(
        RulesSettings(
            rules_metric_naming="utf8", rules_extra_matchers='"deployment.environment"="prod"'
        )
    )
    assert '"deployment.environment"="prod"' in files[RULE_FILES[0]]


# --- the command line and settings errors --------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def test_rules_command_prints_one_rule_file_that_promtool_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otel-productapi rules` prints one YAML document holding every group; promtool loads it."""
    assert run_cli([]) == 0
    out = capsys.readouterr().out
    documents = list(yaml.safe_load_all(out))
    assert len(documents) == 1
    assert documents[0] == {"groups": render_groups()}
    assert [group["name"] for group in documents[0]["groups"]] == [
        "productapi-requests",
        "productapi-ratelimit",
        "productapi-batch",
    ]
    printed = tmp_path / "productapi.rules.yml"
    printed.write_text(out, encoding="utf-8")
    result = promtool("check", "rules", printed)
    assert_ok(result)
    rule_count = sum(len(group["rules"]) for group in render_groups())
    assert f"SUCCESS: {rule_count} rules found" in result.stdout


def test_rules_command_output_dir_regenerates_the_committed_files(tmp_path: Path) -> None:
    """`otel-productapi rules --output-dir alerts` writes exactly the committed files."""
    assert run_cli(["--output-dir", str(tmp_path / "out")]) == 0
    for name in RULE_FILES:
        assert (tmp_path / "out" / name).read_bytes() == (ALERTS / name).read_bytes()


def test_console_script_entry_regenerates_the_committed_files(tmp_path: Path) -> None:
    """`otel-productapi rules --output-dir DIR` through the real command line."""
    from otel_productapi import cli

    assert cli.main(["rules", "--output-dir", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(RULE_FILES)
    for name in RULE_FILES:
        assert (tmp_path / name).read_bytes() == (ALERTS / name).read_bytes()


def test_rules_command_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """PRODUCTAPI_OTEL_RULES_* variables change the printed rules."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_RULES_EXTRA_MATCHERS", 'env="prod"')
    monkeypatch.setenv("PRODUCTAPI_OTEL_RULES_STORM_SEVERITY", "page")
    monkeypatch.setenv(
        "PRODUCTAPI_OTEL_RULES_RUNBOOK_URL", "https://runbooks.example.com/productapi"
    )
    assert run_cli([]) == 0
    out = capsys.readouterr().out
    assert (
        'productapi_client_requests_total{productapi_error_class="rate_limited", env="prod"}' in out
    )
    assert "severity: page" in out
    assert "runbook_url: https://runbooks.example.com/productapi#productapiratelimitstorm" in out


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PRODUCTAPI_OTEL_RULES_STORM_LONG_WINDOW", "5 minutes", "not a Prometheus duration"),
        ("PRODUCTAPI_OTEL_RULES_STORM_SHORT_WINDOW", "10m", "must be shorter than"),
        ("PRODUCTAPI_OTEL_RULES_STORM_THRESHOLD", "1.5", "less than 1"),
        ("PRODUCTAPI_OTEL_RULES_STORM_SEVERITY", "pa ge", "severity"),
        ("PRODUCTAPI_OTEL_RULES_EXTRA_MATCHERS", "env=prod", "cannot parse label matchers"),
        ("PRODUCTAPI_OTEL_RULES_EXTRA_MATCHERS", 'env=~"(prod"', "invalid regex"),
        ("PRODUCTAPI_OTEL_RULES_EXTRA_MATCHERS", '"a.b"="x"', "METRIC_NAMING=utf8"),
        ("PRODUCTAPI_OTEL_RULES_METRIC_NAMING", "dots", "classic"),
        ("PRODUCTAPI_OTEL_RULES_TIME_SCALE", "0", "greater than 0"),
        ("PRODUCTAPI_OTEL_RULES_TIME_SCALE", "nan", "finite number (got 'nan')"),
        ("PRODUCTAPI_OTEL_RULES_MIN_REQUEST_RATE", "inf", "finite number (got 'inf')"),
        ("PRODUCTAPI_OTEL_RULES_SCRAPE_INTERVAL", "2m", "must span at least 3 samples"),
        ("PRODUCTAPI_OTEL_RULES_UNREACHABLE_OUTAGE_THRESHOLD", "0.01", "must be above"),
        ("PRODUCTAPI_OTEL_RULES_RUNBOOK_URL", "runbook.md", "http(s) URL"),
    ],
    ids=[
        "duration",
        "short-not-shorter",
        "threshold-range",
        "severity",
        "matcher-syntax",
        "matcher-regex",
        "quoted-name-classic",
        "naming",
        "time-scale",
        "time-scale-nan",
        "min-rate-inf",
        "window-vs-scrape",
        "outage-below-share",
        "runbook-url",
    ],
)
def test_bad_settings_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    """A bad setting prints which variable is wrong and why, and exits 2."""
    monkeypatch.setenv(variable, value)
    assert run_cli([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert variable in captured.err
    assert message in captured.err


def test_time_scale_too_small_for_the_scrape_interval_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scaled windows must still span 4 scrapes, or rate() would silently return nothing."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_RULES_TIME_SCALE", "0.02")
    assert run_cli([]) == 2
    err = capsys.readouterr().err
    assert "PRODUCTAPI_OTEL_RULES_STORM_LONG_WINDOW=5m (after time scale: 6s)" in err


# --- examples -------------------------------------------------------------------------

EXAMPLES = ROOT / "examples"


def test_example_prometheus_config_loads_the_shipped_rules() -> None:
    """promtool check config examples/prometheus.yml (which also checks ../alerts/*.rules.yml)."""
    result = promtool("check", "config", EXAMPLES / "prometheus.yml")
    assert_ok(result)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout
    for name in RULE_FILES:
        assert f"alerts/{name}" in result.stdout


def test_example_alertmanager_config_is_valid() -> None:
    """amtool check-config examples/alertmanager.yml; critical pages, warning queues."""
    amtool = shutil.which("amtool")
    assert amtool is not None, "amtool not found: apt-get install prometheus-alertmanager"
    result = subprocess.run(
        [amtool, "check-config", str(EXAMPLES / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_ok(result)
    config = yaml.safe_load((EXAMPLES / "alertmanager.yml").read_text(encoding="utf-8"))
    assert config["route"]["group_by"] == ["alertname", "job", "server_address"]
    assert config["route"]["routes"][0]["matchers"] == ['severity="critical"']


def test_dashboard_has_the_panels_operators_need() -> None:
    """The Grafana dashboard: outcome rate, 429, 5xx and no-response ratios, quota left, routes."""
    import json

    dashboard = json.loads((EXAMPLES / "grafana" / "productapi-dashboard.json").read_text("utf-8"))
    titles = [panel["title"] for panel in dashboard["panels"]]
    for title in (
        "Requests by outcome",
        "429 ratio",
        "5xx ratio",
        "No response ratio",
        "Rate limit remaining",
        "Top failing routes",
    ):
        assert title in titles
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_every_scaled_duration_names_the_variable_it_came_from() -> None:
    """The typed per-alert settings: each window, for and keep_firing_for reads its own field."""
    from dataclasses import fields, is_dataclass

    from otel_productapi.rules.settings import Span, env_var

    settings = RulesSettings(rules_time_scale=2, rules_scrape_interval="1s")
    alerts = settings.alerts()
    spans: list[Span] = []
    for alert_field in fields(alerts):
        alert = getattr(alerts, alert_field.name)
        assert is_dataclass(alert)
        spans += [getattr(alert, f.name) for f in fields(alert) if f.type == "Span"]
    by_variable = {env_var(name): name for name in RulesSettings.model_fields}
    assert len(spans) == 32  # the endpoint storm shares the storm's four
    durations = {
        env_var(name)
        for name in RulesSettings.model_fields
        if name.endswith(("_window", "_for", "_persistence"))
    }
    assert {span.variable for span in spans} == durations
    for span in spans:
        value = getattr(settings, by_variable[span.variable])
        assert span.setting == value, span.variable
        assert span.seconds == 2 * parse_duration(value), span.variable
