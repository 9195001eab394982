"""Route templating: configured templates, id shapes, and learning what shape cannot tell."""

from __future__ import annotations

import threading

import pytest

from otel_productapi._core import routes as _routes
from otel_productapi._core.routes import (
    COLLECTION_FACTOR,
    DEFAULT_LEARN_THRESHOLD,
    MAX_TEMPLATE_LENGTH,
    RouteTemplater,
    segment_shape,
)

TEMPLATES = [
    "/v1/projects/{project}/users/{user_id}",
    "/v1/projects/{project}/users/me",
    "/v1/projects/{project}/audiences/{audience_id}",
]

# --- Configured templates --------------------------------------------------------


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


def test_configured_templates_win_over_learning() -> None:
    """Once a position is learned, paths a configured template matches keep that template."""
    templater = RouteTemplater(["/v1/users/me"], learn_threshold=3)
    for name in ["alice", "bob", "carol", "dave", "erin"]:
        templater.template(f"/v1/users/{name}")
    assert templater.template("/v1/users/frank") == "/v1/users/{id}"
    assert templater.template("/v1/users/me") == "/v1/users/me"


@pytest.mark.parametrize(
    "template",
    ["v1/things", "/v1/{a}b", "/v1/{a", "/v1/a}", "/v1/{}", "/v1/{a}?x=1", "/v1#x"],
    ids=["no-slash", "partial-segment", "unclosed", "unopened", "empty-name", "query", "fragment"],
)
def test_bad_templates_are_refused(template: str) -> None:
    """Templates must be paths whose placeholders are whole {name} segments."""
    with pytest.raises(ValueError, match="route template"):
        RouteTemplater([template])


def test_bad_template_error_for_a_huge_value_is_short() -> None:
    """A 1 MB template gives an error of a few hundred characters."""
    with pytest.raises(ValueError, match="route template") as raised:
        RouteTemplater(["/v1/{" + "x" * 1_000_000])
    assert len(str(raised.value)) < 400
    assert "1000005 characters" in str(raised.value)


@pytest.mark.parametrize(
    ("learn_threshold", "max_prefixes"), [(0, 10), (10, 0)], ids=["threshold", "prefixes"]
)
def test_limits_below_one_are_refused(learn_threshold: int, max_prefixes: int) -> None:
    """Learning needs a threshold and a table of at least one."""
    with pytest.raises(ValueError, match="must be at least 1"):
        RouteTemplater(learn_threshold=learn_threshold, max_prefixes=max_prefixes)


def test_digits_are_ids_unless_a_template_says_otherwise() -> None:
    """digits_are_ids is False only when a configured template has an all-digit literal."""
    assert RouteTemplater(TEMPLATES).digits_are_ids is True
    assert RouteTemplater(["/v1/items/42"]).digits_are_ids is False
    assert RouteTemplater(["/v1/items/42"]).template("/v1/items/42") == "/v1/items/42"


