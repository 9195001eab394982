"""Run a program under ``opentelemetry-instrument`` with a clean, explicit environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

APPS = Path(__file__).resolve().parent
ZERO_CODE_APP = APPS / "zero_code_app.py"
#: The httpx twin of ZERO_CODE_APP (sync or async client), exporting over OTLP.
ZERO_CODE_HTTPX_APP = APPS / "zero_code_httpx_app.py"
BIN = Path(sys.executable).parent
OPENTELEMETRY_INSTRUMENT = BIN / "opentelemetry-instrument"

#: What every run starts from: no exporters, so stdout carries only the app's output.
BASE_ENV: Mapping[str, str] = {
    "OTEL_SERVICE_NAME": "zero-code-test",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without OTEL_*/PRODUCTAPI_OTEL_* variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "PRODUCTAPI_OTEL_", "PYTHONPATH"))
    }
    return {**env, **BASE_ENV, **extra}


def run_instrumented(
    args: list[str], env: Mapping[str, str], *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument python ARGS...``; raises with its output if it fails."""
    result = subprocess.run(
        [str(OPENTELEMETRY_INSTRUMENT), sys.executable, *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def app_spans(
    base_url: str, calls: list[str], env: Mapping[str, str] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Run the zero-code app; returns its spans (decoded) and its stderr."""
    result = run_instrumented([str(ZERO_CODE_APP), base_url, *calls], env or {})
    last = result.stdout.strip().splitlines()[-1]
    spans: list[dict[str, Any]] = json.loads(last)
    return spans, result.stderr


SERVICE_APP = APPS / "zero_code_service.py"


def service_command(base_url: str, *args: str) -> list[str]:
    """``opentelemetry-instrument python zero_code_service.py BASE_URL ARGS...``."""
    return [str(OPENTELEMETRY_INSTRUMENT), sys.executable, str(SERVICE_APP), base_url, *args]
