"""Error messages and batch outcomes read from response bodies."""

from __future__ import annotations

import json
import types

import pytest

from otel_productapi._core import body as body_module
from otel_productapi._core import names as n
from otel_productapi._core.body import (
    BatchOutcome,
    default_batch_extractor,
    json_document,
    load_batch_extractor,
    message_from_document,
    parse_json,
)


def error_message(body: bytes, *, content_type: str | None, max_length: int) -> str | None:
    """What the tagger records for an error body: one parse, then the message."""
    return message_from_document(json_document(body, content_type, 65536), max_length)


# --- parse_json ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "body", "max_bytes"),
    [
        ({"a": 1}, b'{"a": 1}', 100),
        ([1, 2], "[1, 2]".encode("utf-16"), 100),
        (None, b'{"a": 1}', 7),
        (None, b'{"a": 1}', 0),
        (None, b"", 100),
        (None, b"{broken", 100),
        (None, b"\xff\xfe\xfa", 100),
        (None, b"[" * 100_000 + b"]" * 100_000, 1_000_000),
        (None, b"1" * 5000, 10_000),
    ],
    ids=[
        "object",
        "utf-16",
        "over-limit",
        "zero-disables",
        "empty",
        "broken",
        "invalid-utf8",
        "deep-nesting",
        "huge-int",
    ],
)
def test_parse_json(expected: object, body: bytes, max_bytes: int) -> None:
    """Only JSON within max_bytes parses; everything else is None, never an exception."""
    assert parse_json(body, max_bytes) == expected


# --- error_message -------------------------------------------------------------


def _body(document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("expected", "content_type"),
    [
        ("Invalid query filter", "application/json"),
        ("Invalid query filter", "application/json; charset=utf-8"),
        ("Invalid query filter", "Application/Problem+JSON"),
        ("Invalid query filter", "application/vnd.productapi.v1+json"),
        ("Invalid query filter", None),
        ("Invalid query filter", ""),
        (None, "text/plain"),
        (None, "text/html; charset=utf-8"),
    ],
    ids=[
        "json",
        "charset",
        "problem-json-any-case",
        "vendor-json",
        "absent",
        "empty",
        "text",
        "html",
    ],
)
def test_message_only_from_json(expected: str | None, content_type: str | None) -> None:
    """The message is read from JSON media types, or from a body that starts with '{'."""
    body = _body({"message": "Invalid query filter"})
    assert error_message(body, content_type=content_type, max_length=256) == expected


@pytest.mark.parametrize(
    ("expected", "document"),
    [
        ("top", {"message": "top", "error": {"message": "nested"}, "detail": "d"}),
        ("nested", {"error": {"message": "nested"}, "detail": "d"}),
        ("flat", {"error": "flat"}),
        ("problem", {"title": "t", "detail": "problem"}),
        ("nested", {"message": "  ", "error": {"message": "nested"}}),
        (None, {"message": 42}),
        (None, {"msg": "x"}),
        (None, ["message"]),
        (None, "message"),
    ],
    ids=[
        "message-first",
        "error-message",
        "error-string",
        "problem-detail",
        "blank-skipped",
        "not-a-string",
        "unknown-key",
        "list",
        "string",
    ],
)
def test_message_fields(expected: str | None, document: object) -> None:
    """message, then error.message, error and detail; nothing else."""
    assert message_from_document(document, 256) == expected


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ("no user {email}", "no user jane.doe@example.com"),
        ("call {phone}", "call +1 415 555 0100"),
        ("line one line two", "line one\nline two"),
        ("a b", "a\u202eb"),
        ("tab", "\ttab\x00"),
    ],
    ids=["email", "phone", "newline", "bidi-override", "controls"],
)
def test_message_is_scrubbed_and_cleaned(expected: str, message: str) -> None:
    """Personal data is replaced and control characters become spaces."""
    body = _body({"message": message})
    assert error_message(body, content_type="application/json", max_length=256) == expected


def test_message_is_truncated_after_scrubbing() -> None:
    """The cut happens after scrubbing, so it never leaves half an e-mail behind."""
    body = _body({"message": "x" * 10 + " jane.doe@example.com"})
    assert error_message(body, content_type=None, max_length=14) == "x" * 10 + " {em"


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"{\xff}", b"[" * 100_000, b'{"message": "' + b"9" * 10 + b'"' * 3, b"not json"],
    ids=["empty", "truncated", "invalid-utf8", "deep", "bad-quotes", "text"],
)
def test_broken_bodies_give_none(body: bytes) -> None:
    """Broken bodies never raise."""
    assert error_message(body, content_type="application/json", max_length=256) is None


def test_non_positive_max_length_gives_none() -> None:
    """max_length <= 0 records nothing."""
    assert error_message(_body({"message": "m"}), content_type=None, max_length=0) is None


# --- BatchOutcome --------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "items", "failed"),
    [
        (n.BATCH_COMPLETE, 3, 0),
        (n.BATCH_COMPLETE, 0, 0),
        (n.BATCH_PARTIAL, 3, 1),
        (n.BATCH_FAILED, 3, 3),
    ],
    ids=["complete", "empty", "partial", "failed"],
)
def test_batch_outcome(expected: str, items: int, failed: int) -> None:
    """The outcome follows the failed count."""
    assert BatchOutcome(items, failed).outcome == expected


