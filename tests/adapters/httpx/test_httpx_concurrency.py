"""Concurrent httpx calls are counted exactly: threads on one httpx.Client, 200 asyncio tasks.

Each call's outcome is planned, so the expected count of every series is
known; transport failures and error bodies read ahead are mixed in, since
both go through the per-context current call.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import httpx
from conftest import Telemetry
from httpx_support import run

from otel_productapi._core import names as n
from otel_productapi.testing import FakeProductApi, FakeResponse

USER_TEMPLATE = "/v1/projects/{project}/users/{user_id}"
# Outcome by call index; "refused" goes to a port nothing listens on.
PLAN: tuple[int | str, ...] = (200, 429, 500, 404, "refused", 200, 503, 422, 201)
THREADS = 16
CALLS_PER_THREAD = 27
TASKS = 200


def _script(api: FakeProductApi, calls: int) -> dict[int, str]:
    """Script each status on its own user path; the path of each status."""
    paths: dict[int, str] = {}
    for outcome in PLAN:
        if isinstance(outcome, int) and outcome not in paths:
            path = f"/v1/projects/p1/users/u{outcome}"
            paths[outcome] = path
            body = {"message": f"Scripted {outcome}"} if outcome >= 400 else {"id": "u"}
            api.script("GET", path, [FakeResponse(outcome, body)] * calls)
    return paths


def _url(api: FakeProductApi, paths: dict[int, str], closed_port: int, i: int) -> str:
    outcome = PLAN[i % len(PLAN)]
    if outcome == "refused":
        return f"http://127.0.0.1:{closed_port}/v1/projects/p1/users/u0"
    return api.url + paths[int(outcome)]


def _assert_exact(telemetry: Telemetry, made: Counter[int | str], total: int) -> None:
    assert sum(made.values()) == total
    counted: Counter[int | str] = Counter()
    for labels, value in telemetry.series(n.METRIC_CLIENT_REQUESTS):
        assert labels[n.ATTR_URL_TEMPLATE] == USER_TEMPLATE
        key = labels.get(n.ATTR_HTTP_RESPONSE_STATUS_CODE, "refused")
        if value:
            counted[key] += int(value)
    assert counted == made
    assert telemetry.request_count() == total
    spans = telemetry.spans()
    assert len(spans) == total
    # Every error span got its own message (its body read ahead in its own context).
    for span in spans:
        attrs = span.attributes or {}
        status = attrs.get("http.status_code")
        if isinstance(status, int) and status >= 400:
            assert attrs[n.ATTR_ERROR_MESSAGE] == f"Scripted {status}"
        elif status is None:
            assert attrs[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
        else:
            assert n.ATTR_ERROR_MESSAGE not in attrs


def test_threads_on_one_client_are_counted_exactly(
    telemetry: Telemetry, fake_product_api: FakeProductApi, closed_port: int
) -> None:
    """16 threads x 27 calls on one shared httpx.Client: each series equals the calls made."""
    telemetry.instrument(hosts=["127.0.0.1"], route_templates=[USER_TEMPLATE])
    paths = _script(fake_product_api, THREADS * CALLS_PER_THREAD)
    made: Counter[int | str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(client: httpx.Client) -> None:
        try:
            start.wait()
            for i in range(CALLS_PER_THREAD):
                outcome = PLAN[i % len(PLAN)]
                try:
                    response = client.get(_url(fake_product_api, paths, closed_port, i))
                    assert response.status_code == outcome
                except httpx.ConnectError:
                    assert outcome == "refused"
                with lock:
                    made[outcome] += 1
        except BaseException as exc:
            errors.append(exc)

    with httpx.Client(trust_env=False, timeout=10) as client:
        threads = [threading.Thread(target=worker, args=(client,)) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    _assert_exact(telemetry, made, THREADS * CALLS_PER_THREAD)


def test_two_hundred_tasks_are_counted_exactly(
    telemetry: Telemetry, fake_product_api: FakeProductApi, closed_port: int
) -> None:
    """200 concurrent asyncio tasks on one httpx.AsyncClient: each series equals the calls."""
    telemetry.instrument(hosts=["127.0.0.1"], route_templates=[USER_TEMPLATE])
    paths = _script(fake_product_api, TASKS)
    made: Counter[int | str] = Counter()

    async def one(client: httpx.AsyncClient, i: int, start: asyncio.Event) -> None:
        outcome = PLAN[i % len(PLAN)]
        await start.wait()
        try:
            response = await client.get(_url(fake_product_api, paths, closed_port, i))
            assert response.status_code == outcome
        except httpx.ConnectError:
            assert outcome == "refused"
        made[outcome] += 1

    async def main() -> None:
        start = asyncio.Event()
        # Fewer connections than tasks: tasks queue for the pool and interleave.
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
            tasks = [asyncio.create_task(one(client, i, start)) for i in range(TASKS)]
            await asyncio.sleep(0)
            start.set()
            await asyncio.gather(*tasks)

    run(main())

    _assert_exact(telemetry, made, TASKS)
