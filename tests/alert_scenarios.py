"""Generate the promtool unit tests in ``alerts/tests/`` from the scenarios beside them.

A scenario (``alerts/tests/scenarios/*.yml``) describes traffic once, as
requests per second by phase, and says when each alert must fire and resolve
for each variant: Prometheus 2 (closed range selectors) or 3 (left-open
ones), with samples every 15 s (scrapes) or every 60 s (the OpenTelemetry
SDK's default export interval). The generator samples the same counters at
each interval and writes one promtool test file per scenario and variant::

    alerts/tests/prometheus-2/scrape-15s/rate-limit-storm.yml   (and 3, and push-60s)

Nothing is computed from the rules: the traffic and the expected times are
written by hand in the scenario; the generator only samples the counters and
spells out the checks. For each alert a test names, the generated file checks

- at the firing time F: the alert is firing, with exactly the expected labels;
- one evaluation before the resolve time R: it fired at every evaluation of [F, R);
- at the end: over the whole run, it fired (per label set) exactly (R - F) / 15 s
  times — so it never fired before F, never after R, and nowhere else;
- at ``annotations_at``: the full annotations (a steady state, the same in every variant);

and that every alert in ``silent`` never fired during the run. Regenerate with::

    .venv/bin/python tests/alert_scenarios.py
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import yaml
from repo_paths import ROOT

from otel_productapi._core import names

TESTS_DIR: Final = ROOT / "alerts" / "tests"
SCENARIOS_DIR: Final = TESTS_DIR / "scenarios"
README: Final = ROOT / "alerts" / "README.md"
EVALUATION_INTERVAL: Final = 15
RUNBOOK: Final = "https://github.com/otel-productapi/otel-productapi/blob/main/alerts/runbook.md"
METRIC: Final = "productapi_client_requests_total"

_UNITS: Final = {"h": 3600, "m": 60, "s": 1}
_DURATION_RE: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

#: Classic Prometheus names → the OpenTelemetry names Prometheus 3 keeps in UTF-8 mode.
UTF8_LABELS: Final = {
    key.replace(".", "_"): key
    for key in (
        names.ATTR_SERVER_ADDRESS,
        names.ATTR_URL_TEMPLATE,
        names.ATTR_HTTP_REQUEST_METHOD,
        names.ATTR_HTTP_RESPONSE_STATUS_CODE,
        names.ATTR_ERROR_CLASS,
        names.ATTR_ERROR_RETRYABLE,
    )
}
UTF8_METRICS: Final = {
    f"{metric}{suffix}".replace(".", "_"): f"{metric}{suffix}"
    for metric, suffix in (
        (names.METRIC_CLIENT_REQUESTS, "_total"),
        (names.METRIC_CLIENT_RETRIES, "_total"),
        (names.METRIC_RETRY_BUDGET_REFUSALS, "_total"),
        (names.METRIC_BATCH_ITEMS, "_total"),
        (names.METRIC_RATELIMIT_REMAINING, ""),
        (names.METRIC_RATELIMIT_LIMIT, ""),
    )
}


def seconds(text: str | int) -> int:
    """``"3m15s"`` → 195; ``"0m"`` → 0."""
    if isinstance(text, int):
        return text
    match = _DURATION_RE.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 3m15s")
    return sum(int(p) * u for p, u in zip(match.groups(), _UNITS.values(), strict=True) if p)


def duration(value: int) -> str:
    """195 → ``"3m15s"``; 0 → ``"0s"``."""
    parts = []
    for unit, size in _UNITS.items():
        count, value = divmod(value, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class Variant:
    """A Prometheus major version and a sample interval."""

    major: int
    interval: int  # seconds between samples

    @property
    def key(self) -> str:
        return f"v{self.major}/{self.interval}s"

    @property
    def directory(self) -> str:
        how = "scrape" if self.interval < 60 else "push"
        return f"prometheus-{self.major}/{how}-{self.interval}s"

    def pick(self, value: Any) -> int | None:
        """A per-variant expectation: one value for all, or keyed by ``v2/15s`` or ``15s``.

        ``never`` (or nothing) is ``None``: the alert does not fire in this variant.
        """
        if isinstance(value, Mapping):
            for key in (self.key, f"{self.interval}s"):
                if key in value:
                    return self.pick(value[key])
            raise KeyError(f"no expectation for {self.key} in {dict(value)}")
        return None if value in (None, "never") else seconds(value)


VARIANTS: Final = (Variant(2, 15), Variant(3, 15), Variant(2, 60), Variant(3, 60))


# --- input series ---------------------------------------------------------------------


def per_second(rate: float | str) -> Fraction:
    """A rate as written in a scenario: requests per second, or ``"N/min"``."""
    if isinstance(rate, str) and rate.endswith("/min"):
        return Fraction(rate.removesuffix("/min")) / 60
    return Fraction(str(rate))


def counter_values(
    rates: Mapping[str, float | str], end: int, interval: int, *, initial: float = 0
) -> list[Fraction | None]:
    """A counter growing at ``rates`` (requests/s from each phase start), sampled every interval.

    The series exists from the first phase start (a series born at 0 was
    pre-created); a series whose first phase starts later is born at the first
    sample after that start, with the calls made since already counted.
    Exact fractions, so the same traffic gives the same counts at every interval.
    """
    phases = sorted((seconds(start), per_second(rate)) for start, rate in rates.items())
    born = phases[0][0]
    values: list[Fraction | None] = []
    for t in range(0, end + 1, interval):
        if t < born or (born > 0 and t == born):
            values.append(None)
            continue
        total = Fraction(str(initial))
        for i, (start, rate) in enumerate(phases):
            stop = phases[i + 1][0] if i + 1 < len(phases) else end
            total += rate * max(0, min(t, stop) - start)
        values.append(total)
    return values


def gauge_values(phases: Mapping[str, Any], end: int, interval: int) -> list[Fraction | None]:
    """A gauge: from each phase start, a value, or a pattern repeated every 15 s step.

    A pattern (``[75, 50, 25, 5]``) is what a scrape every 15 s reads; a slower
    sample interval reads whichever of its values falls on the sample times.
    """
    starts = sorted((seconds(start), value) for start, value in phases.items())
    values: list[Fraction | None] = []
    for t in range(0, end + 1, interval):
        current = [(start, v) for start, v in starts if start <= t]
        if not current:
            values.append(None)
            continue
        start, value = current[-1]
        if isinstance(value, list):
            value = value[((t - start) // 15) % len(value)]
        values.append(Fraction(str(value)))
    return values


def _number(value: Fraction) -> str:
    # promtool adds a segment's step repeatedly: a step that binary floats cannot hold
    # exactly (9.6) drifts, and a drift above the next segment reads as a counter reset.
    if value.denominator & (value.denominator - 1):
        raise ValueError(f"{value} per sample is not exact in binary: choose rates that are")
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value))


def promtool_values(values: Sequence[Fraction | None]) -> str:
    """Values in promtool's expanding notation: ``_x40 0+120x40 4875+75x79``."""
    out: list[str] = []
    i = 0
    while i < len(values):
        value = values[i]
        j = i + 1
        if value is None:
            while j < len(values) and values[j] is None:
                j += 1
            out.append("_" if j - i == 1 else f"_x{j - i}")
        else:
            step: Fraction | None = None
            previous = value
            while j < len(values):
                nxt = values[j]
                if nxt is None or (step is not None and nxt - previous != step):
                    break
                step, previous = nxt - previous, nxt
                j += 1
            if step is None:
                out.append(_number(value))
            elif step == 0:
                out.append(f"{_number(value)}x{j - i - 1}")
            else:
                sign = "+" if step > 0 else "-"
                out.append(f"{_number(value)}{sign}{_number(abs(step))}x{j - i - 1}")
        i = j
    return " ".join(out)


