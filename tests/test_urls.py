"""Host matching, route templating and URL redaction."""

from __future__ import annotations

import pytest

from otel_productapi._core import urls as _urls
from otel_productapi._core.urls import (
    MAX_TEMPLATE_LENGTH,
    MAX_URL_LENGTH,
    REDACTED,
    HostMatcher,
    RouteTemplater,
    redact_url,
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
        (False, None),
        (False, ""),
    ],
    ids=str,
)
def test_host_matcher(expected: bool, host: str | None) -> None:
    """Exact names match case-insensitively; *.suffix matches subdomains only."""
    matcher = HostMatcher(["api.example.com", "*.product.example.org", "[::1]"])
    assert expected is matcher(host)
    assert expected is matcher(host)  # the cached answer agrees


@pytest.mark.parametrize("host", ["anything.test", "", None], ids=str)
def test_empty_host_list_matches_every_host(host: str | None) -> None:
    """With no patterns every request is instrumented."""
    assert HostMatcher([])(host) is True


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
    ],
    ids=["scheme", "path", "port", "space", "glued-star", "inner-star", "empty", "bare-star"],
)
def test_host_matcher_rejects_bad_patterns(pattern: str) -> None:
    """A pattern that is not a host name or *.suffix is refused with its text in the message."""
    with pytest.raises(ValueError, match="host pattern"):
        HostMatcher([pattern])


# --- RouteTemplater ------------------------------------------------------------

TEMPLATES = [
    "/v1/projects/{project}/users/{user_id}",
    "/v1/projects/{project}/users/me",
    "/v1/projects/{project}/audiences/{audience_id}",
]


@pytest.mark.parametrize(
    ("expected", "path"),
    [
        ("/v1/projects/{project}/users/{user_id}", "/v1/projects/acme/users/42"),
        ("/v1/projects/{project}/users/me", "/v1/projects/acme/users/me"),
        ("/v1/projects/{project}/users/{user_id}", "/v1/projects/acme/users/7?expand=all"),
        ("/v1/projects/{project}/audiences/{audience_id}", "/v1/projects/p/audiences/a#frag"),
        ("/v1/projects/{project}/users/{user_id}", "https://api.example.com/v1/projects/a/users/b"),
    ],
    ids=["template", "most-specific-wins", "query-dropped", "fragment-dropped", "full-url"],
)
def test_configured_templates_match_by_segment(expected: str, path: str) -> None:
    """A configured template matches segment by segment; the most literal one wins."""
    assert expected == RouteTemplater(TEMPLATES).template(path)


@pytest.mark.parametrize(
    ("expected", "path"),
    [
        ("/v1/orders/{id}", "/v1/orders/12345"),
        ("/v1/audiences/{uuid}", "/v1/audiences/550E8400-e29b-41d4-a716-446655440000"),
        ("/v1/users/{email}", "/v1/users/jane.doe@example.com"),
        ("/v1/users/{email}", "/v1/users/jane.doe%40example.com"),
        ("/v1/users/{phone}", "/v1/users/+4915112345678"),
        ("/v1/users/{phone}", "/v1/users/%2B4915112345678"),
        ("/v1/blobs/{id}", "/v1/blobs/deadbeef12"),
        ("/v1/keys/{token}", "/v1/keys/eyJhbGciOiJIUzI1NiJ9"),
        ("/v1/keys/{token}", "/v1/keys/" + "Ab3" * 12),
        ("/v1/orders/{id}", "/v1/orders/ord_12345"),
        ("/v1/reports/{id}", "/v1/reports/2024-01-15"),
        ("/v1/names/{id}", "/v1/names/caf%C3%A9"),
        ("/v1/names/{id}", "/v1/names/a%20b"),
        ("/v1/names/{id}", "/v1/names/{x}"),
        ("/v1/names/{token}", "/v1/names/" + "a-" * 40),
        ("/v1/users:batchCreate", "/v1/users:batchCreate"),
        ("/v2beta1/things/deadbeef", "/v2beta1/things/deadbeef"),
        ("/v1/things", "/v1/things?email=jane@example.com"),
        ("/", ""),
        ("/a//b/", "/a//b/"),
    ],
    ids=[
        "number",
        "uuid",
        "email",
        "encoded-email",
        "phone",
        "encoded-phone",
        "hex-id",
        "jwt",
        "long-token",
        "prefixed-id",
        "date",
        "non-ascii",
        "space",
        "braces",
        "over-64",
        "custom-method",
        "letters-only-hex-kept",
        "query-dropped",
        "empty",
        "empty-segments",
    ],
)
def test_default_templating(expected: str, path: str) -> None:
    """Unmatched paths keep literal segments and replace ids and personal data."""
    assert expected == RouteTemplater([]).template(path)


