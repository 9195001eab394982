"""Make Product API calls made with ``requests`` observable and alertable.

The status table (``classify_status``) says what each outcome means; the
hooks put that on every Product API span and metric::

    import otel_productapi

    otel_productapi.instrument()  # settings from PRODUCTAPI_OTEL_* variables
"""

from __future__ import annotations

import importlib
import typing
from importlib.metadata import PackageNotFoundError, version

from otel_productapi._core.status import (
    IDEMPOTENT_METHODS,
    STATUS_TABLE,
    Classification,
    TransportFailure,
    classify_status,
    classify_transport_failure,
)

if typing.TYPE_CHECKING:
    from otel_productapi._adapters.httpx.hooks import ProductApiHttpxHooks, make_httpx_hooks
    from otel_productapi._adapters.requests.hooks import ProductApiHooks, make_hooks
    from otel_productapi._instrument import instrument, uninstrument
    from otel_productapi._telemetry.settings import ProductApiSettings, SettingsError

try:
    __version__ = version("otel-productapi")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "IDEMPOTENT_METHODS",
    "STATUS_TABLE",
    "Classification",
    "ProductApiHooks",
    "ProductApiHttpxHooks",
    "ProductApiSettings",
    "SettingsError",
    "TransportFailure",
    "__version__",
    "classify_status",
    "classify_transport_failure",
    "instrument",
    "make_hooks",
    "make_httpx_hooks",
    "uninstrument",
]

# Imported on first use: the pytest plugin and the zero-code entry point load
# this package in every process where it is installed, and requests,
# OpenTelemetry and pydantic are not free to import.
_LAZY: dict[str, str] = {
    "ProductApiHooks": "otel_productapi._adapters.requests.hooks",
    "make_hooks": "otel_productapi._adapters.requests.hooks",
    "ProductApiHttpxHooks": "otel_productapi._adapters.httpx.hooks",
    "make_httpx_hooks": "otel_productapi._adapters.httpx.hooks",
    "instrument": "otel_productapi._instrument",
    "uninstrument": "otel_productapi._instrument",
    "ProductApiSettings": "otel_productapi._telemetry.settings",
    "SettingsError": "otel_productapi._telemetry.settings",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