def labels_text(metric: str, labels: Mapping[str, str], *, utf8: bool) -> str:
    """``metric{a="b", ...}``, or Prometheus 3's ``{"metric.name", "a.b"="c"}``."""
    if not utf8:
        inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
        return f"{metric}{{{inner}}}" if metric else f"{{{inner}}}"
    parts = [f'"{UTF8_METRICS.get(metric, metric)}"'] if metric else []
    for key, value in labels.items():
        name = UTF8_LABELS.get(key, key)
        parts.append(f'"{name}"="{value}"' if "." in name else f'{name}="{value}"')
    return "{" + ", ".join(parts) + "}"


def alert_labels(labels: Mapping[str, str], *, utf8: bool) -> dict[str, str]:
    return {(UTF8_LABELS.get(k, k) if utf8 else k): str(v) for k, v in labels.items()}


# --- one scenario file → one promtool file per variant ---------------------------------


@dataclass(frozen=True)
class Expected:
    """One alert instance a scenario expects, in one variant."""

    alert: str
    labels: dict[str, str]
    fires: int  # eval time it is first firing
    resolves: int | None  # eval time it is first no longer firing (None: still at the end)
    annotations_at: int | None
    description: str | None


def expected_alerts(test: Mapping[str, Any], variant: Variant) -> list[Expected]:
    out = []
    for entry in test.get("alerts", []):
        fires_after = variant.pick(entry["fires_after"])
        if fires_after is None:
            continue  # does not fire in this variant: checked as silent
        resolves_after = variant.pick(entry.get("resolves_after"))
        out.append(
            Expected(
                alert=entry["alert"],
                labels={k: str(v) for k, v in entry["labels"].items()},
                fires=seconds(entry["starts"]) + fires_after,
                resolves=None
                if resolves_after is None
                else seconds(entry["ends"]) + resolves_after,
                annotations_at=seconds(entry["annotations_at"])
                if "annotations_at" in entry
                else None,
                description=entry.get("description"),
            )
        )
    return out


