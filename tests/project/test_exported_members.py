"""The package's ``__all__`` is exactly its public surface, and importing it is light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import otel_productapi


def _defined_here(value: object) -> bool:
    return str(getattr(value, "__module__", "")).startswith("otel_productapi")


def test_all_lists_every_public_member() -> None:
    """Every public name the package defines or re-exports is in __all__, and nothing else."""
    public = {
        name
        for name in dir(otel_productapi)
        if not name.startswith("_")
        and (_defined_here(getattr(otel_productapi, name)) or name.isupper())
    }
    assert set(otel_productapi.__all__) == public | {"__version__"}


def test_every_name_in_all_resolves() -> None:
    """Lazily imported names resolve to the objects of their modules."""
    from otel_productapi._instrument import instrument

    assert otel_productapi.instrument is instrument
    for name in otel_productapi.__all__:
        assert getattr(otel_productapi, name) is not None


def test_unknown_attributes_raise_attribute_error() -> None:
    """A misspelt name fails like any module attribute."""
    with pytest.raises(AttributeError, match="instrumnet"):
        otel_productapi.instrumnet  # noqa: B018


def test_importing_the_package_does_not_import_the_adapters() -> None:
    """The pytest plugin and entry point load the package everywhere: keep it light."""
    code = (
        "import sys, otel_productapi, otel_productapi.testing._pytest_plugin;"
        "print(sorted(m for m in ('requests', 'opentelemetry.sdk', 'pydantic_settings')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _isort_key(name: str) -> tuple[int, str]:
    # ruff RUF022: SCREAMING_CASE, then CamelCase, then everything else.
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    """__all__ is kept in ruff's isort-style order."""
    assert otel_productapi.__all__ == sorted(otel_productapi.__all__, key=_isort_key)
