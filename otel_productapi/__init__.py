"""Make Product API calls made with ``requests`` observable and alertable.

The status table (``classify_status``) says what each outcome means; the
hooks put that on every Product API span and metric.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
    "TransportFailure",
    "__version__",
    "classify_status",
    "classify_transport_failure",
]
