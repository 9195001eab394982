"""Read the error message and the batch outcome out of a response body.

The error page promises JSON error bodies with a ``message`` field, and
per-item outcomes for batched writes (``202``) without documenting their
schema. Bodies come from the network: every function here returns ``None``
for anything it does not understand (broken or huge JSON, invalid UTF-8,
nesting deep enough to hit the recursion limit) and never raises.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol, cast

from otel_productapi._core import names as n
from otel_productapi._core.cache import BoundedCache
from otel_productapi._core.numbers import MAX_BATCH_ITEMS, count
from otel_productapi._core.scrub import scrub_text

__all__ = [
    "BATCH_LIST_KEYS",
    "BatchExtractor",
    "BatchOutcome",
    "default_batch_extractor",
    "json_document",
    "load_batch_extractor",
    "message_from_document",
    "parse_json",
]

_JSON_ERRORS: Final = (ValueError, TypeError, RecursionError)


def parse_json(body: bytes, max_bytes: int) -> object | None:
    """The decoded JSON document, or ``None`` if ``body`` is empty, longer than
    ``max_bytes`` (``0`` disables parsing) or not JSON in UTF-8/16/32."""
    if not isinstance(body, bytes | bytearray) or not body or len(body) > max_bytes:
        return None
    try:
        return cast(object, json.loads(body))
    except _JSON_ERRORS:
        return None


# --- Error message -------------------------------------------------------------


def _is_json(body: bytes | bytearray, content_type: str | None) -> bool:
    if content_type:
        known = _json_types.get(content_type)
        if known is None:
            media = content_type.split(";", 1)[0].strip().lower()
            known = _json_types.put(
                content_type, media == "application/json" or media.endswith("+json")
            )
        return known
    return body.lstrip()[:1] in (b"{", b"[")


# A service sends a handful of distinct Content-Type values; bounded anyway.
_json_types: BoundedCache[str, bool] = BoundedCache(64)


def json_document(body: bytes | None, content_type: str | None, max_bytes: int) -> object | None:
    """The JSON document of a response body, parsed once for every reader.

    Only bodies whose ``Content-Type`` is ``application/json``,
    ``application/problem+json`` or any ``*+json`` are read, or bodies without
    a content type that start with ``{`` or ``[``; anything else, and anything
    ``parse_json`` refuses, is ``None``.
    """
    if not body or not isinstance(body, bytes | bytearray) or not _is_json(body, content_type):
        return None
    return parse_json(body, max_bytes)


def _clean(text: str, max_length: int) -> str | None:
    # Cut (with a margin) before scrubbing: the cost stays bounded whatever the body.
    text = scrub_text(text, max_length=max_length + 64)
    if not text.isprintable():
        # Newlines, tabs, bidi overrides and other controls could forge or hide
        # text in whatever displays the attribute.
        text = "".join(c if c.isprintable() else " " for c in text)
    text = text.strip()[:max_length].rstrip()
    return text or None


def message_from_document(document: object, max_length: int) -> str | None:
    """The error message of a parsed JSON body, safe to record, or ``None``.

    Takes the first string among: top-level ``message`` (the documented
    field), ``error.message`` and ``error`` (common API conventions), and
    ``detail`` (RFC 9457 problem details). The message goes through
    ``scrub_text``, has control characters replaced by spaces and is cut to
    ``max_length`` characters.
    """
    if max_length <= 0 or not isinstance(document, Mapping):
        return None
    # The candidates in order, each looked up only if the previous ones fail.
    candidate = document.get("message")
    if isinstance(candidate, str) and candidate.strip():
        return _clean(candidate, max_length)
    error = document.get("error")
    if isinstance(error, Mapping):
        candidate = error.get("message")
        if isinstance(candidate, str) and candidate.strip():
            return _clean(candidate, max_length)
    for candidate in (error, document.get("detail")):
        if isinstance(candidate, str) and candidate.strip():
            return _clean(candidate, max_length)
    return None


# --- Batch outcome -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """How many items of a batched write the API accepted.

    Attributes:
        items: Items in the batch, in ``0 .. MAX_BATCH_ITEMS``.
        failed_items: Items that failed, in ``0 .. items``.

    Raises:
        ValueError: A count is not an ``int``, is negative or too large, or
            ``failed_items > items``.
    """

    items: int
    failed_items: int

    def __post_init__(self) -> None:
        items = count(self.items, MAX_BATCH_ITEMS)
        failed = count(self.failed_items, MAX_BATCH_ITEMS)
        if items is None or failed is None or failed > items:
            raise ValueError(
                f"need integers 0 <= failed_items <= items <= {MAX_BATCH_ITEMS}, "
                f"got items={self.items!r:.40}, failed_items={self.failed_items!r:.40}"
            )

    @property
    def accepted_items(self) -> int:
        """Items that did not fail."""
        return self.items - self.failed_items

    @property
    def outcome(self) -> str:
        """``complete`` when nothing failed (an empty batch too), ``failed``
        when every item did, ``partial`` otherwise."""
        if self.failed_items == 0:
            return n.BATCH_COMPLETE
        if self.failed_items == self.items:
            return n.BATCH_FAILED
        return n.BATCH_PARTIAL


class BatchExtractor(Protocol):
    """Read a batch outcome from a parsed JSON body; ``None`` means "not a batch"."""

    def __call__(self, document: object, status: int, /) -> BatchOutcome | None: ...


#: Top-level keys under which ``default_batch_extractor`` looks for per-item lists.
BATCH_LIST_KEYS: Final = ("items", "results", "data", "outcomes", "responses")
_FAILED_WORDS: Final = frozenset({"failed", "failure", "error", "rejected"})
_OK_WORDS: Final = frozenset(
    {"ok", "success", "succeeded", "accepted", "created", "complete", "completed", "done"}
)
_SUMMARIES: Final = (("accepted", "failed"), ("succeeded", "failed"))


def _item_failed(item: object) -> bool | None:
    """True/False when the item says how it went, ``None`` when it does not."""
    if not isinstance(item, Mapping):
        return None
    verdict: bool | None = None
    for key in ("status", "status_code"):
        code = count(item.get(key), 599)
        if code is not None and 100 <= code <= 599:
            verdict = code >= 400
            break
    for key in ("status", "result", "outcome"):
        word = item.get(key)
        if isinstance(word, str):
            lowered = word.lower()
            if lowered in _FAILED_WORDS:
                return True
            if lowered in _OK_WORDS:
                verdict = bool(verdict)
    for key in ("error", "errors"):
        if key in item:
            if item[key]:
                return True
            verdict = bool(verdict)
    return verdict


def default_batch_extractor(document: object, status: int) -> BatchOutcome | None:
    """Best-effort batch outcome for the common shapes of batched-write responses.

    The error page only promises "a per-item outcome" (``202``) and that on
    ``422`` "every item in the batch failed", so this assumes the usual
    shapes and answers ``None`` (not a batch) when none fits:

    * Explicit counts at the top level, ``{"accepted": a, "failed": f}`` or
      ``{"succeeded": s, "failed": f}`` (non-negative ints), win over lists.
    * Otherwise the items are the top-level list, or the list under the first
      of ``BATCH_LIST_KEYS`` present (``errors`` too, on ``422`` only, where
      the body lists per-item errors).
    * An item failed when it is an object with ``status``/``status_code``
      >= 400, a ``status``/``result``/``outcome`` of ``failed``, ``failure``,
      ``error`` or ``rejected`` (any case), or a truthy ``error``/``errors``.
    * On ``2xx`` at least one item must state an outcome (a status code, a
      known word, or an ``error`` key), so a plain list of resources from a
      read is not mistaken for a batch.
    * On ``422`` every item counts as failed. Other statuses are not batches.
    """
    if not (200 <= status <= 299 or status == 422):
        return None
    all_failed = status == 422
    items: object = document
    if isinstance(document, Mapping):
        for accepted_key, failed_key in _SUMMARIES:
            accepted = count(document.get(accepted_key), MAX_BATCH_ITEMS)
            failed = count(document.get(failed_key), MAX_BATCH_ITEMS)
            if accepted is not None and failed is not None:
                total = accepted + failed
                impossible = total > MAX_BATCH_ITEMS
                return None if impossible else BatchOutcome(total, total if all_failed else failed)
        keys = (*BATCH_LIST_KEYS, "errors") if all_failed else BATCH_LIST_KEYS
        items = next((document[k] for k in keys if isinstance(document.get(k), list)), None)
    if not isinstance(items, list):
        return None
    if all_failed:
        return BatchOutcome(len(items), len(items))
    verdicts = [_item_failed(item) for item in items]
    if not any(v is not None for v in verdicts):
        return None
    return BatchOutcome(len(items), sum(v is True for v in verdicts))


def load_batch_extractor(path: str) -> BatchExtractor:
    """Import the extractor named ``"package.module:function"``.

    Raises:
        ValueError: ``path`` is not of that form, the module cannot be
            imported, or it has no such callable; the message says which.
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name.strip() or not attribute.strip():
        raise ValueError(f"batch extractor {path!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name.strip())
    except Exception as exc:  # a user module may fail with anything; say which
        raise ValueError(f"batch extractor {path!r}: cannot import {module_name!r}: {exc}") from exc
    target: object = module
    for part in attribute.strip().split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(
                f"batch extractor {path!r}: {module_name!r} has no attribute {attribute!r}"
            ) from None
    if not callable(target):
        raise ValueError(f"batch extractor {path!r} is not callable")
    return cast(BatchExtractor, target)
