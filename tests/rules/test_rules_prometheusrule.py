"""`otel-productapi rules --format prometheusrule`: a manifest the Prometheus Operator accepts.

The checks follow the ``monitoring.coreos.com/v1`` ``PrometheusRule`` CRD of
prometheus-operator (v0.66 and later, the first with ``keep_firing_for``): its
required fields, its duration patterns, and no field its structural schema
would prune. The rule groups inside are checked by promtool like the rule files.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_productapi.rules import RulesSettings, command, render_groups, render_prometheus_rule

#: The CRD's pattern for ``interval``, ``for``, ``keep_firing_for`` and ``query_offset``.
CRD_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
GROUP_FIELDS = {"name", "interval", "labels", "limit", "partial_response_strategy", "query_offset"}
GROUP_FIELDS |= {"rules"}
RULE_FIELDS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def string_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def rule_problems(rule: dict[str, Any]) -> list[str]:
    """What the CRD's ``Rule`` schema would reject or prune in one rule."""
    label = rule.get("alert") or rule.get("record")
    problems = []
    if not isinstance(rule.get("expr"), (str, int)):
        problems.append(f"{label}: expr is required")
    if ("alert" in rule) == ("record" in rule):
        problems.append(f"{label}: exactly one of alert and record")
    if set(rule) - RULE_FIELDS:
        problems.append(f"{label}: unknown fields {set(rule) - RULE_FIELDS}")
    for key in ("for", "keep_firing_for"):
        if key in rule and not (rule[key] and CRD_DURATION.match(rule[key])):
            problems.append(f"{label}: {key} {rule[key]!r}")
    for key in ("labels", "annotations"):
        if key in rule and not string_map(rule[key]):
            problems.append(f"{label}: {key} must map strings to strings")
    return problems


def crd_problems(manifest: dict[str, Any]) -> list[str]:
    """What the PrometheusRule CRD (or the API server) would reject or silently prune."""
    problems = []
    if manifest.get("apiVersion") != "monitoring.coreos.com/v1":
        problems.append("apiVersion")
    if manifest.get("kind") != "PrometheusRule":
        problems.append("kind")
    metadata = manifest.get("metadata", {})
    if not DNS_SUBDOMAIN.match(str(metadata.get("name", ""))):
        problems.append("metadata.name")
    if "labels" in metadata and not string_map(metadata["labels"]):
        problems.append("metadata.labels")
    if set(manifest) - {"apiVersion", "kind", "metadata", "spec"}:
        problems.append("top-level fields")
    spec = manifest.get("spec")
    if not isinstance(spec, dict) or set(spec) != {"groups"}:
        return [*problems, "spec (required) must hold groups only"]
    names = [group.get("name") for group in spec["groups"]]
    if len(set(names)) != len(names):
        problems.append("group names must be unique (list-map key)")
    for group in spec["groups"]:
        where = f"group {group.get('name')!r}"
        if not isinstance(group.get("name"), str) or not group["name"]:
            problems.append(f"{where}: name is required")
        if set(group) - GROUP_FIELDS:
            problems.append(f"{where}: unknown fields {set(group) - GROUP_FIELDS}")
        for rule in group.get("rules", []):
            problems += rule_problems(rule)
    return problems


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def test_the_manifest_meets_the_crd_and_holds_every_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format prometheusrule: name, namespace and labels as given; spec.groups are the rules."""
    argv = ["--format", "prometheusrule", "--name", "productapi-alerts"]
    argv += ["--namespace", "monitoring", "--label", "release=kube-prometheus-stack"]
    argv += ["--label", "app.kubernetes.io/part-of=checkout"]
    assert run_cli(argv) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert crd_problems(manifest) == []
    assert manifest["metadata"] == {
        "name": "productapi-alerts",
        "namespace": "monitoring",
        "labels": {"release": "kube-prometheus-stack", "app.kubernetes.io/part-of": "checkout"},
    }
    assert manifest["spec"]["groups"] == render_groups()
    # The same groups, as a rule file, load in Prometheus.
    rules = tmp_path / "spec.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}), encoding="utf-8")
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool not found: apt-get install prometheus"
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_checker_catches_what_the_crd_rejects() -> None:
    """The CRD check is not vacuous: a missing expr, a bad duration, a pruned field fail it."""
    manifest = yaml.safe_load(render_prometheus_rule(RulesSettings()))
    assert crd_problems(manifest) == []
    rule = manifest["spec"]["groups"][0]["rules"][-1]
    del rule["expr"]
    rule["for"] = "5 minutes"
    rule["keep_firing"] = "2m"
    manifest["spec"]["groups"].append({"name": manifest["spec"]["groups"][0]["name"]})
    alert = rule["alert"]
    assert crd_problems(manifest) == [
        "group names must be unique (list-map key)",
        f"{alert}: expr is required",
        f"{alert}: unknown fields {{'keep_firing'}}",
        f"{alert}: for '5 minutes'",
    ]


def test_defaults_name_the_manifest_and_leave_the_namespace_to_kubectl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without options: metadata.name otel-productapi, no namespace, no labels."""
    assert run_cli(["--format", "prometheusrule"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["metadata"] == {"name": "otel-productapi"}
    assert crd_problems(manifest) == []


def test_output_dir_writes_one_manifest(tmp_path: Path) -> None:
    """--format prometheusrule --output-dir DIR writes DIR/<name>.prometheusrule.yaml only."""
    assert run_cli(["--format", "prometheusrule", "--output-dir", str(tmp_path)]) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["otel-productapi.prometheusrule.yaml"]
    text = (tmp_path / "otel-productapi.prometheusrule.yaml").read_text(encoding="utf-8")
    assert text == render_prometheus_rule(RulesSettings())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "Product_API"], "--name 'Product_API' is not a Kubernetes object name"),
        (["--namespace", "a.b"], "--namespace 'a.b' is not a DNS-1123 label"),
        (["--label", "release"], "--label 'release' is not a Kubernetes label KEY=VALUE"),
        (["--label", "team=a b"], "--label 'team=a b' is not a Kubernetes label KEY=VALUE"),
    ],
    ids=["name", "namespace", "label-without-value", "label-value"],
)
def test_invalid_manifest_options_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A name, namespace or label Kubernetes would refuse is refused before rendering."""
    assert run_cli(["--format", "prometheusrule", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_manifest_options_need_the_prometheusrule_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--namespace without --format prometheusrule is a mistake, not silently ignored."""
    assert run_cli(["--namespace", "monitoring"]) == 2
    assert "need --format prometheusrule" in capsys.readouterr().err
