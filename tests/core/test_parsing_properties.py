"""Properties of the parsing core over generated input.

Whatever the network sends, parsing never raises and its outputs stay
bounded; whatever personal data or secret a URL or message carries, it never
survives redaction.
"""

from __future__ import annotations

import math
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from otel_productapi._core import headers as _headers
from otel_productapi._core.body import (
    BatchOutcome,
    default_batch_extractor,
    json_document,
    message_from_document,
    parse_json,
)
from otel_productapi._core.headers import (
    MAX_WAIT_SECONDS,
    ratelimit_fields,
    ratelimit_wait_seconds,
    request_id,
    retry_after_seconds,
)
from otel_productapi._core.routes import MAX_TEMPLATE_LENGTH, RouteTemplater
from otel_productapi._core.scrub import scrub_text
from otel_productapi._core.urls import MAX_URL_LENGTH, HostMatcher, redact_url


def error_message(body: bytes, *, content_type: str | None, max_length: int) -> str | None:
    """What the tagger records for an error body: one parse, then the message."""
    return message_from_document(json_document(body, content_type, 1 << 24), max_length)


NOW = 1_700_000_000.0
HEADER_NAMES = [
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "X-Request-Id",
]
RESET_UNITS = st.sampled_from(
    ["auto", "delta_seconds", "epoch_seconds", "epoch_milliseconds", "bogus"]
)

# Values servers plausibly get wrong, mixed with arbitrary text.
numberish = st.one_of(
    st.text(max_size=80),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["NaN", "inf", "-inf", "1e309", "-0", "١٢", "Wed, 21 Oct 2015 07:28:00 GMT"]),
)
header_dicts = st.dictionaries(st.sampled_from(HEADER_NAMES) | st.text(max_size=20), numberish)

# --- Secrets, as they appear in the wild ---------------------------------------

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9\-]{0,10}[a-z0-9])?", fullmatch=True)
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._+\-]{0,20}[A-Za-z0-9])?", fullmatch=True),
    st.lists(_label, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
e164 = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
formatted_intl = st.from_regex(r"\+[1-9][0-9]{0,2} \([0-9]{3}\) [0-9]{3}-[0-9]{4}", fullmatch=True)
spaced_intl = st.from_regex(r"\+[1-9][0-9] [0-9]{3} [0-9]{6,8}", fullmatch=True)
nanp = st.from_regex(r"[2-9][0-9]{2}[-.][0-9]{3}[-.][0-9]{4}", fullmatch=True)
phones = st.one_of(e164, formatted_intl, spaced_intl, nanp)
hex_tokens = st.from_regex(r"[0-9a-f]{32,64}", fullmatch=True).filter(
    lambda t: any(c.isdigit() for c in t)
)
random_keys = st.from_regex(r"[A-Za-z0-9]{32,64}", fullmatch=True).filter(
    lambda t: any(c.isdigit() for c in t) and any(c.isalpha() for c in t)
)
jwts = st.from_regex(
    r"eyJ[A-Za-z0-9_\-]{10,40}\.[A-Za-z0-9_\-]{10,60}\.[A-Za-z0-9_\-]{10,40}", fullmatch=True
)
tokens = st.one_of(hex_tokens, random_keys, jwts)
secrets = st.one_of(emails, phones, tokens)
# Surrounding prose; separated from the secret by spaces, as in real messages.
prose = st.text(st.characters(codec="utf-8"), max_size=40)

FAST = settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])


# --- Never raise, stay bounded ---------------------------------------------------


@FAST
@given(header_dicts, RESET_UNITS)
def test_header_parsing_never_raises_and_is_bounded(headers: dict[str, str], unit: str) -> None:
    """Any header values give None or counts in 0..10**18 and waits in 0..1 day."""
    case_insensitive = CaseInsensitiveDict(headers)
    limit, remaining, reset = ratelimit_fields(case_insensitive, NOW, unit)
    for count in (limit, remaining):
        assert count is None or 0 <= count < 10**18
    waits = [
        reset,
        retry_after_seconds(case_insensitive, now=NOW),
        ratelimit_wait_seconds(case_insensitive, now=NOW, reset_unit=unit),
    ]
    for wait in waits:
        assert wait is None or (math.isfinite(wait) and 0.0 <= wait <= MAX_WAIT_SECONDS)


@FAST
@given(header_dicts, st.integers(min_value=-5, max_value=300))
def test_request_id_is_printable_ascii_and_bounded(
    headers: dict[str, str], max_length: int
) -> None:
    """A request id is None or non-empty printable ASCII of at most max_length."""
    found = request_id(
        CaseInsensitiveDict(headers), ["x-request-id", "x-ratelimit-reset"], max_length=max_length
    )
    if found is not None:
        assert 0 < len(found) <= max_length
        assert found.isascii()
        assert found.isprintable()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
batch_keys = st.sampled_from(
    ["items", "results", "data", "errors", "accepted", "failed", "succeeded", "status", "error"]
)
batch_items = st.dictionaries(
    st.sampled_from(["status", "status_code", "result", "outcome", "error", "errors", "id"]),
    json_values | st.sampled_from(["failed", "ERROR", "ok", "accepted"]),
    max_size=4,
)
batch_documents = st.one_of(
    json_values,
    st.lists(batch_items, max_size=10),
    st.dictionaries(batch_keys, st.lists(batch_items, max_size=10) | json_values, max_size=4),
)


