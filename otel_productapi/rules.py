"""Prometheus alerting and recording rules for Product API calls, rendered from settings.

``render_rules()`` returns the rule files (the ones committed in ``alerts/``
are its output with default settings). ``otel-productapi rules`` prints them,
or writes them with ``--output-dir``; thresholds, windows, extra label
matchers, severities and the metric naming come from ``RulesSettings``, read
from ``PRODUCTAPI_OTEL_RULES_*`` environment variables::

    PRODUCTAPI_OTEL_RULES_EXTRA_MATCHERS='env="prod"' \\
    PRODUCTAPI_OTEL_RULES_STORM_SEVERITY=page \\
        otel-productapi rules --output-dir /etc/prometheus/rules/productapi
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from otel_productapi._rules_render import RULE_FILES, render_rules
from otel_productapi._rules_settings import RulesSettings, env_var

__all__ = ["RULE_FILES", "RulesSettings", "add_arguments", "render_rules", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``rules`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="write one file per rule group into DIR instead of printing them",
    )


def settings_error(exc: ValidationError) -> str:
    """A message naming the environment variable behind each invalid setting."""
    lines = ["invalid rules settings:"]
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        where = env_var(location[0]) if location else "settings"
        message = error["msg"].removeprefix("Value error, ")
        value = f" (got {error['input']!r})" if location and "input" in error else ""
        lines.append(f"  {where}: {message}{value}" if location else f"  {message}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print or write the rule files; 2 when the settings are invalid."""
    try:
        settings = RulesSettings()
    except ValidationError as exc:
        print(f"otel-productapi rules: {settings_error(exc)}", file=sys.stderr)
        return 2
    files = render_rules(settings)
    output_dir: Path | None = args.output_dir
    if output_dir is None:
        for name, text in files.items():
            sys.stdout.write(f"# --- {name}\n{text}")
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (output_dir / name).write_text(text, encoding="utf-8")
        print(f"wrote {output_dir / name}", file=sys.stderr)
    return 0
