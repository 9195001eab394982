"""A simulated Product API: a real threaded HTTP server on 127.0.0.1.

Standard library only (``http.server``), so the core package ships it and
users' own tests can run against it without extra dependencies.

    request
    ├── a scripted response for (method, path or route)?  ... play the next one
    └── otherwise the current scenario answers
        ├── healthy .......... 200/201/204, 202 for batches, X-RateLimit-* on everything
        ├── rate_limit_storm . 429 + X-RateLimit-*, Retry-After, JSON message, X-Request-Id
        ├── server_errors .... 500 / 502 / 503 in turn
        └── batch_partial .... batches: 202 with some items failed (422 when all fail)
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlsplit

from otel_productapi.testing._loopback import LoopbackServer

__all__ = [
    "ROUTE_TEMPLATES",
    "SCENARIOS",
    "FakeProductApi",
    "FakeResponse",
    "RecordedRequest",
]

#: The scenario names ``FakeProductApi.set_scenario`` accepts.
SCENARIOS: Final = ("healthy", "rate_limit_storm", "server_errors", "batch_partial")

#: Routes the simulated API serves, as ``url.template`` values.
ROUTE_TEMPLATES: Final = (
    "/v1/projects/{project}/users",
    "/v1/projects/{project}/users/{user_id}",
    "/v1/projects/{project}/events",
    "/v1/projects/{project}/events:batch",
)

_SERVER_ERROR_CYCLE: Final = (500, 502, 503)
_REASONS: Final = {500: "Internal error", 502: "Bad gateway", 503: "Service unavailable"}

ResetFormat = Literal["delta", "epoch", "epoch_ms"]


@dataclass(frozen=True, slots=True)
class FakeResponse:
    """One scripted answer.

    Attributes:
        status: HTTP status to send.
        body: ``bytes`` are sent as is; anything else is encoded as JSON;
            ``None`` sends no body.
        headers: Extra response headers (override the defaults).
        delay: Seconds to wait before answering (to provoke client timeouts).
        disconnect: Close the connection without answering (a transport error
            after the request was sent).
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    disconnect: bool = False


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the server received it.

    Attributes:
        method: Upper-case HTTP method.
        path: The path, without the query string.
        query: Query parameters (last value wins).
        headers: Request headers, names lower-cased.
        body: The raw request body.
        route: The matching entry of ``ROUTE_TEMPLATES``, or ``None``.
        status: The status answered (``None`` when the connection was dropped).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    route: str | None
    status: int | None

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z_]+\})", template)
    pattern = "".join(
        f"(?P<{p[1:-1]}>[^/:]+)" if p.startswith("{") else re.escape(p) for p in parts
    )
    return re.compile(f"^{pattern}$")


_ROUTES: Final = tuple((template, _template_regex(template)) for template in ROUTE_TEMPLATES)


def _match_route(path: str) -> tuple[str | None, dict[str, str]]:
    for template, regex in _ROUTES:
        found = regex.match(path)
        if found:
            return template, found.groupdict()
    return None, {}


@dataclass(slots=True)
class _Incoming:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    route: str | None
    params: dict[str, str]


