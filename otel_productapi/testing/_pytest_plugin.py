"""Pytest plugin: the ``fake_product_api`` fixture.

Registered through the ``pytest11`` entry point, so it loads in every pytest
session of an environment where this package is installed: keep this module's
imports light (the server is imported only when a test asks for the fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from otel_productapi.testing import FakeProductApi


@pytest.fixture
def fake_product_api() -> Iterator[FakeProductApi]:
    """A started simulated Product API on 127.0.0.1, in the ``healthy`` scenario.

    Stopped (its port released) when the test ends.
    """
    from otel_productapi.testing import FakeProductApi  # noqa: PLC0415 - keep plugin load light

    with FakeProductApi() as api:
        yield api
