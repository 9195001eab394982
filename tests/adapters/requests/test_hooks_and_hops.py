"""Whose failure is it: the caller's hooks, digest auth's resend, hops, shared requests.

Found by an adversarial review; each test failed before its fix, each a real
exchange on 127.0.0.1: the caller's hooks making their own calls or reading the body,
``HTTPDigestAuth``'s resend, a ``PreparedRequest`` sent from two threads at once,
and a redirect hop whose URL carries a one-time code.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from conftest import Telemetry, span_text
from raw_http import http_response, raw_server
from requests.adapters import HTTPAdapter
from requests.auth import HTTPDigestAuth
from scripted_api import Reply, ScriptedApi, json_reply

from otel_productapi._adapters.requests.transport import transport_failure_of
from otel_productapi._core import names as n
from otel_productapi._core.status import TransportFailure
from otel_productapi.retry import RetryingSession, RetryPolicy

EMAIL = "jane.doe@example.com"
CODE = "Xk9mQ2pL7vN4rT8w"  # a one-time invite code: random, 16 characters
TRANSPORT_ERROR = {n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}
SERVER_ERROR = {n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR}
STATUS_200 = {n.ATTR_HTTP_RESPONSE_STATUS_CODE: 200}


_CLOSE = {"Connection": "close"}
DIGEST_CHALLENGE = http_response(
    401, headers={"WWW-Authenticate": 'Digest realm="api", nonce="n0nce", qop="auth"', **_CLOSE}
)


def test_another_services_error_raised_in_a_hook_is_not_the_api_calls_status(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """A response hook posts to an audit service that answers 503 and lets its
    ``raise_for_status()`` HTTPError escape: the Product API answered 200, so the call
    counts as a 200 (it counts as a 503 server_error of the Product API: the audit
    response rides on the exception and goes to the response hook)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with raw_server(http_response(503, headers=_CLOSE)) as audit_service:

        def audit(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            url = f"http://localhost:{audit_service.port}/audit"
            requests.post(url, timeout=5).raise_for_status()

        session.hooks["response"].append(audit)
        api.script(json_reply(200, {"ok": True}))
        with pytest.raises(requests.HTTPError):
            session.get(f"{api.url}/v1/things", timeout=5)
    assert telemetry.request_count(**SERVER_ERROR) == 0
    assert telemetry.request_count(**STATUS_200) == 1


def test_a_truncated_body_read_by_the_callers_hook_is_a_transport_error(
    telemetry: Telemetry,
) -> None:
    """requests runs response hooks before it reads the body, so a hook that logs
    ``response.content`` is where a truncated body fails: that is still the network's
    failure (transport_error after sending, as without the hook), not a 200."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with (
        raw_server(http_response(200, b'{"items": []}', length=100)) as server,
        requests.Session() as session,
    ):
        session.trust_env = False
        session.hooks["response"].append(lambda r, *a, **k: r.content)
        with pytest.raises(requests.exceptions.ChunkedEncodingError) as caught:
            session.get(server.url(), timeout=5)
    assert transport_failure_of(caught.value) is TransportFailure.AFTER_SEND
    assert telemetry.request_count(**STATUS_200) == 0
    assert telemetry.request_count(**TRANSPORT_ERROR) == 1


def test_retrying_session_resends_a_get_whose_body_a_logging_hook_found_truncated(
    telemetry: Telemetry,
) -> None:
    """RetryingSession resends a GET whose body was cut short three times in all without a
    hook; a hook that reads the body must not change that (it sends once)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    sleeps: list[float] = []
    with (
        raw_server(http_response(200, b'{"items": []}', length=100)) as server,
        RetryingSession(
            RetryPolicy(max_attempts=3),
            sleep=sleeps.append,
            meter_provider=telemetry.meter_provider,
        ) as session,
    ):
        session.trust_env = False
        session.hooks["response"].append(lambda r, *a, **k: r.content)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            session.get(server.url(), timeout=5)
        assert len(server.received) == 3


def test_digest_auths_failed_resend_is_retryable_for_the_retry_helper_as_on_the_span(
    telemetry: Telemetry, session: requests.Session
) -> None:
    """HTTPDigestAuth answers a 401 by resending from inside its response hook; the
    resend's connection is reset. The span says transport_error, retryable (a GET,
    after sending); ``transport_failure_of`` must say the same (it says OTHER, so
    RetryingSession would not resend: the two disagree)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with (
        raw_server(DIGEST_CHALLENGE, then=[None]) as server,
        pytest.raises(requests.ConnectionError) as caught,
    ):
        session.get(
            f"http://127.0.0.1:{server.port}/v1/things",
            auth=HTTPDigestAuth("svc", "pw"),
            timeout=5,
        )
    attributes = telemetry.span().attributes
    assert attributes is not None
    assert attributes[n.ATTR_ERROR_RETRYABLE] is True
    assert telemetry.request_count(**TRANSPORT_ERROR) == 1
    assert transport_failure_of(caught.value) is TransportFailure.AFTER_SEND


class _GatedAdapter(HTTPAdapter):
    """Says it was entered, then waits for ``gate`` before sending (to order two threads)."""

    def __init__(self, entered: threading.Event, gate: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.gate = gate

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.gate.wait(10)
        return super().send(request, *args, **kwargs)


def _send_interleaved(prepared: requests.PreparedRequest) -> list[BaseException]:
    """Send ``prepared`` from thread A, then from this thread (B) while A waits inside
    its adapter, then let A go on: A finishes after B, on a request that B's call
    rode on last. Returns the exceptions A and B raised."""
    entered, gate = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def thread_a() -> None:
        with requests.Session() as a:
            a.trust_env = False
            a.mount("http://", _GatedAdapter(entered, gate))
            try:
                a.send(prepared, timeout=5)
            except requests.ConnectionError as exc:
                errors.append(exc)

    first = threading.Thread(target=thread_a)
    first.start()
    assert entered.wait(10)
    with requests.Session() as b:
        b.trust_env = False
        try:
            b.send(prepared, timeout=5)
        except requests.ConnectionError as exc:
            errors.append(exc)
    gate.set()
    first.join(10)
    return errors


def test_one_prepared_request_sent_from_two_threads_counts_and_redacts_both(
    telemetry: Telemetry, closed_port: int
) -> None:
    """One PreparedRequest (prepare once, send from a worker pool), sent by thread A, then
    by thread B before A's refused connection fails: both calls are counted and neither
    span exports the e-mail in the URL (A's call is not counted and its span exports
    the e-mail: B's call replaced A's on the shared request)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    prepared = requests.Request("GET", f"http://127.0.0.1:{closed_port}/v1/users/{EMAIL}").prepare()
    assert len(_send_interleaved(prepared)) == 2
    spans = telemetry.spans()
    assert len(spans) == 2
    assert telemetry.request_count(**TRANSPORT_ERROR) == 2
    assert [EMAIL in span_text(span) for span in spans] == [False, False]


def test_one_prepared_request_answered_in_two_threads_counts_both(
    telemetry: Telemetry, api: ScriptedApi
) -> None:
    """The same interleaving on the success path: A's 200 arrives after B's call rode on
    the shared request last; both calls are tagged and counted (A's response hook found
    B's call on the request and skipped: one count of two)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    api.script(json_reply(200, {"ok": 1}), json_reply(200, {"ok": 2}))
    prepared = requests.Request("GET", f"{api.url}/v1/things").prepare()
    assert _send_interleaved(prepared) == []
    assert len(telemetry.spans()) == 2
    assert telemetry.request_count(**STATUS_200) == 2


def test_a_redirect_hops_query_is_redacted_from_its_failure(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session, closed_port: int
) -> None:
    """A 302 to ``/v1/invite?code=<one-time code>`` on a host that refuses: the same URL
    as the call's own has its query value REDACTED from the exception text; as a hop's
    it must be too (the code reaches the status description and exception event)."""
    telemetry.instrument(hosts=["127.0.0.1"])
    location = f"http://127.0.0.1:{closed_port}/v1/invite?code={CODE}"
    api.script(Reply(302, [(b"Location", location.encode())]))
    with pytest.raises(requests.ConnectionError):
        session.get(f"{api.url}/v1/invites/latest", timeout=5)
    assert CODE not in span_text(telemetry.span())


def test_a_blank_response_from_one_hook_and_an_error_in_the_next_is_not_a_server_error(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """One hook returns a bare ``requests.Response()`` (no status), the next raises: the
    API answered 200, so nothing may count a server_error for it (it counts one, with no
    status code, by the bare response)."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def replace(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        return requests.Response()

    def fail(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        raise ValueError("cannot parse")

    session.hooks["response"] += [replace, fail]
    api.script(json_reply(200, {"ok": True}))
    with pytest.raises(ValueError, match="cannot parse"):
        session.get(f"{api.url}/v1/things", timeout=5)
    assert telemetry.request_count(**SERVER_ERROR) == 0
