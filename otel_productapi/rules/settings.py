"""Settings for the rules renderer, and the typed per-alert settings built from them.

``RulesSettings`` reads every field from a ``PRODUCTAPI_OTEL_RULES_*``
environment variable (the field name, upper-cased, after the
``PRODUCTAPI_OTEL_`` prefix). Durations are Prometheus durations (``90s``,
``5m``, ``1h30m``); ``rules_time_scale`` multiplies every window, ``for`` and
``keep_firing_for`` (for demos and the live test), rounding to whole seconds
and never below 1 s.

The renderer never reads those fields by name: ``RulesSettings.alerts()``
turns them into one small frozen object per alert (``RatioAlert``,
``QuotaAlert``...), whose durations are already scaled and know the variable
they came from, so error messages can name it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from otel_productapi._core.names import ENV_PREFIX

__all__ = [
    "DEFAULT_RUNBOOK_URL",
    "SAMPLES_PER_WINDOW",
    "Alerts",
    "QuotaAlert",
    "RatioAlert",
    "RulesSettings",
    "Span",
    "UnreachableAlert",
    "env_var",
    "format_duration",
    "parse_duration",
    "parse_matchers",
]

#: Where ``runbook_url`` annotations point by default (``#<alertname-lowercased>`` is appended).
DEFAULT_RUNBOOK_URL: Final = (
    "https://github.com/otel-productapi/otel-productapi/blob/main/alerts/runbook.md"
)

#: A range selector needs at least two samples; three per window survive a missed one.
SAMPLES_PER_WINDOW: Final = 3

_UNITS: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE: Final = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SEVERITY_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_LABEL_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# One matcher: a label name (bare, or quoted for UTF-8 names), an operator, a quoted value.
_MATCHER_RE: Final = re.compile(
    r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)+")\s*'
    r'(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*")\s*(?:,|$)'
)


def env_var(field_name: str) -> str:
    """The variable that sets ``field_name``: ``rules_x`` → ``PRODUCTAPI_OTEL_RULES_X``."""
    return f"{ENV_PREFIX}{field_name.upper()}"


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus duration made of ``d``, ``h``, ``m`` and ``s`` parts.

    Raises:
        ValueError: for anything else (``5``, ``1.5m``, ``-1m``, ``0s``, ``""``).
    """
    match = _DURATION_RE.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration like 90s, 5m or 1h30m")
    seconds = sum(
        int(part) * unit for part, unit in zip(match.groups(), _UNITS.values(), strict=True) if part
    )
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration for whole ``seconds`` (``90`` → ``1m30s``)."""
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_matchers(text: str, *, allow_quoted_names: bool) -> tuple[str, ...]:
    """Split ``env="prod",region=~"eu-.*"`` into normalised matchers.

    Args:
        text: Comma-separated PromQL label matchers; empty means none.
        allow_quoted_names: Accept ``"deployment.environment"="prod"`` (UTF-8 names,
            Prometheus 3 only).

    Raises:
        ValueError: on anything that is not a list of label matchers.
    """
    matchers: list[str] = []
    position, text = 0, text.strip()
    while position < len(text):
        match = _MATCHER_RE.match(text, position)
        if match is None:
            raise ValueError(
                f"cannot parse label matchers {text!r} at {text[position:]!r}; "
                'expected e.g. env="prod",region=~"eu-.*"'
            )
        name = match["name"]
        if name.startswith('"') and not allow_quoted_names:
            raise ValueError(
                f"quoted label name {name} needs PRODUCTAPI_OTEL_RULES_METRIC_NAMING=utf8"
            )
        if name.startswith('"') and _LABEL_NAME_RE.match(name[1:-1]):
            name = name[1:-1]  # a quoted classic name: drop the needless quotes
        if match["op"] in ("=~", "!~"):
            _check_regex(match["value"][1:-1])
        matchers.append(f"{name}{match['op']}{match['value']}")
        position = match.end()
        if match.group(0).rstrip().endswith(",") and position >= len(text):
            raise ValueError(f"label matchers {text!r} end with a comma")
    return tuple(matchers)


def _check_regex(pattern: str) -> None:
    """Reject regexes that cannot compile (Python's syntax is close enough to RE2's)."""
    try:
        re.compile(pattern.encode().decode("unicode_escape"))
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r} in label matchers: {exc}") from exc


def _valid_duration(text: str) -> str:
    parse_duration(text)
    return text


def _valid_severity(text: str) -> str:
    if not _SEVERITY_RE.match(text):
        raise ValueError(f"severity {text!r} must be letters, digits, '-' or '_'")
    return text


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("threshold must be a finite number")
    return value


def _http_url(text: str) -> str:
    if not re.match(r"^https?://\S+$", text):
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text


#: A Prometheus duration such as ``90s``, ``5m`` or ``1h30m``.
Duration = Annotated[str, AfterValidator(_valid_duration)]
#: A share of calls, strictly between 0 and 1.
Ratio = Annotated[float, Field(allow_inf_nan=False, gt=0, lt=1), AfterValidator(_finite)]
#: The ``severity`` label of an alert.
Severity = Annotated[str, AfterValidator(_valid_severity)]


# --- the typed per-alert settings the renderer uses ------------------------------


@dataclass(frozen=True)
class Span:
    """A duration setting as rendered: scaled by ``rules_time_scale``, in whole seconds."""

    #: The environment variable it comes from (for error messages).
    variable: str
    #: What was set, before scaling (``5m``).
    setting: str
    seconds: int

    def __str__(self) -> str:
        return format_duration(self.seconds)


@dataclass(frozen=True)
class RatioAlert:
    """An alert on a share of calls (or items) over a long and a short window.

    It fires when the share is above ``threshold`` over both windows, with at
    least ``min_rate`` calls per second over the long window, for ``for_``;
    it keeps firing ``keep_firing_for`` after the condition clears.
    """

    threshold: float
    long_window: Span
    short_window: Span
    for_: Span
    keep_firing_for: Span
    severity: str
    min_rate: float


@dataclass(frozen=True)
class UnreachableAlert(RatioAlert):
    """``ProductApiUnreachable``: calls that got no response, in two tiers.

    An outage: above ``outage_threshold`` over both windows (fast; the long
    window keeps a deploy blip below it). A persistent share: above
    ``threshold`` over the long window, and over the short one at every
    evaluation of the last ``persistence`` (a blip's short-window tail is
    shorter than that).
    """

    outage_threshold: float
    persistence: Span


@dataclass(frozen=True)
class QuotaAlert:
    """``ProductApiRateLimitNearlyExhausted``: quota left below ``threshold`` in every window."""

    threshold: float
    window: Span
    for_: Span
    keep_firing_for: Span
    severity: str


@dataclass(frozen=True)
class Alerts:
    """Every alert's settings, as the renderer uses them."""

    storm: RatioAlert
    #: The storm's threshold, windows, timing and severity with its own traffic floor,
    #: so a service-wide storm always has a throttled endpoint above its threshold too.
    endpoint_storm: RatioAlert
    server_errors: RatioAlert
    auth: RatioAlert
    unreachable: UnreachableAlert
    retry_budget: RatioAlert
    ratelimit: QuotaAlert
    batch: RatioAlert

    def ratio_alerts(self) -> tuple[RatioAlert, ...]:
        return (
            self.storm,
            self.server_errors,
            self.auth,
            self.unreachable,
            self.retry_budget,
            self.batch,
        )

    def windows(self) -> tuple[Span, ...]:
        """Every range window of every alert, for the samples-per-window check."""
        return (
            *(span for a in self.ratio_alerts() for span in (a.long_window, a.short_window)),
            self.ratelimit.window,
        )

    def window_pairs(self) -> tuple[tuple[Span, Span], ...]:
        """(short, long) window of every multiwindow alert: short must be shorter."""
        return tuple((a.short_window, a.long_window) for a in self.ratio_alerts())


