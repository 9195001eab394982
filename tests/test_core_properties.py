"""Properties of the pure core over realistic generated ids and personal data.

Ids are generated the way services mint them (random bytes in the id's own
alphabet and length: Stripe-style prefixed ids, ULIDs, KSUIDs, nanoids,
MongoDB ObjectIds, AWS access keys, IP addresses, slugs with a random
suffix, base64url), so the shapes the templater must recognise are the real
ones, not whatever a character-class strategy shrinks to. Personal data and
secrets come from a corpus of needles (e-mails in several scripts and
encodings, phone numbers in international and national formats, JWTs,
credentials, API keys, ``key=value`` secrets) embedded everywhere a URL or a
message can carry them.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import string
import uuid
from collections.abc import Callable
from urllib.parse import quote, quote_plus, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_productapi._core.routes import (
    DEFAULT_LEARN_THRESHOLD,
    MAX_TEMPLATE_LENGTH,
    RouteTemplater,
    segment_shape,
)
from otel_productapi._core.scrub import CUT_MARGIN, scrub_text
from otel_productapi._core.urls import MAX_URL_LENGTH, needs_redaction, redact_url, split_url

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLACEHOLDERS = {"{id}", "{uuid}", "{email}", "{phone}", "{token}"}

# --- Realistic ids ------------------------------------------------------------------

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
STRIPE_PREFIXES = ["cus", "ch", "pi", "sub", "in", "prod", "price", "acct", "evt", "txn", "pm"]
OTHER_PREFIXES = ["ord", "usr", "org", "inv", "team"]


def _pick(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def stripe_id(r: random.Random) -> str:
    """cus_NffrFeUfNV2Hib: a type prefix and 14-24 base62 characters."""
    prefix = r.choice(STRIPE_PREFIXES + OTHER_PREFIXES)
    return prefix + r.choice("_-") + _pick(r, B62, r.randint(14, 24))


def ulid(r: random.Random) -> str:
    """26 Crockford base32 characters, a 48-bit time then 80 random bits."""
    return r.choice("01") + _pick(r, CROCKFORD, 25)


def ksuid(r: random.Random) -> str:
    """27 base62 characters (a 32-bit time and 128 random bits)."""
    return _pick(r, B62, 27)


def nanoid(r: random.Random) -> str:
    """21 characters of the URL-safe alphabet A-Za-z0-9_-."""
    return _pick(r, string.ascii_letters + string.digits + "_-", 21)


def object_id(r: random.Random) -> str:
    """MongoDB ObjectId: 12 bytes as 24 lower-case hex characters."""
    return f"{r.getrandbits(96):024x}"


def aws_access_key(r: random.Random) -> str:
    """AKIA/ASIA and 16 base32 characters (upper case and 2-7)."""
    return r.choice(["AKIA", "ASIA"]) + _pick(r, string.ascii_uppercase + "234567", 16)


def ipv4(r: random.Random) -> str:
    return str(ipaddress.IPv4Address(r.getrandbits(32)))


def ipv6(r: random.Random) -> str:
    return str(ipaddress.IPv6Address(r.getrandbits(128)))


def uuid4(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def base64url_id(r: random.Random) -> str:
    """16 or 18 random bytes, base64url without padding (22 or 24 characters)."""
    return base64.urlsafe_b64encode(r.randbytes(r.choice([16, 18]))).decode().rstrip("=")


SLUG_WORDS = ["my", "post", "summer", "sale", "hello", "world", "big", "launch", "new", "blue"]


def slug(r: random.Random) -> str:
    """my-post-3f9a8c: words, then a random suffix of 6-8 base36 characters."""
    words = "-".join(r.choice(SLUG_WORDS) for _ in range(r.randint(1, 3)))
    return f"{words}-{_pick(r, string.ascii_lowercase + string.digits, r.randint(6, 8))}"


def base32_id(r: random.Random) -> str:
    """10 random bytes, lower-case base32 (16 characters)."""
    return base64.b32encode(r.randbytes(10)).decode().lower()


def short_code(r: random.Random) -> str:
    """6 base36 characters: too short to be told from a word by shape alone."""
    return _pick(r, string.ascii_lowercase + string.digits, 6)


# Generators whose shape alone tells them for (nearly) every value: 10,000 of
# them under one route give one template.
SHAPED: dict[str, Callable[[random.Random], str]] = {
    "stripe": stripe_id,
    "ulid": ulid,
    "ksuid": ksuid,
    "nanoid": nanoid,
    "objectid": object_id,
    "aws": aws_access_key,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "uuid": uuid4,
    "base64url": base64url_id,
    "number": lambda r: str(r.randint(0, 10**12)),
}
# Generators with a fair share of values that look like words (a slug whose
# suffix is all letters): learning bounds them.
LEARNED: dict[str, Callable[[random.Random], str]] = {
    "slug": slug,
    "base32": base32_id,
    "short": short_code,
    "hex-any-length": lambda r: f"{r.getrandbits(r.choice([24, 32, 40])):x}",
}
ALWAYS_SHAPED = {"ulid", "objectid", "aws", "ipv4", "ipv6", "uuid", "number"}


def seeded(make: Callable[[random.Random], str]) -> st.SearchStrategy[str]:
    """A strategy drawing realistic values: hypothesis picks the seed, not the characters."""
    return st.integers(0, 2**64 - 1).map(lambda seed: make(random.Random(seed)))


any_id = st.one_of([seeded(make) for make in {**SHAPED, **LEARNED}.values()])

COLLECTIONS = [
    "users",
    "orders",
    "customers",
    "payment_intents",
    "subscriptions",
    "invoice-items",
    "settings",
    "members",
    "audiences",
    "events",
    "webhook_endpoints",
    "tax_rates",
]


# --- Ids: bounded templates ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALWAYS_SHAPED))
@FAST
@given(data=st.data())
def test_always_shaped_ids_are_placeholders(name: str, data: st.DataObject) -> None:
    """ULIDs, ObjectIds, AWS keys, IP addresses, UUIDs and numbers are placeholders by shape."""
    value = data.draw(seeded(SHAPED[name]))
    assert segment_shape(value) in PLACEHOLDERS


@pytest.mark.parametrize("name", sorted(SHAPED))
def test_ten_thousand_ids_under_one_route_give_one_template(name: str) -> None:
    """10,000 random ids of one shape under one route give exactly one template, unlearned."""
    make = SHAPED[name]
    r = random.Random(name)
    templater = RouteTemplater()
    routes = {templater.template(f"/v1/things/{make(r)}/items") for _ in range(10_000)}
    assert len(routes) == 1
    assert routes.pop() in {f"/v1/things/{p}/items" for p in PLACEHOLDERS}
    assert templater.generation == 0


@pytest.mark.parametrize("name", sorted(LEARNED))
def test_ids_that_look_like_words_are_learned(name: str) -> None:
    """10,000 ids that shape cannot always tell give at most threshold + 1 templates."""
    make = LEARNED[name]
    r = random.Random(name)
    templater = RouteTemplater()
    routes = [templater.template(f"/v1/things/{make(r)}/items") for _ in range(10_000)]
    assert len(set(routes)) <= DEFAULT_LEARN_THRESHOLD + 1
    assert routes[-1] == "/v1/things/{id}/items"


@FAST
@given(
    seed=st.integers(0, 2**32),
    makers=st.lists(st.sampled_from(sorted({**SHAPED, **LEARNED})), min_size=1, max_size=4),
)
def test_collections_stay_literal_and_ids_do_not(seed: int, makers: list[str]) -> None:
    """Over 2,000 calls, collection words stay literal and each id position stays bounded."""
    r = random.Random(seed)
    every = {**SHAPED, **LEARNED}
    templater = RouteTemplater()
    id_segments: dict[str, set[str]] = {}
    for _ in range(2_000):
        collection = r.choice(COLLECTIONS)
        value = every[r.choice(makers)](r)
        route = templater.template(f"/v1/{collection}/{value}{r.choice(['', '/members'])}")
        _, version, kept, templated, *rest = route.split("/")
        assert (version, kept) == ("v1", collection)
        assert rest in ([], ["members"])
        id_segments.setdefault(collection, set()).add(templated)
    for segments in id_segments.values():
        assert len(segments) <= DEFAULT_LEARN_THRESHOLD + len(PLACEHOLDERS)


@FAST
@given(st.text(max_size=300) | st.from_regex(r"https?://[^\s]{0,200}", fullmatch=True))
def test_templates_are_bounded_paths_for_any_input(path: str) -> None:
    """Any string gives a path-shaped template of at most MAX_TEMPLATE_LENGTH characters."""
    route = RouteTemplater(["/v1/{a}/b"]).template(path)
    assert route.startswith("/")
    assert len(route) <= MAX_TEMPLATE_LENGTH


# --- Needles: personal data and secrets ----------------------------------------------

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9\-]{0,10}[a-z0-9])?", fullmatch=True)
ascii_emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._+\-]{0,20}[A-Za-z0-9])?", fullmatch=True),
    st.lists(_label, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
unicode_emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.sampled_from(["jürgen", "josé.garcía", "αλέξης", "用户", "zoë+news", "ødegård"]),
    st.sampled_from(
        ["münchen.de", "例子.中国", "xn--mnchen-3ya.de", "bücher.example", "пример.рф", "mail.com"]
    ),
)
emails = ascii_emails | unicode_emails


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.from_regex(rf"[0-9]{{{n}}}", fullmatch=True)


phones = st.one_of(
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),  # E.164, compact
    st.builds(
        lambda a, b: f"+1 ({a}) 555-{b}",
        st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
        _digits(4),
    ),
    st.builds(
        lambda cc, area, sub, sep: f"+{cc}{sep}(0){area}{sep}{sub[:4]}{sep}{sub[4:]}",
        st.sampled_from(["49", "43", "41", "44"]),
        st.from_regex(r"[1-9][0-9]{1,3}", fullmatch=True),
        _digits(8),
        st.sampled_from([" ", "-", "."]),
    ),
    st.builds(
        lambda area, sub, sep: f"0{area}{sep}{sub}",
        st.from_regex(r"[1-9][0-9]{1,3}", fullmatch=True),
        st.from_regex(r"[1-9][0-9]{6,7}", fullmatch=True),
        st.sampled_from([" ", "-", "/"]),
    ),  # German national
    st.builds(
        lambda a, b, c, sep: f"{a}{sep}{b}{sep}{c}",
        st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
        _digits(3),
        _digits(4),
        st.sampled_from(["-", ".", " "]),
    ),  # North American
    st.builds(
        lambda d, rest: f"0{d} {rest[0:2]} {rest[2:4]} {rest[4:6]} {rest[6:8]}",
        st.integers(1, 9),
        _digits(8),
    ),  # French 0X XX XX XX XX
    st.builds(
        lambda cc, rest: f"00{cc} {rest[:3]} {rest[3:]}",
        st.sampled_from(["49", "33", "39"]),
        _digits(8),
    ),
    st.builds(lambda a, b: f"+91 {a} {b}", _digits(5), _digits(5)),
    st.builds(lambda a, b: f"(11) 9{a}-{b}", _digits(4), _digits(4)),
)
jwts = st.from_regex(
    r"eyJ[A-Za-z0-9_\-]{10,40}\.eyJ[A-Za-z0-9_\-]{10,60}\.[A-Za-z0-9_\-]{10,40}", fullmatch=True
)
api_keys = st.one_of(
    seeded(
        lambda r: r.choice(["sk_live_", "sk_test_", "rk_live_", "pk_live_"]) + _pick(r, B62, 24)
    ),
    seeded(aws_access_key),
    seeded(lambda r: r.choice(["ghp_", "gho_", "ghs_"]) + _pick(r, B62, 36)),
    seeded(lambda r: "github_pat_" + _pick(r, B62, 22) + "_" + _pick(r, B62, 59)),
    seeded(lambda r: "xoxb-" + _pick(r, string.digits, 12) + "-" + _pick(r, B62, 24)),
    seeded(lambda r: "AIza" + _pick(r, B62 + "_-", 35)),
    seeded(lambda r: _pick(r, B62, 40)).filter(lambda k: sum(c.isdigit() for c in k) >= 3),
    seeded(lambda r: f"{r.getrandbits(128):032x}"),
)
credentials = st.builds(
    lambda scheme, value: (f"{scheme} {value}", value),
    st.sampled_from(["Bearer", "Basic", "bearer"]),
    seeded(lambda r: base64.b64encode(r.randbytes(r.randint(12, 40))).decode()),
)
kv_secrets = st.builds(
    lambda key, sep, value: (f"{key}{sep}{value}", value),
    st.sampled_from(
        ["password", "passwd", "secret", "token", "api_key", "apiKey", "client_secret"]
    ),
    st.sampled_from(["=", ": ", "="]),
    seeded(
        lambda r: _pick(r, string.ascii_letters, 3) + _pick(r, string.digits, 2) + _pick(r, B62, 6)
    ),
)
# (text to embed, what must not survive)
needles = st.one_of(
    emails.map(lambda e: (e, e)),
    phones.map(lambda p: (p, p)),
    jwts.map(lambda j: (j, j)),
    api_keys.map(lambda k: (k, k)),
    credentials,
    kv_secrets,
)
# Prose around a needle: letters in several scripts, spaces and punctuation,
# no digits (so the digits of a phone cannot be confused with the prose's).
prose = st.text(
    st.characters(categories=["Lu", "Ll", "Zs", "Po"], exclude_characters="@%+"), max_size=40
)


def _survivors(secret: str, output: str) -> list[str]:
    """Spellings of ``secret`` (raw, percent- and form-encoded, digits only) found in ``output``."""
    found = [
        spelling
        for spelling in {secret, quote(secret, safe=""), quote_plus(secret)}
        if spelling in output
    ]
    digits = "".join(c for c in secret if c.isdigit())
    is_phone = len(digits) >= 7 and not any(c.isalpha() for c in secret)
    if is_phone and digits[-7:] in "".join(c for c in output if c.isdigit()):
        found.append(digits[-7:])
    return found


@FAST
@given(needles, prose, prose)
def test_nothing_survives_in_messages(needle: tuple[str, str], before: str, after: str) -> None:
    """A needle amid prose never survives scrub_text, cut or not."""
    text, secret = needle
    message = f"{before} {text} {after}"
    assert _survivors(secret, scrub_text(message)) == []
    # Cut in the middle of the needle: not even its first half shows.
    visible = len(text) // 2
    cut = scrub_text(message, max_length=len(before) + 1 + visible)
    assert _survivors(secret, cut) == []
    if text == secret and visible >= 4 and text[:visible] not in before:
        assert text[:visible] not in cut


@FAST
@given(needles, st.sampled_from(["raw", "quoted"]))
def test_nothing_survives_in_paths(needle: tuple[str, str], spelling: str) -> None:
    """A needle as a path segment never survives redaction nor templating."""
    text, secret = needle
    segment = quote(text, safe="") if spelling == "quoted" else text.replace("/", "%2F")
    url = f"https://api.example.com/v1/users/{segment}/orders?page=2"
    redacted = redact_url(url)
    route = RouteTemplater().template(url)
    assert _survivors(secret, redacted) == []
    assert _survivors(secret, route) == []
    assert route.split("/")[3] in PLACEHOLDERS


@FAST
@given(needles, st.sampled_from(["q", "to", "filter", "api_key", "AccessToken"]), st.booleans())
def test_nothing_survives_in_queries(needle: tuple[str, str], name: str, form: bool) -> None:
    """A needle as a query value, raw or form-encoded (as requests sends it), never survives."""
    text, secret = needle
    value = quote_plus(text) if form else text.replace("&", "%26").replace("#", "%23")
    for url in (
        f"https://api.example.com/v1/things?page=2&{name}={value}",
        f"https://api.example.com/v1/things?{value}=1",
    ):
        assert _survivors(secret, redact_url(url)) == []


@FAST
@given(needles)
def test_nothing_survives_in_userinfo_or_fragment(needle: tuple[str, str]) -> None:
    """A needle in the userinfo or the fragment never survives."""
    text, secret = needle
    for url in (
        f"https://{quote(text, safe='')}:{quote(text, safe='')}@api.example.com/v1/things",
        f"https://api.example.com/v1/things#{text}",
        f"https://api.example.com/v1/things?x=1#access_token={quote(text)}",
    ):
        assert _survivors(secret, redact_url(url)) == []


# --- Consistency of the fast paths -----------------------------------------------------

_TEMPLATE_PATHS = st.builds(
    lambda segments, tail: "/" + "/".join(segments) + tail,
    st.lists(
        st.one_of(
            st.sampled_from(["v1", "users", "items", "123", "", "x:", "1234", "a1b2c3"]),
            st.text(st.sampled_from("ab1:/._-~%@+"), max_size=6),
        ),
        max_size=5,
    ),
    st.one_of(st.just(""), st.integers(0, 10**15).map(lambda i: f"/{i}"), st.just("/?q=1")),
)


@settings(max_examples=500, deadline=None)
@given(
    paths=st.lists(_TEMPLATE_PATHS, min_size=1, max_size=30),
    templates=st.sampled_from(
        [(), ("/v1/users/{id}",), ("/v1/users/123",), ("/v1/{a}/{b}", "/v1/items/1234")]
    ),
    threshold=st.sampled_from([1, 2, 20]),
)
def test_cached_routes_are_what_the_uncached_computation_gives(
    paths: list[str], templates: tuple[str, ...], threshold: int
) -> None:
    """The path and id-tail caches never answer differently from computing afresh."""
    cached = RouteTemplater(templates, learn_threshold=threshold)
    reference = RouteTemplater(templates, learn_threshold=threshold)
    for path in paths + paths:
        expected = reference._template(path.partition("?")[0])
        assert cached.template(path) == expected
    assert cached.generation == reference.generation


_URL_TEXT = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=80)
_URLS = st.builds(
    lambda scheme, userinfo, host, port, path, tail: (
        f"{scheme}://{userinfo}{host}{port}/{path}{tail}"
    ),
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["", "user:pass@", "a@"]),
    st.sampled_from(["api.product.test", "API.Product.Test", "127.0.0.1", "[::1]"]),
    st.sampled_from(["", ":8080"]),
    _URL_TEXT.map(lambda s: s.replace("?", "").replace("#", "")),
    st.sampled_from(["", "?token=abc", "?a=1&b=2", "#frag", "?x#y", "?"]),
)
_PLAIN_URLS = st.builds(
    lambda host, segments: f"http://{host}/" + "/".join(segments),
    st.sampled_from(["api.product.test", "127.0.0.1:8080"]),
    st.lists(
        st.one_of(
            st.text(st.sampled_from("abcXYZ019._~:-"), max_size=40),
            st.integers(0, 10**12).map(str),
            st.sampled_from(
                ["555-123-4567", "030-123456", "eyJhbGciOi", "users", "v1", "xoxb-1234567890"]
            ),
            any_id,
        ),
        max_size=8,
    ),
)


@settings(max_examples=500, deadline=None)
@given(url=_URLS)
def test_split_url_agrees_with_urlsplit(url: str) -> None:
    """The one hand-written host/path split gives what urlsplit gives."""
    parts = urlsplit(url)
    assert split_url(url) == (parts.hostname or "", parts.path or "/")


@settings(max_examples=1000, deadline=None)
@given(url=st.one_of(_PLAIN_URLS, _URLS))
def test_needs_redaction_says_no_only_when_redaction_changes_nothing(url: str) -> None:
    """Whenever the pre-check says no, redact_url returns the URL unchanged."""
    if not needs_redaction(url):
        assert redact_url(url) == url


@FAST
@given(st.one_of(st.text(max_size=400), needles.map(lambda n: n[0]), prose))
def test_scrubbing_is_idempotent(text: str) -> None:
    """Scrubbed text has nothing left to scrub."""
    once = scrub_text(text)
    assert scrub_text(once) == once


@FAST
@given(st.text(max_size=3000), st.integers(min_value=-3, max_value=500))
def test_cut_scrubbing_is_scrubbing_a_cut_text(text: str, max_length: int) -> None:
    """scrub_text(t, max_length=n) is scrub_text(t[:n + CUT_MARGIN])[:n]: bounded, never raises."""
    result = scrub_text(text, max_length=max_length)
    expected = scrub_text(text[: max(max_length, 0) + CUT_MARGIN])[: max(max_length, 0)]
    assert result == expected
    assert len(result) <= max(max_length, 0)


@FAST
@given(st.text(max_size=300) | st.from_regex(r"https?://[^\s]{0,200}", fullmatch=True))
def test_url_helpers_never_raise_and_are_bounded(url: str) -> None:
    """Any string gives a bounded redacted URL, and split_url a host and path or None."""
    assert len(redact_url(url)) <= MAX_URL_LENGTH
    split = split_url(url)
    if split is not None:
        host, path = split
        assert host
        assert host == host.lower()
        assert path.startswith("/")
        assert "?" not in path
        assert "#" not in path
