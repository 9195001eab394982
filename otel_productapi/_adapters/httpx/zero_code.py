"""The httpx part of the zero-code path (see ``otel_productapi._adapters.zero_code``)."""

from __future__ import annotations

from otel_productapi._adapters.httpx.instrument import BINDING

__all__ = ["carries_our_hooks", "compose", "installed", "undone"]

compose = BINDING.compose
installed = BINDING.installed
carries_our_hooks = BINDING.carries_our_hooks
undone = BINDING.undone
