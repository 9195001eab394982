"""Calls that fail inside ``Session.send`` but outside ``HTTPAdapter.send``, on real servers.

``Session.send`` also chooses the adapter (``InvalidSchema`` for a scheme no
adapter takes, in the URL or a redirect's ``Location``), runs a custom
adapter, reads the body (a truncated one raises there) and runs the
caller's requests hooks. Each failure is counted once and by what it was,
and the exception the span records is redacted; a call whose response a
hook of the caller's failed on counts by that response (the API did nothing
wrong), and an exception that carries a response goes to the response hook.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests
from conftest import Telemetry, span_text
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from raw_http import http_response, raw_server
from requests.adapters import BaseAdapter
from scripted_api import Reply, ScriptedApi, json_reply

from otel_productapi import uninstrument
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH
from otel_productapi._core import names as n

EMAIL = "jane.doe@example.com"
TOKEN = "tok_9fQ2xLmZ4rT8vB1nK7sW3yHd"  # a needle in key=value form, not a real secret


def _assert_redacted(span: ReadableSpan) -> None:
    text = span_text(span)
    assert span.events, "the exception was recorded"
    assert EMAIL not in text
    assert TOKEN not in text
    assert quote(EMAIL, safe="") not in text


def _transport_error(telemetry: Telemetry, **attrs: Any) -> float:
    return telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}, **attrs)


def test_redirect_to_a_mistyped_scheme_is_counted_once_and_redacted(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session, closed_port: int
) -> None:
    """A 302 to ``htps://...`` raises InvalidSchema while choosing the hop's adapter: one
    transport_error (not retryable), and the Location's e-mail and token are not exported."""
    telemetry.instrument(hosts=["127.0.0.1"])
    location = f"htps://127.0.0.1:{closed_port}/v1/users/{EMAIL}?token={TOKEN}"
    api.script(Reply(302, [(b"Location", location.encode())]))
    with pytest.raises(requests.exceptions.InvalidSchema) as raised:
        session.get(f"{api.url}/v1/me", timeout=5)
    assert EMAIL in str(raised.value), "the caller's exception is unchanged"
    span = telemetry.span()
    attrs = span.attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert attrs[n.ATTR_ERROR_RETRYABLE] is False
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None
    assert span.status.description.startswith("InvalidSchema: No connection adapters")
    _assert_redacted(span)
    assert telemetry.request_count() == 1
    assert _transport_error(telemetry, **{n.ATTR_ERROR_RETRYABLE: False}) == 1


def test_a_mistyped_scheme_in_the_url_is_counted_once_and_redacted(
    telemetry: Telemetry, session: requests.Session, closed_port: int
) -> None:
    """``htps://`` in the URL itself: the span is tagged, counted once, redacted."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with pytest.raises(requests.exceptions.InvalidSchema):
        session.get(f"htps://127.0.0.1:{closed_port}/v1/users/{EMAIL}?token={TOKEN}", timeout=5)
    span = telemetry.span()
    assert (span.attributes or {})[n.ATTR_URL_TEMPLATE] == "/v1/users/{email}"
    _assert_redacted(span)
    assert _transport_error(telemetry) == telemetry.request_count() == 1


class _UnreachableAdapter(BaseAdapter):
    """A custom adapter (not an ``HTTPAdapter``) that cannot connect, and says where to."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        raise requests.ConnectionError(f"cannot reach {request.url}")

    def close(self) -> None:
        """Nothing to close."""


