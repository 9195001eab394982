"""The only reads of requests' private attributes fail loudly if a release renames them."""

from __future__ import annotations

import io

import pytest
import requests
from pytest_httpserver import HTTPServer

from otel_productapi._adapters.requests.private import (
    _BODY_READS,
    body_position,
    hook_failure,
    loaded_body,
)

BODY = b'{"message": "Invalid query filter"}'


def test_requests_still_has_what_loaded_body_reads(httpserver: HTTPServer) -> None:
    """Response._content and _content_consumed exist: if this fails, requests changed
    and loaded_body would silently stop finding bodies (no message on any span)."""
    httpserver.expect_request("/v1/x").respond_with_data(BODY, status=400)
    response = requests.get(httpserver.url_for("/v1/x"), timeout=5)
    assert "_content" in vars(response)
    assert "_content_consumed" in vars(response)


def test_a_failure_in_the_callers_hook_is_told_with_its_response(
    httpserver: HTTPServer,
) -> None:
    """dispatch_hook and its hook_data local still exist: an exception raised in a response
    hook is found with the response it was given; one raised elsewhere is not."""
    httpserver.expect_request("/v1/x").respond_with_data(BODY, status=400)

    def broken(response: requests.Response, *args: object, **kwargs: object) -> None:
        raise ValueError("the caller's bug")

    session = requests.Session()
    session.hooks["response"].append(broken)
    with session, pytest.raises(ValueError, match="the caller's bug") as in_a_hook:
        session.get(httpserver.url_for("/v1/x"), timeout=5)
    found = hook_failure(in_a_hook.value)
    assert found is not None
    assert found.exchange is False
    assert found.response is not None
    assert (found.response.status_code, found.response.content) == (400, BODY)
    with pytest.raises(requests.exceptions.InvalidSchema) as elsewhere:
        requests.get("htps://127.0.0.1/v1/x", timeout=5)
    assert hook_failure(elsewhere.value) is None


def test_a_loaded_body_is_found(httpserver: HTTPServer) -> None:
    """A non-streamed response's body is handed over as requests read it."""
    httpserver.expect_request("/v1/x").respond_with_data(BODY, status=400)
    assert loaded_body(requests.get(httpserver.url_for("/v1/x"), timeout=5)) == BODY


def test_a_streamed_body_is_never_read(httpserver: HTTPServer) -> None:
    """With stream=True nothing is found, and the caller still reads the whole body."""
    httpserver.expect_request("/v1/x").respond_with_data(BODY, status=400)
    response = requests.get(httpserver.url_for("/v1/x"), timeout=5, stream=True)
    assert loaded_body(response) is None
    assert response.raw.read() == BODY


def test_an_empty_body_is_none(httpserver: HTTPServer) -> None:
    """No body to parse is None, not b''."""
    httpserver.expect_request("/v1/x").respond_with_data(b"", status=500)
    assert loaded_body(requests.get(httpserver.url_for("/v1/x"), timeout=5)) is None


def test_requests_still_records_where_a_file_body_started() -> None:
    """PreparedRequest._body_position is where the file was when prepared: the retry
    session seeks back to it. If this fails, requests changed and file bodies would
    silently stop being retried."""
    body = io.BytesIO(b"header-to-skip|payload")
    body.seek(len(b"header-to-skip|"))
    prepared = requests.Request("POST", "http://127.0.0.1/v1/upload", data=body).prepare()
    assert "_body_position" in vars(prepared)
    assert body_position(prepared) == len(b"header-to-skip|")


def test_a_body_that_is_not_a_file_has_no_position() -> None:
    """bytes bodies have no position to go back to (they are sent again as they are)."""
    prepared = requests.Request("POST", "http://127.0.0.1/v1/x", data=b"abc").prepare()
    assert body_position(prepared) is None


def test_header_reader_reads_the_store_behind_requests_headers() -> None:
    """The reader answers from requests' header store, not through the public dict."""
    from requests.structures import CaseInsensitiveDict

    from otel_productapi._adapters.requests.private import header_reader

    response = requests.Response()
    response.headers = CaseInsensitiveDict({"X-RateLimit-Limit": "100", "X-Request-Id": "r1"})
    reader = header_reader(response)
    assert not isinstance(reader, CaseInsensitiveDict)
    assert (reader.get("x-ratelimit-limit"), reader.get("x-request-id")) == ("100", "r1")
    assert reader.get("retry-after") is None
    plain = requests.Response()
    plain.headers = {"x-request-id": "r2"}  # type: ignore[assignment]
    assert header_reader(plain) is plain.headers


def test_requests_still_reads_bodies_where_hook_failure_looks() -> None:
    """Response.content and the generator inside iter_content still exist: if this fails,
    a truncated body met in a caller's hook would pass for the caller's own error."""
    assert sorted(code.co_name for code in _BODY_READS) == ["content", "generate"]
