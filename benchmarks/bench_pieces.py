"""What each piece of our httpx hooks costs, and what the least hand-written version costs.

``bench_instructions.py`` says how much a request costs in all; this says
which piece it goes to, by measuring ``ours`` again with one piece replaced
by a constant stand-in (the difference is that piece's cost), in the same
worker and rig (httpx ``Client``), by the same method (callgrind,
``(I(N2) - I(N1)) / (N2 - N1)``). It also measures ``inline``: hooks written
for this rig alone that do the core of the work (the route by its path
prefix, the four headers picked and parsed, a plain-id match, a count under
a lock) and none of the rest: no failure patch, no call context, no
screening of request ids for secrets, no error body (the message is a
constant, as the floor's), nothing for other shapes of input. Neither is a
product: they say where the instructions are. Run from the repository root::

    python benchmarks/bench_pieces.py --path 200
    python benchmarks/bench_pieces.py --path 429 --n1 100 --n2 400

Prints a Markdown table. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NamedTuple

from opentelemetry.trace import Span

_HERE: Final = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

import bench_instructions  # noqa: E402 - found through the path set above

_PICKED: Final = {
    "x-ratelimit-limit": "100",
    "x-ratelimit-remaining": "42",
    "x-ratelimit-reset": "30",
    "x-request-id": "req_7f9c2b1e4a",
}
_URL_TEXT: Final = "http://api.product.test/v1/projects/acme/items/1"
_HOOKS: Final = "otel_productapi._adapters.httpx.hooks"
_TAGGER: Final = "otel_productapi._telemetry.tagger"
_TRANSPORT: Final = "otel_productapi._adapters.httpx.transport"
_METRICS: Final = "otel_productapi._telemetry.metrics"


def _constant(module: str, name: str, stand_in: object) -> Callable[[], None]:
    """What puts ``stand_in`` in place of ``module.name`` (a dotted ``name``: of a class)."""

    def replace() -> None:
        owner: Any = importlib.import_module(module)
        *path, attribute = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, attribute, stand_in)

    return replace


def _unpatched_transport() -> None:
    import httpx

    from otel_productapi._adapters.httpx.transport import PATCH_MARK

    # The instrumentation's wrapper holds ours: hand it what ours wraps.
    holder: Any = httpx.HTTPTransport.__dict__["handle_request"]
    while not getattr(holder.__wrapped__, PATCH_MARK, False):
        holder = holder.__wrapped__
    holder.__wrapped__ = holder.__wrapped__.__wrapped__


class Piece(NamedTuple):
    """One piece of ours, and what puts a constant stand-in in its place."""

    what: str
    replace: Callable[[], None]
    paths: tuple[str, ...]


PIECES: Final = {
    "url": Piece(
        "the URL text (`url_text`)", _constant(_HOOKS, "url_text", lambda url: _URL_TEXT), ("200",)
    ),
    "headers": Piece(
        "picking the headers",
        _constant(_HOOKS, "picked_headers", lambda headers, names: _PICKED),
        ("200",),
    ),
    "ratelimit": Piece(
        "the rate-limit fields",
        _constant(_TAGGER, "ratelimit_fields", lambda headers, now, unit: (100, 42, 30.0)),
        ("200", "429"),
    ),
    "request-id": Piece(
        "the request id",
        _constant(_TAGGER, "request_id", lambda headers, names, max_length=128: "req_7f9c2b1e4a"),
        ("200", "429"),
    ),
    "count": Piece(
        "counting (`record_call`)",
        _constant(_METRICS, "ProductApiMetrics.record_call", lambda self, *args: None),
        ("200", "429"),
    ),
    "patch": Piece("the transport patch", _unpatched_transport, ("200",)),
    "stream": Piece(
        "the `stream` check",
        _constant(_TRANSPORT, "streams_the_response", lambda request, above=0: False),
        ("429",),
    ),
    "body": Piece(
        "the error body (headers picked in the transport, body read, message)",
        _constant(_TRANSPORT, "_reading_call", lambda response, request: None),
        ("429",),
    ),
}


def inline_hooks(path: str, *, coroutines: bool = False) -> dict[str, Callable[..., Any]]:
    """The least hand-written hooks for this rig (see the module docstring)."""
    if coroutines:
        raise ValueError("inline: httpx.Client only")
    lock = threading.Lock()
    counts: dict[tuple[str, str, str, int], int] = {}
    routes: dict[str, tuple[str, dict[str, str], str, str]] = {}
    numbers: dict[str, int | None] = {}
    wanted = {
        b"x-ratelimit-limit": "limit",
        b"x-ratelimit-remaining": "remaining",
        b"x-ratelimit-reset": "reset",
        b"x-request-id": "id",
    }
    plain_id = re.compile(r"[A-Za-z0-9._:;/\-]+")
    errors: dict[int, dict[str, str | bool]] = {
        429: {
            "productapi.error.class": "rate_limited",
            "productapi.error.retryable": True,
            "productapi.error.message": "Too many requests for this endpoint",
        }
    }
    template = "/v1/projects/acme/items/{id}"
    host = "api.product.test"
    spans: dict[Span, tuple[str, dict[str, str], str, str]] = {}

    def number(text: str | None) -> int | None:
        if text is None:
            return None
        found = numbers.get(text)
        if found is None:
            found = numbers[text] = int(text) if text.isdigit() else None
        return found

    def request_hook(span: Span, request: Any) -> None:
        prefix = request.url._uri_reference.path.rpartition("/")[0]
        route = routes.get(prefix)
        if route is None:
            route = routes[prefix] = (f"GET {template}", {"url.template": template}, template, host)
        span.update_name(route[0])
        span.set_attributes(route[1])
        spans[span] = route

    def response_hook(span: Span, request: Any, response: Any) -> None:
        picked: dict[str, str] = {}
        for _, lower, value in response.headers._list:
            if lower in wanted:
                picked[wanted[lower]] = value.decode("latin-1")
        request_id = picked.get("id")
        if request_id is not None and not plain_id.fullmatch(request_id):
            request_id = None
        route = spans.pop(span)
        status = response.status_code
        with lock:
            key = ("GET", route[2], route[3], status)
            counts[key] = counts.get(key, 0) + 1
        reset = number(picked.get("reset"))
        span.set_attributes(
            {
                **errors.get(status, {}),
                "productapi.ratelimit.limit": number(picked.get("limit")) or 0,
                "productapi.ratelimit.remaining": number(picked.get("remaining")) or 0,
                "productapi.ratelimit.reset": float(reset or 0),
                "productapi.request_id": request_id or "",
            }
        )

    return {"request_hook": request_hook, "response_hook": response_hook}


def _worker(piece: str, path: str, count: int) -> None:
    """``ours`` with ``piece`` replaced (``inline``: the inline hooks), then the usual run."""
    rig: Any = importlib.import_module("_httpx_rig")
    if piece == "inline":
        rig.floor_hooks = inline_hooks
        bench_instructions._worker("httpx", "floor", path, count)
        return
    instrument = rig.instrument
    replace = PIECES[piece].replace if piece != "ours" else None

    def instrument_then_replace(variant: str, path: str, **kwargs: Any) -> Callable[[], None]:
        undo: Callable[[], None] = instrument(variant, path, **kwargs)
        if replace is not None:
            replace()
        return undo

    rig.instrument = instrument_then_replace
    bench_instructions._worker("httpx", "ours", path, count)


def _per_request(piece: str, path: str, n1: int, n2: int) -> float:
    here = str(Path(__file__).resolve())
    low, high = (
        bench_instructions.callgrind_total([here, "--worker", piece, path, str(n)])
        for n in (n1, n2)
    )
    return (high - low) / (n2 - n1)


def main(argv: list[str] | None = None) -> int:
    """Measure ``ours`` (first and last), each piece that applies to the path, and
    ``inline``; print a table of what each piece costs against the mean of ``ours``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--path", choices=("200", "429"), default="200")
    parser.add_argument("--n1", type=int, default=100)
    parser.add_argument("--n2", type=int, default=400)
    parser.add_argument("--worker", nargs=3, metavar=("PIECE", "PATH", "N"))
    args = parser.parse_args(argv)
    if args.worker:
        piece, path, count = args.worker
        _worker(piece, path, int(count))
        return 0
    # Measured first and last: the same code moves by a few thousand between
    # processes (memory layout), and the two say by how much in this run.
    first = _per_request("ours", args.path, args.n1, args.n2)
    rows = {
        piece.what: _per_request(name, args.path, args.n1, args.n2)
        for name, piece in PIECES.items()
        if args.path in piece.paths
    }
    rows["(all: the inline hooks)"] = _per_request("inline", args.path, args.n1, args.n2)
    last = _per_request("ours", args.path, args.n1, args.n2)
    ours = (first + last) / 2
    print(f"httpx Client, {args.path}: ours {first:,.0f} first, {last:,.0f} last")
    print("| replaced by a constant | instructions per request | that piece costs |")
    print("|---|---:|---:|")
    for what, without in rows.items():
        print(f"| {what} | {without:,.0f} | {ours - without:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
