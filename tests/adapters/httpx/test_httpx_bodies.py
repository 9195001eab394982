"""When an httpx span gets ``productapi.error.message``, and that bodies reach the caller intact.

The httpx transport patch reads an error body ahead only when it is small,
declared (``Content-Length``) and not compressed, on a call that was not
asked for a stream; the caller then reads it from memory. Everything else
is left on the wire for the caller. Each case runs with httpx.Client and
httpx.AsyncClient against a server on 127.0.0.1 that sends exact bytes.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from typing import Any

import httpx
import pytest
from conftest import Telemetry
from httpx_support import KINDS, Kind, Result, call, opened, run
from raw_http import http_response, raw_server

from otel_productapi._adapters.httpx.private import BODY_HEADERS, picked_headers, wanted
from otel_productapi._adapters.httpx.transport import plain_length
from otel_productapi._core import names as n

MESSAGE = "Invalid query filter"
ERROR_BODY = json.dumps({"message": MESSAGE}).encode()


def _message(telemetry: Telemetry) -> object:
    return (telemetry.span().attributes or {}).get(n.ATTR_ERROR_MESSAGE)


def _same_as_uninstrumented(kind: Kind, telemetry: Telemetry, url: str, **settings: Any) -> Result:
    """The call's result, asserted equal to the same call made before instrumenting."""
    plain = call(kind, "GET", url, timeout=5)
    telemetry.instrument(hosts=["127.0.0.1"], **settings)
    tagged = call(kind, "GET", url, timeout=5)
    assert tagged == plain
    return tagged


@pytest.mark.parametrize("kind", KINDS)
def test_small_declared_error_body_gives_the_message(kind: Kind, telemetry: Telemetry) -> None:
    """A 400 with a declared Content-Length within the limits: message on the span, and
    the caller gets status, headers and body exactly as without instrumentation."""
    answer = http_response(400, ERROR_BODY, {"X-Request-Id": "req-1"})
    with raw_server(answer) as server:
        result = _same_as_uninstrumented(kind, telemetry, server.url())
    assert result.content == ERROR_BODY
    assert _message(telemetry) == MESSAGE
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_BAD_REQUEST}) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("case", "answer", "settings"),
    [
        pytest.param("chunked", http_response(400, ERROR_BODY, chunked=True), {}, id="chunked"),
        pytest.param(
            "over-max_body_bytes",
            http_response(400, json.dumps({"message": "x" * 2000}).encode()),
            {"max_body_bytes": 1024},
            id="over-max_body_bytes",
        ),
        pytest.param(
            "over-64KiB",
            http_response(400, json.dumps({"message": "y" * (64 * 1024)}).encode()),
            {"max_body_bytes": 1024 * 1024},
            id="over-64KiB",
        ),
        pytest.param(
            "gzip",
            http_response(400, gzip.compress(ERROR_BODY), {"Content-Encoding": "gzip"}),
            {},
            id="gzip",
        ),
        pytest.param("success", http_response(200, ERROR_BODY), {}, id="success"),
        pytest.param(
            "capture-off",
            http_response(400, ERROR_BODY),
            {"capture_message": False},
            id="capture-off",
        ),
    ],
)
def test_no_message_unless_small_declared_and_plain(
    kind: Kind, case: str, answer: bytes, settings: dict[str, Any], telemetry: Telemetry
) -> None:
    """Chunked, too large (for max_body_bytes or for the 64 KiB read-ahead cap),
    compressed, successful, or capture switched off: no message, the body untouched."""
    with raw_server(answer) as server:
        result = _same_as_uninstrumented(kind, telemetry, server.url(), **settings)
    assert _message(telemetry) is None
    expected_class = None if case == "success" else n.CLASS_BAD_REQUEST
    assert (telemetry.span().attributes or {}).get(n.ATTR_ERROR_CLASS) == expected_class
    if case in ("chunked", "gzip", "success", "capture-off"):
        assert result.content == ERROR_BODY


