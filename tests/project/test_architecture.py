"""The layout keeps its promises: the core is pure and imports point one way."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from repo_paths import ROOT

PACKAGE = ROOT / "otel_productapi"
THIRD_PARTY = ("requests", "urllib3", "httpx", "httpcore", "opentelemetry", "pydantic", "yaml")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any level (lazy imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def _third_party(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in THIRD_PARTY}


def _ours(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("otel_productapi.")}


@pytest.mark.parametrize("path", _files("_core"), ids=lambda p: p.name)
def test_the_core_imports_the_standard_library_and_itself_only(path: Path) -> None:
    """_core: no HTTP library, no OpenTelemetry, no pydantic; only _core of ours."""
    imported = _imports(path)
    assert _third_party(imported) == set()
    assert {n for n in _ours(imported) if not n.startswith("otel_productapi._core")} == set()


@pytest.mark.parametrize("path", _files("_telemetry"), ids=lambda p: p.name)
def test_the_tagger_knows_no_http_library(path: Path) -> None:
    """_telemetry: OpenTelemetry yes, requests/httpx no; nothing of ours above it."""
    imported = _imports(path)
    assert {
        n
        for n in _third_party(imported)
        if n.split(".")[0] in ("requests", "urllib3", "httpx", "httpcore")
    } == set()
    above = (
        "otel_productapi._adapters",
        "otel_productapi.retry",
        "otel_productapi.rules",
        "otel_productapi.demo",
        "otel_productapi.testing",
    )
    assert {n for n in _ours(imported) if n.startswith(above)} == set()


@pytest.mark.parametrize("library", ["requests", "httpx"])
def test_an_adapter_never_imports_another(library: str) -> None:
    """Each adapter stands alone on the tagger: requests' never imports httpx and back."""
    other = {"requests": "httpx", "httpx": "requests"}[library]
    for path in _files(f"_adapters/{library}"):
        imported = _imports(path)
        assert {
            n
            for n in imported
            if n.split(".")[0] in (other, "httpcore" if other == "httpx" else "urllib3")
        } == set(), path.name
        assert {
            n for n in _ours(imported) if n.startswith(f"otel_productapi._adapters.{other}")
        } == set(), path.name


def test_the_zero_code_entry_point_imports_the_standard_library_only() -> None:
    """An import error in an entry point stops every auto-instrumentation."""
    imported = _imports(PACKAGE / "_adapters" / "zero_code.py")
    assert _third_party(imported) == set()
    assert _ours(imported) == set()


@pytest.mark.parametrize("path", _files("rules"), ids=lambda p: p.name)
def test_the_rules_need_no_sdk_and_no_http_library(path: Path) -> None:
    """Rendering alert rules imports no OpenTelemetry and no HTTP client."""
    imported = _imports(path)
    assert {
        n for n in _third_party(imported) if n.split(".")[0] not in ("pydantic", "yaml")
    } == set()
    assert {
        n
        for n in _ours(imported)
        if not n.startswith(("otel_productapi._core", "otel_productapi.rules"))
    } == set()


def test_importing_the_whole_core_loads_no_third_party_module() -> None:
    """At run time too: a fresh interpreter importing every _core module loads none of them."""
    modules = [f"otel_productapi._core.{p.stem}" for p in _files("_core") if p.stem != "__init__"]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {THIRD_PARTY!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