class FakeProductApi(LoopbackServer):
    """A simulated Product API on ``127.0.0.1``, for tests and the demo.

    Use it as a context manager (or call ``start``/``stop``)::

        with FakeProductApi() as api:
            api.set_scenario("rate_limit_storm")
            requests.get(f"{api.url}/v1/projects/p1/users/u1")   # -> 429

    Args:
        port: Port to bind on 127.0.0.1; 0 picks a free one.
        rate_limit: The ``X-RateLimit-Limit`` it advertises.
        window_seconds: Length of the rate-limit window.
        reset_format: How ``X-RateLimit-Reset`` is written: seconds until the
            window resets (``delta``), or the reset time as epoch seconds or
            milliseconds.
        retry_after: The ``Retry-After`` seconds sent with a 429.
    """

    _thread_name = "fake-product-api"

    def __init__(
        self,
        *,
        port: int = 0,
        rate_limit: int = 100,
        window_seconds: float = 60.0,
        reset_format: ResetFormat = "delta",
        retry_after: int = 1,
    ) -> None:
        super().__init__(port=port)
        self._rate_limit = rate_limit
        self._window = window_seconds
        self._reset_format: ResetFormat = reset_format
        self._retry_after = retry_after
        self._lock = threading.Lock()
        self._scenario = "healthy"
        self._scripts: dict[tuple[str, str], deque[FakeResponse | int]] = {}
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._errors = itertools.count()
        self._window_start = time.monotonic()
        self._used_in_window = 0

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # --- what tests use ----------------------------------------------------------

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def scenario(self) -> str:
        """The current scenario's name."""
        return self._scenario

    def set_scenario(self, name: str) -> None:
        """Switch every unscripted answer to scenario ``name`` (one of ``SCENARIOS``)."""
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
        with self._lock:
            self._scenario = name

    def script(self, method: str, path: str, responses: Iterable[FakeResponse | int]) -> None:
        """Queue answers for ``method`` on ``path``, played once each, in order.

        ``path`` is either a concrete path (``/v1/projects/p1/users/u1``) or a
        route template from ``ROUTE_TEMPLATES``; a concrete path wins. Once the
        queue is empty the scenario answers again. An ``int`` is shorthand: 429
        is the storm's rate-limited answer, another status >= 400 a JSON error
        with that status, and a status below 400 the route's healthy answer.

        Example: ``api.script("GET", "/v1/projects/p1/users/u1", [429, 429, 200])``.
        """
        key = (method.upper(), path)
        with self._lock:
            self._scripts.setdefault(key, deque()).extend(responses)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget requests and scripts, and go back to the ``healthy`` scenario."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self._scenario = "healthy"
            self._window_start = time.monotonic()
            self._used_in_window = 0

    # --- answering (called from server threads) ------------------------------------

    def _next_scripted(
        self, method: str, path: str, route: str | None
    ) -> FakeResponse | int | None:
        with self._lock:
            for target in (path, route):
                queue = self._scripts.get((method, target)) if target is not None else None
                if queue:
                    return queue.popleft()
        return None

    def _rate_limit_headers(self, *, exhausted: bool) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self._window:
                self._window_start, self._used_in_window = now, 0
            if exhausted:
                self._used_in_window = self._rate_limit
            else:
                self._used_in_window = min(self._used_in_window + 1, self._rate_limit)
            remaining = self._rate_limit - self._used_in_window
            seconds_left = max(self._window - (now - self._window_start), 0.0)
        if self._reset_format == "epoch":
            reset = str(int(time.time() + seconds_left))
        elif self._reset_format == "epoch_ms":
            reset = str(int((time.time() + seconds_left) * 1000))
        else:
            reset = str(max(int(seconds_left + 0.999), 1))
        return {
            "X-RateLimit-Limit": str(self._rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset,
        }

    def _rate_limited(self) -> FakeResponse:
        headers = self._rate_limit_headers(exhausted=True)
        headers["Retry-After"] = str(self._retry_after)
        message = "Rate limit exceeded: retry after X-RateLimit-Reset"
        return FakeResponse(429, {"message": message}, headers)

    def _server_error(self, status: int | None = None) -> FakeResponse:
        if status is None:
            status = _SERVER_ERROR_CYCLE[next(self._errors) % len(_SERVER_ERROR_CYCLE)]
        message = _REASONS.get(status, "Server error")
        return FakeResponse(status, {"message": f"{message}; contact support with the request id"})

    def _answer(self, incoming: _Incoming) -> FakeResponse:
        scripted = self._next_scripted(incoming.method, incoming.path, incoming.route)
        if isinstance(scripted, FakeResponse):
            return scripted
        if isinstance(scripted, int):
            return self._scripted_status(incoming, scripted)
        scenario = self._scenario
        if scenario == "rate_limit_storm":
            return self._rate_limited()
        if scenario == "server_errors":
            return self._server_error()
        return self._healthy(incoming, batch_failures=scenario == "batch_partial")

    def _scripted_status(self, incoming: _Incoming, status: int) -> FakeResponse:
        if status == 429:
            return self._rate_limited()
        if status >= 500:
            return self._server_error(status)
        if status >= 400:
            return FakeResponse(status, {"message": f"Scripted error {status}"})
        return self._healthy(incoming, batch_failures=False)

    def _healthy(self, incoming: _Incoming, *, batch_failures: bool) -> FakeResponse:
        response = _route_answer(incoming, batch_failures=batch_failures)
        headers = {**self._rate_limit_headers(exhausted=False), **response.headers}
        return FakeResponse(response.status, response.body, headers, response.delay)

    def _record(self, incoming: _Incoming, status: int | None) -> None:
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=incoming.method,
                    path=incoming.path,
                    query=incoming.query,
                    headers=incoming.headers,
                    body=incoming.body,
                    route=incoming.route,
                    status=status,
                )
            )

    def _request_id(self) -> str:
        return f"req_{next(self._ids):08x}"


# --- the healthy API, route by route ----------------------------------------------


def _error(status: int, message: str) -> FakeResponse:
    return FakeResponse(status, {"message": message})


