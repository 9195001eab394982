"""What a caller's own code does inside ``Session.send``, and other wrappers around ours.

Found by an adversarial review of the ``Session.send`` wrapper; each test failed
before its fix, on real servers on 127.0.0.1: the caller's hooks raising (with or
without a response, ``OSError``, ``JSONDecodeError``), calls made inside those
hooks, a redirect's userinfo, and an APM's wrapt wrapper around ours.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import requests
import wrapt
from conftest import Telemetry, span_text
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from requests.adapters import HTTPAdapter
from scripted_api import Reply, ScriptedApi, json_reply

from otel_productapi import make_hooks, uninstrument
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH
from otel_productapi._core import names as n
from otel_productapi._telemetry.settings import load_settings
from otel_productapi.retry import RetryingSession, RetryPolicy

EMAIL = "jane.doe@example.com"
TOKEN = "tok_9fQ2xLmZ4rT8vB1nK7sW3yHd"  # a needle in key=value form, not a real secret
TRANSPORT_ERROR = {n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}


def test_raise_for_status_hook_exception_is_redacted(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """``raise_for_status`` as a response hook: the HTTPError quotes the URL; its exception
    event and status description must not export the e-mail and token (they do)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    session.hooks["response"].append(lambda r, *a, **k: r.raise_for_status())
    api.script(json_reply(429, {"message": "Slow down"}))
    with pytest.raises(requests.HTTPError):
        session.get(f"{api.url}/v1/users/{EMAIL}?token={TOKEN}", timeout=5)
    text = span_text(telemetry.span())
    assert EMAIL not in text
    assert TOKEN not in text


def test_a_callers_hook_failing_to_save_the_body_is_not_a_transport_error(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session, tmp_path: Path
) -> None:
    """A response hook of the caller's raising FileNotFoundError (an OSError) is the
    caller's own code: not counted as transport_error (it is, and pages 'unreachable')."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def save(response: requests.Response, *args: object, **kwargs: object) -> None:
        (tmp_path / "missing" / "body.json").write_bytes(response.content)

    session.hooks["response"].append(save)
    api.script(json_reply(200, {"ok": True}))
    with pytest.raises(FileNotFoundError):
        session.get(f"{api.url}/v1/things", timeout=5)
    assert telemetry.request_count(**TRANSPORT_ERROR) == 0


def test_a_callers_hook_parsing_json_is_not_a_transport_error(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """A response hook calling ``response.json()`` on an HTML page raises requests'
    JSONDecodeError (a RequestException): the API answered 200, nothing is unreachable."""
    telemetry.instrument(hosts=["127.0.0.1"])
    session.hooks["response"].append(lambda r, *a, **k: r.json())
    api.script(Reply(200, [(b"Content-Type", b"text/html")], b"<html>maintenance</html>"))
    with pytest.raises(requests.exceptions.JSONDecodeError):
        session.get(f"{api.url}/v1/things", timeout=5)
    assert telemetry.request_count(**TRANSPORT_ERROR) == 0


def test_retrying_session_does_not_resend_when_the_callers_hook_raises_oserror(
    telemetry: Telemetry, api: ScriptedApi, tmp_path: Path
) -> None:
    """RetryingSession: the caller's hook raising FileNotFoundError is not a network
    failure, so the GET is sent once (it is sent three times, with back-off)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    sleeps: list[float] = []
    with RetryingSession(
        RetryPolicy(max_attempts=3), sleep=sleeps.append, meter_provider=telemetry.meter_provider
    ) as session:
        session.trust_env = False
        session.hooks["response"].append(
            lambda r, *a, **k: (tmp_path / "missing" / "x").write_bytes(r.content)
        )
        api.reset()
        api.default = json_reply(200, {"ok": True})
        try:
            with pytest.raises(FileNotFoundError):
                session.get(f"{api.url}/v1/things", timeout=5)
            assert len(api.received) == 1
            assert sleeps == []
        finally:
            api.default = json_reply(404, {"message": "Not found"})


