"""scrub_text removes personal data and secrets, and leaves ordinary text alone."""

from __future__ import annotations

import unicodedata

import pytest

from otel_productapi._core import scrub as _scrub
from otel_productapi._core.scrub import CUT_MARGIN, KEY_PREFIXES, looks_random, scrub_text


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("no user {email}", "no user jane.doe@example.com"),
        ("to {email}!", "to a.b+tag@mail.example.co.uk!"),
        ("users/{email}/x", "users/alice%40example.com/x"),
        ("{email}, {email}", "a@b.io, c@d.org"),
        ("{email} not found", "jürgen@münchen.de not found"),
        ("{email} not found", "用户@例子.中国 not found"),
        ("user {email}", "user anna@xn--mnchen-3ya.de"),
        ("to {email}", "to john+doe%40example.com"),
        ("mailto:{email}.", "mailto:jane@example.com."),
    ],
    ids=[
        "plain",
        "plus-tag-subdomains",
        "percent-encoded-at",
        "two",
        "non-ascii",
        "non-latin",
        "idn",
        "form-plus-percent",
        "mailto-and-full-stop",
    ],
)
def test_emails_are_replaced(expected: str, text: str) -> None:
    """E-mail addresses in any script become {email}, also with a percent-encoded @."""
    assert expected == scrub_text(text)


def test_only_64_characters_before_an_at_are_a_local_part() -> None:
    """A local part is at most 64 characters (RFC 5321): the ones before stay."""
    assert scrub_text("at " + "x" * 100 + "@example.com") == "at " + "x" * 36 + "{email}"


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("call {phone}", "call +4915112345678"),
        ("call {phone} now", "call +1 (555) 123-4567 now"),
        ("call {phone}", "call +49 151 12345678"),
        ("call {phone}", "call +44.20.7946.0958"),
        ("call {phone}", "call +49 (0)30 1234 5678"),
        ("call {phone}", "call +1 (415) 555-0100"),
        ("call {phone}", "call %2B4915112345678"),
        # "%20" separates groups: its "20" is no part of the number (found by hypothesis).
        ("call {phone}", "call +91%2000020%2000000"),
        ("call {phone}", "call %2B44%2020%207946%200958"),
        ("call {phone}", "call 0049 30 12345678"),
        ("call {phone}", "call 555-123-4567"),
        ("call {phone}", "call (555) 123-4567"),
        ("call {phone}", "call 555.123.4567"),
        ("call {phone}.", "call 1-800-555-0100."),
        ("call {phone}", "call 030 1234567"),
        ("call {phone}", "call (030) 1234567"),
        ("call {phone}", "call 0151/12345678"),
        ("call {phone}", "call 06 12 34 56 78"),
        ("call {phone}", "call 020 7946 0958"),
        ("call {phone}", "call 03-1234-5678"),
        ("call {phone}", "call (11) 91234-5678"),
        ("call {phone}", "call 138 0013 8000"),
        ("call {phone}", "call +91 98765 43210"),
        ("call {phone}", "call 098765 43210"),
        ("tel:{phone}", "tel:030 1234567"),
        ("call {phone} 4242", "call +49 151 12345678 4242"),
    ],
    ids=[
        "e164",
        "us-intl",
        "de-spaced",
        "uk-dots",
        "de-trunk-prefix",
        "us-brackets",
        "percent-encoded-plus",
        "percent-encoded-spaces",
        "percent-encoded-plus-and-spaces",
        "double-zero-prefix",
        "nanp-dashes",
        "nanp-parens",
        "nanp-dots",
        "nanp-with-1",
        "de-national",
        "de-bracketed-area",
        "de-slash",
        "fr",
        "uk-national",
        "jp",
        "br",
        "cn-mobile",
        "in",
        "in-national",
        "after-tel",
        "number-after-phone",
    ],
)
def test_phones_are_replaced(expected: str, text: str) -> None:
    """International, trunk-prefixed and national phone formats become {phone}."""
    assert expected == scrub_text(text)


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("no user {email}", "no user j%C3%BCrgen%40m%C3%BCnchen.de"),
        ("user {email}", "user jane%40m%C3%BCnchen.de"),
        ("phone={phone} sent", "phone=%2B1+%28415%29+555-0100 sent"),
        ("to={phone}", "to=030+1234567"),
        ("to={phone}", "to=%2B44+%280%2920+7946+0958"),
        ("call {phone} now", "call 030 / 1234567 now"),
        ("call {phone} now", "call +49 (0) 30 / 123 456 78 now"),
    ],
    ids=[
        "percent-encoded-non-ascii-email",
        "percent-encoded-non-ascii-domain",
        "form-encoded-us-phone",
        "form-encoded-national-phone",
        "form-encoded-trunk-prefix",
        "spaced-slash",
        "trunk-prefix-spaced-slash",
    ],
)
def test_encoded_and_spaced_personal_data_in_messages_is_replaced(expected: str, text: str) -> None:
    """Messages echoing percent- or form-encoded values, or spaced separators, are scrubbed."""
    assert expected == scrub_text(text)