def _selector(alert: str, labels: Mapping[str, str], *, utf8: bool) -> str:
    matchers = {"alertname": alert, "alertstate": "firing", **labels}
    return labels_text("ALERTS", matchers, utf8=utf8)


def promtool_test(
    test: Mapping[str, Any], summaries: Mapping[str, str], variant: Variant, *, utf8: bool
) -> dict[str, Any]:
    """One promtool test (input series and checks) for ``variant``."""
    end = seconds(test["end"])
    base = test.get("base", {})
    series = []
    for entry in test["series"]:
        labels = {**base, **entry.get("labels", {})}
        if "gauge" in entry:
            values = gauge_values(entry["gauge"], end, variant.interval)
        else:
            values = counter_values(
                entry["rate"], end, variant.interval, initial=entry.get("initial", 0)
            )
        series.append(
            {
                "series": labels_text(entry.get("metric", METRIC), labels, utf8=utf8),
                "values": promtool_values(values),
            }
        )
    expected = expected_alerts(test, variant)
    promql: list[dict[str, Any]] = []
    step = EVALUATION_INTERVAL
    for e in expected:
        labels = alert_labels(e.labels, utf8=utf8)
        promql.append(
            {
                "expr": _selector(e.alert, labels, utf8=utf8),
                "eval_time": duration(e.fires),
                "exp_samples": [
                    {
                        "labels": labels_text(
                            "ALERTS",
                            {"alertname": e.alert, "alertstate": "firing", **e.labels},
                            utf8=utf8,
                        ),
                        "value": 1,
                    }
                ],
            }
        )
        last = (e.resolves if e.resolves is not None else end + step) - step
        promql.append(
            {
                "expr": f"count_over_time({_selector(e.alert, labels, utf8=utf8)}"
                f"[{duration(last - e.fires + step)}])",
                "eval_time": duration(last),
                "exp_samples": [
                    {
                        "labels": labels_text(
                            "",
                            {"alertname": e.alert, "alertstate": "firing", **e.labels},
                            utf8=utf8,
                        ),
                        "value": (last - e.fires) // step + 1,
                    }
                ],
            }
        )
    checked = {entry["alert"] for entry in test.get("alerts", [])} | set(test.get("silent", []))
    for alert in sorted(checked):
        mine = [e for e in expected if e.alert == alert]
        promql.append(
            {
                "expr": f"count_over_time({_selector(alert, {}, utf8=utf8)}[{duration(end)}])",
                "eval_time": duration(end),
                "exp_samples": [
                    {
                        "labels": labels_text(
                            "",
                            {"alertname": alert, "alertstate": "firing", **e.labels},
                            utf8=utf8,
                        ),
                        "value": ((e.resolves if e.resolves is not None else end + step) - e.fires)
                        // step,
                    }
                    for e in mine
                ],
            }
        )
    alert_rule_test = []
    for at in sorted({e.annotations_at for e in expected if e.annotations_at is not None}):
        for alert in sorted({e.alert for e in expected if e.annotations_at == at}):
            firing = [
                e
                for e in expected
                if e.alert == alert and e.fires <= at and (e.resolves is None or at < e.resolves)
            ]
            alert_rule_test.append(
                {
                    "eval_time": duration(at),
                    "alertname": alert,
                    "exp_alerts": [
                        {
                            "exp_labels": alert_labels(e.labels, utf8=utf8),
                            "exp_annotations": {
                                "summary": summaries[alert],
                                "description": _description(e, at),
                                "runbook_url": f"{RUNBOOK}#{alert.lower()}",
                            },
                        }
                        for e in firing
                    ],
                }
            )
    for check in test.get("records", []):
        # Rounded: extrapolated rates can land a last bit off (1.9999999999999998).
        promql.append(
            {
                "expr": f"round({check['expr']}, 0.000001)",
                "eval_time": check["at"],
                "exp_samples": [
                    {
                        "labels": labels_text("", sample["labels"], utf8=utf8),
                        "value": sample["value"],
                    }
                    for sample in check["samples"]
                ],
            }
        )
    out: dict[str, Any] = {
        "name": test["name"],
        "interval": duration(variant.interval),
        "input_series": series,
    }
    if alert_rule_test:
        out["alert_rule_test"] = alert_rule_test
    out["promql_expr_test"] = promql
    return out