def test_a_custom_adapter_failure_is_counted_once_and_redacted(
    telemetry: Telemetry, session: requests.Session
) -> None:
    """A ``BaseAdapter`` of the user's raising ConnectionError: transport_error once, and
    the URL in its message is not exported."""
    telemetry.instrument(hosts=["127.0.0.1"])
    session.mount("http://", _UnreachableAdapter())
    with pytest.raises(requests.ConnectionError):
        session.post(f"http://127.0.0.1:1/v1/users/{EMAIL}/orders?token={TOKEN}", timeout=5)
    span = telemetry.span()
    assert (span.attributes or {})[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    _assert_redacted(span)
    assert _transport_error(telemetry) == telemetry.request_count() == 1


def test_a_truncated_body_is_counted_once_as_a_transport_error(
    telemetry: Telemetry, session: requests.Session
) -> None:
    """Headers arrive, the body stops short: ``Session.send`` raises while reading it; the
    call is one transport_error after send (retryable for a GET), not lost."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with (
        raw_server(http_response(200, b'{"items": [', length=100)) as server,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        session.get(server.url(), timeout=5)
    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert attrs[n.ATTR_ERROR_RETRYABLE] is True
    assert _transport_error(telemetry) == telemetry.request_count() == 1


def test_the_callers_own_hook_raising_is_redacted_and_counted_by_its_response(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """A requests ``response`` hook of the caller's raising ValueError is not the API's
    failure: the call counts by the response the hook was given (a 200, no class, no
    transport_error to page on), and the exception's message is redacted."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def broken(response: requests.Response, *args: object, **kwargs: object) -> None:
        raise ValueError(f"cannot parse {response.url}")

    session.hooks["response"].append(broken)
    api.script(json_reply(200, {"ok": True}, [(b"X-Request-Id", b"req-1")]))
    with pytest.raises(ValueError, match="cannot parse"):
        session.get(f"{api.url}/v1/users/{EMAIL}?token={TOKEN}", timeout=5)
    span = telemetry.span()
    attrs = span.attributes or {}
    assert n.ATTR_ERROR_CLASS not in attrs
    assert attrs[n.ATTR_REQUEST_ID] == "req-1"
    _assert_redacted(span)
    assert telemetry.request_count() == 1
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 200}) == 1


def test_raise_for_status_in_a_hook_still_counts_by_status(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """``raise_for_status`` as a requests hook: the HTTPError carries the 429, which the
    instrumentation gives to our response hook: counted once as rate_limited."""
    telemetry.instrument(hosts=["127.0.0.1"])
    session.hooks["response"].append(lambda r, *a, **k: r.raise_for_status())
    api.script(json_reply(429, {"message": "Slow down"}))
    with pytest.raises(requests.HTTPError):
        session.get(f"{api.url}/v1/things", timeout=5)
    attrs = telemetry.span().attributes or {}
    assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_RATE_LIMITED
    assert telemetry.request_count() == 1
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED}) == 1


def test_session_send_is_wrapped_inside_the_instrumentation_and_undone(
    telemetry: Telemetry,
) -> None:
    """``instrument()`` puts our ``Session.send`` wrapper inside the instrumentation's and
    ``uninstrument()`` restores the original ``Session.send``."""
    original = requests.Session.__dict__["send"]
    telemetry.instrument(hosts=["127.0.0.1"])
    outer = requests.Session.__dict__["send"]
    assert outer is not original
    assert ADAPTER_PATCH.session_installed
    assert outer.__wrapped__.__wrapped__ is original  # instrumentation -> ours -> requests
    uninstrument()
    assert requests.Session.__dict__["send"] is original
    assert not ADAPTER_PATCH.session_installed


def test_our_wrapper_exposed_again_by_someone_elses_uninstrument_is_adopted(
    telemetry: Telemetry,
) -> None:
    """Someone re-instruments around our wrapper (so our uninstrument() leaves it as a
    pass-through), then uninstruments: the next instrument()/uninstrument() removes it."""
    original = requests.Session.__dict__["send"]
    telemetry.instrument(hosts=["127.0.0.1"])
    RequestsInstrumentor().uninstrument()
    RequestsInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    uninstrument()
    RequestsInstrumentor().uninstrument()
    assert requests.Session.__dict__["send"] is not original, "ours stayed as a pass-through"
    assert ADAPTER_PATCH.session_installed
    telemetry.instrument(hosts=["127.0.0.1"])
    uninstrument()
    assert requests.Session.__dict__["send"] is original
    assert not ADAPTER_PATCH.session_installed