# --- Shapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "path"),
    [
        ("/v1/orders/{id}", "/v1/orders/12345"),
        ("/v1/audiences/{uuid}", "/v1/audiences/550E8400-e29b-41d4-a716-446655440000"),
        ("/v1/audiences/{uuid}", "/v1/audiences/550e8400e29b41d4a716446655440000"),
        ("/v1/users/{email}", "/v1/users/jane.doe@example.com"),
        ("/v1/users/{email}", "/v1/users/jane.doe%40example.com"),
        ("/v1/users/{email}", "/v1/users/j%C3%BCrgen%40m%C3%BCnchen.de"),
        ("/v1/users/{phone}", "/v1/users/+4915112345678"),
        ("/v1/users/{phone}", "/v1/users/%2B4915112345678"),
        ("/v1/users/{phone}", "/v1/users/+49%20(0)30%201234%205678"),
        ("/v1/users/{phone}", "/v1/users/030-1234567"),
        ("/v1/blobs/{id}", "/v1/blobs/deadbeef12"),
        ("/v1/blobs/{id}", "/v1/blobs/507f1f77bcf86cd799439011"),
        ("/v1/keys/{token}", "/v1/keys/eyJhbGciOiJIUzI1NiJ9"),
        ("/v1/keys/{token}", "/v1/keys/" + "Ab3" * 12),
        ("/v1/keys/{token}", "/v1/keys/AKIAIOSFODNN7EXAMPLE"),
        ("/v1/keys/{token}", "/v1/keys/sk_live_51HxYzAbCdEfGhIjKlMnOp"),
        ("/v1/keys/{token}", "/v1/keys/password=hunter2"),
        ("/v1/orders/{id}", "/v1/orders/ord_12345"),
        ("/v1/customers/{id}", "/v1/customers/cus_NffrFeUfNV2Hib"),
        ("/v1/things/{id}", "/v1/things/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        ("/v1/things/{id}", "/v1/things/0ujtsYcgvSTl8PAuAdqWYSMnLOv"),
        ("/v1/things/{id}", "/v1/things/V1StGXR8_Z5jdHi6B-myT"),
        ("/v1/videos/{id}", "/v1/videos/dQw4w9WgXcQ"),
        ("/v1/codes/{id}", "/v1/codes/x7k2p9"),
        ("/v1/hosts/{id}", "/v1/hosts/192.168.1.10"),
        ("/v1/hosts/{id}", "/v1/hosts/2001:db8::1"),
        ("/v1/posts/{id}", "/v1/posts/my-post-3f9a8c"),
        ("/v1/sales/{id}", "/v1/sales/summer-sale-x7k2p9"),
        ("/v1/reports/{id}", "/v1/reports/2024-01-15"),
        ("/v1/names/{id}", "/v1/names/caf%C3%A9"),
        ("/v1/names/{id}", "/v1/names/a%20b"),
        ("/v1/names/{id}", "/v1/names/%41bc"),
        ("/v1/names/{id}", "/v1/names/{x}"),
        ("/v1/names/{token}", "/v1/names/" + "a-" * 40),
        ("/v1/orders/{id}:cancel", "/v1/orders/ord_12345:cancel"),
        ("/v1/users:batchCreate", "/v1/users:batchCreate"),
        ("/v1/events:batch", "/v1/events:batch"),
        ("/v2beta1/things/deadbeef", "/v2beta1/things/deadbeef"),
        ("/v1p1beta1/oauth2/k8s/i18n", "/v1p1beta1/oauth2/k8s/i18n"),
        ("/api/1.0/.well-known/openid-configuration", "/api/1.0/.well-known/openid-configuration"),
        ("/v1/things", "/v1/things?email=jane@example.com"),
        ("/", ""),
        ("/a//b/", "/a//b/"),
    ],
    ids=[
        "number",
        "uuid",
        "uuid-no-dashes",
        "email",
        "encoded-email",
        "unicode-email",
        "phone",
        "encoded-phone",
        "trunk-phone",
        "national-phone",
        "hex-id",
        "objectid",
        "jwt",
        "long-token",
        "aws-key",
        "stripe-key",
        "key-value",
        "prefixed-number",
        "stripe-id",
        "ulid",
        "ksuid",
        "nanoid",
        "youtube-id",
        "short-mixed",
        "ipv4",
        "ipv6",
        "slug-hex-suffix",
        "slug-random-suffix",
        "date",
        "non-ascii",
        "space",
        "needless-escape",
        "braces",
        "over-64",
        "id-with-verb",
        "custom-method",
        "verb",
        "letters-only-hex-kept",
        "versions-and-words",
        "numeric-version",
        "query-dropped",
        "empty",
        "empty-segments",
    ],
)
def test_default_templating(expected: str, path: str) -> None:
    """Unmatched paths keep literal segments and replace ids and personal data by shape."""
    assert expected == RouteTemplater([]).template(path)


@pytest.mark.parametrize(
    "word",
    ["settings", "members", "v1", "v2beta1", "me", "search", "batchCreate", "oauth2", "ipv4"],
)
def test_fixed_words_are_their_own_shape(word: str) -> None:
    """Collection names, verbs, versions and fixed words are kept by segment_shape."""
    assert segment_shape(word) == word


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
        templater.template(f"/v1/projects/acme/items/x7k2p{i}")
    assert {"v1", "projects", "acme", "items"} <= _routes._literal_shapes.keys()
    assert not any(key.startswith("x7k2p") or key.isdigit() for key in _routes._literal_shapes)


def test_template_cache_is_bounded() -> None:
    """Thousands of distinct ids share one route and the path cache stays at its cap."""
    templater = RouteTemplater()
    routes = {templater.template(f"/v1/users/u{i}x{i}y/orders") for i in range(5000)}
    assert {"/v1/users/{id}/orders"} == routes
    assert 0 < len(templater._cache) <= templater._cache.max_size == 1024


