"""The only read of httpx internals (``Client.send``'s ``stream`` argument) fails loudly
if a release changes it: otherwise error bodies would silently be read ahead of a
``client.stream(...)`` caller, or never read for a message."""

from __future__ import annotations

import inspect

import httpx
import pytest
from httpx_support import KINDS, Kind, run

from otel_productapi._adapters.httpx.private import (
    header_reader,
    plain_length,
    streams_the_response,
    url_text,
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

    def handler(_: httpx.Request) -> httpx.Response:
        seen.append(streams_the_response())
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
    assert streams_the_response() is True


def test_headers_still_keep_a_list_of_name_lower_name_value() -> None:
    """httpx.Headers still holds the (name, lower-case name, value) list header_reader reads."""
    items = httpx.Headers([("X-RateLimit-Limit", "100")])._list
    assert items == [(b"X-RateLimit-Limit", b"x-ratelimit-limit", b"100")]


def test_header_reader_finds_lower_case_names_as_httpx_does() -> None:
    """The reader answers what httpx.Headers.get answers, for present and absent names."""
    headers = httpx.Headers(
        [("X-RateLimit-Remaining", "0"), ("X-Request-Id", "req_1"), ("Content-Length", "51")]
    )
    reader = header_reader(headers)
    assert reader is not headers
    for name in ("x-ratelimit-remaining", "x-request-id", "content-length", "retry-after"):
        assert reader.get(name) == headers.get(name)


def test_header_reader_decodes_values_as_latin_1() -> None:
    """A non-ASCII value comes back as Latin-1 text, as the core expects of every client."""
    headers = httpx.Headers([(b"X-Request-Id", "é".encode())])
    assert header_reader(headers).get("x-request-id") == "é".encode().decode("latin-1")


def test_header_reader_leaves_repeated_names_to_httpx() -> None:
    """A name sent twice gets httpx's own joined value."""
    headers = httpx.Headers([("X-Request-Id", "a"), ("x-request-id", "b")])
    assert header_reader(headers).get("x-request-id") == "a, b"


@pytest.mark.parametrize(
    ("headers", "length"),
    [
        ([("Content-Length", "51")], 51),
        ([("Content-Length", "51"), ("Content-Encoding", "Identity")], 51),
        ([("Content-Length", "51"), ("Content-Encoding", "gzip")], None),
        ([("Content-Encoding", "br"), ("Content-Length", "51")], None),
        ([("Content-Length", "51"), ("Content-Length", "51")], None),
        ([("Content-Length", "-1")], None),
        ([("Content-Length", "5 1")], None),
        ([("Content-Type", "application/json")], None),
    ],
)
def test_plain_length_reads_the_declared_length_of_a_plain_body(
    headers: list[tuple[str, str]], length: int | None
) -> None:
    """plain_length: the one declared Content-Length, unless encoded, repeated or not digits."""
    assert plain_length(httpx.Headers(headers)) == length


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
