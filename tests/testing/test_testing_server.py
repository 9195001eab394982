"""The simulated Product API in ``otel_productapi.testing`` and its pytest fixture."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from otel_productapi.testing import (
    ROUTE_TEMPLATES,
    SCENARIOS,
    FakeProductApi,
    FakeResponse,
)

USER = "/v1/projects/p1/users/u1"
BATCH = "/v1/projects/p1/events:batch"


def test_fixture_hands_out_a_started_healthy_api(fake_product_api: FakeProductApi) -> None:
    """The fixture's API answers on 127.0.0.1 in the healthy scenario."""
    assert fake_product_api.url.startswith("http://127.0.0.1:")
    assert fake_product_api.scenario == "healthy"
    response = requests.get(fake_product_api.url + USER, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"id": "u1", "project": "p1"}


@pytest.mark.parametrize(
    ("expected_status", "method", "path", "body"),
    [
        (200, "GET", "/v1/projects/p1/users", None),
        (200, "PUT", USER, {"name": "Ada"}),
        (204, "DELETE", USER, None),
        (201, "POST", "/v1/projects/p1/events", {"event": "signup"}),
        (202, "POST", BATCH, {"items": [{"event": "a"}, {"event": "b"}]}),
        (404, "GET", "/v1/projects/p1/users/missing-7", None),
        (404, "GET", "/v1/nowhere", None),
        (400, "POST", "/v1/projects/p1/events", {"no": "event"}),
        (405, "PATCH", USER, None),
    ],
    ids=["list", "put", "delete", "create", "batch", "missing-user", "no-route", "bad-body", "405"],
)
def test_healthy_routes(
    fake_product_api: FakeProductApi,
    expected_status: int,
    method: str,
    path: str,
    body: object,
) -> None:
    """Each route answers as the Product API documents it."""
    response = requests.request(method, fake_product_api.url + path, json=body, timeout=5)
    assert expected_status == response.status_code
    assert response.headers["X-Request-Id"].startswith("req_")
    if response.status_code >= 400:
        assert "message" in response.json()


def test_every_response_carries_rate_limit_headers(fake_product_api: FakeProductApi) -> None:
    """Healthy answers count down X-RateLimit-Remaining."""
    first = requests.get(fake_product_api.url + USER, timeout=5)
    second = requests.get(fake_product_api.url + USER, timeout=5)
    assert first.headers["X-RateLimit-Limit"] == "100"
    assert int(first.headers["X-RateLimit-Remaining"]) - 1 == int(
        second.headers["X-RateLimit-Remaining"]
    )
    assert 1 <= int(first.headers["X-RateLimit-Reset"]) <= 60


def test_rate_limit_storm(fake_product_api: FakeProductApi) -> None:
    """The storm answers 429 with X-RateLimit-*, Retry-After, a JSON message and a request id."""
    fake_product_api.set_scenario("rate_limit_storm")
    response = requests.get(fake_product_api.url + USER, timeout=5)
    assert response.status_code == 429
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert int(response.headers["X-RateLimit-Reset"]) >= 1
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-Request-Id"]
    assert "Rate limit" in response.json()["message"]


@pytest.mark.parametrize(
    ("reset_format", "low", "high"),
    [("delta", 1, 61), ("epoch", 1.6e9, 1e10), ("epoch_ms", 1.6e12, 1e13)],
    ids=["delta", "epoch", "epoch_ms"],
)
def test_reset_formats(reset_format: str, low: float, high: float) -> None:
    """X-RateLimit-Reset is written in the configured unit."""
    with FakeProductApi(reset_format=reset_format) as api:  # type: ignore[arg-type]
        api.set_scenario("rate_limit_storm")
        reset = int(requests.get(api.url + USER, timeout=5).headers["X-RateLimit-Reset"])
    assert low <= reset <= high


def test_server_errors_burst(fake_product_api: FakeProductApi) -> None:
    """The 5xx burst cycles through 500, 502 and 503, each with a JSON message."""
    fake_product_api.set_scenario("server_errors")
    statuses = [requests.get(fake_product_api.url + USER, timeout=5).status_code for _ in range(3)]
    assert statuses == [500, 502, 503]


def test_batch_partial(fake_product_api: FakeProductApi) -> None:
    """In batch_partial, odd items fail and the batch is still accepted (202)."""
    fake_product_api.set_scenario("batch_partial")
    items = [{"event": f"e{i}"} for i in range(4)]
    response = requests.post(fake_product_api.url + BATCH, json={"items": items}, timeout=5)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["failed"]) == (2, 2)
    assert [item["status"] for item in body["items"]] == [
        "accepted",
        "failed",
        "accepted",
        "failed",
    ]
    assert body["items"][1]["error"]["message"]


def test_batch_all_failed_is_422(fake_product_api: FakeProductApi) -> None:
    """A batch whose every item fails is rejected with 422 and the per-item errors."""
    response = requests.post(
        fake_product_api.url + BATCH, json={"items": [{"x": 1}, {"y": 2}]}, timeout=5
    )
    assert response.status_code == 422
    body = response.json()
    assert body["failed"] == 2
    assert body["message"]