@pytest.mark.parametrize(
    ("items", "failed"), [(-1, 0), (1, 2), (1, -1)], ids=["negative", "over", "negative-failed"]
)
def test_batch_outcome_rejects_impossible_counts(items: int, failed: int) -> None:
    """Counts must satisfy 0 <= failed <= items."""
    with pytest.raises(ValueError, match="failed_items"):
        BatchOutcome(items, failed)


# --- default_batch_extractor ---------------------------------------------------

OK = {"status": 201}
BAD = {"status": 409}


@pytest.mark.parametrize(
    ("expected", "document", "status"),
    [
        (BatchOutcome(3, 1), [OK, BAD, OK], 202),
        (BatchOutcome(2, 0), {"items": [OK, OK]}, 202),
        (BatchOutcome(2, 1), {"results": [{"status_code": 200}, {"status_code": 500}]}, 200),
        (BatchOutcome(2, 1), {"data": [{"result": "ok"}, {"result": "FAILED"}]}, 202),
        (BatchOutcome(2, 1), {"outcomes": [{"outcome": "accepted"}, {"outcome": "rejected"}]}, 202),
        (BatchOutcome(2, 1), {"responses": [{"error": None}, {"error": {"code": "x"}}]}, 202),
        (BatchOutcome(2, 1), [{"id": 1, "errors": []}, {"id": 2, "errors": ["bad"]}], 207),
        (BatchOutcome(3, 1), [OK, BAD, {"id": 3}], 202),
        (BatchOutcome(10, 2), {"accepted": 8, "failed": 2, "items": [BAD]}, 202),
        (BatchOutcome(5, 0), {"succeeded": 5, "failed": 0}, 202),
        (BatchOutcome(3, 3), {"errors": [{"index": 0}, {"index": 1}, {"index": 2}]}, 422),
        (BatchOutcome(2, 2), {"items": [OK, OK]}, 422),
        (BatchOutcome(4, 4), {"accepted": 1, "failed": 3}, 422),
        (None, [{"id": 1, "status": "active"}, {"id": 2}], 200),
        (None, {"errors": [{"index": 0}]}, 202),
        (None, [OK, BAD], 400),
        (None, [OK, BAD], 500),
        (None, {"message": "Invalid query filter"}, 422),
        (None, {"accepted": True, "failed": 0}, 202),
        (None, {"accepted": -1, "failed": 0}, 202),
        (None, "text", 202),
        (None, None, 202),
    ],
    ids=[
        "top-level-list",
        "items-key",
        "status-code",
        "result-word-any-case",
        "outcome-word",
        "error-key",
        "errors-key",
        "item-without-verdict-counts-accepted",
        "summary-wins",
        "succeeded-summary",
        "422-errors",
        "422-items",
        "422-summary",
        "plain-resource-list",
        "errors-without-total-on-2xx",
        "400",
        "500",
        "422-not-a-batch",
        "bool-is-not-a-count",
        "negative-count",
        "string",
        "null",
    ],
)
def test_default_batch_extractor(
    expected: BatchOutcome | None, document: object, status: int
) -> None:
    """Common batch shapes are read; lists that state no outcome are not batches."""
    assert default_batch_extractor(document, status) == expected


# --- load_batch_extractor ------------------------------------------------------


def test_load_batch_extractor_imports_the_function() -> None:
    """'module:function' resolves to that function."""
    loaded = load_batch_extractor("otel_productapi._core.body:default_batch_extractor")
    assert loaded is default_batch_extractor


@pytest.mark.parametrize(
    ("message", "path"),
    [
        ("must look like", "otel_productapi._core.body"),
        ("must look like", ":f"),
        ("must look like", "mod:"),
        ("cannot import", "no_such_module_xyz:f"),
        ("has no attribute", "otel_productapi._core.body:no_such_function"),
        ("not callable", "otel_productapi._core.body:BATCH_LIST_KEYS"),
    ],
    ids=["no-colon", "no-module", "no-function", "missing-module", "missing-attr", "not-callable"],
)
def test_load_batch_extractor_errors(message: str, path: str) -> None:
    """Bad paths raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        load_batch_extractor(path)


def test_load_batch_extractor_wraps_import_time_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A module that fails while importing is reported as a ValueError naming it."""

    def exploding_import(name: str) -> types.ModuleType:
        raise RuntimeError(f"boom in {name}")

    monkeypatch.setattr("importlib.import_module", exploding_import)
    with pytest.raises(ValueError, match="boom in mymod"):
        load_batch_extractor("mymod:f")


def test_content_type_verdicts_are_cached_within_a_bound() -> None:
    """Thousands of distinct Content-Type values leave a small, bounded cache."""
    for i in range(1000):
        assert error_message(
            b'{"message": "x"}', content_type=f"application/v{i}+json", max_length=10
        )
    assert len(body_module._json_types) <= body_module._json_types.max_size
