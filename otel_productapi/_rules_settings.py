"""Settings for the rules renderer: thresholds, windows, matchers, severities.

Every field is read from a ``PRODUCTAPI_OTEL_RULES_*`` environment variable
(the field name, upper-cased, after the ``PRODUCTAPI_OTEL_`` prefix). Durations
are Prometheus durations (``90s``, ``5m``, ``1h30m``); ``rules_time_scale``
multiplies every window, ``for`` and ``keep_firing_for`` (for demos and the
live test), rounding to whole seconds and never below 1 s.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from otel_productapi._core.names import ENV_PREFIX

__all__ = [
    "DEFAULT_RUNBOOK_URL",
    "RulesSettings",
    "env_var",
    "format_duration",
    "parse_duration",
    "parse_matchers",
]

#: Where ``runbook_url`` annotations point by default (``#<alertname-lowercased>`` is appended).
DEFAULT_RUNBOOK_URL: Final = (
    "https://github.com/otel-productapi/otel-productapi/blob/main/alerts/runbook.md"
)

#: A range selector needs at least two samples; four per window survive a missed scrape.
SAMPLES_PER_WINDOW: Final = 4

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


Duration = str
Ratio = float


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
        default=1.0, gt=0, le=100, description="Multiplies every window, for and keep_firing_for."
    )
    rules_scrape_interval: Duration = Field(
        default="15s", description="Your scrape interval: every window must span 4 of them."
    )
    rules_runbook_url: str = Field(default=DEFAULT_RUNBOOK_URL, description="Runbook base URL.")
    rules_min_request_rate: float = Field(
        default=0.05, ge=0, description="Requests/s over the long window below which nothing pages."
    )

    # --- ProductApiRateLimitStorm -------------------------------------------------
    rules_storm_threshold: Ratio = Field(default=0.25, gt=0, lt=1)
    rules_storm_long_window: Duration = "5m"
    rules_storm_short_window: Duration = "1m"
    rules_storm_for: Duration = "1m"
    rules_storm_keep_firing_for: Duration = "2m"
    rules_storm_severity: str = "critical"

    # --- ProductApiServerErrorsPersistent -----------------------------------------
    rules_server_errors_threshold: Ratio = Field(default=0.05, gt=0, lt=1)
    rules_server_errors_long_window: Duration = "10m"
    rules_server_errors_short_window: Duration = "2m"
    rules_server_errors_for: Duration = "3m"
    rules_server_errors_keep_firing_for: Duration = "2m"
    rules_server_errors_severity: str = "critical"

    # --- ProductApiAuthFailures ---------------------------------------------------
    rules_auth_threshold: Ratio = Field(default=0.10, gt=0, lt=1)
    rules_auth_long_window: Duration = "5m"
    rules_auth_short_window: Duration = "1m"
    rules_auth_for: Duration = "2m"
    rules_auth_keep_firing_for: Duration = "2m"
    rules_auth_severity: str = "critical"

    # --- ProductApiRateLimitNearlyExhausted ---------------------------------------
    rules_ratelimit_threshold: Ratio = Field(default=0.10, gt=0, lt=1)
    rules_ratelimit_window: Duration = "5m"
    rules_ratelimit_for: Duration = "10m"
    rules_ratelimit_keep_firing_for: Duration = "1m"
    rules_ratelimit_severity: str = "warning"

    # --- ProductApiBatchItemsFailing ----------------------------------------------
    rules_batch_threshold: Ratio = Field(default=0.10, gt=0, lt=1)
    rules_batch_long_window: Duration = "15m"
    rules_batch_short_window: Duration = "5m"
    rules_batch_for: Duration = "10m"
    rules_batch_keep_firing_for: Duration = "5m"
    rules_batch_severity: str = "warning"
    rules_batch_min_item_rate: float = Field(
        default=0.05,
        ge=0,
        description="Batch items/s over the long window below which it stays quiet.",
    )

    # --- ProductApiRetryBudgetExhausted -------------------------------------------
    rules_retry_budget_threshold: Ratio = Field(default=0.01, gt=0, lt=1)
    rules_retry_budget_long_window: Duration = "10m"
    rules_retry_budget_short_window: Duration = "2m"
    rules_retry_budget_for: Duration = "5m"
    rules_retry_budget_keep_firing_for: Duration = "5m"
    rules_retry_budget_severity: str = "warning"

    @field_validator("*", mode="after")
    @classmethod
    def _check_field(cls, value: object, info: ValidationInfo) -> object:
        name = info.field_name or ""
        if name == "rules_scrape_interval" or name.endswith(("_window", "_for")):
            parse_duration(str(value))
        elif name.endswith("_severity") and not _SEVERITY_RE.match(str(value)):
            raise ValueError(f"severity {value!r} must be letters, digits, '-' or '_'")
        elif name == "rules_runbook_url" and not re.match(r"^https?://\S+$", str(value)):
            raise ValueError(f"{value!r} is not an http(s) URL")
        elif name.endswith("_threshold") and not math.isfinite(float(str(value))):
            raise ValueError("threshold must be a finite number")
        return value

    @model_validator(mode="after")
    def _check_together(self) -> RulesSettings:
        try:
            parse_matchers(self.rules_extra_matchers, allow_quoted_names=self.utf8)
        except ValueError as exc:
            raise ValueError(f"{env_var('rules_extra_matchers')}: {exc}") from exc
        scrape = parse_duration(self.rules_scrape_interval)
        windows = [f for f in type(self).model_fields if f.endswith("_window")]
        for field in windows:
            if self.seconds(field) < SAMPLES_PER_WINDOW * scrape:
                raise ValueError(
                    f"{env_var(field)}={getattr(self, field)} (after time scale: "
                    f"{format_duration(self.seconds(field))}) must span at least "
                    f"{SAMPLES_PER_WINDOW} scrapes of {env_var('rules_scrape_interval')}="
                    f"{self.rules_scrape_interval}, or rate() returns nothing and the alert "
                    "never fires"
                )
        for field in windows:
            if field.endswith("_short_window"):
                long_field = field.replace("_short_", "_long_")
                if self.seconds(field) >= self.seconds(long_field):
                    raise ValueError(
                        f"{env_var(field)}={getattr(self, field)} must be shorter than "
                        f"{env_var(long_field)}={getattr(self, long_field)}"
                    )
        return self

    @property
    def utf8(self) -> bool:
        """True when rendering Prometheus 3's UTF-8 names."""
        return self.rules_metric_naming == "utf8"

    def seconds(self, field: str) -> int:
        """A duration field in whole seconds after ``rules_time_scale`` (at least 1)."""
        raw = parse_duration(str(getattr(self, field)))
        return max(1, round(raw * self.rules_time_scale))

    def duration(self, field: str) -> str:
        """A duration field as rendered: scaled, rounded, in Prometheus notation."""
        return format_duration(self.seconds(field))

    def matchers(self) -> tuple[str, ...]:
        """The extra label matchers, normalised."""
        return parse_matchers(self.rules_extra_matchers, allow_quoted_names=self.utf8)
