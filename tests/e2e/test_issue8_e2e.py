"""Issue 8, "What was seen", end to end: real ``requests`` calls to real servers on 127.0.0.1.

One test (or one group) per finding that needs the whole path to show:
ids of every shape through the real instrumentation, absurd batch counts and
a real OTLP encoding afterwards, whose instrumentation ``uninstrument()``
removes, TLS failures after the request was written and the retry helper, and
a user's batch extractor that raises. The personal-data corpus has its own
end-to-end test (``test_privacy_e2e``); the pure-core findings are in
``test_core_issue8``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import socket
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Telemetry
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from realistic_input import LEARNED, SHAPED
from requests.adapters import HTTPAdapter
from scripted_api import Reply, ScriptedApi, json_reply
from tls_servers import tls_server

import otel_productapi
from otel_productapi._adapters.requests.transport import ADAPTER_PATCH
from otel_productapi._core import names as n
from otel_productapi._core import scrub as _scrub
from otel_productapi._core.numbers import MAX_INT64
from otel_productapi._core.routes import DEFAULT_LEARN_THRESHOLD
from otel_productapi._telemetry import metrics as _metrics
from otel_productapi._telemetry import tagger as _tagger
from otel_productapi._telemetry.settings import load_settings
from otel_productapi.retry import RetryingSession, RetryPolicy

PLACEHOLDERS = ("{id}", "{uuid}", "{email}", "{phone}", "{token}")


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# --- ids of every shape: bounded templates in span names and metric labels ----------------

#: User names as ids: words that no shape can tell from a collection name.
_NAMES = [
    "".join(
        random.Random(i).choice(string.ascii_lowercase)
        for _ in range(random.Random(-i).randint(4, 9))
    )
    for i in range(400)
]


def _user_name(r: random.Random) -> str:
    return r.choice(_NAMES)


ID_SHAPES: dict[str, Callable[[random.Random], str]] = {
    **SHAPED,
    **LEARNED,
    "user-name": _user_name,
}


@pytest.mark.parametrize("shape", sorted(ID_SHAPES))
def test_ids_of_every_shape_give_bounded_templates_end_to_end(
    shape: str, telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """300 real calls with distinct ids of one shape: bounded url.template, span names and
    metric series, and once learned (or from the start) the id position is a placeholder."""
    telemetry.instrument(hosts=["127.0.0.1"])
    make = ID_SHAPES[shape]
    r = random.Random(shape)
    ids = [make(r) for _ in range(300)]
    for value in ids:
        session.get(f"{api.url}/v1/customers/{value}/orders", timeout=5)

    spans = telemetry.spans()
    assert len(spans) == len(ids)
    templates = [_attributes(s)[n.ATTR_URL_TEMPLATE] for s in spans]
    bound = DEFAULT_LEARN_THRESHOLD + len(PLACEHOLDERS)
    assert len(set(templates)) <= bound
    assert len({s.name for s in spans}) <= bound
    assert all(s.name == f"GET {t}" for s, t in zip(spans, templates, strict=True))
    if shape not in LEARNED:  # told by shape, or (user names) learned long before the end
        assert {t.split("/")[3] for t in templates[-50:]} <= set(PLACEHOLDERS)
    # Metric labels: the series are the templates, no more.
    series = telemetry.series(n.METRIC_CLIENT_REQUESTS)
    assert {a[n.ATTR_URL_TEMPLATE] for a, _ in series} == set(templates)
    assert sum(v for _, v in series) == len(ids)
    # An id that became a placeholder shows nowhere but in url.full.
    for span, value, template in zip(spans, ids, templates, strict=True):
        if template.split("/")[3] in PLACEHOLDERS:
            texts = [span.name] + [
                str(v)
                for k, v in _attributes(span).items()
                if k not in {n.ATTR_URL_FULL, n.ATTR_HTTP_URL_OLD}
            ]
            assert not [t for t in texts if f"/{value}/" in t], (value, texts)


def test_user_names_as_ids_are_learned_at_the_threshold(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """The first DEFAULT_LEARN_THRESHOLD names stay literal, every later one is {id}."""
    telemetry.instrument(hosts=["127.0.0.1"])
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
    names += [f"{w}{v}" for w in ("mallory", "oscar", "peggy", "trent") for v in ("a", "b", "c")]
    names += [f"user{w}" for w in ("x", "y", "z", "q", "r", "s", "t", "u", "v", "w")] * 2
    for name in names:
        session.get(f"{api.url}/v1/users/{name}/settings", timeout=5)
    templates = [_attributes(s)[n.ATTR_URL_TEMPLATE] for s in telemetry.spans()]
    literal = [t for t in templates if t != "/v1/users/{id}/settings"]
    assert literal == [f"/v1/users/{name}/settings" for name in names[: len(literal)]]
    assert DEFAULT_LEARN_THRESHOLD - 1 <= len(literal) <= DEFAULT_LEARN_THRESHOLD
    assert templates[len(literal) :] == ["/v1/users/{id}/settings"] * (len(names) - len(literal))


# --- cardinality pressure: past the cap, routes fold and classes stay exact --------------

_WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
]  # fmt: skip


def test_past_the_series_cap_every_429_keeps_its_class_end_to_end(
    telemetry: Telemetry,
    api: ScriptedApi,
    session: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a 24-series table, 156 calls over 26 routes and two host names (half of them
    429s): no call reaches the overflow series, and the totals per status, class and
    retryability are exactly what was sent; the routes past the fold point read _OTHER."""
    monkeypatch.setattr(_metrics, "MAX_SERIES", 24)
    monkeypatch.setattr(_metrics, "FOLD_RESERVE", 6)
    telemetry.instrument(hosts=["127.0.0.1", "localhost"])
    sent: Counter[tuple[int, str | None]] = Counter()
    for i, word in enumerate(_WORDS * 3):
        for host in ("127.0.0.1", "localhost"):
            status = 429 if (i + len(host)) % 2 else 200
            api.script(json_reply(status, {"message": "slow down"} if status == 429 else {}))
            session.get(f"http://{host}:{api.port}/v1/{word}/items", timeout=5)
            sent[status, n.CLASS_RATE_LIMITED if status == 429 else None] += 1

    series = telemetry.series(n.METRIC_CLIENT_REQUESTS)
    assert len(series) <= 24
    assert not [a for a, _ in series if "otel.metric.overflow" in a]
    exported: Counter[tuple[int, str | None]] = Counter()
    for attributes, value in series:
        key = (attributes[n.ATTR_HTTP_RESPONSE_STATUS_CODE], attributes.get(n.ATTR_ERROR_CLASS))
        exported[key] += int(value)
        if attributes.get(n.ATTR_ERROR_CLASS) == n.CLASS_RATE_LIMITED:
            assert attributes[n.ATTR_ERROR_RETRYABLE] is True
    assert +exported == sent  # (+ drops the series made at 0)
    folded = [a for a, v in series if a[n.ATTR_URL_TEMPLATE] == _metrics.FOLDED and v]
    assert folded
    assert all(a[n.ATTR_SERVER_ADDRESS] == _metrics.FOLDED for a in folded)