class RulesSettings(BaseSettings):
    """What the rendered rules alert on, and how they name things.

    Each alert has a threshold and its windows: the condition must hold over a
    long window (enough evidence, blips average out) and a short one (stops as
    soon as the problem does), for ``for`` (persistence), and the alert keeps
    firing ``keep_firing_for`` after the condition clears (no flapping).
    ``alerts/README.md`` explains every default and the times the tests prove.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- everywhere ---------------------------------------------------------------
    rules_metric_naming: Literal["classic", "utf8"] = Field(
        default="classic",
        description="classic: productapi_client_requests_total; utf8: the dotted names "
        "Prometheus 3 keeps with translation_strategy NoUTF8EscapingWithSuffixes.",
    )
    rules_extra_matchers: str = Field(
        default="", description='Label matchers added to every selector, e.g. env="prod".'
    )
    rules_time_scale: float = Field(
        allow_inf_nan=False,
        default=1.0,
        gt=0,
        le=100,
        description="Multiplies every window, for and keep_firing_for.",
    )
    rules_scrape_interval: Duration = Field(
        default="60s",
        description="The longest time between two samples of a series: your scrape interval, "
        "or OTEL_METRIC_EXPORT_INTERVAL when metrics are pushed. Every window must span 3.",
    )
    rules_runbook_url: Annotated[str, AfterValidator(_http_url)] = Field(
        default=DEFAULT_RUNBOOK_URL, description="Runbook base URL."
    )
    rules_min_request_rate: float = Field(
        allow_inf_nan=False,
        default=0.05,
        ge=0,
        description="Requests/s over the long window below which nothing pages.",
    )

    # --- ProductApiRateLimitStorm -------------------------------------------------
    rules_storm_threshold: Ratio = 0.25
    rules_storm_long_window: Duration = "5m"
    rules_storm_short_window: Duration = "3m"
    rules_storm_for: Duration = "1m"
    rules_storm_keep_firing_for: Duration = "2m"
    rules_storm_severity: Severity = "critical"

    # --- ProductApiEndpointRateLimitStorm (the storm's settings, its own floor) -------
    rules_endpoint_storm_min_request_rate: float = Field(
        allow_inf_nan=False,
        default=0.2,
        ge=0,
        description="Requests/s to one endpoint over the long window below which it never "
        "pages on its own (the service-wide storm alert still covers it).",
    )

    # --- ProductApiServerErrorsPersistent -----------------------------------------
    rules_server_errors_threshold: Ratio = 0.05
    rules_server_errors_long_window: Duration = "10m"
    rules_server_errors_short_window: Duration = "3m"
    rules_server_errors_for: Duration = "4m"
    rules_server_errors_keep_firing_for: Duration = "2m"
    rules_server_errors_severity: Severity = "critical"

    # --- ProductApiAuthFailures ---------------------------------------------------
    rules_auth_threshold: Ratio = 0.10
    rules_auth_long_window: Duration = "5m"
    rules_auth_short_window: Duration = "3m"
    rules_auth_for: Duration = "4m"
    rules_auth_keep_firing_for: Duration = "2m"
    rules_auth_severity: Severity = "critical"

    # --- ProductApiUnreachable -----------------------------------------------------
    rules_unreachable_threshold: Ratio = 0.05
    rules_unreachable_outage_threshold: Ratio = 0.75
    rules_unreachable_long_window: Duration = "4m"
    rules_unreachable_short_window: Duration = "3m"
    rules_unreachable_persistence: Duration = "6m"
    rules_unreachable_for: Duration = "30s"
    rules_unreachable_keep_firing_for: Duration = "1m"
    rules_unreachable_severity: Severity = "critical"

    # --- ProductApiRateLimitNearlyExhausted ---------------------------------------
    rules_ratelimit_threshold: Ratio = 0.10
    rules_ratelimit_window: Duration = "5m"
    rules_ratelimit_for: Duration = "10m"
    rules_ratelimit_keep_firing_for: Duration = "1m"
    rules_ratelimit_severity: Severity = "warning"

    # --- ProductApiBatchItemsFailing ----------------------------------------------
    rules_batch_threshold: Ratio = 0.10
    rules_batch_long_window: Duration = "15m"
    rules_batch_short_window: Duration = "5m"
    rules_batch_for: Duration = "10m"
    rules_batch_keep_firing_for: Duration = "5m"
    rules_batch_severity: Severity = "warning"
    rules_batch_min_item_rate: float = Field(
        allow_inf_nan=False,
        default=0.05,
        ge=0,
        description="Batch items/s over the long window below which it stays quiet.",
    )

    # --- ProductApiRetryBudgetExhausted -------------------------------------------
    rules_retry_budget_threshold: Ratio = 0.01
    rules_retry_budget_long_window: Duration = "10m"
    rules_retry_budget_short_window: Duration = "3m"
    rules_retry_budget_for: Duration = "6m"
    rules_retry_budget_keep_firing_for: Duration = "5m"
    rules_retry_budget_severity: Severity = "warning"

    @model_validator(mode="after")
    def _check_together(self) -> RulesSettings:
        try:
            parse_matchers(self.rules_extra_matchers, allow_quoted_names=self.utf8)
        except ValueError as exc:
            raise ValueError(f"{env_var('rules_extra_matchers')}: {exc}") from exc
        alerts = self.alerts()
        interval = self.rules_scrape_interval
        for span in alerts.windows():
            if span.seconds < SAMPLES_PER_WINDOW * parse_duration(interval):
                raise ValueError(
                    f"{span.variable}={span.setting} (after time scale: {span}) must span at "
                    f"least {SAMPLES_PER_WINDOW} samples of "
                    f"{env_var('rules_scrape_interval')}={interval}, or rate() returns "
                    "nothing when one is late and the alert never fires"
                )
        for short, long in alerts.window_pairs():
            if short.seconds >= long.seconds:
                raise ValueError(
                    f"{short.variable}={short.setting} must be shorter than "
                    f"{long.variable}={long.setting}"
                )
        if self.rules_unreachable_outage_threshold <= self.rules_unreachable_threshold:
            raise ValueError(
                f"{env_var('rules_unreachable_outage_threshold')}="
                f"{self.rules_unreachable_outage_threshold} must be above "
                f"{env_var('rules_unreachable_threshold')}={self.rules_unreachable_threshold}"
            )
        return self

    @property
    def utf8(self) -> bool:
        """True when rendering Prometheus 3's UTF-8 names."""
        return self.rules_metric_naming == "utf8"

    def matchers(self) -> tuple[str, ...]:
        """The extra label matchers, normalised."""
        return parse_matchers(self.rules_extra_matchers, allow_quoted_names=self.utf8)

    def span(self, field: str, setting: str) -> Span:
        """``setting`` (the value of ``field``) scaled by ``rules_time_scale``, at least 1 s."""
        seconds = max(1, round(parse_duration(setting) * self.rules_time_scale))
        return Span(env_var(field), setting, seconds)

    def alerts(self) -> Alerts:
        """The typed settings of every alert."""
        span = self.span
        storm = RatioAlert(
            threshold=self.rules_storm_threshold,
            long_window=span("rules_storm_long_window", self.rules_storm_long_window),
            short_window=span("rules_storm_short_window", self.rules_storm_short_window),
            for_=span("rules_storm_for", self.rules_storm_for),
            keep_firing_for=span("rules_storm_keep_firing_for", self.rules_storm_keep_firing_for),
            severity=self.rules_storm_severity,
            min_rate=self.rules_min_request_rate,
        )
        return Alerts(
            storm=storm,
            endpoint_storm=replace(storm, min_rate=self.rules_endpoint_storm_min_request_rate),
            server_errors=RatioAlert(
                threshold=self.rules_server_errors_threshold,
                long_window=span(
                    "rules_server_errors_long_window", self.rules_server_errors_long_window
                ),
                short_window=span(
                    "rules_server_errors_short_window", self.rules_server_errors_short_window
                ),
                for_=span("rules_server_errors_for", self.rules_server_errors_for),
                keep_firing_for=span(
                    "rules_server_errors_keep_firing_for",
                    self.rules_server_errors_keep_firing_for,
                ),
                severity=self.rules_server_errors_severity,
                min_rate=self.rules_min_request_rate,
            ),
            auth=RatioAlert(
                threshold=self.rules_auth_threshold,
                long_window=span("rules_auth_long_window", self.rules_auth_long_window),
                short_window=span("rules_auth_short_window", self.rules_auth_short_window),
                for_=span("rules_auth_for", self.rules_auth_for),
                keep_firing_for=span("rules_auth_keep_firing_for", self.rules_auth_keep_firing_for),
                severity=self.rules_auth_severity,
                min_rate=self.rules_min_request_rate,
            ),
            unreachable=UnreachableAlert(
                threshold=self.rules_unreachable_threshold,
                outage_threshold=self.rules_unreachable_outage_threshold,
                long_window=span(
                    "rules_unreachable_long_window", self.rules_unreachable_long_window
                ),
                short_window=span(
                    "rules_unreachable_short_window", self.rules_unreachable_short_window
                ),
                persistence=span(
                    "rules_unreachable_persistence", self.rules_unreachable_persistence
                ),
                for_=span("rules_unreachable_for", self.rules_unreachable_for),
                keep_firing_for=span(
                    "rules_unreachable_keep_firing_for", self.rules_unreachable_keep_firing_for
                ),
                severity=self.rules_unreachable_severity,
                min_rate=self.rules_min_request_rate,
            ),
            retry_budget=RatioAlert(
                threshold=self.rules_retry_budget_threshold,
                long_window=span(
                    "rules_retry_budget_long_window", self.rules_retry_budget_long_window
                ),
                short_window=span(
                    "rules_retry_budget_short_window", self.rules_retry_budget_short_window
                ),
                for_=span("rules_retry_budget_for", self.rules_retry_budget_for),
                keep_firing_for=span(
                    "rules_retry_budget_keep_firing_for", self.rules_retry_budget_keep_firing_for
                ),
                severity=self.rules_retry_budget_severity,
                min_rate=self.rules_min_request_rate,
            ),
            ratelimit=QuotaAlert(
                threshold=self.rules_ratelimit_threshold,
                window=span("rules_ratelimit_window", self.rules_ratelimit_window),
                for_=span("rules_ratelimit_for", self.rules_ratelimit_for),
                keep_firing_for=span(
                    "rules_ratelimit_keep_firing_for", self.rules_ratelimit_keep_firing_for
                ),
                severity=self.rules_ratelimit_severity,
            ),
            batch=RatioAlert(
                threshold=self.rules_batch_threshold,
                long_window=span("rules_batch_long_window", self.rules_batch_long_window),
                short_window=span("rules_batch_short_window", self.rules_batch_short_window),
                for_=span("rules_batch_for", self.rules_batch_for),
                keep_firing_for=span(
                    "rules_batch_keep_firing_for", self.rules_batch_keep_firing_for
                ),
                severity=self.rules_batch_severity,
                min_rate=self.rules_batch_min_item_rate,
            ),
        )
