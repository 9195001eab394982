"""The ``otel-productapi rules`` subcommand: print or write the rendered rules.

- ``otel-productapi rules`` prints one rule file holding every group (load it
  with ``rule_files:``, ``promtool check rules``, or a Mimir/Cortex/Thanos ruler);
- ``--output-dir DIR`` writes one file per group instead (``alerts/`` is that);
- ``--format prometheusrule`` prints a ``monitoring.coreos.com/v1``
  ``PrometheusRule`` for the Prometheus Operator, named by ``--name``, in
  ``--namespace``, with ``--label key=value`` labels (e.g. ``release=...``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from otel_productapi.rules.render import (
    render_prometheus_rule,
    render_rules,
    render_rules_document,
)
from otel_productapi.rules.settings import RulesSettings, env_var

__all__ = ["add_arguments", "run"]

# Kubernetes object names: a DNS-1123 subdomain (name) or label (namespace).
_SUBDOMAIN_RE: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Label keys: an optional DNS-subdomain prefix and "/", then a name; values may be empty.
_LABEL_PART_RE: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``rules`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="write the rules into DIR (one file per rule group, or one manifest) "
        "instead of printing them",
    )
    parser.add_argument(
        "--format",
        choices=("rules", "prometheusrule"),
        default="rules",
        help="rules: a Prometheus rule file (default); prometheusrule: a "
        "monitoring.coreos.com/v1 PrometheusRule for the Prometheus Operator",
    )
    parser.add_argument(
        "--name",
        default="otel-productapi",
        help="with --format prometheusrule: metadata.name (default otel-productapi)",
    )
    parser.add_argument(
        "--namespace", help="with --format prometheusrule: metadata.namespace (default: none)"
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --format prometheusrule: a metadata label, e.g. release=kube-prometheus-stack "
        "(the label your Prometheus' ruleSelector matches); repeat for more",
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


def _manifest_options(args: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    """The ``--label`` pairs, and a message for each invalid manifest option."""
    problems: list[str] = []
    if len(args.name) > 253 or not _SUBDOMAIN_RE.match(args.name):
        problems.append(
            f"--name {args.name!r} is not a Kubernetes object name (DNS-1123 subdomain)"
        )
    if args.namespace is not None and (
        len(args.namespace) > 63 or not _DNS_LABEL_RE.match(args.namespace)
    ):
        problems.append(f"--namespace {args.namespace!r} is not a DNS-1123 label")
    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        prefix, _, name = key.rpartition("/")
        valid_key = (
            bool(sep)
            and len(name) <= 63
            and bool(_LABEL_PART_RE.match(name))
            and (not prefix or (len(prefix) <= 253 and bool(_SUBDOMAIN_RE.match(prefix))))
        )
        valid_value = not value or (len(value) <= 63 and bool(_LABEL_PART_RE.match(value)))
        if not (valid_key and valid_value):
            problems.append(f"--label {item!r} is not a Kubernetes label KEY=VALUE")
        labels[key] = value
    if args.format != "prometheusrule" and (
        args.namespace is not None or args.label or args.name != "otel-productapi"
    ):
        problems.append("--name, --namespace and --label need --format prometheusrule")
    return labels, problems


def run(args: argparse.Namespace) -> int:
    """Print or write the rules; 2 when the settings or options are invalid."""
    labels, problems = _manifest_options(args)
    if problems:
        for problem in problems:
            print(f"otel-productapi rules: {problem}", file=sys.stderr)
        return 2
    try:
        settings = RulesSettings()
    except ValidationError as exc:
        print(f"otel-productapi rules: {settings_error(exc)}", file=sys.stderr)
        return 2
    if args.format == "prometheusrule":
        printed = render_prometheus_rule(
            settings, name=args.name, namespace=args.namespace, labels=labels
        )
        files = {f"{args.name}.prometheusrule.yaml": printed}
    else:
        printed = render_rules_document(settings)
        files = render_rules(settings)
    output_dir: Path | None = args.output_dir
    if output_dir is None:
        sys.stdout.write(printed)
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (output_dir / name).write_text(text, encoding="utf-8")
        print(f"wrote {output_dir / name}", file=sys.stderr)
    return 0
