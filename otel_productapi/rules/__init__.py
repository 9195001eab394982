"""Prometheus alerting and recording rules for Product API calls, rendered from settings.

``render_rules()`` returns the rule files (the ones committed in ``alerts/``
are its output with default settings). ``otel-productapi rules`` prints them,
or writes them with ``--output-dir``; thresholds, windows, extra label
matchers, severities and the metric naming come from ``RulesSettings``, read
from ``PRODUCTAPI_OTEL_RULES_*`` environment variables::

    PRODUCTAPI_OTEL_RULES_EXTRA_MATCHERS='env="prod"' \\
    PRODUCTAPI_OTEL_RULES_STORM_SEVERITY=page \\
        otel-productapi rules --output-dir /etc/prometheus/rules/productapi

The package: ``settings`` (``RulesSettings`` and the typed per-alert settings
built from it), ``render`` (the rule groups and their YAML), ``command`` (the
``rules`` subcommand).
"""

from __future__ import annotations

from otel_productapi.rules.render import (
    RULE_FILES,
    render_groups,
    render_prometheus_rule,
    render_rules,
    render_rules_document,
)
from otel_productapi.rules.settings import RulesSettings

__all__ = [
    "RULE_FILES",
    "RulesSettings",
    "render_groups",
    "render_prometheus_rule",
    "render_rules",
    "render_rules_document",
]
