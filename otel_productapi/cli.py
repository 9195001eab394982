"""The ``otel-productapi`` command line: ``demo`` and ``rules``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when the command line is built, so
``import otel_productapi`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("otel_productapi.demo", "run the end-to-end demo against a simulated Product API"),
    "rules": ("otel_productapi.rules", "print the Prometheus alerting and recording rules"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand's options."""
    parser = argparse.ArgumentParser(
        prog="otel-productapi",
        description="Observability for Product API calls made with requests.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in _COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    status: int = args._run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
