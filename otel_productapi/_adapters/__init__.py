"""One adapter per HTTP library, each thin: the tagger does the work.

    _adapters/
    ├── zero_code.py .... the opentelemetry_pre_instrument entry point (stdlib only)
    ├── requests/ ....... hooks, HTTPAdapter.send patch, exception mapping, instrument()
    └── httpx/ .......... hooks (sync, async), transport patch, exception mapping, instrument()

An adapter is the only place that may read its library's private attributes
(in its ``private.py``, one function each).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_productapi._adapters.binding import Binding

__all__ = ["installed_adapters"]

# (library, its OpenTelemetry instrumentation, our adapter's instrument module)
_ADAPTERS = (
    ("requests", "opentelemetry.instrumentation.requests", "requests.instrument"),
    ("httpx", "opentelemetry.instrumentation.httpx", "httpx.instrument"),
)


def installed_adapters() -> Iterator[Binding]:
    """The bindings of the libraries whose OpenTelemetry instrumentation is installed too."""
    for library, instrumentation, module in _ADAPTERS:
        if importlib.util.find_spec(library) and importlib.util.find_spec(instrumentation):
            binding: Binding = importlib.import_module(f"{__name__}.{module}").BINDING
            yield binding