def test_template_output_is_bounded() -> None:
    """A path with thousands of segments yields at most MAX_TEMPLATE_LENGTH characters."""
    result = RouteTemplater().template("/things" * 5000)
    assert len(result) == MAX_TEMPLATE_LENGTH
    assert result.startswith("/things/things")


@pytest.mark.parametrize(
    "segment",
    [
        "bwX73xzA7OO04ec08fMtbr-kAgzamc1wngze~:1",
        ".sAdr3UiohX5je53kJhifyBahgQVY53zi9nsfvcPucZYr~",
        "lk1rb8qM7S7eCVpH6s9k79-iok3um3lmjUmk2hhr7uaZ1y:YZh2kv.ua",
    ],
    ids=["tilde-colon-after", "dots-around", "colon-after"],
)
def test_secret_runs_between_delimiters_become_tokens(segment: str) -> None:
    """A secret run framed by '~', ':' or '.' is not kept as a literal segment."""
    assert RouteTemplater().template(f"/v1/keys/{segment}") == "/v1/keys/{token}"


def test_kept_literals_are_cached_and_ids_are_not() -> None:
    """Literal segments repeat and are cached; ids never enter the literal cache."""
    templater = RouteTemplater()
    for i in range(50):
        templater.template(f"/v1/projects/acme/items/{i}")
    assert {"v1", "projects", "acme", "items"} <= _urls._kept.keys()
    assert not any(key.isdigit() for key in _urls._kept)


def test_template_cache_is_bounded() -> None:
    """Thousands of distinct ids share one route and the cache stays at its cap."""
    templater = RouteTemplater()
    routes = {templater.template(f"/v1/users/{i}") for i in range(5000)}
    assert {"/v1/users/{id}"} == routes
    assert templater._cached.cache_info().currsize == 1024


@pytest.mark.parametrize(
    "template",
    ["v1/things", "/v1/{a}b", "/v1/{a", "/v1/a}", "/v1/{}", "/v1/{a}?x=1"],
    ids=["no-slash", "partial-segment", "unclosed", "unopened", "empty-name", "query"],
)
def test_bad_templates_are_refused(template: str) -> None:
    """Templates must be paths whose placeholders are whole {name} segments."""
    with pytest.raises(ValueError, match="route template"):
        RouteTemplater([template])


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
        ("https://h/v1/users/{email}/orders", "https://h/v1/users/jane@example.com/orders"),
        ("https://h/v1/users/{email}", "https://h/v1/users/jane%40example.com"),
        ("https://h/v1/users/{phone}", "https://h/v1/users/%2B4915112345678"),
        ("https://h/x?to={email}&n=1", "https://h/x?to=jane%40example.com&n=1"),
        ("https://h/x?phone={phone}", "https://h/x?phone=+4915112345678"),
        ("https://h/x?{email}=1", "https://h/x?jane@example.com=1"),
        ("https://h/x?flag", "https://h/x?flag"),
        ("https://h/x", "https://h/x#access_token=abc"),
        ("https://h:8443/x?q=a%20b", "https://h:8443/x?q=a%20b"),
        ("/relative/{email}", "/relative/jane@example.com"),
    ],
    ids=[
        "userinfo",
        "user-only",
        "api-key",
        "token-signature-sig",
        "password-secret-code",
        "session-credential",
        "email-in-path",
        "encoded-email-in-path",
        "encoded-phone-in-path",
        "email-in-query",
        "raw-plus-phone-in-query",
        "email-as-query-name",
        "bare-name",
        "fragment-dropped",
        "port-and-encoding-kept",
        "relative",
    ],
)
def test_redact_url(expected: str, url: str) -> None:
    """Credentials, secret query values, e-mails and phones never survive redaction."""
    assert expected == redact_url(url)


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://[not-ipv6]/"], ids=["unclosed-ipv6", "bad-ipv6"]
)
def test_unparsable_url_gives_placeholder(url: str) -> None:
    """A URL urlsplit rejects is replaced whole, never raised."""
    assert redact_url(url) == REDACTED


def test_redacted_url_is_bounded() -> None:
    """Huge URLs are cut to MAX_URL_LENGTH."""
    assert len(redact_url("https://h/" + "a/" * 10_000)) == MAX_URL_LENGTH
