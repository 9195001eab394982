"""promtool tests generated from alerts/tests/scenarios: Prometheus 2 and 3, at 15 s and 60 s.

Each scenario file describes traffic once; ``tests/alert_scenarios.py`` samples
it every 15 s (scrapes) and every 60 s (the SDK's default export interval) and
writes the expected firing and resolve times of each variant. The Debian
promtool (2.42, closed range selectors) runs the ``prometheus-2`` files, the
promtool built by ``scripts/build-tools`` (3.x, left-open ranges) the
``prometheus-3`` ones, and the same scenarios against the UTF-8 rules.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import alert_scenarios as scenarios
import pytest
import yaml
from repo_paths import ROOT

from otel_productapi.rules import RulesSettings, render_rules
from otel_productapi.testing._tools import tool_path

ALL_ALERTS = {
    "ProductApiRateLimitStorm",
    "ProductApiEndpointRateLimitStorm",
    "ProductApiServerErrorsPersistent",
    "ProductApiAuthFailures",
    "ProductApiUnreachable",
    "ProductApiRateLimitNearlyExhausted",
    "ProductApiBatchItemsFailing",
    "ProductApiRetryBudgetExhausted",
}
SCENARIOS = scenarios.scenarios()
CASES = [(v, s) for v in scenarios.VARIANTS for s in SCENARIOS]
UTF8_CASES = [(v, s) for v in scenarios.VARIANTS if v.major == 3 for s in SCENARIOS]


def promtool(major: int) -> str:
    """Debian's promtool for Prometheus 2, the one scripts/build-tools built for 3."""
    if major == 2:
        found = shutil.which("promtool")
        assert found is not None, "promtool not found: apt-get install prometheus"
        return found
    return str(tool_path("promtool"))