def _route_answer(incoming: _Incoming, *, batch_failures: bool) -> FakeResponse:
    route, params, method = incoming.route, incoming.params, incoming.method
    handlers: dict[tuple[str, str], Callable[[_Incoming, dict[str, str]], FakeResponse]] = {
        ("GET", ROUTE_TEMPLATES[0]): _list_users,
        ("GET", ROUTE_TEMPLATES[1]): _get_user,
        ("PUT", ROUTE_TEMPLATES[1]): _put_user,
        ("DELETE", ROUTE_TEMPLATES[1]): lambda _i, _p: FakeResponse(204),
        ("POST", ROUTE_TEMPLATES[2]): _post_event,
    }
    if route is None:
        return _error(404, "No such resource")
    if route == ROUTE_TEMPLATES[3] and method == "POST":
        return _batch(incoming, fail_every_other=batch_failures)
    handler = handlers.get((method, route))
    if handler is None:
        return _error(405, f"{method} is not allowed on {route}")
    return handler(incoming, params)


def _list_users(_incoming: _Incoming, params: dict[str, str]) -> FakeResponse:
    users = [{"id": f"u{i}", "project": params["project"]} for i in range(1, 4)]
    return FakeResponse(200, {"users": users})


def _get_user(_incoming: _Incoming, params: dict[str, str]) -> FakeResponse:
    if params["user_id"].startswith("missing"):
        return _error(404, "User not found")
    return FakeResponse(200, {"id": params["user_id"], "project": params["project"]})


def _decode(incoming: _Incoming) -> Any:
    """The JSON body, or ``None`` when it is absent or not JSON."""
    try:
        return json.loads(incoming.body or b"null")
    except ValueError:
        return None


def _put_user(incoming: _Incoming, params: dict[str, str]) -> FakeResponse:
    body = _decode(incoming)
    if not isinstance(body, dict):
        return _error(400, "Invalid user body: expected a JSON object")
    return FakeResponse(200, {**body, "id": params["user_id"], "project": params["project"]})


def _post_event(incoming: _Incoming, _params: dict[str, str]) -> FakeResponse:
    body = _decode(incoming)
    if not isinstance(body, dict) or "event" not in body:
        return _error(400, "Invalid event: expected a JSON object with an 'event' name")
    return FakeResponse(201, {"id": f"evt_{abs(hash(json.dumps(body))) % 10**8:08d}"})


def _batch(incoming: _Incoming, *, fail_every_other: bool) -> FakeResponse:
    """Per-item outcomes: ``{"items": [{"index", "status", "error"?}], "accepted", "failed"}``.

    An item fails when it is not an object with an ``event`` name, or (in the
    ``batch_partial`` scenario) when its index is odd. All items failed: 422.
    """
    body = _decode(incoming)
    items = body.get("items") if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        return _error(400, "Invalid batch: expected a non-empty list under 'items'")
    outcomes: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "event" not in item:
            outcomes.append(_item_failed(index, "Item has no 'event' name"))
        elif fail_every_other and index % 2 == 1:
            outcomes.append(_item_failed(index, "Unknown property in item"))
        else:
            outcomes.append({"index": index, "status": "accepted"})
    failed = sum(1 for o in outcomes if o["status"] == "failed")
    summary = {"items": outcomes, "accepted": len(outcomes) - failed, "failed": failed}
    if failed == len(outcomes):
        return FakeResponse(422, {"message": "Every item in the batch failed", **summary})
    return FakeResponse(202, summary)


def _item_failed(index: int, message: str) -> dict[str, Any]:
    return {"index": index, "status": "failed", "error": {"message": message}}


# --- the HTTP plumbing ----------------------------------------------------------


def _handler_for(api: FakeProductApi) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        fake = api

    return Handler


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProductApi
    # HTTP/1.1 so clients keep connections alive, as against the real API.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive
    # client waits ~40 ms for the delayed ACK on every request.
    disable_nagle_algorithm = True
    server_version = "FakeProductApi/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and the demo print their own output."""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        route, params = _match_route(split.path)
        incoming = _Incoming(
            method=self.command.upper(),
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            route=route,
            params=params,
        )
        response = self.fake._answer(incoming)
        if response.delay > 0:
            time.sleep(response.delay)
        if response.disconnect:
            self.fake._record(incoming, None)
            self.close_connection = True
            return
        self.fake._record(incoming, response.status)
        self._send(response)

    def _send(self, response: FakeResponse) -> None:
        if response.body is None:
            payload = b""
        elif isinstance(response.body, bytes):
            payload = response.body
        else:
            payload = json.dumps(response.body).encode()
        headers = {"X-Request-Id": self.fake._request_id()}
        if payload and not isinstance(response.body, bytes):
            headers["Content-Type"] = "application/json"
        headers.update(response.headers)
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and response.status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(payload)

    # http.server dispatches on these names.
    do_GET = _handle  # noqa: N815
    do_POST = _handle  # noqa: N815
    do_PUT = _handle  # noqa: N815
    do_DELETE = _handle  # noqa: N815
    do_PATCH = _handle  # noqa: N815
    do_HEAD = _handle  # noqa: N815
    do_OPTIONS = _handle  # noqa: N815
