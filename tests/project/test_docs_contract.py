"""docs/telemetry.md names every public telemetry name and setting."""

from __future__ import annotations

import re

import pytest
from repo_paths import ROOT

from otel_productapi._core import names as _names

DOC = (ROOT / "docs" / "telemetry.md").read_text(encoding="utf-8")


def _telemetry_names() -> list[str]:
    values: list[str] = []
    for name, value in vars(_names).items():
        if name.isupper() and isinstance(value, str):
            values.append(value)
        elif name.isupper() and isinstance(value, tuple):
            values.extend(v for v in value if isinstance(v, str))
    return sorted(set(values))


def _documented(name: str) -> bool:
    return f"`{name}`" in DOC or re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", DOC) is not None


@pytest.mark.parametrize("name", _telemetry_names())
def test_every_telemetry_name_is_documented(name: str) -> None:
    """Each attribute key, metric name, unit and value in _names.py appears in the doc."""
    assert _documented(name), f"{name!r} is missing from docs/telemetry.md"


def test_every_instrumentation_setting_is_documented() -> None:
    """Each PRODUCTAPI_OTEL_* variable of the instrumentation settings appears in the doc."""
    from otel_productapi._telemetry.settings import ProductApiSettings

    missing = [
        f"{_names.ENV_PREFIX}{field.upper()}"
        for field in ProductApiSettings.model_fields
        if f"{_names.ENV_PREFIX}{field.upper()}" not in DOC
    ]
    assert missing == []


def test_every_rules_setting_is_documented() -> None:
    """Each PRODUCTAPI_OTEL_RULES_* variable of the rules renderer appears in the doc."""
    from otel_productapi.rules import RulesSettings

    missing = [
        f"{_names.ENV_PREFIX}{field.upper()}"
        for field in RulesSettings.model_fields
        if f"{_names.ENV_PREFIX}{field.upper()}" not in DOC
    ]
    assert missing == []


def test_every_alert_and_recording_rule_is_documented() -> None:
    """Each alert and recording rule the default rules render appears in the doc."""
    from otel_productapi.rules import render_groups

    names = [
        rule.get("alert") or rule["record"] for group in render_groups() for rule in group["rules"]
    ]
    assert [name for name in names if f"`{name}`" not in DOC] == []


@pytest.mark.parametrize("module", ["otel_productapi", "otel_productapi.retry"])
def test_every_public_name_is_documented(module: str) -> None:
    """Each name a public package exports (its __all__) appears in the doc."""
    import importlib

    exported: list[str] = importlib.import_module(module).__all__
    missing = [name for name in exported if name != "__version__" and not _documented(name)]
    assert missing == []
