"""The only read of httpx internals (``Client.send``'s ``stream`` argument) fails loudly
if a release changes it: otherwise error bodies would silently be read ahead of a
``client.stream(...)`` caller, or never read for a message."""

from __future__ import annotations

import inspect

import httpx
import pytest
from httpx_support import KINDS, Kind, run

from otel_productapi._adapters.httpx import private
from otel_productapi._adapters.httpx.private import (
    picked_headers,
    streams_the_response,
    url_text,
    wanted,
)

URL = "http://127.0.0.1/v1/x"


def test_send_still_takes_stream() -> None:
    """Client.send and AsyncClient.send still have the ``stream`` parameter we read."""
    for send in (httpx.Client.send, httpx.AsyncClient.send):
        parameter = inspect.signature(send).parameters["stream"]
        assert parameter.default is False


def _seen(kind: Kind, how: str) -> list[bool]:
    """What streams_the_response() says inside a transport, for a call made ``how``."""
    seen: list[bool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(streams_the_response(request))
        return httpx.Response(400, content=b'{"message": "x"}')

    transport = httpx.MockTransport(handler)
    if kind == "sync":
        with httpx.Client(transport=transport) as client:
            if how == "get":
                client.get(URL)
            elif how == "stream":
                with client.stream("GET", URL) as response:
                    response.read()
            else:
                client.send(client.build_request("GET", URL), stream=True).close()
    else:

        async def go() -> None:
            async with httpx.AsyncClient(transport=transport) as client:
                if how == "get":
                    await client.get(URL)
                elif how == "stream":
                    async with client.stream("GET", URL) as response:
                        await response.aread()
                else:
                    response = await client.send(client.build_request("GET", URL), stream=True)
                    await response.aclose()

        run(go())
    return seen


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("how", "streams"), [("get", False), ("stream", True), ("send-stream", True)]
)
def test_streams_the_response_reads_the_callers_choice(kind: Kind, how: str, streams: bool) -> None:
    """Inside the transport: False for client.get, True for client.stream(...) and
    send(stream=True), with httpx.Client and AsyncClient alike."""
    assert _seen(kind, how) == [streams]


def test_no_client_on_the_stack_means_a_stream() -> None:
    """A transport called directly (no Client.send to read): assume a stream."""
    assert streams_the_response(httpx.Request("GET", URL)) is True


def _nested_seen(depth: int, how: str) -> bool:
    """streams_the_response() inside a transport, ``depth`` frames below its handler."""
    seen: list[bool] = []

    def look(request: httpx.Request, frames: int) -> None:
        if frames:
            look(request, frames - 1)
        else:
            seen.append(streams_the_response(request))

    def handler(request: httpx.Request) -> httpx.Response:
        look(request, depth)
        return httpx.Response(400, content=b"x")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        if how == "get":
            client.get(URL)
        else:
            client.send(client.build_request("GET", URL), stream=True).close()
    return seen[0]


def test_the_depths_found_are_kept_and_never_misread() -> None:
    """The depth of send's frame is learnt, at most MAX_DEPTHS of them, newest first;
    a call from any other depth, or from more depths than are kept, still reads its
    own send's argument."""
    frames = private._send_frames
    frames.depths = []
    assert [_nested_seen(0, how) for how in ("get", "stream")] == [False, True]
    assert len(frames.depths) == 1
    base = frames.depths[0]
    answers = [_nested_seen(depth, how) for depth in range(1, 6) for how in ("get", "stream")]
    assert answers == [False, True] * 5
    # Six depths seen, four kept: the newest.
    assert frames.depths == [base + 5, base + 4, base + 3, base + 2]
    assert [_nested_seen(0, how) for how in ("get", "stream")] == [False, True]
    assert frames.depths == [base, base + 5, base + 4, base + 3]


def test_a_send_of_another_request_at_a_known_depth_is_not_read() -> None:
    """A transport that makes its own client call (stream=True) inside the caller's
    client.get: each transport reads its own send, wherever the learnt depths point."""
    seen: list[tuple[str, bool]] = []

    def inner_handler(request: httpx.Request) -> httpx.Response:
        seen.append(("inner", streams_the_response(request)))
        return httpx.Response(400, content=b"x")

    inner = httpx.Client(transport=httpx.MockTransport(inner_handler))

    def outer_handler(request: httpx.Request) -> httpx.Response:
        seen.append(("outer", streams_the_response(request)))
        inner.send(inner.build_request("GET", URL), stream=True).close()
        return httpx.Response(400, content=b"x")

    with httpx.Client(transport=httpx.MockTransport(outer_handler)) as outer:
        for _ in range(3):
            outer.get(URL)
    inner.close()
    assert seen == [("outer", False), ("inner", True)] * 3


def test_headers_still_keep_a_list_of_name_lower_name_value() -> None:
    """httpx.Headers still holds the (name, lower-case name, value) list picked_headers reads."""
    items = httpx.Headers([("X-RateLimit-Limit", "100")])._list
    assert items == [(b"X-RateLimit-Limit", b"x-ratelimit-limit", b"100")]


_NAMES = wanted(("X-RateLimit-Remaining", "x-request-id", "retry-after"))


def test_picked_headers_holds_the_named_headers_as_httpx_reads_them() -> None:
    """Only the wanted names, under lower-case text names, with httpx's values."""
    headers = httpx.Headers(
        [("X-RateLimit-Remaining", "0"), ("X-Request-Id", "req_1"), ("Content-Length", "51")]
    )
    expected = {"x-ratelimit-remaining": "0", "x-request-id": "req_1"}
    assert picked_headers(headers, _NAMES) == expected


def test_picked_headers_decodes_values_as_latin_1() -> None:
    """A non-ASCII value comes back as Latin-1 text, as the core expects of every client."""
    headers = httpx.Headers([(b"X-Request-Id", "é".encode())])
    assert picked_headers(headers, _NAMES) == {"x-request-id": "é".encode().decode("latin-1")}


def test_picked_headers_leaves_a_repeated_wanted_name_to_httpx() -> None:
    """A wanted name sent twice gets httpx's own joined value; other repeated names
    (Set-Cookie) do not matter."""
    headers = httpx.Headers([("X-Request-Id", "a"), ("x-request-id", "b")])
    found = picked_headers(headers, _NAMES)
    assert found is headers
    assert found.get("x-request-id") == "a, b"
    cookies = httpx.Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Retry-After", "3")])
    assert picked_headers(cookies, _NAMES) == {"retry-after": "3"}


@pytest.mark.parametrize(
    "text",
    [
        "http://api.product.test/v1/projects/acme/items/1",
        "https://api.product.test:8443/v1/items?limit=10&after=x%20y",
        "http://api.product.test/v1/items?",
        "http://api.product.test",
        "http://user:pw@api.product.test/v1/items",
        "http://api.product.test/v1/items#part",
        "http://[::1]:8080/v1/items",
        "http://例子.测试/v1/items",
        "/v1/relative",
    ],
)
def test_url_text_is_str_of_the_url(text: str) -> None:
    """url_text joins what str(httpx.URL) joins, for usual URLs and the others alike."""
    url = httpx.URL(text)
    assert url_text(url) == str(url)