def test_a_failed_request_inside_the_callers_hook_does_not_fail_the_api_call(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session, closed_port: int
) -> None:
    """A response hook that calls another service (a token refresh, an audit log) which is
    down, and swallows the error: the Product API call got its 200 and is counted as a 200,
    not as a transport_error of the Product API host."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def audit(response: requests.Response, *args: object, **kwargs: object) -> None:
        with contextlib.suppress(requests.ConnectionError):
            requests.post(f"http://localhost:{closed_port}/audit", timeout=2)

    session.hooks["response"].append(audit)
    api.script(json_reply(200, {"ok": True}))
    assert session.get(f"{api.url}/v1/things", timeout=5).status_code == 200
    assert telemetry.request_count(**TRANSPORT_ERROR) == 0
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 200}) == 1


def test_someone_elses_wrapt_wrapper_of_adapter_send_survives_reinstrument(
    telemetry: Telemetry,
) -> None:
    """An APM wraps ``HTTPAdapter.send`` (around ours) with wrapt; instrument() again and
    uninstrument() must leave the APM's wrapper in place (it is adopted as ours, through
    wrapt's proxied ``__code__``, and removed)."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def apm(wrapped, instance, args, kwargs):  # type: ignore[no-untyped-def]
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(HTTPAdapter, "send", apm)
    theirs = HTTPAdapter.__dict__["send"]
    try:
        telemetry.instrument(hosts=["127.0.0.1"])
        uninstrument()
        assert HTTPAdapter.__dict__["send"] is theirs
    finally:
        original = theirs
        while hasattr(original, "__wrapped__"):
            original = original.__wrapped__
        HTTPAdapter.send = original  # type: ignore[method-assign]


class _ApiError(Exception):
    """The usual client-library pattern: an error that keeps the response it was raised for."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"API error {response.status_code} for {response.url}")
        self.response = response


def test_the_callers_own_error_carrying_a_response_is_redacted(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """A response hook raising the caller's ``ApiError(response)`` (it quotes the URL): the
    span's status description must not export the e-mail (it does: an exception that carries
    a response skips the redaction)."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def check(response: requests.Response, *args: object, **kwargs: object) -> None:
        if response.status_code >= 400:
            raise _ApiError(response)

    session.hooks["response"].append(check)
    api.script(json_reply(404, {"message": "No such user"}))
    with pytest.raises(_ApiError):
        session.get(f"{api.url}/v1/users/{EMAIL}", timeout=5)
    assert EMAIL not in span_text(telemetry.span())


def test_a_password_in_a_redirects_userinfo_is_not_exported(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """A 302 to ``htps://svc:Summer2024!@host/...``: InvalidSchema quotes the Location; its
    password must not reach the status description (url.full would say REDACTED)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    api.script(Reply(302, [(b"Location", b"htps://svc:Summer2024!@127.0.0.1/v1/x")]))
    with pytest.raises(requests.exceptions.InvalidSchema):
        session.get(f"{api.url}/v1/me", timeout=5)
    assert "Summer2024" not in span_text(telemetry.span())


def test_make_hooks_after_the_instrumentation_warns_what_it_cannot_tag(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """make_hooks() called after RequestsInstrumentor().instrument() cannot go inside its
    Session.send wrapper: a warning says which failures go untagged and what to do."""
    RequestsInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    try:
        with caplog.at_level("WARNING", logger="otel_productapi"):
            make_hooks(load_settings(hosts=["127.0.0.1"]))
        assert "requests was instrumented before make_hooks()" in caplog.text
        assert not ADAPTER_PATCH.session_installed
    finally:
        RequestsInstrumentor().uninstrument()


def test_uninstrument_under_someone_elses_wrapper_says_it_leaves_it(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """An APM wraps Session.send after instrument(): uninstrument() cannot unwrap without
    dropping the APM's wrapper, so it leaves both, and says so."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def apm(wrapped, instance, args, kwargs):  # type: ignore[no-untyped-def]
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(requests.Session, "send", apm)
    theirs = requests.Session.__dict__["send"]
    try:
        with caplog.at_level("WARNING", logger="otel_productapi"):
            uninstrument()
        assert "requests's instrumentation was wrapped or replaced by someone else" in caplog.text
        assert requests.Session.__dict__["send"] is theirs
    finally:
        requests.Session.send = theirs.__wrapped__  # type: ignore[method-assign]
        RequestsInstrumentor().uninstrument()
