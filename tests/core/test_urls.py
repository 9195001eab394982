"""Host matching, URL splitting and URL redaction."""

from __future__ import annotations

import pytest

from otel_productapi._core.urls import (
    MAX_URL_LENGTH,
    REDACTED,
    HostMatcher,
    needs_redaction,
    redact_url,
    split_url,
)

# --- HostMatcher ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "host"),
    [
        (True, "api.example.com"),
        (True, "API.Example.COM"),
        (True, "api.example.com."),
        (False, "example.com"),
        (False, "xapi.example.com"),
        (True, "eu.product.example.org"),
        (True, "a.b.product.example.org"),
        (False, "product.example.org"),
        (False, "evilproduct.example.org"),
        (True, "::1"),
        (True, "10.0.0.7"),
        (True, "xn--mnchen-3ya.de"),
        (False, None),
        (False, ""),
    ],
    ids=str,
)
def test_host_matcher(expected: bool, host: str | None) -> None:
    """Exact names match case-insensitively; *.suffix matches subdomains only."""
    matcher = HostMatcher(
        ["api.example.com", "*.product.example.org", "[::1]", "10.0.0.7", "münchen.de"]
    )
    assert expected is matcher(host)
    assert expected is matcher(host)  # the cached answer agrees


@pytest.mark.parametrize("host", ["anything.test", "", None], ids=str)
def test_empty_host_list_matches_every_host(host: str | None) -> None:
    """With no patterns every request is instrumented."""
    assert HostMatcher([])(host) is True


def test_host_cache_is_bounded_and_answers_stay_right() -> None:
    """Thousands of distinct hosts keep the cache at its cap, and every answer is right."""
    matcher = HostMatcher(["*.example.com"])
    for i in range(5000):
        assert matcher(f"h{i}.example.com") is True
        assert matcher(f"h{i}.example.org") is False
    assert len(matcher._cache) <= matcher._cache.max_size == 1024


@pytest.mark.parametrize(
    "pattern",
    [
        "https://api.example.com",
        "api.example.com/v1",
        "api.example.com:8443",
        "api example.com",
        "*example.com",
        "api.*.com",
        "",
        "*.",
        ":",
        "::",
        "a" * 64 + ".example.com",
        ".".join(["abcdefghi"] * 26),
        "-api.example.com",
        "api-.example.com",
        "1.2.3",
        "999.1.1.1",
        "*.10.0.0.1",
        "[::1",
        "[not-ipv6]",
    ],
    ids=[
        "scheme",
        "path",
        "port",
        "space",
        "glued-star",
        "inner-star",
        "empty",
        "bare-star",
        "colon",
        "double-colon",
        "64-char-label",
        "259-char-name",
        "leading-dash",
        "trailing-dash",
        "numeric-name",
        "bad-ipv4",
        "wildcard-ip",
        "unclosed-bracket",
        "bracketed-name",
    ],
)
def test_host_matcher_rejects_bad_patterns(pattern: str) -> None:
    """A pattern that is not a host name, IP address or *.suffix is refused, naming it."""
    with pytest.raises(ValueError, match="host pattern") as raised:
        HostMatcher([pattern])
    assert repr(pattern[:80])[:-1] in str(raised.value)


def test_host_label_of_63_and_name_of_253_characters_are_accepted() -> None:
    """The DNS limits themselves are valid: a 63-character label, a 253-character name."""
    label = "a" * 63
    name = ".".join([label, label, label, "b" * 61])
    assert len(name) == 253
    assert HostMatcher([label + ".example.com", name])(name) is True


def test_host_pattern_error_for_a_huge_value_is_short() -> None:
    """A 1 MB pattern gives an error of a few hundred characters that says how long it was."""
    with pytest.raises(ValueError, match="host pattern") as raised:
        HostMatcher(["x" * 1_000_000 + ":1"])
    message = str(raised.value)
    assert len(message) < 400
    assert "1000002 characters" in message
    assert "'" + "x" * 80 + "'" in message


