"""The ``otel-productapi`` command line: ``demo`` and ``rules``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``. Only the chosen subcommand's module is imported: ``rules``
never loads the demo, the OpenTelemetry SDK or ``requests``. ``--help`` lists
every command from the table below without importing any of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["build_parser", "main"]

#: command → (module with add_arguments/run, one-line help)
_COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "demo": ("otel_productapi.demo", "run the end-to-end demo against a simulated Product API"),
    "rules": ("otel_productapi.rules.command", "print the Prometheus alerting and recording rules"),
}
_DESCRIPTION: Final = "Observability for Product API calls made with requests."


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser, listing every command; only ``command``'s module is imported.

    The other commands get a placeholder parser, so ``--help`` still lists them
    all; asking for one of them means calling ``build_parser`` with its name.
    """
    parser = argparse.ArgumentParser(prog="otel-productapi", description=_DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in _COMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(subparser)
            subparser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The top-level parser has no option taking a value: the first word is the command.
    command = next((arg for arg in arguments if not arg.startswith("-")), None)
    args = build_parser(command if command in _COMMANDS else None).parse_args(arguments)
    status: int = args._run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
