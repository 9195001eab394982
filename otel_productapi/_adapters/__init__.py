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
from typing import Protocol

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_productapi._telemetry.tagger import Tagger

__all__ = ["Instrumentation", "installed_adapters"]


class Instrumentation(Protocol):
    """An adapter's ``instrument`` module."""

    def instrument(
        self,
        tagger: Tagger,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        """Instrument the library with our hooks on ``tagger``."""
        ...

    def uninstrument(self) -> None:
        """Undo exactly what ``instrument`` installed."""
        ...


# (library, its OpenTelemetry instrumentation, our adapter's instrument module)
_ADAPTERS = (
    ("requests", "opentelemetry.instrumentation.requests", "requests.instrument"),
    ("httpx", "opentelemetry.instrumentation.httpx", "httpx.instrument"),
)


def installed_adapters() -> Iterator[Instrumentation]:
    """The adapters whose library and OpenTelemetry instrumentation are both installed."""
    for library, instrumentation, module in _ADAPTERS:
        if importlib.util.find_spec(library) and importlib.util.find_spec(instrumentation):
            yield importlib.import_module(f"{__name__}.{module}")