def test_numeric_ids_are_answered_by_what_comes_before_them() -> None:
    """Paths ending in a number share one cache entry: the path without the number."""
    templater = RouteTemplater()
    routes = {templater.template(f"/v1/users/{i}") for i in range(5000)}
    assert {"/v1/users/{id}"} == routes
    assert dict(templater._heads) == {"/v1/users": "/v1/users/{id}"}
    assert len(templater._cache) == 0


# --- Learning ---------------------------------------------------------------------


def test_default_threshold() -> None:
    """The default threshold is 20, well under 100, and collections get four times that."""
    assert DEFAULT_LEARN_THRESHOLD == 20
    assert COLLECTION_FACTOR == 4
    assert RouteTemplater().learn_threshold == 20


def test_user_names_are_learned_after_the_threshold() -> None:
    """The 21st distinct user name at one position turns the position into {id}, for good."""
    templater = RouteTemplater()
    names = [f"user{chr(97 + i)}name" for i in range(26)]
    routes = [templater.template(f"/v1/users/{name}/orders") for name in names]
    assert routes[:20] == [f"/v1/users/{name}/orders" for name in names[:20]]
    assert routes[20:] == ["/v1/users/{id}/orders"] * 6
    assert templater.template(f"/v1/users/{names[0]}/orders") == "/v1/users/{id}/orders"
    assert templater.template("/v1/users/someone-new/orders") == "/v1/users/{id}/orders"
    assert templater.generation == 1


def test_generation_changes_only_when_an_answer_changes() -> None:
    """Known paths, ids and new literals under the threshold leave the generation alone."""
    templater = RouteTemplater(learn_threshold=3)
    for path in ["/v1/users/42", "/v1/users/a", "/v1/users/b", "/v1/users/b", "/v1/users/c"]:
        templater.template(path)
    assert templater.generation == 0
    assert templater.template("/v1/users/a") == "/v1/users/a"  # answered from the cache
    assert templater.template("/v1/users/d") == "/v1/users/{id}"
    assert templater.generation == 1
    assert templater.template("/v1/users/a") == "/v1/users/{id}"  # the cache was dropped
    templater.template("/v1/users/e")
    assert templater.generation == 1


def test_learning_is_per_prefix() -> None:
    """Values under one prefix do not count towards another's position."""
    templater = RouteTemplater(learn_threshold=3)
    for name in ["a", "b", "c"]:
        templater.template(f"/v1/users/{name}")
        templater.template(f"/v1/teams/{name}")
    assert templater.template("/v1/teams/d") == "/v1/teams/{id}"
    assert templater.template("/v1/users/a") == "/v1/users/a"


