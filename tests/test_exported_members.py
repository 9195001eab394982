"""The package's ``__all__`` is exactly its public surface."""

from __future__ import annotations

import otel_productapi


def _defined_here(value: object) -> bool:
    return str(getattr(value, "__module__", "")).startswith("otel_productapi")


def test_all_lists_every_public_member() -> None:
    """Every public name the package defines or re-exports is in __all__, and nothing else."""
    public = {
        name
        for name, value in vars(otel_productapi).items()
        if not name.startswith("_") and (_defined_here(value) or name.isupper())
    }
    assert set(otel_productapi.__all__) == public | {"__version__"}


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
