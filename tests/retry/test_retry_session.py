"""RetryingSession against a real HTTP server on 127.0.0.1, with instrumentation on."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import Telemetry
from retry_rig import EPOCH, EVENTS, USER, USER_TEMPLATE, FakeTime, RetryRig, status_of

from otel_productapi._core import names as n
from otel_productapi.retry import RetryBudget, RetryingSession, RetryPolicy
from otel_productapi.testing import ROUTE_TEMPLATES, FakeProductApi, FakeResponse


class Rig(RetryRig):
    """The retry rig with a session factory."""

    def session(self, budget: RetryBudget | None = None, **changes: Any) -> RetryingSession:
        """A session on fake time; keywords are RetryPolicy settings over ``jitter="none"``."""
        return RetryingSession(sleep=self.time.sleep, **self.options(budget, changes))


@pytest.fixture
def rig(telemetry: Telemetry) -> Iterator[Rig]:
    """Instrumented for 127.0.0.1 with the fake API's routes; the fake API started."""
    settings = telemetry.instrument(hosts=["127.0.0.1"], route_templates=list(ROUTE_TEMPLATES))
    with FakeProductApi() as api:
        yield Rig(api, telemetry, FakeTime(), settings)


# --- 429: wait for the reset, one span per attempt ------------------------------------

_RESET_IN_2 = str(int(EPOCH) + 2)
_RESET_IN_7 = str(int(EPOCH) + 7)
_RESET_IN_4_MS = str(int(EPOCH + 4) * 1000)


@pytest.mark.parametrize(
    ("expected_sleeps", "headers"),
    [
        ([2.0, 3.0], [{"X-RateLimit-Reset": "2"}, {"X-RateLimit-Reset": "3"}]),
        ([2.0, 5.0], [{"X-RateLimit-Reset": _RESET_IN_2}, {"X-RateLimit-Reset": _RESET_IN_7}]),
        ([4.0, 1.5], [{"X-RateLimit-Reset": _RESET_IN_4_MS}, {"Retry-After": "1.5"}]),
        ([2.0, 3.0], [{"Retry-After": "2"}, {"Retry-After": "3"}]),
        ([2.0, 1.0], [{"X-RateLimit-Reset": "2", "Retry-After": "6"}, {"X-RateLimit-Reset": "1"}]),
    ],
    ids=[
        "reset-delta",
        "reset-epoch",
        "reset-epoch-ms-then-retry-after",
        "retry-after",
        "reset-wins",
    ],
)
def test_429_429_200_ends_in_200_with_three_sibling_spans(
    rig: Rig, expected_sleeps: list[float], headers: list[dict[str, str]]
) -> None:
    """Two 429s then a 200: the caller gets the 200, after waiting what each 429 said."""
    rig.api.script("GET", USER, [*(FakeResponse(429, headers=h) for h in headers), 200])
    session = rig.session()
    tracer = rig.telemetry.tracer_provider.get_tracer("test")

    with tracer.start_as_current_span("caller") as caller:
        response = session.get(rig.url(), timeout=5)

    assert response.status_code == 200
    assert rig.sleeps == pytest.approx(expected_sleeps)
    assert len(rig.api.requests) == 3
    spans = rig.client_spans()
    assert [status_of(s) for s in spans] == [429, 429, 200]
    assert rig.resend_counts() == [None, 1, 2]
    caller_context = caller.get_span_context()
    assert {s.parent.span_id if s.parent else None for s in spans} == {caller_context.span_id}
    assert {s.context.trace_id for s in spans if s.context} == {caller_context.trace_id}
    assert len({s.context.span_id for s in spans if s.context}) == 3
    assert [(s.attributes or {}).get(n.ATTR_ERROR_CLASS) for s in spans] == [
        n.CLASS_RATE_LIMITED,
        n.CLASS_RATE_LIMITED,
        None,
    ]
    assert rig.retries() == 2
    assert (
        rig.retries(
            **{
                n.ATTR_HTTP_REQUEST_METHOD: "GET",
                n.ATTR_SERVER_ADDRESS: "127.0.0.1",
                n.ATTR_URL_TEMPLATE: USER_TEMPLATE,
                n.ATTR_ERROR_CLASS: n.CLASS_RATE_LIMITED,
            }
        )
        == 2
    )
    assert rig.refusals() == 0


def test_a_429_without_headers_backs_off_like_a_5xx(rig: Rig) -> None:
    """No reset header: the exponential backoff applies."""
    rig.api.script("GET", USER, [FakeResponse(429), FakeResponse(429), 200])

    response = rig.session(base_delay=0.5).get(rig.url())

    assert response.status_code == 200
    assert rig.sleeps == [0.5, 1.0]