def test_other_routes_stay_healthy_in_batch_partial(fake_product_api: FakeProductApi) -> None:
    """batch_partial only changes batch answers."""
    fake_product_api.set_scenario("batch_partial")
    assert requests.get(fake_product_api.url + USER, timeout=5).status_code == 200


def test_script_plays_in_order_then_falls_back(fake_product_api: FakeProductApi) -> None:
    """A scripted sequence answers once per entry, then the scenario answers again."""
    fake_product_api.script("GET", USER, [429, 429, 200])
    fake_product_api.script("get", USER, [FakeResponse(418, b"teapot")])
    got = [requests.get(fake_product_api.url + USER, timeout=5) for _ in range(5)]
    assert [r.status_code for r in got] == [429, 429, 200, 418, 200]
    assert got[0].headers["Retry-After"] == "1"
    assert got[3].content == b"teapot"


def test_script_by_route_template(fake_product_api: FakeProductApi) -> None:
    """A script keyed by route template applies to every concrete path of that route."""
    fake_product_api.script("GET", "/v1/projects/{project}/users/{user_id}", [503])
    assert requests.get(fake_product_api.url + "/v1/projects/a/users/b", timeout=5).status_code == (
        503
    )
    assert requests.get(fake_product_api.url + "/v1/projects/a/users/c", timeout=5).status_code == (
        200
    )


def test_scripted_disconnect_is_a_transport_error(fake_product_api: FakeProductApi) -> None:
    """disconnect=True closes the connection without an answer."""
    fake_product_api.script("POST", BATCH, [FakeResponse(disconnect=True)])
    with pytest.raises(requests.ConnectionError):
        requests.post(fake_product_api.url + BATCH, json={"items": [{"event": "a"}]}, timeout=5)
    assert fake_product_api.requests[-1].status is None


def test_scripted_delay_provokes_a_read_timeout(fake_product_api: FakeProductApi) -> None:
    """delay holds the answer back long enough for a client read timeout."""
    fake_product_api.script("GET", USER, [FakeResponse(200, {}, delay=0.5)])
    with pytest.raises(requests.ReadTimeout):
        requests.get(fake_product_api.url + USER, timeout=0.1)


def test_requests_are_recorded(fake_product_api: FakeProductApi) -> None:
    """The request log keeps method, path, query, headers, body, route and status."""
    requests.put(
        fake_product_api.url + USER + "?dry_run=1",
        json={"name": "Ada"},
        headers={"Authorization": "Bearer t"},
        timeout=5,
    )
    (seen,) = fake_product_api.requests
    assert (seen.method, seen.path, seen.route, seen.status) == (
        "PUT",
        USER,
        "/v1/projects/{project}/users/{user_id}",
        200,
    )
    assert seen.query == {"dry_run": "1"}
    assert seen.headers["authorization"] == "Bearer t"
    assert seen.json() == {"name": "Ada"}


def test_reset_forgets_everything(fake_product_api: FakeProductApi) -> None:
    """reset() clears the log and scripts and returns to healthy."""
    fake_product_api.set_scenario("server_errors")
    fake_product_api.script("GET", USER, [429])
    requests.get(fake_product_api.url + "/v1/projects/p1/users", timeout=5)
    fake_product_api.reset()
    assert fake_product_api.requests == []
    assert fake_product_api.scenario == "healthy"
    assert requests.get(fake_product_api.url + USER, timeout=5).status_code == 200


def test_unknown_scenario_is_refused(fake_product_api: FakeProductApi) -> None:
    """A typo in a scenario name fails loudly, listing the valid names."""
    with pytest.raises(ValueError, match="healthy"):
        fake_product_api.set_scenario("storm")


def test_stop_releases_the_port() -> None:
    """After the context manager exits, the port can be bound again."""
    with FakeProductApi() as api:
        port = api.port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    api.stop()  # twice is harmless


def test_keep_alive_connections_are_reused(fake_product_api: FakeProductApi) -> None:
    """HTTP/1.1 keep-alive: a session sends many requests on one connection."""
    with requests.Session() as session:
        for _ in range(20):
            assert session.get(fake_product_api.url + USER, timeout=5).ok
    assert len(fake_product_api.requests) == 20


def test_public_constants() -> None:
    """The scenario names and route templates are exported."""
    assert SCENARIOS == ("healthy", "rate_limit_storm", "server_errors", "batch_partial")
    assert "/v1/projects/{project}/events:batch" in ROUTE_TEMPLATES


def test_plugin_import_stays_light() -> None:
    """Loading the pytest plugin imports nothing beyond the package itself and pytest."""
    code = textwrap.dedent(
        """
        import sys
        import pytest
        import otel_productapi
        before = set(sys.modules)
        import otel_productapi.testing._pytest_plugin
        added = sorted(set(sys.modules) - before)
        print([m for m in added if not m.startswith("otel_productapi.testing")] +
              [m for m in added if m == "otel_productapi.testing._server"])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    assert out.stdout.strip() == "[]"


def test_stop_hangs_up_on_kept_alive_connections() -> None:
    """A pooled connection is not answered once the server is stopped."""
    import requests

    api = FakeProductApi().start()
    session = requests.Session()
    url = f"http://127.0.0.1:{api.port}/v1/projects/p1/users/u1"
    assert session.get(url).status_code == 200
    api.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url)
