"""Make Product API calls made with ``requests`` observable and alertable.

The status table (``classify_status``) says what each outcome means; the
hooks put that on every Product API span and metric::

    import otel_productapi

    otel_productapi.instrument()  # settings from PRODUCTAPI_OTEL_* variables
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from otel_productapi._hooks import ProductApiHooks, make_hooks
from otel_productapi._instrument import instrument, uninstrument
from otel_productapi._settings import ProductApiSettings, SettingsError
from otel_productapi._status_table import (
    IDEMPOTENT_METHODS,
    STATUS_TABLE,
    Classification,
    TransportFailure,
    classify_status,
    classify_transport_failure,
)

try:
    __version__ = version("otel-productapi")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "IDEMPOTENT_METHODS",
    "STATUS_TABLE",
    "Classification",
    "ProductApiHooks",
    "ProductApiSettings",
    "SettingsError",
    "TransportFailure",
    "__version__",
    "classify_status",
    "classify_transport_failure",
    "instrument",
    "make_hooks",
    "uninstrument",
]