# --- absurd numbers: nothing out of range on the span, OTLP export keeps working ---------

_ABSURD_BODIES = [
    {"accepted": 2**64, "failed": 0},
    {"accepted": 2**63, "failed": 2**63},
    {"accepted": -5, "failed": 1},
    {"accepted": 1.5, "failed": 0.5},
    {"accepted": 1e300, "failed": 0},
    {"accepted": math.inf, "failed": 0},
    {"accepted": math.nan, "failed": math.nan},
    {"items": [{"status": "ok"}] * 3, "accepted": 10**30},
]
_ABSURD_HEADERS = [
    (b"X-RateLimit-Limit", str(2**64).encode()),
    (b"X-RateLimit-Remaining", b"-1"),
    (b"X-RateLimit-Reset", b"1e400"),
]


def _in_range(value: object) -> bool:
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return 0 <= value <= MAX_INT64
    if isinstance(value, float):
        return math.isfinite(value) and value >= 0
    if isinstance(value, tuple | list):
        return all(_in_range(v) for v in value)
    return False


def test_absurd_batch_counts_never_reach_a_span_and_otlp_export_keeps_working(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """202s with counts beyond int64, negative, fractional, infinite or NaN (and rate-limit
    headers to match), then two with int64's largest value, beyond any believable batch:
    every span value is in range and the real OTLP encoders still encode every metric."""
    telemetry.instrument(hosts=["127.0.0.1"])
    replies = [
        Reply(
            202,
            [(b"Content-Type", b"application/json"), *_ABSURD_HEADERS],
            json.dumps(body).encode(),  # Python writes inf and nan as Infinity and NaN
        )
        for body in _ABSURD_BODIES
    ]
    biggest = json_reply(202, {"accepted": MAX_INT64, "failed": 0})
    api.script(*replies, biggest, biggest, json_reply(202, {"accepted": 3, "failed": 1}))
    for _ in range(len(replies) + 3):
        session.post(f"{api.url}/v1/events:batch", json=[{}], timeout=5)

    spans = telemetry.spans()
    assert len(spans) == len(replies) + 3
    for span in spans:
        attributes = _attributes(span)
        assert [(k, v) for k, v in attributes.items() if not _in_range(v)] == []
    # No absurd count is believed: no batch tags, except from the item list of the body
    # whose counts are absurd but whose three items say "ok"; the last call is exact.
    batch = [
        (a.get(n.ATTR_BATCH_ITEMS), a.get(n.ATTR_BATCH_FAILED_ITEMS))
        for a in map(_attributes, spans)
    ]
    assert batch == [(None, None)] * (len(replies) - 1) + [(3, 0)] + [(None, None)] * 2 + [(4, 1)]
    # The real OTLP encoders take everything (they raised on an int beyond int64).
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    assert encode_metrics(data).SerializeToString()
    assert encode_spans(spans).SerializeToString()
    assert telemetry.value(n.METRIC_BATCH_ITEMS) <= MAX_INT64
    assert telemetry.request_count(**{n.ATTR_HTTP_RESPONSE_STATUS_CODE: 202}) == len(spans)
    # http.client.duration (the instrumentation's own histogram) is still exported.
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert any(name.startswith("http.client") for name in names), names


# --- scrubbing cost: bounded by the limit, whatever the body ------------------------------

#: Issue 8's body: a 64-character local part, "@", eight 62-character labels, no TLD.
_BAIT = "a" * 64 + "@" + ("a" * 62 + ".") * 8 + "a1 "


@pytest.mark.parametrize(
    ("size", "settings"),
    [
        (64 * 1024 - 64, {}),  # its JSON body fits the default 64 KiB body limit
        (1024 * 1024, {"max_body_bytes": 2 * 1024 * 1024, "message_max_length": 8192}),
    ],
    ids=["64KB-defaults", "1MB-raised-limits"],
)
def test_a_crafted_error_body_is_scrubbed_only_up_to_the_message_limit(  # noqa: PLR0917
    size: int,
    settings: dict[str, int],
    telemetry: Telemetry,
    api: ScriptedApi,
    session: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 64 KB (and, with raised limits, 1 MB) backtracking-bait message through a real call:
    the patterns only ever see the message limit plus CUT_MARGIN characters, in at most
    four readings (as is, percent- and form-decoded, and with compatibility forms folded,
    which this ASCII bait has none of), so the cost is bounded by the limit
    (figures: benchmarks/bench_scrub.py, docs/performance.md)."""
    seen: list[int] = []
    plain = _scrub._scrub_plain

    def spy(text: str) -> str:
        seen.append(len(text))
        return plain(text)

    monkeypatch.setattr(_scrub, "_scrub_plain", spy)
    resolved = telemetry.instrument(load_settings(hosts=["127.0.0.1"], **settings))
    message = (_BAIT * (size // len(_BAIT) + 1))[:size]
    api.script(json_reply(400, {"message": message}))
    session.get(f"{api.url}/v1/things", timeout=5)

    recorded = _attributes(telemetry.span())[n.ATTR_ERROR_MESSAGE]
    limit = resolved.message_max_length
    assert recorded == message[:limit].rstrip()
    assert 1 <= len(seen) <= 3
    # 64: room for the leading spaces a message loses when it is stripped.
    assert max(seen) <= limit + 64 + _scrub.CUT_MARGIN


# --- ownership: uninstrument() removes what instrument() installed, nothing else ---------


def test_uninstrument_leaves_someone_elses_reinstrumentation_and_their_hooks(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """After someone re-instruments requests with their own hooks, our uninstrument() leaves
    their instrumentation in place, and our instrument() does not drop their hooks."""
    seen: list[str] = []

    def their_request_hook(span: Any, request: requests.PreparedRequest) -> None:
        seen.append(str(request.method))

    telemetry.instrument(hosts=["127.0.0.1"])
    # The pattern of the upstream instrumentation's own tests: undo, then redo with hooks.
    RequestsInstrumentor().uninstrument()
    RequestsInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, request_hook=their_request_hook
    )
    try:
        theirs = requests.Session.send
        otel_productapi.uninstrument()
        assert requests.Session.send is theirs
        assert RequestsInstrumentor().is_instrumented_by_opentelemetry
        telemetry.instrument(hosts=["127.0.0.1"])  # warns, leaves theirs alone
        assert requests.Session.send is theirs
        session.get(f"{api.url}/v1/things", timeout=5)
        assert seen == ["GET"]
        (span,) = telemetry.spans()
        assert n.ATTR_ERROR_CLASS not in _attributes(span)  # theirs, not ours
        otel_productapi.uninstrument()
        assert requests.Session.send is theirs
    finally:
        RequestsInstrumentor().uninstrument()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_make_hooks_users_keep_the_adapter_patch_after_a_stray_uninstrument(
    telemetry: Telemetry, session: requests.Session
) -> None:
    """Hooks from make_hooks() in the user's own RequestsInstrumentor keep tagging and
    counting transport errors after otel_productapi.uninstrument() (with and without a
    programmatic instrument() before it)."""
    telemetry.instrument_own_requests(hosts=["127.0.0.1"])
    try:
        otel_productapi.uninstrument()  # nothing of ours to undo
        telemetry.instrument(hosts=["127.0.0.1"])  # someone else's: left alone
        otel_productapi.uninstrument()
        assert ADAPTER_PATCH.installed
        with contextlib.suppress(requests.ConnectionError):
            session.post(f"http://127.0.0.1:{_closed_port()}/v1/things", timeout=2)
        attributes = _attributes(telemetry.span())
        assert attributes[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
        assert attributes[n.ATTR_ERROR_RETRYABLE] is True  # refused: never sent
        assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_TRANSPORT_ERROR}) == 1
    finally:
        RequestsInstrumentor().uninstrument()


def test_our_instrument_and_uninstrument_undo_exactly_their_patch(
    telemetry: Telemetry,
) -> None:
    """instrument() twice then uninstrument() restores the originals: one share of the patch
    per instrument() is given back, by identity of what was installed."""
    send, adapter_send = requests.Session.send, HTTPAdapter.send
    telemetry.instrument(hosts=["127.0.0.1"])
    telemetry.instrument(hosts=["127.0.0.1"])
    assert ADAPTER_PATCH.installed
    otel_productapi.uninstrument()
    assert (requests.Session.send, HTTPAdapter.send) == (send, adapter_send)
    assert not ADAPTER_PATCH.installed


# --- TLS: broken after the request was written vs. in the handshake ---------------------


def test_a_post_whose_tls_breaks_after_sending_is_not_resent(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    """A POST whose TLS connection breaks after the request went out is tagged after-send,
    not retryable, and RetryingSession does not send it again: the server saw it once."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with tls_server("garbage_after_request") as server:
        retrying = RetryingSession(
            policy=RetryPolicy(max_attempts=4, jitter="none"),
            settings=load_settings(hosts=["127.0.0.1"]),
            meter_provider=telemetry.meter_provider,
            sleep=lambda _: None,
        )
        retrying.trust_env = False
        with retrying, pytest.raises(requests.exceptions.SSLError):
            retrying.post(server.url, json={"a": 1}, verify=server.ca_file(tmp_path), timeout=5)
        assert len(server.requests) == 1
        assert server.requests[0].startswith(b"POST /v1/things ")
    (span,) = telemetry.spans()
    attributes = _attributes(span)
    assert attributes[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
    assert attributes[n.ATTR_ERROR_RETRYABLE] is False


def test_a_tls_handshake_failure_is_not_sent_and_retried(telemetry: Telemetry) -> None:
    """A certificate the client refuses fails in the handshake: not sent, retryable, retried
    (one span per attempt), and the server never read a request."""
    telemetry.instrument(hosts=["127.0.0.1"])
    with tls_server("handshake_only") as server:
        retrying = RetryingSession(
            policy=RetryPolicy(max_attempts=3, jitter="none"),
            settings=load_settings(hosts=["127.0.0.1"]),
            meter_provider=telemetry.meter_provider,
            sleep=lambda _: None,
        )
        retrying.trust_env = False
        with retrying, pytest.raises(requests.exceptions.SSLError):
            retrying.post(server.url, json={"a": 1}, timeout=5)  # the system CAs: refused
        assert server.requests == []
    spans = telemetry.spans()
    assert len(spans) == 3
    for span in spans:
        attributes = _attributes(span)
        assert attributes[n.ATTR_ERROR_CLASS] == n.CLASS_TRANSPORT_ERROR
        assert attributes[n.ATTR_ERROR_RETRYABLE] is True


# --- a user's batch extractor cannot cost the core tags ---------------------------------


class ExtractorBrokeError(Exception):
    """Raised by ``raising_extractor``; a type no other test logs."""


def raising_extractor(document: object, status: int) -> object:
    """A batch extractor with a bug."""
    raise ExtractorBrokeError("items missing")


class _Nonsense:
    items = 3
    failed_items = 1
    outcome = ["not", "a", "label"] * 1000


def nonsense_extractor(document: object, status: int) -> object:
    """A batch extractor returning what no BatchOutcome would hold."""
    return {"text": "abc", "negative": -1}


def wrong_label_extractor(document: object, status: int) -> object:
    """Valid counts, but an ``outcome`` that is no label (a list of 3,000 strings)."""
    return _Nonsense()


@pytest.mark.parametrize(
    ("extractor", "logged_type"),
    [
        ("raising_extractor", "ExtractorBrokeError"),
        ("nonsense_extractor", "AttributeError"),
    ],
)
def test_a_broken_batch_extractor_keeps_the_core_tags_and_is_logged_once(  # noqa: PLR0917
    extractor: str,
    logged_type: str,
    telemetry: Telemetry,
    api: ScriptedApi,
    session: requests.Session,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five 422s through an extractor that raises or returns nonsense: each keeps its class,
    retryable flag and message, and the failure is logged exactly once."""
    monkeypatch.setattr(_tagger, "_logged", set())
    telemetry.instrument(hosts=["127.0.0.1"], batch_extractor=f"{__name__}:{extractor}")
    body = {"message": "Invalid items", "items": [{"status": "error"}]}
    api.script(*[json_reply(422, body)] * 5)
    with caplog.at_level(logging.DEBUG, logger="otel_productapi"):
        for _ in range(5):
            session.post(f"{api.url}/v1/events:batch", json=[{}], timeout=5)
    spans = telemetry.spans()
    assert len(spans) == 5
    for span in spans:
        attributes = _attributes(span)
        assert attributes[n.ATTR_ERROR_CLASS] == n.CLASS_VALIDATION_FAILED
        assert attributes[n.ATTR_ERROR_RETRYABLE] is False
        assert attributes[n.ATTR_ERROR_MESSAGE] == "Invalid items"
        assert n.ATTR_BATCH_ITEMS not in attributes
    records = [r for r in caplog.records if "batch extractor" in r.getMessage()]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert logged_type in records[0].getMessage()
    assert telemetry.request_count(**{n.ATTR_ERROR_CLASS: n.CLASS_VALIDATION_FAILED}) == 5


def test_a_batch_extractor_cannot_choose_the_outcome_label(
    telemetry: Telemetry, api: ScriptedApi, session: requests.Session
) -> None:
    """An extractor's counts are used, but the outcome label comes from them, not from it."""
    telemetry.instrument(hosts=["127.0.0.1"], batch_extractor=f"{__name__}:wrong_label_extractor")
    api.script(json_reply(202, {"whatever": True}))
    session.post(f"{api.url}/v1/events:batch", json=[{}], timeout=5)
    attributes = _attributes(telemetry.span())
    assert (
        attributes[n.ATTR_BATCH_ITEMS],
        attributes[n.ATTR_BATCH_FAILED_ITEMS],
        attributes[n.ATTR_BATCH_OUTCOME],
    ) == (3, 1, n.BATCH_PARTIAL)
