"""``otel-productapi demo`` end to end: output, and no process left behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otel_productapi._core import names as n


def _demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # TMPDIR under tmp_path: every child's command line (Rotel's pid file,
    # Prometheus' config) then names tmp_path, which is how we find leftovers.
    keep = ("OTEL_PRODUCTAPI_TOOLS_DIR",)
    clean = {
        k: v
        for k, v in os.environ.items()
        if k in keep or not k.startswith(("OTEL_", "PRODUCTAPI_"))
    }
    env = {**clean, **(env or {}), "TMPDIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "otel_productapi", "demo", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _leftovers(marker: Path) -> list[str]:
    """Command lines of live processes that mention ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(marker) in cmdline:
            found.append(cmdline)
    return found


def _finish(process: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"demo did not finish within {timeout} s:\n{out}")
    return out


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    """A short demo shows every scenario, counts by class, collector examples and next steps."""
    process = _demo(tmp_path, "--duration", "8", "--rate", "30")
    out = _finish(process, 90)
    assert process.returncode == 0, out
    for phase in ("healthy", "429 storm", "5xx burst", "batches partly failing"):
        assert phase in out
    assert "Rotel collector" in out
    assert "as the Rotel collector received them" in out
    for error_class in (n.CLASS_RATE_LIMITED, n.CLASS_SERVER_ERROR, n.CLASS_VALIDATION_FAILED):
        assert error_class in out
    assert "Retryable share of failed requests" in out
    assert f"-> {n.ATTR_ERROR_CLASS}: Str({n.CLASS_RATE_LIMITED})" in out
    assert f"-> {n.ATTR_BATCH_OUTCOME}: Str({n.BATCH_PARTIAL})" in out
    assert "Where to look next" in out
    assert _leftovers(tmp_path) == []
    assert list(tmp_path.iterdir()) == []  # temporary files removed


def test_demo_console_exporter_without_rotel(tmp_path: Path) -> None:
    """--console skips the collector and still summarises the traffic."""
    process = _demo(tmp_path, "--duration", "4", "--console")
    out = _finish(process, 60)
    assert process.returncode == 0, out
    assert "console exporter" in out
    assert n.CLASS_RATE_LIMITED in out
    assert _leftovers(tmp_path) == []


def test_sigterm_stops_everything(tmp_path: Path) -> None:
    """SIGTERM mid-run: the demo unwinds, stops Rotel and exits 130."""
    process = _demo(tmp_path, "--duration", "60")
    deadline = time.monotonic() + 30
    while not _leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _leftovers(tmp_path), "Rotel never started"
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    out = _finish(process, 30)
    assert process.returncode == 130, out
    assert "interrupted" in out
    assert _leftovers(tmp_path) == []


def test_demo_with_prometheus_shows_the_storm_alert_firing(tmp_path: Path) -> None:
    """--prometheus: the shipped rules, scaled down, fire ProductApiRateLimitStorm.

    Prometheus comes from apt in scripts/test; not skipped when missing.
    """
    assert shutil.which("prometheus"), "prometheus must be on PATH (scripts/test installs it)"
    process = _demo(tmp_path, "--prometheus", "--duration", "20", "--rate", "30")
    out = _finish(process, 90)
    assert process.returncode == 0, out
    assert "ProductApiRateLimitStorm: firing" in out
    assert "ProductApiRateLimitStorm during the storm: firing" in out
    assert _leftovers(tmp_path) == []


def test_demo_stack_runs_the_reference_stack(tmp_path: Path) -> None:
    """--stack: traces reach Jaeger through the shipped collector config, Prometheus 3 fires
    the storm alert, Alertmanager pages the webhook, and every process is stopped.

    The binaries come from scripts/build-tools (scripts/test builds them); not skipped.
    """
    process = _demo(tmp_path, "--stack", "--duration", "30", "--rate", "30")
    out = _finish(process, 240)
    assert process.returncode == 0, out
    assert re.search(r"Jaeger query API \.+ http://127\.0\.0\.1:\d+/api/v3/traces\?", out), out
    assert re.search(r"Prometheus alerts page \.+ http://127\.0\.0\.1:\d+/alerts\n", out), out
    stored = re.search(r"as Jaeger stored them \((\d+) of the (\d+) spans sent\)", out)
    assert stored is not None, out
    assert stored.group(1) == stored.group(2)
    assert int(stored.group(2)) > 100
    assert "ProductApiRateLimitStorm: firing" in out
    assert "ProductApiRateLimitStorm during the storm: firing" in out
    assert (
        "Alertmanager notified the webhook: ProductApiEndpointRateLimitStorm firing "
        "(receiver productapi-page, /page) for /v1/projects/{project}/"
    ) in out
    assert "(the OpenTelemetry Collector's debug exporter)" in out
    examples = out.split("Example spans", 1)[1].split("--- server_error", 1)[0]
    assert f"-> {n.ATTR_ERROR_CLASS}: Str({n.CLASS_RATE_LIMITED})" in examples
    assert "-> http.status_code: Int(429)" in examples
    assert _leftovers(tmp_path) == []


def test_demo_stack_not_built_says_how_to_build(tmp_path: Path) -> None:
    """--stack without the built tools: exit 2, naming scripts/build-tools, nothing started."""
    env = {"OTEL_PRODUCTAPI_TOOLS_DIR": str(tmp_path / "empty")}
    process = _demo(tmp_path, "--stack", "--duration", "5", env=env)
    out = _finish(process, 60)
    assert process.returncode == 2, out
    assert (
        "not built: otelcol, jaeger, prometheus; run scripts/build-tools otelcol jaeger prometheus"
    ) in out
    assert "run scripts/build-tools in a clone of the repository first" in out
    assert "Traceback" not in out
    assert _leftovers(tmp_path) == []
