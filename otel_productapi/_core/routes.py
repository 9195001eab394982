"""Route templating: low-cardinality ``url.template`` values from request paths."""

from __future__ import annotations

from otel_productapi._core.urls import ID, MAX_TEMPLATE_LENGTH, UUID, RouteTemplater

__all__ = ["ID", "MAX_TEMPLATE_LENGTH", "UUID", "RouteTemplater"]
