"""Where ``scripts/build-tools`` put the reference implementations it built.

The tests and ``otel-productapi demo --stack`` run Prometheus 3, its promtool,
Jaeger and an OpenTelemetry Collector built from source; ``scripts/tools.txt``
names each one's version, and the binaries live in a per-user cache::

    ${OTEL_PRODUCTAPI_TOOLS_DIR:-${XDG_CACHE_HOME:-~/.cache}/otel-productapi/tools}/<name>-<version>/<name>
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ToolMissingError", "repository_file", "tool_path", "tools_dir", "tools_manifest"]

#: The checkout this package runs from (editable installs run from one).
_REPOSITORY = Path(__file__).resolve().parents[2]
#: The manifest, in that checkout.
_MANIFEST = _REPOSITORY / "scripts" / "tools.txt"


class ToolMissingError(FileNotFoundError):
    """A tool is not in the cache: run ``scripts/build-tools`` (the message says so)."""


def tools_dir() -> Path:
    """The cache folder ``scripts/build-tools`` builds into."""
    explicit = os.environ.get("OTEL_PRODUCTAPI_TOOLS_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "otel-productapi" / "tools"


def tools_manifest(manifest: Path = _MANIFEST) -> dict[str, str]:
    """``{name: version}`` from ``scripts/tools.txt``."""
    versions: dict[str, str] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#"):
            versions[fields[0]] = fields[1]
    return versions


def tool_path(name: str) -> Path:
    """The built binary of ``name`` at the version ``scripts/tools.txt`` pins.

    Raises:
        ToolMissingError: Not built yet, or not in the manifest.
    """
    versions = tools_manifest() if _MANIFEST.is_file() else {}
    version = versions.get(name)
    if version is None:
        raise ToolMissingError(f"{name!r} is not in {_MANIFEST}")
    path = tools_dir() / f"{name}-{version}" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolMissingError(f"{name} {version} is not built: run scripts/build-tools {name}")
    return path


def repository_file(relative: str) -> Path:
    """A file of the repository checkout this package runs from (``examples/...``).

    Raises:
        ToolMissingError: Not running from a checkout (an installed wheel has
            no ``examples/``): clone the repository and install it editable.
    """
    path = _REPOSITORY / relative
    if not path.is_file():
        raise ToolMissingError(
            f"{relative} not found: run from a clone of the repository (pip install -e .)"
        )
    return path