# --- split_url -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "url"),
    [
        (("api.example.com", "/v1/things"), "https://api.example.com/v1/things?x=1#f"),
        (("api.example.com", "/"), "https://API.Example.com"),
        (("api.example.com", "/"), "https://api.example.com?x=1"),
        (("h", "/p"), "https://user:pa55@h:8443/p"),
        (("h", "/p"), "https://a@b@h/p"),
        (("::1", "/x"), "http://[::1]:8080/x"),
        (("h", "/a//b/"), "git+ssh://h/a//b/"),
        (None, "/relative/path"),
        (None, "/x?next=http://evil.example.com/"),
        (None, "://no-scheme/x"),
        (None, "1http://digit-first/x"),
        (None, "http:///no-host"),
        (None, "http://user@/no-host"),
        (None, "http://[::1/unclosed"),
        (None, "http://a]b/x"),
    ],
    ids=[
        "query-fragment-dropped",
        "empty-path",
        "query-without-path",
        "userinfo-port",
        "two-ats",
        "ipv6",
        "scheme-with-plus",
        "relative",
        "url-in-query",
        "empty-scheme",
        "bad-scheme",
        "empty-host",
        "userinfo-only",
        "unclosed-bracket",
        "stray-bracket",
    ],
)
def test_split_url(expected: tuple[str, str] | None, url: str) -> None:
    """Host (lower-cased, bare) and path of absolute URLs; None without scheme or host."""
    assert expected == split_url(url)


# --- redact_url ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "url"),
    [
        (
            "https://REDACTED:REDACTED@api.example.com/v1/things",
            "https://user:pa55@api.example.com/v1/things",
        ),
        ("https://REDACTED:REDACTED@h/x", "https://user@h/x"),
        ("https://h/x?api_key=REDACTED&page=2", "https://h/x?api_key=abc&page=2"),
        (
            "https://h/x?AccessToken=REDACTED&X-Signature=REDACTED&sig=REDACTED",
            "https://h/x?AccessToken=a&X-Signature=b&sig=c",
        ),
        (
            "https://h/x?password=REDACTED&client_secret=REDACTED&code=REDACTED",
            "https://h/x?password=a&client_secret=b&code=c",
        ),
        (
            "https://h/x?session_id=REDACTED&Credential=REDACTED",
            "https://h/x?session_id=a&Credential=b",
        ),
        ("https://h/x?api%5Fkey=REDACTED", "https://h/x?api%5Fkey=abc"),
        ("https://h/v1/users/{email}/orders", "https://h/v1/users/jane@example.com/orders"),
        ("https://h/v1/users/{email}", "https://h/v1/users/jane%40example.com"),
        ("https://h/v1/users/{email}", "https://h/v1/users/j%C3%BCrgen@m%C3%BCnchen.de"),
        ("https://h/v1/users/{phone}", "https://h/v1/users/%2B4915112345678"),
        ("https://h/v1/users/{phone}", "https://h/v1/users/+49%20(0)30%201234%205678"),
        ("https://h/x?to={email}&n=1", "https://h/x?to=jane%40example.com&n=1"),
        ("https://h/x?to={email}", "https://h/x?to=john+doe%40example.com"),
        ("https://h/x?to={email}", "https://h/x?to=j%C3%BCrgen%40m%C3%BCnchen.de"),
        ("https://h/x?phone={phone}", "https://h/x?phone=+4915112345678"),
        ("https://h/x?phone={phone}", "https://h/x?phone=%2B49+151+12345678"),
        ("https://h/x?q=call+{phone}+now", "https://h/x?q=call+%2B1+(415)+555-0100+now"),
        ("https://h/x?q=Bearer+{token}", "https://h/x?q=Bearer+abcdef123456"),
        ("https://h/x?{email}=1", "https://h/x?jane@example.com=1"),
        ("https://h/x?flag", "https://h/x?flag"),
        ("https://h/x?", "https://h/x?"),
        ("https://h/x", "https://h/x#access_token=abc"),
        ("https://h:8443/x?q=a%20b", "https://h:8443/x?q=a%20b"),
        ("https://h/x?q=a+b&empty=", "https://h/x?q=a+b&empty="),
        ("HTTPS://H/Mixed/Case", "HTTPS://H/Mixed/Case"),
        ("/relative/{email}", "/relative/jane@example.com"),
        ("https://h/users;jsessionid={secret}", "https://h/users;jsessionid=ABC123"),
    ],
    ids=[
        "userinfo",
        "user-only",
        "api-key",
        "token-signature-sig",
        "password-secret-code",
        "session-credential",
        "encoded-sensitive-name",
        "email-in-path",
        "encoded-email-in-path",
        "unicode-email-in-path",
        "encoded-phone-in-path",
        "trunk-phone-in-path",
        "email-in-query",
        "form-encoded-email",
        "unicode-email-in-query",
        "raw-plus-phone-in-query",
        "form-encoded-spaced-phone",
        "form-encoded-phone-in-prose",
        "bearer-in-query",
        "email-as-query-name",
        "bare-name",
        "empty-query-kept",
        "fragment-dropped",
        "port-and-encoding-kept",
        "plus-and-empty-value-kept",
        "spelling-kept",
        "relative",
        "path-parameter-secret",
    ],
)
def test_redact_url(expected: str, url: str) -> None:
    """Credentials, secret query values, e-mails and phones never survive redaction."""
    assert expected == redact_url(url)


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://[not-ipv6]/", "http://a]b/", "https://" + "a" * 3000 + "/x"],
    ids=["unclosed-ipv6", "bad-ipv6", "stray-bracket", "huge-authority"],
)
def test_unparsable_url_gives_placeholder(url: str) -> None:
    """A URL with a malformed or over-long authority is replaced whole, never raised."""
    assert redact_url(url) == REDACTED