# ASCII as East Asian input methods type it (U+FF01 to U+FF5E).
_FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}


def full_width(text: str) -> str:
    return text.translate(_FULL_WIDTH)


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        (
            "お問い合わせ:{email}",
            "お問い合わせ" + full_width(":") + "info" + full_width("@") + "example.co.jp",
        ),
        ("mail: {email}", "mail: jane\ufe6bexample.org"),
        ("{email}", full_width("john@example.com")),
        ("電話:{phone}", "電話" + full_width(":+81") + " " + full_width("3 1234 5678")),
        ("call {phone}", "call " + full_width("030 1234567")),
        ("users/{email}/x", "users/j%EF%BC%A0example.com/x"),
        ("password={secret}", full_width("password=hunter2hunter")),
    ],
    ids=[
        "fullwidth-at",
        "small-commercial-at",
        "all-fullwidth-email",
        "fullwidth-international-phone",
        "fullwidth-national-phone",
        "percent-encoded-fullwidth-at",
        "fullwidth-secret-pair",
    ],
)
def test_full_width_personal_data_is_replaced(expected: str, text: str) -> None:
    """What East Asian input methods type in full-width forms is read folded to ASCII too."""
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "在庫がありません" + full_width("(品番:AB-123)"),
        "\ufb01le " + full_width("not found"),
        "Größe " + full_width("2") + " nicht verfügbar",
    ],
)
def test_full_width_text_without_personal_data_is_kept_as_it_is(text: str) -> None:
    """No reading wins when it finds nothing: the text keeps its own forms."""
    assert scrub_text(text) == text


@pytest.mark.parametrize("noise", ["\ufdfa" * 200, "\u2126" * 50, "%EF%BC%A0" * 20])
def test_folding_is_one_character_for_one_whatever_surrounds_the_data(noise: str) -> None:
    """Characters NFKC would expand (U+FDFA is 18 characters) neither hide a full-width
    address nor lengthen any reading: at most three readings, none longer than the text."""
    text = f"{noise} info{full_width('@')}example.co.jp"
    assert scrub_text(text).endswith(" {email}")
    readings = _scrub._readings(text)
    assert 1 <= len(readings) <= 3
    assert max(len(reading) for reading in readings) <= len(text)


def test_the_fold_table_maps_to_single_ascii_characters() -> None:
    """Every fold is one ASCII character: the NFKC form of the character folded, or
    the "-" and "." Japanese input methods type as a long-vowel mark, dash or full stop."""
    folds = _scrub._ASCII_FOLDS
    expected = {0xFF20: "@", 0xFE6B: "@", 0x3000: " ", 0x1D41A: "a", 0x2460: "1", 0x00B2: "2"}
    expected |= {0x30FC: "-", 0x2212: "-", 0x2013: "-", 0x3002: ".", 0xFF61: "."}
    assert {code: chr(folds[code]) for code in expected} == expected
    by_input_method = _scrub._INPUT_METHOD_FOLDS
    assert all(
        unicodedata.normalize("NFKC", chr(k)) == chr(v)
        for k, v in folds.items()
        if k not in by_input_method
    )
    assert all(v < 0x80 for v in folds.values())


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        (
            "{phone} / to={phone}",
            "+4930" + full_width("-") + "12345678 / to=030+1234567",
        ),
        ("{phone} / tel={phone}", "+81\u30009012345678 / tel=090+1234+5678"),
        (
            "携帯:{phone}",
            "携帯" + full_width(":090") + "\u30fc" + full_width("1234") + "\u30fc5678",
        ),
        ("call {phone}", "call +44 20 7946\u20130958"),
        ("call {phone}", "call 415\u2212555\u22120100"),
        ("{email}", full_width("info@example") + "\u3002" + full_width("co") + "\u3002jp"),
    ],
    ids=[
        "folded-and-form-decoded",
        "ideographic-space-and-form-decoded",
        "long-vowel-marks",
        "en-dash",
        "minus-signs",
        "ideographic-full-stops",
    ],
)
def test_what_two_readings_find_and_input_method_separators_are_replaced(
    expected: str, text: str
) -> None:
    """What one reading finds and another misses is found in a second round, and the
    separators input methods type are read as "-" and "."; the result is scrubbed."""
    assert scrub_text(text) == expected
    assert scrub_text(expected) == expected


