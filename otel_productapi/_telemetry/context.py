"""Per-call context shared between the retry session and the hooks.

The retry session runs each attempt through the instrumented ``Session.send``;
the request hook reads this to set ``http.request.resend_count`` on the span
of every attempt after the first.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Final

#: Attempts already made before the one being sent now (0 on the first).
RESEND_COUNT: Final[ContextVar[int]] = ContextVar("otel_productapi_resend_count", default=0)
