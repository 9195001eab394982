"""Every telemetry name this library emits: the public contract.

Attribute keys, metric names, units and enumerated values live here and
nowhere else; every other module imports them. ``docs/telemetry.md`` mirrors
this file, and a test checks the two agree.
"""

from __future__ import annotations

from typing import Final

#: Instrumentation scope name for our tracer and meter.
SCOPE: Final = "otel_productapi"

# --- Span attributes -------------------------------------------------------

#: Error class from the Product API status table; absent on success.
ATTR_ERROR_CLASS: Final = "productapi.error.class"
#: Whether a retry can help (bool); set whenever the class is set.
ATTR_ERROR_RETRYABLE: Final = "productapi.error.retryable"
#: The ``message`` of a JSON error body, truncated.
ATTR_ERROR_MESSAGE: Final = "productapi.error.message"
#: The request id the API returned (``X-Request-Id`` by default).
ATTR_REQUEST_ID: Final = "productapi.request_id"
ATTR_RATELIMIT_LIMIT: Final = "productapi.ratelimit.limit"
ATTR_RATELIMIT_REMAINING: Final = "productapi.ratelimit.remaining"
#: Seconds until the rate-limit window resets (float).
ATTR_RATELIMIT_RESET: Final = "productapi.ratelimit.reset"
ATTR_BATCH_ITEMS: Final = "productapi.batch.items"
ATTR_BATCH_FAILED_ITEMS: Final = "productapi.batch.failed_items"
ATTR_BATCH_OUTCOME: Final = "productapi.batch.outcome"

# Semantic-convention keys we set or read (copied, not imported: the semconv
# package moves names between modules across releases).
ATTR_URL_TEMPLATE: Final = "url.template"
ATTR_URL_FULL: Final = "url.full"
ATTR_HTTP_URL_OLD: Final = "http.url"
ATTR_HTTP_REQUEST_METHOD: Final = "http.request.method"
ATTR_HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
ATTR_SERVER_ADDRESS: Final = "server.address"
ATTR_HTTP_RESEND_COUNT: Final = "http.request.resend_count"
ATTR_ERROR_TYPE: Final = "error.type"

# --- Error classes (values of productapi.error.class) ---------------------

CLASS_BAD_REQUEST: Final = "bad_request"
CLASS_UNAUTHORIZED: Final = "unauthorized"
CLASS_FORBIDDEN: Final = "forbidden"
CLASS_NOT_FOUND: Final = "not_found"
CLASS_VALIDATION_FAILED: Final = "validation_failed"
CLASS_RATE_LIMITED: Final = "rate_limited"
CLASS_SERVER_ERROR: Final = "server_error"
CLASS_CLIENT_ERROR: Final = "client_error"
CLASS_TRANSPORT_ERROR: Final = "transport_error"

ERROR_CLASSES: Final = (
    CLASS_BAD_REQUEST,
    CLASS_UNAUTHORIZED,
    CLASS_FORBIDDEN,
    CLASS_NOT_FOUND,
    CLASS_VALIDATION_FAILED,
    CLASS_RATE_LIMITED,
    CLASS_SERVER_ERROR,
    CLASS_CLIENT_ERROR,
    CLASS_TRANSPORT_ERROR,
)

# --- Batch outcomes ---------------------------------------------------------

#: Values of productapi.batch.outcome on the span.
BATCH_COMPLETE: Final = "complete"
BATCH_PARTIAL: Final = "partial"
BATCH_FAILED: Final = "failed"
#: Values of the ``outcome`` attribute on the productapi.batch.items counter.
ITEM_ACCEPTED: Final = "accepted"
ITEM_FAILED: Final = "failed"
ATTR_ITEM_OUTCOME: Final = "outcome"

# --- Metrics ----------------------------------------------------------------

METRIC_CLIENT_REQUESTS: Final = "productapi.client.requests"
METRIC_CLIENT_REQUESTS_UNIT: Final = "{request}"
METRIC_RATELIMIT_REMAINING: Final = "productapi.ratelimit.remaining"
METRIC_RATELIMIT_LIMIT: Final = "productapi.ratelimit.limit"
METRIC_RATELIMIT_UNIT: Final = "{request}"
METRIC_BATCH_ITEMS: Final = "productapi.batch.items"
METRIC_BATCH_ITEMS_UNIT: Final = "{item}"

# --- Configuration ------------------------------------------------------------

#: Prefix of every environment variable this library reads.
ENV_PREFIX: Final = "PRODUCTAPI_OTEL_"

# --- Retry helper ---------------------------------------------------------------

#: Counter of retries sent (attempts after the first); attributes below.
METRIC_CLIENT_RETRIES: Final = "productapi.client.retries"
METRIC_CLIENT_RETRIES_UNIT: Final = "{retry}"
#: Counter of retries the budget refused (the outcome was returned instead).
METRIC_RETRY_BUDGET_REFUSALS: Final = "productapi.client.retry_budget.refusals"
METRIC_RETRY_BUDGET_REFUSALS_UNIT: Final = "{retry}"