@FAST
@given(batch_documents, st.integers(min_value=-1, max_value=1000))
def test_batch_extractor_never_raises_and_counts_are_consistent(
    document: object, status: int
) -> None:
    """Any document gives None or a BatchOutcome with 0 <= failed <= items."""
    found = default_batch_extractor(document, status)
    if found is not None:
        assert isinstance(found, BatchOutcome)
        assert 0 <= found.failed_items <= found.items


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: repr(v).encode()),
    st.builds(lambda m: ('{"message": ' + repr(m) + "}").encode(), st.text(max_size=300)),
)
content_types = (
    st.none()
    | st.sampled_from(
        ["application/json", "application/problem+json", "text/plain", "", "APPLICATION/JSON; x"]
    )
    | st.text(max_size=30)
)


@FAST
@given(bodies, content_types, st.integers(min_value=-1, max_value=300))
def test_body_parsing_never_raises_and_is_bounded(
    body: bytes, content_type: str | None, max_length: int
) -> None:
    """Any body gives None or a printable message of at most max_length characters."""
    parse_json(body, 1000)
    message = error_message(body, content_type=content_type, max_length=max_length)
    if message is not None:
        assert 0 < len(message) <= max_length
        assert message.isprintable()


@FAST
@given(st.text(max_size=300) | st.from_regex(r"https?://[^\s]{0,200}", fullmatch=True))
def test_url_helpers_never_raise_and_are_bounded(url: str) -> None:
    """Any string gives a bounded redacted URL, a bounded route, and a host verdict."""
    assert len(redact_url(url)) <= MAX_URL_LENGTH
    route = RouteTemplater(["/v1/{a}/b"]).template(url)
    assert route.startswith("/")
    assert len(route) <= MAX_TEMPLATE_LENGTH
    assert HostMatcher(["*.example.com"])(url) in (True, False)


# --- Secrets never survive -------------------------------------------------------


@FAST
@given(secrets, prose, prose)
def test_scrubbed_messages_never_keep_a_secret(secret: str, before: str, after: str) -> None:
    """An e-mail, phone or token amid arbitrary text is always replaced."""
    assert secret not in scrub_text(f"{before} {secret} {after}")


@FAST
@given(secrets, st.integers(min_value=1, max_value=300))
def test_error_messages_never_keep_a_secret(secret: str, max_length: int) -> None:
    """The recorded error message never contains the secret, whatever the cut."""
    body = ('{"message": "no match for ' + secret + '"}').encode()
    message = error_message(body, content_type="application/json", max_length=max_length)
    assert message is None or secret not in message


@FAST
@given(secrets, st.booleans())
def test_redacted_urls_never_keep_a_secret_in_the_path(secret: str, encoded: bool) -> None:
    """A secret in a path segment, raw or percent-encoded, never survives."""
    segment = quote(secret, safe="") if encoded else secret
    url = f"https://api.example.com/v1/users/{segment}/orders?page=2"
    redacted = redact_url(url)
    assert secret not in redacted
    assert segment not in redacted
    route = RouteTemplater().template(url)
    assert secret not in route
    assert segment not in route


@FAST
@given(secrets, st.sampled_from(["q", "to", "filter", "api_key", "AccessToken"]), st.booleans())
def test_redacted_urls_never_keep_a_secret_in_the_query(
    secret: str, name: str, encoded: bool
) -> None:
    """A secret as a query value, raw or form-encoded, never survives."""
    query = urlencode({name: secret}) if encoded else f"{name}={secret}"
    redacted = redact_url(f"https://api.example.com/v1/things?page=2&{query}")
    assert secret not in redacted
    assert quote(secret, safe="") not in redacted


@FAST
@given(st.from_regex(r"[a-z]{1,8}:[a-z0-9!]{1,12}", fullmatch=True))
def test_redacted_urls_never_keep_userinfo(userinfo: str) -> None:
    """user:password before the host never survives."""
    redacted = redact_url(f"https://{userinfo}@api.example.com/v1/things")
    assert userinfo not in redacted


PLACEHOLDERS = {"{id}", "{uuid}", "{email}", "{phone}", "{token}"}


@FAST
@given(
    st.from_regex(r"[A-Za-z0-9._~:\-]{1,70}", fullmatch=True)
    | st.from_regex(r"[a-z0-9]{0,6}[~:.][A-Za-z0-9]{20,40}[~:.][a-z0-9]{0,6}", fullmatch=True)
)
def test_templated_segments_never_keep_what_scrub_text_would_change(segment: str) -> None:
    """A path segment scrub_text would alter becomes a placeholder, not a route literal."""
    route = RouteTemplater().template(f"/v1/{segment}")
    kept = route.removeprefix("/v1/")
    assert kept in PLACEHOLDERS or scrub_text(kept) == kept


# --- Fast paths answer as the general code does ---------------------------------


@FAST
@given(header_dicts, RESET_UNITS)
def test_rate_limits_read_alike_from_requests_headers_and_dicts(
    headers: dict[str, str], unit: str
) -> None:
    """requests' headers and a plain dict with lower-case names parse alike."""
    canonical = {name: headers[name] for name in HEADER_NAMES if name in headers}
    expected = ratelimit_fields(CaseInsensitiveDict(canonical), NOW, unit)
    lower = {name.lower(): value for name, value in canonical.items()}
    assert expected == ratelimit_fields(lower, NOW, unit)


@FAST
@given(numberish | st.integers(min_value=0, max_value=10**20).map(str))
def test_number_fast_path_agrees_with_the_pattern(value: str) -> None:
    """Plain digit strings skip the pattern and still read as the pattern reads them."""
    stripped = value.strip()
    match = _headers._LEADING_NUMBER_RE.match(stripped) if len(value) <= 64 else None
    text = match.group(1) if stripped and match else None
    expected = None if text is None else (float(text) if "." in text else int(text))
    assert expected == _headers._parse_number(value)
    assert expected == _headers._number(value)  # and the same again from the cache
    assert expected == _headers._number(value)