@pytest.mark.parametrize(
    "text", ["a+b=c 100% sure", "50%+ of calls", "q=red+shoes&page=2", "rate 3+4 %20"]
)
def test_plus_and_percent_alone_change_nothing(text: str) -> None:
    """A "+" or "%" in ordinary text keeps the text as it is (no decoded reading wins)."""
    assert scrub_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "page 2 of 10",
        "item 12345 is out of stock",
        "item 12345 not found",
        "created at 1700000000",
        "on 2024-01-15",
        "at 2024-01-15T10:30:00Z",
        "at 2024-01-15 10:30:00.123456+01:00",
        "on 15.01.2024 10:30",
        "host 192.168.100.200",
        "host 198.51.100.25",
        "1+2=3",
        "+12345 is too short for a phone",
        "+1234567890123456789 is too long for a phone",
        "balance 10 000 000 000",
        "total 1.234.567.890",
        "id 550e8400-e29b-41d4-a716-446655440000",
        "object 507f1f77bcf86cd799439011",
        "slug my-project-2024-launch-campaign-page-x",
        "see ThisIsALongClassNameForSomething here",
        "request req_AbC123dEf456Gh failed",
        "Invalid query filter",
        "basic validation failed",
        "Bearer token expired",
        "token: expired",
        "test passed: 5 of 10",
        "monkey=banana",
        "",
    ],
    ids=[
        "page",
        "item-id",
        "not-found",
        "timestamp",
        "date",
        "iso-timestamp",
        "iso-offset",
        "european-date-time",
        "ipv4",
        "ipv4-ten-digits",
        "arithmetic",
        "short-plus",
        "long-plus",
        "thousands-spaces",
        "thousands-dots",
        "uuid",
        "objectid",
        "long-slug",
        "camel-case",
        "short-prefixed-id",
        "seed-message",
        "basic-prose",
        "bearer-prose",
        "token-prose",
        "passed-colon",
        "key-inside-word",
        "empty",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    """Numbers, dates, ids, slugs and prose that are not personal data or secrets survive."""
    assert text == scrub_text(text)


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("Authorization: Bearer {token}", "Authorization: Bearer abc.def-ghi_jkl"),
        ("basic {token} sent", "basic dXNlcjpwYXNzd29yZA== sent"),
        ("jwt {token} bad", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl bad"),
        ("key {token}", "key 0123456789abcdef0123456789abcdef"),
        ("key {token}", "key ghp_AbCdEf1234567890AbCdEf1234567890abcd"),
        ("key {token}", "key github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123"),
        ("key {token}", "key sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUv"),
        ("key {token} x", "key rk_test_abcdefghij1234 x"),
        ("key {token} x", "key AKIAIOSFODNN7EXAMPLE x"),
        ("key {token} x", "key ASIAY34FZKBOKMUTVV7A x"),
        ("aws {token} x", "aws wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY x"),
        ("slack {token}", "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
        ("google {token}", "google AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
        ("ksuid {token}", "ksuid 0ujtsYcgvSTl8PAuAdqWYSMnLOv"),
        ("ulid {token}", "ulid 01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ],
    ids=[
        "bearer",
        "basic",
        "jwt",
        "hex-32",
        "github-token",
        "github-fine-grained",
        "stripe-secret",
        "stripe-restricted",
        "aws-access-key",
        "aws-session-key",
        "aws-secret-key",
        "slack",
        "google",
        "base62-random",
        "base32-random",
    ],
)
def test_tokens_are_replaced(expected: str, text: str) -> None:
    """Bearer/Basic credentials, JWTs, keys with known prefixes and random runs become {token}."""
    assert expected == scrub_text(text)


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("login failed: password={secret} for x", "login failed: password=hunter2 for x"),
        ('{"password": "{secret}", "user": "x"}', '{"password": "correct horse", "user": "x"}'),
        ("api_key: {secret}", "api_key: abcdEFGH1234"),
        ("token={secret}", "token=expired"),
        ("dbPassword={secret};", "dbPassword=swordfish;"),
        ('clientSecret: "{secret}"', 'clientSecret: "s3cr3t"'),
        ("X-Session-Token={secret}", "X-Session-Token=abc"),
        ("users;jsessionid={secret}", "users;jsessionid=ABC123"),
        ("secret = {secret} then", "secret = letmein then"),
        ("PASSWD={secret}", "PASSWD=x"),
        ("for 'htps://{secret}@h.example/v1'", "for 'htps://svc:Summer2024!@h.example/v1'"),
        ("see https://{secret}@[::1]:8080/x", "see https://deploy@[::1]:8080/x"),
        ("mail {email} via https://h/x", "mail jane@example.com via https://h/x"),
    ],
    ids=[
        "password",
        "json-quoted",
        "api-key-colon",
        "token-assignment",
        "camel-case-name",
        "quoted-colon",
        "header-like",
        "path-parameter",
        "spaced",
        "upper-case",
        "url-userinfo",
        "url-user-only",
        "not-userinfo",
    ],
)
def test_key_value_secrets_are_replaced(expected: str, text: str) -> None:
    """The value of a secret-named key, and a quoted URL's userinfo, become {secret};
    the key and the rest of the URL stay readable."""
    assert expected == scrub_text(text)


# Bodies in each vendor's documented alphabet and length.
_KEY_BODIES = {
    "SG.": "a1B2c3D4e5F6g7H8i9J0kL.m1N2o3P4q5R6s7T8u9V0w1X2y3Z4a5B6c7D8e9F0g1H2i",
    "dop_v1_": "0123456789abcdef" * 4,
    "shpat_": "0123456789abcdef" * 2,
    "key-": "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6",
    "AKIA": "IOSFODNN7EXAMPLE",
    "ASIA": "Y34FZKBOKMUTVV7A",
}


@pytest.mark.parametrize("prefix", KEY_PREFIXES)
def test_every_documented_key_prefix_is_caught(prefix: str) -> None:
    """Each prefix of KEY_PREFIXES, with a body of its real shape, becomes {token}."""
    key = prefix + _KEY_BODIES.get(
        prefix, "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE1fG3hI5jK7lM9nO1"
    )
    assert scrub_text(f"used {key} here") == "used {token} here"


def test_hex_under_32_characters_is_not_a_secret() -> None:
    """Below 32 characters a hex run is an id (an ObjectId, a span id), not a secret."""
    assert scrub_text("id " + "a1" * 15 + "b") == "id " + "a1" * 15 + "b"
    assert scrub_text("id " + "a1" * 16) == "id {token}"


def test_near_miss_input_is_kept() -> None:
    """Long runs that almost look like e-mails (no top-level domain) are not replaced."""
    text = ("a" * 60 + "@") * 2000 + "x" * 100_000
    assert text == scrub_text(text)


def test_old_backtracking_input_is_scrubbed_correctly() -> None:
    """The body that made the old e-mail pattern backtrack is kept, and fast patterns agree."""
    unit = "a" * 64 + "@" + ("a" * 62 + ".") * 8 + "a1 "
    text = unit * 100
    assert scrub_text(text) == text
    assert scrub_text(text + "jane@example.com") == text + "{email}"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("x7k2p9", True),
        ("3f9a8c", True),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", True),
        ("aZbKqLmNpQ", True),
        ("kTRmwQpZLsnVa", True),
        ("oauth2", False),
        ("v2beta", False),
        ("item7", False),
        ("sha256", False),
        ("batchCreate", False),
        ("getUserProfile", False),
        ("XMLHttpRequest", False),
        ("settings", False),
        ("12345", False),
        ("a-b", False),
        ("café1x2", False),
    ],
)
def test_looks_random(word: str, expected: bool) -> None:
    """Random ids and keys are told from words by how their character classes alternate."""
    assert expected is looks_random(word)