def test_a_reset_already_due_still_waits_base_delay(rig: Rig) -> None:
    """A reset of 0 (rounded down) waits base_delay rather than spending a retry at once."""
    rig.api.script("GET", USER, [FakeResponse(429, headers={"X-RateLimit-Reset": "0"}), 200])

    response = rig.session(base_delay=0.25).get(rig.url())

    assert response.status_code == 200
    assert rig.sleeps == [0.25]


def test_a_429_with_a_one_hour_reset_returns_at_once(rig: Rig) -> None:
    """A reset beyond max_ratelimit_wait returns the 429, unchanged, without sleeping."""
    hour = FakeResponse(429, body=b"slow down", headers={"X-RateLimit-Reset": "3600"})
    rig.api.script("GET", USER, [hour, 200])

    response = rig.session().get(rig.url())

    assert response.status_code == 429
    assert response.content == b"slow down"
    assert response.headers["X-RateLimit-Reset"] == "3600"
    assert rig.sleeps == []
    assert len(rig.api.requests) == 1
    assert rig.retries() == 0
    assert rig.refusals() == 0


def test_a_429_whose_reset_ends_past_the_deadline_returns_at_once(rig: Rig) -> None:
    """A 20 s reset with a 10 s deadline is not waited for."""
    rig.api.script("GET", USER, [FakeResponse(429, headers={"X-RateLimit-Reset": "20"}), 200])

    response = rig.session(deadline=10.0).get(rig.url())

    assert response.status_code == 429
    assert rig.sleeps == []


# --- statuses the table says not to retry ---------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422], ids=str)
def test_client_errors_other_than_429_are_tried_once(rig: Rig, status: int) -> None:
    """Every 4xx but 429 means the request is wrong: one attempt, returned as is."""
    rig.api.script("GET", USER, [FakeResponse(status, body={"message": "nope"}), 200])

    response = rig.session().get(rig.url())

    assert response.status_code == status
    assert response.json() == {"message": "nope"}
    assert len(rig.api.requests) == 1
    assert rig.sleeps == []
    assert len(rig.client_spans()) == 1
    assert rig.retries() == 0


def test_success_is_tried_once(rig: Rig) -> None:
    """A 200 is returned at once, and its one span has no resend count."""
    response = rig.session().get(rig.url())

    assert response.status_code == 200
    assert rig.resend_counts() == [None]
    assert rig.sleeps == []


# --- 5xx: back off, stop at max_attempts, return the last response --------------------


def test_repeated_5xx_stop_at_max_attempts_and_return_the_last_response(rig: Rig) -> None:
    """Four 5xx with max_attempts=4: four requests, backoff 1, 2, 4, the fourth returned."""
    rig.api.script(
        "GET",
        USER,
        [
            FakeResponse(500, body=b"first"),
            FakeResponse(502, body=b"second"),
            FakeResponse(503, body=b"third"),
            FakeResponse(503, body=b"fourth", headers={"X-Marker": "last"}),
            200,
        ],
    )

    response = rig.session(max_attempts=4).get(rig.url())

    assert response.status_code == 503
    assert response.content == b"fourth"
    assert response.headers["X-Marker"] == "last"
    assert len(rig.api.requests) == 4
    assert rig.sleeps == [1.0, 2.0, 4.0]
    assert rig.resend_counts() == [None, 1, 2, 3]
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR}) == 3


def test_a_streamed_final_response_is_returned_unread(rig: Rig) -> None:
    """With stream=True the last response's body is left for the caller to read."""
    rig.api.script("GET", USER, [FakeResponse(503, body=b"a"), FakeResponse(503, body=b"last")])

    response = rig.session(max_attempts=2).get(rig.url(), stream=True)

    assert response.status_code == 503
    assert not response._content_consumed  # type: ignore[attr-defined]
    assert response.raw.read() == b"last"
    response.close()


def test_a_5xx_with_retry_after_waits_for_it(rig: Rig) -> None:
    """A 503 that says Retry-After: 7 waits 7 s instead of the 1 s backoff."""
    rig.api.script("GET", USER, [FakeResponse(503, headers={"Retry-After": "7"}), 200])

    response = rig.session().get(rig.url())

    assert response.status_code == 200
    assert rig.sleeps == [7.0]


