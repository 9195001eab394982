"""``instrument()``/``uninstrument()`` and zero-code for ``requests``: exactly what we install.

    requests.Session.send .... RequestsInstrumentor's wrapper carrying our hooks;
                               remembered as an object, and uninstrumented only
                               while it is still the one in place
    HTTPAdapter.send ......... our marked wrapper (``ADAPTER_PATCH``): one user
                               more, one user less; removed with the last user

Someone else's instrumentation is never removed or replaced: if they
re-instrumented requests since (their hooks, their ``Session.send``), ours is
gone already and theirs stays. See ``otel_productapi._adapters.binding``.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.instrumentation.requests import RequestsInstrumentor
from requests import Session

from otel_productapi._adapters.binding import Binding
from otel_productapi._adapters.requests.hooks import RequestsHooks
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH

__all__ = ["BINDING"]


#: requests, as ``instrument()`` and zero-code bind it.
BINDING: Final = Binding(
    "requests",
    instrumentor=RequestsInstrumentor,
    owner=Session,
    method="send",
    patch=ADAPTER_PATCH,
    hooks=RequestsHooks,
    make_hooks="otel_productapi.make_hooks()",
)