# --- streams are never read -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [429, 200])
def test_client_stream_is_never_read_by_the_patch(
    kind: Kind, status: int, telemetry: Telemetry
) -> None:
    """client.stream(...) of a small declared error body returns while the server still
    holds most of it back; the span has ended, classified, without a message; the
    caller then reads every byte."""
    telemetry.instrument(hosts=["127.0.0.1"])
    body = json.dumps({"message": "slow down", "pad": "p" * 200}).encode()
    release = threading.Event()
    answer = http_response(status, body)
    head, tail = answer[: answer.index(b"\r\n\r\n") + 10], answer[answer.index(b"\r\n\r\n") + 10 :]
    with raw_server(head, tail, release=release) as server:
        try:
            with opened(kind, "GET", server.url(), timeout=10) as stream:
                assert not release.is_set()
                assert stream.response.status_code == status
                attrs = telemetry.span().attributes or {}
                assert n.ATTR_ERROR_MESSAGE not in attrs
                expected = n.CLASS_RATE_LIMITED if status == 429 else None
                assert attrs.get(n.ATTR_ERROR_CLASS) == expected
                release.set()
                assert stream.read() == body
        finally:
            release.set()
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: status}) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_send_with_stream_true_is_never_read(kind: Kind, telemetry: Telemetry) -> None:
    """client.send(request, stream=True) is a stream too: the small error body stays on
    the wire for the caller and the span has no message."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with raw_server(http_response(400, ERROR_BODY)) as server:
        if kind == "sync":
            with httpx.Client(trust_env=False) as client:
                response = client.send(client.build_request("GET", server.url()), stream=True)
                assert not response.is_stream_consumed
                content = response.read()
                response.close()
        else:

            async def go() -> bytes:
                async with httpx.AsyncClient(trust_env=False) as client:
                    response = await client.send(
                        client.build_request("GET", server.url()), stream=True
                    )
                    assert not response.is_stream_consumed
                    body = await response.aread()
                    await response.aclose()
                    return body

            content = run(go())
    assert content == ERROR_BODY
    assert _message(telemetry) is None
    assert (telemetry.span().attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_BAD_REQUEST


@pytest.mark.parametrize("kind", KINDS)
def test_large_streamed_body_is_read_in_full_by_the_caller(
    kind: Kind, telemetry: Telemetry
) -> None:
    """A 4 MiB 500 body, streamed and not streamed: identical bytes, one count each."""
    telemetry.instrument(hosts=["127.0.0.1"])
    body = json.dumps({"message": "boom", "pad": "z" * (4 * 1024 * 1024)}).encode()
    with raw_server(http_response(500, body)) as server:
        assert call(kind, "GET", server.url(), timeout=10).content == body
        with opened(kind, "GET", server.url(), timeout=10) as stream:
            assert stream.read() == body
    assert [(s.attributes or {}).get(n.ATTR_ERROR_MESSAGE) for s in telemetry.spans()] == [
        None,
        None,
    ]
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR}) == 2


# --- a body read that fails: the caller sees what it would have seen -------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_error_body_raises_as_without_us(kind: Kind, telemetry: Telemetry) -> None:
    """The server declares 100 bytes, sends 20 and closes: the caller gets the same
    RemoteProtocolError as without instrumentation; the call is counted by its status
    (it got a response), once, with no message."""
    answer = http_response(500, ERROR_BODY[:20], length=100)
    with raw_server(answer) as server:
        with pytest.raises(httpx.RemoteProtocolError) as plain:
            call(kind, "GET", server.url(), timeout=5)
        telemetry.instrument(hosts=["127.0.0.1"])
        with pytest.raises(httpx.RemoteProtocolError) as tagged:
            call(kind, "GET", server.url(), timeout=5)
    assert str(tagged.value) == str(plain.value)
    assert tagged.value.request.url == server.url()
    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert n.ATTR_ERROR_MESSAGE not in attrs
    assert telemetry.request_count() == 1
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 500}) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_read_timeout_in_an_error_body_raises_as_without_us(
    kind: Kind, telemetry: Telemetry
) -> None:
    """The server sends the headers and part of a small error body, then stalls: the
    caller gets ReadTimeout as without us; the call is counted once, by status."""
    telemetry.instrument(hosts=["127.0.0.1"])
    answer = http_response(503, ERROR_BODY)
    cut = answer.index(b"\r\n\r\n") + 10
    release = threading.Event()
    with raw_server(answer[:cut], answer[cut:], release=release) as server:
        try:
            with pytest.raises(httpx.ReadTimeout):
                call(kind, "GET", server.url(), timeout=httpx.Timeout(5, read=0.3))
        finally:
            release.set()
    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_SERVER_ERROR
    assert n.ATTR_ERROR_MESSAGE not in attrs
    assert telemetry.request_count() == 1
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 503}) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_head_error_with_a_declared_length_does_not_wait(kind: Kind, telemetry: Telemetry) -> None:
    """A HEAD answer declares a length but has no body: nothing waits for one."""
    telemetry.instrument(hosts=["127.0.0.1"])
    release = threading.Event()
    answer = http_response(404, ERROR_BODY)
    head = answer[: answer.index(b"\r\n\r\n") + 4]
    with raw_server(head, release=release) as server:
        try:
            started = time.monotonic()
            result = call(kind, "HEAD", server.url(), timeout=5)
            elapsed = time.monotonic() - started
        finally:
            release.set()
    assert (result.status, result.content) == (404, b"")
    assert elapsed < 2
    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_NOT_FOUND
    assert n.ATTR_ERROR_MESSAGE not in attrs


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
    """plain_length: the one declared Content-Length, unless encoded, repeated or not
    digits; the same from httpx's headers and from the ones the transport patch picks."""
    assert plain_length(httpx.Headers(headers)) == length
    assert plain_length(picked_headers(httpx.Headers(headers), wanted(BODY_HEADERS))) == length
    # Digits, but not ASCII ones (as a server's UTF-8 read as Latin-1 never is).
    assert plain_length({"content-length": "\u0665\u0661"}) is None