def test_the_deadline_stops_retrying_before_a_wait_that_would_overrun_it(rig: Rig) -> None:
    """Deadline 5 s, backoff 2 s then 4 s: the second wait would end at 6 s, so two attempts."""
    rig.api.set_scenario("server_errors")

    response = rig.session(base_delay=2.0, max_attempts=10, deadline=5.0).get(rig.url())

    assert response.status_code >= 500
    assert rig.sleeps == [2.0]
    assert len(rig.api.requests) == 2


def test_jitter_comes_from_the_policy(rig: Rig) -> None:
    """With equal jitter each wait lies between half the cap and the cap."""
    rig.api.set_scenario("server_errors")

    rig.session(jitter="equal", max_attempts=4).get(rig.url())

    assert len(rig.sleeps) == 3
    for cap, slept in zip([1.0, 2.0, 4.0], rig.sleeps, strict=True):
        assert cap / 2 <= slept <= cap


# --- transport failures -----------------------------------------------------------------


def test_a_get_read_timeout_is_retried(rig: Rig) -> None:
    """GET is idempotent: a read timeout is retried until max_attempts, then raised."""
    rig.api.script("GET", USER, [FakeResponse(200, delay=0.3)] * 3)

    with pytest.raises(requests.exceptions.ReadTimeout):
        rig.session(max_attempts=3).get(rig.url(), timeout=0.05)

    rig.wait_for_requests(3)
    assert len(rig.api.requests) == 3
    assert rig.sleeps == [1.0, 2.0]
    assert rig.resend_counts() == [None, 1, 2]
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 2


def test_a_post_read_timeout_is_not_retried(rig: Rig) -> None:
    """POST may have been applied: a read timeout is raised after one attempt."""
    rig.api.script("POST", EVENTS, [FakeResponse(201, delay=0.3)] * 3)

    with pytest.raises(requests.exceptions.ReadTimeout):
        rig.session(max_attempts=3).post(rig.url(EVENTS), json={"e": 1}, timeout=0.05)

    rig.wait_for_requests(1)
    time.sleep(0.35)  # long enough for a second attempt's answer to land, were there one
    assert len(rig.api.requests) == 1
    assert rig.sleeps == []
    assert rig.retries() == 0


def test_a_post_that_gets_a_5xx_is_retried(rig: Rig) -> None:
    """A 5xx is an answer, and the table says it is retryable whatever the method."""
    rig.api.script("POST", EVENTS, [FakeResponse(500), FakeResponse(201, body={"id": "e1"})])

    response = rig.session().post(rig.url(EVENTS), json={"e": 1})

    assert response.status_code == 201
    assert [r.json() for r in rig.api.requests] == [{"e": 1}, {"e": 1}]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_connection_refused_is_retried_then_raised(rig: Rig) -> None:
    """Nothing listens: the request never left, so even a POST is retried."""
    url = f"http://127.0.0.1:{_closed_port()}{EVENTS}"

    with pytest.raises(requests.exceptions.ConnectionError):
        rig.session(max_attempts=3).post(url, json={"e": 1})

    assert rig.sleeps == [1.0, 2.0]
    assert rig.resend_counts() == [None, 1, 2]
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 2


def test_a_non_network_error_is_raised_at_once(rig: Rig) -> None:
    """An invalid URL is not a network failure: raised as requests raised it, no retry."""
    with pytest.raises(requests.exceptions.InvalidURL):
        rig.session().get("http://127.0.0.1:99999999/")

    assert rig.sleeps == []


# --- bodies -----------------------------------------------------------------------------


def test_a_generator_body_is_not_retried(rig: Rig) -> None:
    """A generator is consumed by the first attempt, so the 500 is returned."""
    rig.api.script("POST", EVENTS, [FakeResponse(500), 201])

    def chunks() -> Iterator[bytes]:
        yield b'{"e": '
        yield b"1}"

    response = rig.session().post(rig.url(EVENTS), data=chunks())

    assert response.status_code == 500
    assert len(rig.api.requests) == 1
    assert rig.retries() == 0


def test_a_file_body_is_rewound_for_each_retry(rig: Rig) -> None:
    """A seekable file is sent whole, from where the caller left it, on every attempt."""
    rig.api.script("PUT", USER, [FakeResponse(503), FakeResponse(503), 200])
    body = io.BytesIO(b"skipped" + b'{"name": "Ada"}')
    body.seek(len(b"skipped"))

    response = rig.session().put(rig.url(), data=body)

    assert response.status_code == 200
    assert [r.body for r in rig.api.requests] == [b'{"name": "Ada"}'] * 3


# --- the retry budget -------------------------------------------------------------------


