"""Test helpers: a simulated Product API for your own tests.

``FakeProductApi`` is a real HTTP server on 127.0.0.1 (standard library only)
with scripted scenarios; the ``fake_product_api`` pytest fixture (registered
automatically when this package is installed) hands you a started one::

    def test_storm_is_tagged(fake_product_api):
        fake_product_api.set_scenario("rate_limit_storm")
        response = requests.get(f"{fake_product_api.url}/v1/projects/p1/users/u1")
        assert response.status_code == 429

See ``docs/testing.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_productapi.testing._server import (
        ROUTE_TEMPLATES,
        SCENARIOS,
        FakeProductApi,
        FakeResponse,
        RecordedRequest,
    )

__all__ = [
    "ROUTE_TEMPLATES",
    "SCENARIOS",
    "FakeProductApi",
    "FakeResponse",
    "RecordedRequest",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that pytest loading our plugin (a submodule) in every session of
    # an environment with this package does not start importing http.server.
    if name in __all__:
        return getattr(importlib.import_module("otel_productapi.testing._server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
