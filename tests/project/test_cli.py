"""The command line: every command listed, only the chosen one imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

#: Modules `otel-productapi rules` must not load: the demo, the SDK, requests.
HEAVY = ("otel_productapi.demo", "opentelemetry.sdk", "opentelemetry", "requests")

PROBE = """
import json, sys
from otel_productapi import cli
try:
    status = cli.main(sys.argv[1:])
except SystemExit as exc:  # --help and usage errors
    status = exc.code
roots = {"otel_productapi", "opentelemetry", "requests"}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in roots)
print(json.dumps({"status": status, "loaded": loaded}), file=sys.stderr)
"""


def run_cli(*args: str) -> tuple[int, str, list[str]]:
    """Run the command line in a fresh interpreter; its exit status, stdout and loaded modules."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    return report["status"], result.stdout, report["loaded"]


def test_rules_command_imports_neither_the_demo_nor_the_sdk(tmp_path: Path) -> None:
    """`otel-productapi rules` loads no demo, no opentelemetry (SDK or API) and no requests."""
    status, out, loaded = run_cli("rules")
    assert status == 0
    assert [group["name"] for group in yaml.safe_load(out)["groups"]] == [
        "productapi-requests",
        "productapi-ratelimit",
        "productapi-batch",
    ]
    assert "otel_productapi.rules.command" in loaded
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_help_lists_every_command_without_importing_them() -> None:
    """`otel-productapi --help` names demo and rules, and imports neither module."""
    status, out, loaded = run_cli("--help")
    assert status == 0
    assert "demo      run the end-to-end demo" in out
    assert "rules     print the Prometheus alerting and recording rules" in out
    assert [
        m for m in loaded if m.startswith(("otel_productapi.demo", "otel_productapi.rules"))
    ] == []


def test_demo_help_imports_the_demo() -> None:
    """`otel-productapi demo --help` shows the demo's own options (its module is loaded)."""
    result = subprocess.run(
        [sys.executable, "-m", "otel_productapi", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "--time-scale" in result.stdout


def test_unknown_command_exits_2_listing_the_commands() -> None:
    """A command that does not exist is refused by argparse, naming the valid ones."""
    result = subprocess.run(
        [sys.executable, "-m", "otel_productapi", "bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid choice: 'bogus' (choose from 'demo', 'rules')" in result.stderr
