"""Under concurrent calls, the counters equal the requests made: nothing lost, nothing doubled."""

from __future__ import annotations

import threading
from collections import Counter

import requests
from conftest import Telemetry
from pytest_httpserver import HTTPServer
from werkzeug import Request as WzRequest
from werkzeug import Response as WzResponse

from otel_productapi._core import names as n

THREADS = 16
CALLS_PER_THREAD = 25
# Status by call index: each thread sends the same mix.
PLAN = (200, 429, 500, 404, 200, 503, 422, 201)


def test_sixteen_threads_are_counted_exactly(telemetry: Telemetry, httpserver: HTTPServer) -> None:
    """16 threads x 25 calls, mixed outcomes: the counter per status equals the calls made."""
    telemetry.instrument(hosts=["127.0.0.1"])

    def handler(request: WzRequest) -> WzResponse:
        return WzResponse("", status=int(request.args["status"]))

    httpserver.expect_request("/v1/things").respond_with_handler(handler)
    made: Counter[int] = Counter()
    made_lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker() -> None:
        try:
            with requests.Session() as session:
                start.wait()
                for i in range(CALLS_PER_THREAD):
                    status = PLAN[i % len(PLAN)]
                    response = session.get(
                        httpserver.url_for("/v1/things"), params={"status": status}, timeout=10
                    )
                    assert response.status_code == status
                    with made_lock:
                        made[status] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(made.values()) == THREADS * CALLS_PER_THREAD
    counted = {
        status: telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: status})
        for status in made
    }
    assert counted == dict(made)
    assert telemetry.request_count() == THREADS * CALLS_PER_THREAD
    assert len(telemetry.spans()) == THREADS * CALLS_PER_THREAD
    # The zero-initialised series were born once, not once per thread.
    zero_series = [
        a
        for a, _ in telemetry.series(n.METRIC_CLIENT_REQUESTS)
        if a.get(n.ATTR_HTTP_RESPONSE_STATUS_CODE) == 429
    ]
    assert len(zero_series) == 1