def test_many_collections_under_a_version_stay_literal() -> None:
    """Seventy collections under /v1 (Stripe's count) do not fold into /v1/{id}."""
    templater = RouteTemplater()
    collections = [f"collection{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(70)]
    routes = {templater.template(f"/v1/{name}/42") for name in collections}
    assert routes == {f"/v1/{name}/{{id}}" for name in collections}
    assert templater.generation == 0


def test_collection_positions_are_learned_at_their_own_limit() -> None:
    """Under the root or a version, the limit is COLLECTION_FACTOR times the threshold."""
    templater = RouteTemplater(learn_threshold=2)
    limit = 2 * COLLECTION_FACTOR
    words = [f"word{chr(97 + i)}" for i in range(limit + 1)]
    assert [templater.template(f"/api/v2/{w}") for w in words[:limit]] == [
        f"/api/v2/{w}" for w in words[:limit]
    ]
    assert templater.template(f"/api/v2/{words[limit]}") == "/api/v2/{id}"


def test_a_learned_position_keeps_its_verb() -> None:
    """Learned names with a custom method keep the method: /v1/users/{id}:follow."""
    templater = RouteTemplater(learn_threshold=2)
    for name in ["ann", "ben", "cid"]:
        templater.template(f"/v1/users/{name}:follow")
    assert templater.template("/v1/users/dan:follow") == "/v1/users/{id}:follow"


def test_positions_that_hold_ids_take_looser_id_shapes() -> None:
    """After /users/12345, /users/ieqh52 is an id too, while /users/me stays literal."""
    templater = RouteTemplater()
    assert templater.template("/v1/users/ieqh52") == "/v1/users/ieqh52"
    assert templater.template("/v1/users/12345") == "/v1/users/{id}"
    assert templater.template("/v1/users/ieqh53") == "/v1/users/{id}"
    assert templater.template("/v1/users/GDodnvYtiUgMGBY") == "/v1/users/{id}"
    assert templater.template("/v1/users/me") == "/v1/users/me"
    assert templater.template("/v1/users/search") == "/v1/users/search"
    assert templater.generation == 1  # the first id where a literal was answered
    assert templater.template("/v1/users/ieqh52") == "/v1/users/{id}"
    templater.template("/v1/users/67890")
    assert templater.generation == 1


def test_learning_forgets_the_prefixes_it_made_dead() -> None:
    """Prefixes under learned literals are dropped, so the table does not fill with them."""
    templater = RouteTemplater(learn_threshold=3, max_prefixes=16)
    for name in ["a", "b", "c"]:
        templater.template(f"/v1/users/{name}/repos/x")
    assert set(templater._positions) == {"", "/v1", "/v1/users"} | {
        f"/v1/users/{name}{tail}" for name in "abc" for tail in ("", "/repos")
    }
    assert templater.template("/v1/users/d/repos/x") == "/v1/users/{id}/repos/x"
    assert set(templater._positions) == {
        "",
        "/v1",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/users/{id}/repos",
    }


def test_full_prefix_table_fails_towards_low_cardinality() -> None:
    """When the table is full, literals under untracked prefixes become {id}; known ones stay."""
    templater = RouteTemplater(max_prefixes=3)
    assert templater.template("/v1/users/alice") == "/v1/users/alice"  # "", /v1, /v1/users
    assert len(templater._positions) == 3
    assert templater.template("/v1/users/alice/settings") == "/v1/users/alice/{id}"
    assert templater.template("/v1/teams") == "/v1/teams"  # /v1 is tracked
    assert templater.template("/v1/users/bob") == "/v1/users/bob"
    distinct = {templater.template(f"/v1/users/alice/{w}x") for w in "abcdefghij"}
    assert distinct == {"/v1/users/alice/{id}"}
    assert len(templater._positions) == 3


def test_prefix_table_stays_bounded_under_endless_new_prefixes() -> None:
    """Endless new literal trees keep the table at max_prefixes and end in one route."""
    templater = RouteTemplater(max_prefixes=64)
    first: set[str] = set()
    later: set[str] = set()
    for i in range(40_000):
        a, b, c = chr(97 + i % 26), chr(97 + i // 26 % 26), chr(97 + i // 676 % 26)
        route = templater.template(f"/v1/{a}{b}{c}x/{b}{c}y/{c}{a}z/w")
        (first if i < 20_000 else later).add(route)
        assert len(templater._positions) <= 64
    assert later == {"/v1/{id}/{id}/{id}/w"}
    assert len(first) < 600


def test_learning_from_many_threads_is_consistent() -> None:
    """Eight threads templating the same names agree with one thread, and learn once."""
    names = [f"name{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(200)]
    expected = RouteTemplater(learn_threshold=20)
    for name in names:
        expected.template(f"/v1/users/{name}")
    shared = RouteTemplater(learn_threshold=20)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for name in names:
                shared.template(f"/v1/users/{name}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert shared.generation == expected.generation == 1
    for name in names:
        assert shared.template(f"/v1/users/{name}") == "/v1/users/{id}"


@pytest.mark.parametrize(
    ("shape", "folded"),
    [
        ("/v1/users/name:{}", "/v1/users/{id}:{id}"),
        ("/v1/users/{}:{}", "/v1/users/{id}:{id}"),
        ("/v1/lookup/email:{}", "/v1/lookup/{id}:{id}"),
        ("/v1/users/42:{}", "/v1/users/{id}:{id}"),
    ],
)
def test_text_after_a_colon_is_learned_too(shape: str, folded: str) -> None:
    """Names after ':' (not methods) fold past the threshold: templates stay bounded."""
    import random
    import string

    rng = random.Random(8)
    templater = RouteTemplater(learn_threshold=20)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(6))

    paths = [shape.format(*(word() for _ in range(shape.count("{}")))) for _ in range(500)]
    templates = {templater.template(path) for path in paths}
    assert len(templates) <= 2 * 20 + 1
    assert templater.template(shape.format(*(word() for _ in range(shape.count("{}"))))) == folded
    # Real custom methods are untouched by the learning above.
    assert templater.template("/v1/projects/p1/events:batch") == "/v1/projects/p1/events:batch"
    assert templater.template("/v1/orders/123:cancel") == "/v1/orders/{id}:cancel"
