"""``instrument()``/``uninstrument()`` and zero-code for ``httpx``: exactly what we install.

    HTTPTransport.handle_request ....... our marked wrapper (TRANSPORT_PATCH), installed
    AsyncHTTPTransport.handle_async_... first, then HTTPXClientInstrumentor's wrapper
                                         carrying our hooks around it; the instrumentor's
                                         wrapper is remembered and uninstrumented only
                                         while it is still the one in place

Someone else's httpx instrumentation is never removed or replaced. See
``otel_productapi._adapters.binding``.
"""

from __future__ import annotations

from typing import Final

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from otel_productapi._adapters.binding import Binding
from otel_productapi._adapters.httpx.hooks import HttpxHooks
from otel_productapi._adapters.httpx.transport import TRANSPORT_PATCH

__all__ = ["BINDING"]


#: httpx (sync and async), as ``instrument()`` and zero-code bind it.
BINDING: Final = Binding(
    "httpx",
    instrumentor=HTTPXClientInstrumentor,
    owner=httpx.HTTPTransport,
    method="handle_request",
    patch=TRANSPORT_PATCH,
    hooks=HttpxHooks,
    make_hooks="otel_productapi.make_httpx_hooks()",
)