def test_redacted_url_is_bounded() -> None:
    """Huge URLs are cut to MAX_URL_LENGTH."""
    assert len(redact_url("https://h/" + "a/" * 10_000)) == MAX_URL_LENGTH


def test_a_secret_just_before_the_cut_is_scrubbed_whole() -> None:
    """A URL is cut after scrubbing, so an e-mail straddling the limit leaves no part of itself."""
    email = "jane.doe.long.name@example-company.com"
    url = "https://h/" + "a" * (MAX_URL_LENGTH - len("https://h/") - 10) + "/" + email
    redacted = redact_url(url)
    assert redacted == url[: url.rindex("/")] + "/{email}"
    assert len(url) > MAX_URL_LENGTH >= len(redacted)


@pytest.mark.parametrize(
    ("expected", "url"),
    [
        (False, "https://api.example.com/v1/projects/acme/users/42"),
        (False, "http://127.0.0.1:8080/v1/organizations/members"),
        (False, "https://api.example.com"),
        (True, "https://api.example.com/v1/things?page=2"),
        (True, "https://api.example.com/v1/things#top"),
        (True, "https://u:p@api.example.com/v1/things"),
        (True, "https://api.example.com/v1/users/jane%40example.com"),
        (True, "https://api.example.com/v1/users/030-1234567"),
        (True, "https://api.example.com/v1/keys/eyJhbGciOi"),
        (True, "https://api.example.com/v1/keys/xoxb-1234567890"),
        (True, "https://api.example.com/v1/password:hunter2"),
        (True, "relative/path"),
        (True, "https://h/" + "a" * MAX_URL_LENGTH),
    ],
    ids=[
        "plain-with-id",
        "long-words",
        "no-path",
        "query",
        "fragment",
        "userinfo",
        "percent",
        "phone-shaped",
        "jwt",
        "slack-token",
        "colon",
        "relative",
        "too-long",
    ],
)
def test_needs_redaction(expected: bool, url: str) -> None:
    """The pre-check says no only for URLs redaction would leave as they are."""
    assert expected is needs_redaction(url)
    if not expected:
        assert redact_url(url) == url