# --- max_length --------------------------------------------------------------------


def test_max_length_cuts_after_scrubbing() -> None:
    """An e-mail straddling the limit is replaced whole, then the result is cut."""
    text = "x" * 20 + " jane.doe@example.com and more"
    assert scrub_text(text, max_length=25) == "x" * 20 + " {ema"
    assert scrub_text(text, max_length=1000) == "x" * 20 + " {email} and more"


@pytest.mark.parametrize("max_length", [0, -5])
def test_max_length_below_one_gives_empty_text(max_length: int) -> None:
    """A limit of zero or less records nothing."""
    assert scrub_text("jane@example.com", max_length=max_length) == ""


def test_max_length_bounds_the_scrubbed_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only max_length + CUT_MARGIN characters are scrubbed, however long the text."""
    seen: list[int] = []
    original = _scrub._scrub

    def spy(text: str) -> str:
        seen.append(len(text))
        return original(text)

    monkeypatch.setattr(_scrub, "_scrub", spy)
    huge = ("a" * 64 + "@" + "b." * 8) * 250_000  # 16 MiB of near-miss e-mails
    assert len(huge) > 16 * 1024 * 1024
    assert scrub_text(huge, max_length=256) == huge[:256]
    assert seen == [256 + CUT_MARGIN]


def test_max_length_and_margin_see_every_value_that_starts_before_the_limit() -> None:
    """A value starting just before the limit is caught even when the text goes on for megabytes."""
    secret = "jürgen.müller-lüdenscheidt@sehr-lange-domain.beispiel.de"
    text = "m" * 250 + " " + secret + " " + "z" * 5_000_000
    assert scrub_text(text, max_length=256) == "m" * 250 + " {emai"
