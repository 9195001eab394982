"""Properties of the pure core over realistic generated ids and personal data.

The generators (ids minted the way services mint them, and a corpus of
personal-data and secret needles) live in ``realistic_input``; here they are
embedded everywhere a URL or a message can carry them.
"""

from __future__ import annotations

import random
from urllib.parse import quote, quote_plus, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from realistic_input import (
    ALWAYS_SHAPED,
    COLLECTIONS,
    LEARNED,
    SHAPED,
    any_id,
    needles,
    prose,
    seeded,
)

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
