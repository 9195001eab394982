"""Issue 8, "What was seen": one test per finding about ids, personal data, cost and settings.

Each test replays what a new user saw with the real-world input that broke
the core, and pins what the core does now.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from otel_productapi._core import scrub as _scrub
from otel_productapi._core.routes import DEFAULT_LEARN_THRESHOLD, RouteTemplater
from otel_productapi._core.scrub import CUT_MARGIN, scrub_text
from otel_productapi._core.urls import HostMatcher, redact_url

B62 = string.ascii_letters + string.digits


def _pick(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


LOWER36 = string.ascii_lowercase + string.digits
# The shapes that used to stay literal in url.template.
SEEN_LITERAL = (
    lambda r: _pick(r, B62, r.randint(10, 22)),  # mixed-case base62
    lambda r: r.choice(["cus_", "ord_", "usr-", "acct_"]) + _pick(r, B62, 14),  # prefixed
    lambda r: "AKIA" + _pick(r, string.ascii_uppercase + "234567", 16),  # AWS-style key
    lambda r: _pick(r, LOWER36, 6),  # short mixed token
    lambda r: ".".join(str(r.randrange(256)) for _ in range(4)),  # IP address
    lambda r: r.choice(["my-post-", "summer-sale-"]) + _pick(r, LOWER36, 6),  # slug
    lambda r: _pick(r, string.ascii_letters, r.randint(6, 12)),  # user names
)


def test_ids_of_any_shape_give_a_bounded_number_of_templates() -> None:
    """50k requests with ids of the shapes seen literal give at most a few dozen templates."""
    r = random.Random(8)
    collections = ["customers", "orders", "keys", "hosts", "posts"]
    templater = RouteTemplater()
    routes = [
        templater.template(f"/v1/{r.choice(collections)}/{r.choice(SEEN_LITERAL)(r)}/events")
        for _ in range(50_000)
    ]
    assert len(set(routes)) <= len(collections) * (DEFAULT_LEARN_THRESHOLD + 2)
    assert set(routes[-1000:]) == {
        f"/v1/{c}/{p}/events" for c in collections for p in ("{id}", "{token}")
    }


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (
            "https://api.example.com/v1/search?" + urlencode({"q": "john doe@example.com"}),
            "doe%40example.com",
        ),
        (
            "https://api.example.com/v1/search?" + urlencode({"phone": "+49 151 12345678"}),
            "12345678",
        ),
        ("https://api.example.com/v1/search?to=jane+doe%40example.com", "doe%40example.com"),
        ("https://api.example.com/v1/users/j%C3%BCrgen%40m%C3%BCnchen.de", "nchen"),
        ("https://api.example.com/v1/users/jürgen@münchen.de/orders", "nchen"),
    ],
    ids=[
        "form-encoded-email",
        "form-encoded-phone",
        "plus-in-email",
        "encoded-unicode",
        "raw-unicode",
    ],
)
def test_form_encoded_and_non_ascii_personal_data_leave_urls(url: str, secret: str) -> None:
    """Form-encoded query values and non-ASCII e-mails no longer survive URL redaction."""
    redacted = redact_url(url)
    assert secret not in redacted
    assert "{email}" in redacted or "{phone}" in redacted


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("no user jürgen@münchen.de", "no user {email}"),
        ("call +49 (0)30 1234 5678 back", "call {phone} back"),
        ("bad key sk_live_51HxYzAbCdEfGhIjKlMnOpQr", "bad key {token}"),
        ("key AKIAIOSFODNN7EXAMPLE denied", "key {token} denied"),
        (
            "config: password=hunter2 api_key=abc123XYZ",
            "config: password={secret} api_key={secret}",
        ),
        ('{"secret": "s3cr3t value"}', '{"secret": "{secret}"}'),
    ],
    ids=["non-ascii-email", "trunk-prefix-phone", "stripe-key", "aws-key", "kv-pairs", "json"],
)
def test_error_messages_lose_personal_data_and_secrets(message: str, expected: str) -> None:
    """Non-ASCII e-mails, +49 (0)30 numbers, API keys and key=value secrets are scrubbed."""
    assert scrub_text(message) == expected


@pytest.mark.parametrize(
    ("request_id", "expected"),
    [
        ("req-jane.doe@example.com", "{email}"),
        ("req:jane.doe@example.com", "req:{email}"),
        ("Bearer abcdef0123456789", "Bearer {token}"),
        ("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
        ("req_AbC123dEf456Gh", "req_AbC123dEf456Gh"),
        ("4bf92f3577b34da6", "4bf92f3577b34da6"),
    ],
    ids=[
        "email",
        "email-after-colon",
        "bearer",
        "uuid-kept",
        "stripe-request-id-kept",
        "span-id-kept",
    ],
)
def test_request_ids_are_scrubbed_and_ordinary_ones_kept(request_id: str, expected: str) -> None:
    """A request id carrying an e-mail or credential is scrubbed; ordinary ids are kept."""
    assert scrub_text(request_id, max_length=128) == expected


def test_a_crafted_body_is_scrubbed_only_up_to_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64 KB and a 1 MB near-miss body are cut to the limit plus the margin before scrubbing."""
    scrubbed: list[int] = []
    original = _scrub._scrub

    def spy(text: str) -> str:
        scrubbed.append(len(text))
        return original(text)

    monkeypatch.setattr(_scrub, "_scrub", spy)
    unit = "a" * 64 + "@" + ("a" * 62 + ".") * 8 + "a1 "
    for size, limit in ((64 * 1024, 256), (1024 * 1024, 8192)):
        body = (unit * (size // len(unit) + 1))[:size]
        assert scrub_text(body, max_length=limit) == body[:limit]
    assert scrubbed == [256 + CUT_MARGIN, 8192 + CUT_MARGIN]


@pytest.mark.parametrize(
    "pattern",
    [":", "::", "", "a" * 300 + ".example.com"],
    ids=["colon", "double-colon", "empty", "300"],
)
def test_host_patterns_that_are_not_host_names_are_refused(pattern: str) -> None:
    """HOSTS no longer accepts ':', '::', empty or 300-character labels."""
    with pytest.raises(ValueError, match="host pattern"):
        HostMatcher([pattern])


@pytest.mark.parametrize(
    "build",
    [lambda v: HostMatcher([v]), lambda v: RouteTemplater(["/" + v + "/{"])],
    ids=["host", "route-template"],
)
def test_errors_for_a_1mb_value_are_short(build: Callable[[str], object]) -> None:
    """A 1 MB bad value gives an error of a few hundred characters, not a megabyte."""
    with pytest.raises(ValueError, match=r"host pattern|route template") as raised:
        build("x:" * 500_000)
    assert len(str(raised.value)) < 400