def _description(e: Expected, at: int) -> str:
    if e.description is None:
        raise ValueError(f"{e.alert} {e.labels}: firing at annotations_at {at} without description")
    return e.description


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    str,
    lambda dumper, data: dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="'" if ("{" in data or '"' in data) else None
    ),
)


def render_file(
    scenario: Path, variant: Variant, *, utf8: bool = False, rules_dir: str | None = None
) -> str:
    """The promtool test file for ``scenario`` in ``variant``."""
    spec = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    prefix = rules_dir if rules_dir is not None else "../../.."
    document = {
        "rule_files": [f"{prefix}/{name}" for name in spec["rule_files"]],
        "evaluation_interval": duration(EVALUATION_INTERVAL),
        "tests": [
            promtool_test(test, spec["summaries"], variant, utf8=utf8) for test in spec["tests"]
        ],
    }
    how = "scraped every" if variant.interval < 60 else "pushed every"
    header = (
        f"# Generated by tests/alert_scenarios.py from alerts/tests/scenarios/{scenario.name}\n"
        f"# for Prometheus {variant.major}, samples {how} {variant.interval}s; do not edit.\n"
    )
    return header + yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000
    )


def scenarios() -> list[Path]:
    return sorted(SCENARIOS_DIR.glob("*.yml"))


def generated_files() -> Iterator[tuple[Path, str]]:
    """Every generated test file: its path and its text."""
    for variant in VARIANTS:
        for scenario in scenarios():
            yield TESTS_DIR / variant.directory / scenario.name, render_file(scenario, variant)


# --- the README table ---------------------------------------------------------------------

TABLE_BEGIN: Final = "<!-- proven-times:begin (generated by tests/alert_scenarios.py) -->"
TABLE_END: Final = "<!-- proven-times:end -->"


def _cell(variants: Sequence[Variant], expectation: Any) -> str:
    """One table cell: the time, or ``Prometheus 2 / Prometheus 3`` when they differ."""
    if expectation is None:
        return "—"
    picked = [v.pick(expectation) for v in variants]
    texts = ["never" if p is None else duration(p) for p in picked]
    return texts[0] if len(set(texts)) == 1 else " / ".join(texts)


def proven_times_table() -> str:
    """The table of proven times: per scenario with ``table:``, per version and interval."""
    rows = [
        "| Alert | Scenario | Fires after: 15 s scrapes | 60 s pushes "
        "| Resolves after: 15 s scrapes | 60 s pushes |",
        "|---|---|---|---|---|---|",
    ]
    for scenario in scenarios():
        spec = yaml.safe_load(scenario.read_text(encoding="utf-8"))
        for test in spec["tests"]:
            for entry in test.get("alerts", []):
                if "table" not in entry:
                    continue
                cells = [
                    _cell([Variant(major, interval) for major in (2, 3)], entry.get(key))
                    for key in ("fires_after", "resolves_after")
                    for interval in (15, 60)
                ]
                rows.append(f"| `{entry['alert']}` | {entry['table']} | {' | '.join(cells)} |")
    return "\n".join(rows)


def silent_list() -> str:
    """Per alert, the scenarios in which it must stay silent (in every variant)."""
    silent: dict[str, list[str]] = {}
    for scenario in scenarios():
        for test in yaml.safe_load(scenario.read_text(encoding="utf-8"))["tests"]:
            for alert in test.get("silent", []):
                silent.setdefault(alert, []).append(test["name"])
    lines = [
        "Each alert is also proven silent, at both intervals on both versions, through these",
        "scenarios (its own blips and floors, and the other alerts' incidents):",
        "",
    ]
    for alert in sorted(silent):
        quoted = "; ".join(f"“{name}”" for name in silent[alert])
        lines.append(f"- `{alert}`: {quoted}.")
    return "\n".join(lines)


def readme_with_table(text: str) -> str:
    before, rest = text.split(TABLE_BEGIN, 1)
    _, after = rest.split(TABLE_END, 1)
    generated = f"{proven_times_table()}\n\n{silent_list()}"
    return f"{before}{TABLE_BEGIN}\n{generated}\n{TABLE_END}{after}"


def main(argv: Sequence[str]) -> int:
    """Write every generated test file and the README table."""
    del argv
    for path, text in generated_files():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