def test_the_two_promtools_are_prometheus_2_and_3(tmp_path: Path) -> None:
    """Debian's promtool is 2.x and rejects UTF-8 names; the built one is 3.x and checks them."""
    debian = subprocess.run([promtool(2), "--version"], capture_output=True, text=True, check=False)
    assert re.search(r"version 2\.\d+\.\d+", debian.stdout + debian.stderr)
    for name, text in render_rules(RulesSettings(rules_metric_naming="utf8")).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    files = [str(tmp_path / name) for name in sorted(p.name for p in tmp_path.iterdir())]
    old = subprocess.run(
        [promtool(2), "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert old.returncode != 0
    new = subprocess.run(
        [promtool(3), "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert new.returncode == 0, new.stdout + new.stderr
    assert new.stdout.count("SUCCESS") == len(files)


#: Processes are started one at a time: concurrent fork/exec from threads has failed
#: here with EFAULT ("Bad address") on the VMs the tests run on.
_SPAWN = threading.Lock()


def run_promtool(args: list[str]) -> subprocess.CompletedProcess[str]:
    with _SPAWN:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, out, err)


class Runs:
    """promtool runs, started together on first use (two at a time) and awaited per test."""

    def __init__(self, utf8_dir: Path) -> None:
        self.utf8_dir = utf8_dir
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.runs: dict[tuple[str, str, bool], Future[subprocess.CompletedProcess[str]]] = {}

    def start(self) -> None:
        for variant, scenario in CASES:
            path = scenarios.TESTS_DIR / variant.directory / scenario.name
            self._submit(variant, scenario, path, utf8=False)
        for variant, scenario in UTF8_CASES:
            self._submit(variant, scenario, self.utf8_dir / variant.directory / scenario.name, True)

    def _submit(self, variant: scenarios.Variant, scenario: Path, path: Path, utf8: bool) -> None:
        args = [promtool(variant.major), "test", "rules", str(path)]
        self.runs[variant.key, scenario.name, utf8] = self.pool.submit(run_promtool, args)

    def result(
        self, variant: scenarios.Variant, scenario: Path, *, utf8: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self.runs[variant.key, scenario.name, utf8].result()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Every promtool run of this module, the UTF-8 rules and their tests written first."""
    utf8_dir = tmp_path_factory.mktemp("utf8")
    for name, text in render_rules(RulesSettings(rules_metric_naming="utf8")).items():
        (utf8_dir / name).write_text(text, encoding="utf-8")
    for variant, scenario in UTF8_CASES:
        path = utf8_dir / variant.directory / scenario.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            scenarios.render_file(scenario, variant, utf8=True, rules_dir="../.."),
            encoding="utf-8",
        )
    runs = Runs(utf8_dir)
    runs.start()
    yield runs
    runs.pool.shutdown(cancel_futures=True)


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "FAILED" not in output


@pytest.mark.parametrize(
    ("variant", "scenario"), CASES, ids=[f"{v.key}-{s.stem}" for v, s in CASES]
)
def test_scenario_passes(runs: Runs, variant: scenarios.Variant, scenario: Path) -> None:
    """Every alert fires and resolves at the scenario's times, and stays silent where it says."""
    assert_passed(runs.result(variant, scenario))


@pytest.mark.parametrize(
    ("variant", "scenario"), UTF8_CASES, ids=[f"{v.key}-{s.stem}" for v, s in UTF8_CASES]
)
def test_utf8_rules_pass_the_same_scenarios_on_prometheus_3(
    runs: Runs, variant: scenarios.Variant, scenario: Path
) -> None:
    """The rules with Prometheus 3 UTF-8 names, fed UTF-8 series, keep the same times."""
    assert_passed(runs.result(variant, scenario, utf8=True))


def test_generated_files_are_up_to_date() -> None:
    """alerts/tests/prometheus-*/ are the generator's output, byte for byte, and nothing else."""
    expected = dict(scenarios.generated_files())
    committed = set(scenarios.TESTS_DIR.glob("prometheus-*/*/*.yml"))
    assert committed == set(expected), "run: .venv/bin/python tests/alert_scenarios.py"
    for path, text in expected.items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run .venv/bin/python tests/alert_scenarios.py"
        )


def test_readme_table_is_the_scenarios_times() -> None:
    """alerts/README.md's table of proven times is generated from the scenarios."""
    readme = scenarios.README.read_text(encoding="utf-8")
    assert scenarios.readme_with_table(readme) == readme
    assert "| `ProductApiUnreachable` | every call fails (refused) for 20 minutes |" in readme


def test_every_alert_fires_and_stays_silent_in_every_variant() -> None:
    """Each alert has a scenario where it fires and one where it must not, at each interval."""
    for variant in scenarios.VARIANTS:
        fired: set[str] = set()
        silent: set[str] = set()
        for scenario in SCENARIOS:
            for test in yaml.safe_load(scenario.read_text(encoding="utf-8"))["tests"]:
                for expected in scenarios.expected_alerts(test, variant):
                    fired.add(expected.alert)
                silent.update(test.get("silent", []))
        assert fired == ALL_ALERTS, variant.key
        assert silent == ALL_ALERTS, variant.key


def test_the_generated_checks_can_fail(tmp_path: Path) -> None:
    """Shift one expected firing time by one evaluation: promtool must reject the file."""
    variant, scenario = scenarios.VARIANTS[0], scenarios.SCENARIOS_DIR / "unreachable.yml"
    text = scenarios.render_file(scenario, variant, rules_dir=str(ROOT / "alerts"))
    document = yaml.safe_load(text)
    first = document["tests"][0]["promql_expr_test"][0]
    minutes, seconds = re.fullmatch(r"(\d+)m(\d+)s", first["eval_time"]).groups()  # type: ignore[union-attr]
    first["eval_time"] = f"{int(minutes) * 60 + int(seconds) - 15}s"  # one evaluation early
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = subprocess.run(
        [promtool(2), "test", "rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "ProductApiUnreachable" in result.stdout + result.stderr


# --- the generator itself ------------------------------------------------------------------


def test_the_same_counter_is_sampled_at_both_intervals() -> None:
    """A 60 s sample is the 15 s counter at the same instant; late-born series skip the start."""
    rates = {"10m": 8, "30m": 0}
    every_15s = scenarios.counter_values(rates, 2400, 15)
    every_60s = scenarios.counter_values(rates, 2400, 60)
    assert every_60s == every_15s[::4]
    assert every_15s[40:42] == [None, Fraction(120)]  # born in the first scrape after 10m
    assert every_60s[10:12] == [None, Fraction(480)]  # ... or the first push
    assert every_15s[-1] == Fraction(8 * 1200)


def test_values_use_promtools_expanding_notation() -> None:
    """Runs of equal steps fold into a+bxn, gaps into _xn; the notation expands back."""
    values = scenarios.counter_values({"0m": 8, "10m": 5, "30m": 8}, 2400, 15)
    assert scenarios.promtool_values(values) == "0+120x40 4875+75x79 10920+120x39"
    late = scenarios.counter_values({"10m": 5, "30m": 0}, 2400, 15)
    assert scenarios.promtool_values(late) == "_x41 75+75x79 6000x39"


def test_steps_that_binary_floats_cannot_hold_are_refused() -> None:
    """9.6 per sample would drift in promtool and read as a counter reset: the generator refuses."""
    values = scenarios.counter_values({"0m": "0.64"}, 60, 15)
    with pytest.raises(ValueError, match="not exact in binary"):
        scenarios.promtool_values(values)


def test_a_gauge_pattern_is_read_at_the_sample_times() -> None:
    """A 1-minute sawtooth read every 15 s shows its low point; read every 60 s, it never does."""
    gauge = {"0m": [75, 50, 25, 5]}
    assert min(v for v in scenarios.gauge_values(gauge, 600, 15) if v is not None) == 5
    assert set(scenarios.gauge_values(gauge, 600, 60)) == {Fraction(75)}
