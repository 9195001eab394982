"""scrub_text removes personal data and secrets, and leaves ordinary text alone."""

from __future__ import annotations

import pytest

from otel_productapi._core.scrub import scrub_text


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("no user {email}", "no user jane.doe@example.com"),
        ("to {email}!", "to a.b+tag@mail.example.co.uk!"),
        ("users/{email}/x", "users/alice%40example.com/x"),
        ("{email}, {email}", "a@b.io, c@d.org"),
    ],
    ids=["plain", "plus-tag-subdomains", "percent-encoded-at", "two"],
)
def test_emails_are_replaced(expected: str, text: str) -> None:
    """E-mail addresses become {email}, also with a percent-encoded @."""
    assert expected == scrub_text(text)


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("call {phone}", "call +4915112345678"),
        ("call {phone} now", "call +1 (555) 123-4567 now"),
        ("call {phone}", "call +49 151 12345678"),
        ("call {phone}", "call +44.20.7946.0958"),
        ("call {phone}", "call 555-123-4567"),
        ("call {phone}", "call (555) 123-4567"),
        ("call {phone}", "call 555.123.4567"),
    ],
    ids=["e164", "us-intl", "de-spaced", "uk-dots", "nanp-dashes", "nanp-parens", "nanp-dots"],
)
def test_phones_are_replaced(expected: str, text: str) -> None:
    """E.164 and common formatted phone numbers become {phone}."""
    assert expected == scrub_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "page 2 of 10",
        "item 12345 is out of stock",
        "created at 1700000000",
        "on 2024-01-15",
        "host 192.168.100.200",
        "1+2=3",
        "+12345 is too short for a phone",
        "+1234567890123456789 is too long for a phone",
        "id 550e8400-e29b-41d4-a716-446655440000",
        "slug my-project-2024-launch-campaign-page-x",
        "Invalid query filter",
        "",
    ],
    ids=[
        "page",
        "item-id",
        "timestamp",
        "date",
        "ipv4",
        "arithmetic",
        "short-plus",
        "long-plus",
        "uuid",
        "long-slug",
        "seed-message",
        "empty",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    """Numbers, dates, ids and slugs that are not personal data or secrets survive."""
    assert text == scrub_text(text)


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("Authorization: Bearer {token}", "Authorization: Bearer abc.def-ghi_jkl"),
        ("basic {token} sent", "basic dXNlcjpwYXNzd29yZA== sent"),
        ("jwt {token} bad", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl bad"),
        ("key {token}", "key 0123456789abcdef0123456789abcdef"),
        ("key {token}", "key ghp_AbCdEf1234567890AbCdEf1234567890abcd"),
        ("key {token}", "key sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUv"),
    ],
    ids=["bearer", "basic", "jwt", "hex-32", "github-token", "prefixed-key"],
)
def test_tokens_are_replaced(expected: str, text: str) -> None:
    """Bearer/Basic credentials, JWTs and long random secrets become {token}."""
    assert expected == scrub_text(text)


def test_thirty_one_hex_characters_are_not_a_secret() -> None:
    """Below 32 characters a hex run is an id, not a secret."""
    assert scrub_text("id " + "a1" * 15 + "b") == "id " + "a1" * 15 + "b"


def test_near_miss_input_is_kept() -> None:
    """Long runs that almost look like e-mails (no top-level domain) are not replaced."""
    text = ("a" * 60 + "@") * 2000 + "x" * 100_000
    assert text == scrub_text(text)