def test_100_failing_calls_stay_within_the_budget(rig: Rig) -> None:
    """Against an always-failing API, 100 calls make at most 100 + 10% + the burst attempts."""
    rig.api.set_scenario("server_errors")
    session = rig.session(max_attempts=5, base_delay=0.0, max_delay=0.0)

    statuses = [session.get(rig.url()).status_code for _ in range(100)]

    attempts = len(rig.api.requests)
    assert all(s >= 500 for s in statuses)
    assert attempts <= 100 + 0.1 * 100 + 10
    # The burst pays for the first retries; after that every ten calls earn one.
    assert attempts >= 100 + 10 + 9
    assert rig.retries() == attempts - 100
    assert rig.retries(**{n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR}) == attempts - 100
    # Each call ends in a refusal unless it used up its five attempts.
    refused = rig.refusals(
        **{
            n.ATTR_HTTP_REQUEST_METHOD: "GET",
            n.ATTR_SERVER_ADDRESS: "127.0.0.1",
            n.ATTR_URL_TEMPLATE: USER_TEMPLATE,
            n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR,
        }
    )
    assert refused == rig.refusals()
    assert refused >= 100 - (attempts - 100) // 4
    assert len(rig.client_spans()) == attempts


def test_a_refused_retry_returns_the_outcome_at_once(rig: Rig) -> None:
    """An empty budget: the 503 comes back without a sleep and the refusal is counted."""
    rig.api.script("GET", USER, [FakeResponse(503, body=b"busy"), 200])
    budget = RetryBudget(ratio=0.0, burst=1)
    assert budget.try_withdraw()

    response = rig.session(budget=budget).get(rig.url())

    assert response.status_code == 503
    assert response.content == b"busy"
    assert rig.sleeps == []
    assert rig.refusals(**{n.ATTR_ERROR_CLASS: n.CLASS_SERVER_ERROR}) == 1
    assert rig.retries() == 0


def test_sessions_can_share_one_budget(rig: Rig) -> None:
    """Two sessions on one budget of 2 tokens get two retries between them."""
    rig.api.set_scenario("server_errors")
    shared = RetryBudget(ratio=0.0, burst=2)
    first, second = rig.session(budget=shared), rig.session(budget=shared)

    first.get(rig.url())
    second.get(rig.url())

    assert len(rig.api.requests) == 1 + 2 + 1
    assert first.budget is second.budget
    assert rig.refusals() == 2


def test_each_session_gets_its_own_budget_by_default(rig: Rig) -> None:
    """The default budget follows the policy's budget settings, one per session."""
    first, second = rig.session(budget_ratio=0.2, budget_burst=3), rig.session()

    assert first.budget is not second.budget
    assert (first.budget.ratio, first.budget.burst) == (0.2, 3.0)


# --- redirects --------------------------------------------------------------------------


def test_a_redirect_chain_is_one_attempt(rig: Rig) -> None:
    """A 302 to a failing target retries the whole chain, not each hop on its own."""
    other = "/v1/projects/p1/users/u2"
    redirect = FakeResponse(302, headers={"Location": other})
    rig.api.script("GET", USER, [redirect, redirect])
    rig.api.script("GET", other, [FakeResponse(503), 200])

    response = rig.session().get(rig.url())

    assert response.status_code == 200
    assert [r.path for r in rig.api.requests] == [USER, other, USER, other]
    assert rig.sleeps == [1.0]
    assert len(response.history) == 1


# --- connections and defaults -----------------------------------------------------------


def test_a_retried_streamed_response_is_closed_before_sending_again(rig: Rig) -> None:
    """Responses that are not returned are closed (their connection released); the last is not."""
    rig.api.script("GET", USER, [FakeResponse(503, body=b"busy"), FakeResponse(200, body=b"ok")])
    seen: list[requests.Response] = []
    session = rig.session()
    session.hooks["response"].append(lambda r, *args, **kwargs: seen.append(r))

    response = session.get(rig.url(), stream=True)

    assert [r.status_code for r in seen] == [503, 200]
    assert seen[0].raw.closed
    assert seen[1] is response
    assert not response.raw.closed
    assert response.content == b"ok"


def test_a_session_with_no_arguments_uses_the_defaults(rig: Rig) -> None:
    """RetryingSession() reads the environment's settings and the global meter provider."""
    session = RetryingSession()

    response = session.get(rig.url())

    assert response.status_code == 200
    assert session.policy == RetryPolicy()
    assert (session.budget.ratio, session.budget.burst) == (0.1, 10.0)
