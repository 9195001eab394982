"""Read rate-limit state, retry delays and request ids from response headers.

Works on any headers object whose ``get`` finds lower-case names: a
case-insensitive mapping (requests' ``CaseInsensitiveDict``, ``httpx.Headers``)
or a plain ``dict`` with lower-case keys. Header values come from the
network, so every function here
accepts any value (huge, non-ASCII, ``NaN``, ``1e309``, negative...) and
answers ``None`` instead of raising. Results are bounded: counts are integers
in ``0 .. 10**18 - 1`` (inside int64, so every exporter can encode them),
waits are finite floats in ``0 .. MAX_WAIT_SECONDS``.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Sequence
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Final, Literal, Protocol

from otel_productapi._core.cache import BoundedCache
from otel_productapi._core.scrub import has_api_key, has_secret_pair, scrub_text

__all__ = [
    "EPOCH_MILLISECONDS_THRESHOLD",
    "EPOCH_SECONDS_THRESHOLD",
    "MAX_WAIT_SECONDS",
    "RATELIMIT_HEADERS",
    "Headers",
    "ResetUnit",
    "ratelimit_fields",
    "ratelimit_wait_seconds",
    "request_id",
    "retry_after_seconds",
]

ResetUnit = Literal["auto", "delta_seconds", "epoch_seconds", "epoch_milliseconds"]

#: Longest wait we report (one day); longer announced waits are clamped to it,
#: so a bogus far-future reset cannot park a retry loop or skew a histogram.
MAX_WAIT_SECONDS: Final = 86_400.0
#: In ``auto`` mode a reset value at or above this is epoch seconds.
#: 1e9 s is 2001-09-09 as a timestamp but 31.7 years as a delta, so every
#: plausible delta is below it and every current timestamp above it.
EPOCH_SECONDS_THRESHOLD: Final = 1e9
#: In ``auto`` mode a reset value at or above this is epoch milliseconds
#: (again 2001-09-09; a current epoch-seconds value is about 1.7e9).
EPOCH_MILLISECONDS_THRESHOLD: Final = 1e12

_LIMIT: Final = "x-ratelimit-limit"
_REMAINING: Final = "x-ratelimit-remaining"
_RESET: Final = "x-ratelimit-reset"
_RETRY_AFTER: Final = "retry-after"
#: Every header ``ratelimit_fields`` and ``ratelimit_wait_seconds`` may read.
RATELIMIT_HEADERS: Final = (_LIMIT, _REMAINING, _RESET, _RETRY_AFTER)
# Longer values are not numbers or dates any API sends; refusing them early
# keeps the per-request cost flat whatever a server returns.
_MAX_VALUE_LENGTH: Final = 64
# 18 digits: every count fits in int64 with room to add.
_MAX_DIGITS: Final = 18
_LEADING_NUMBER_RE: Final = re.compile(r"([0-9]{1,18}(?:\.[0-9]{1,9})?)[ \t]*(?:[,;]|\Z)")
_NUMBER_RE: Final = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,9})?")
# A request id recorded as it is: what ids are made of (UUIDs, ULIDs, "req_…",
# "Root=1-…;…" trace headers). Anything else (spaces, "@", "+", "=") is cleaned
# and scrubbed first: servers echo e-mails and "Bearer …" into these headers.
_PLAIN_ID_RE: Final = re.compile(r"[A-Za-z0-9._:;/\-]+")
#: A group of digits at a word start followed by a separator and a digit
#: ("555-123-4567", "0151/12345678"): a plain id holding it may be a phone
#: number, so it takes the scrubbing path (a UUID rarely does: its groups are hex).
_PHONE_HINT_RE: Final = re.compile(r"(?<![0-9A-Za-z])[0-9]{2,5}[./\-][0-9]")


class Headers(Protocol):
    """What we need of a headers object: ``get`` that finds lower-case names."""

    def get(self, key: str, /) -> str | None: ...


def _raw(headers: Headers, name: str) -> object:
    try:
        return headers.get(name)
    except Exception:  # noqa: BLE001 - a broken headers object must not break the call
        return None


def _stripped(raw: object) -> str | None:
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    if not isinstance(raw, str) or len(raw) > _MAX_VALUE_LENGTH:
        return None
    return raw.strip()


def _number_text(raw: object) -> str | None:
    """The leading number of a numeric header value. Some gateways send a list
    such as ``100, 100;w=60`` (the IETF draft's form); its first element counts."""
    value = _stripped(raw)
    if not value:
        return None
    match = _LEADING_NUMBER_RE.match(value)
    return match.group(1) if match else None


def _parse_number(raw: object) -> int | float | None:
    if type(raw) is str and raw.isdigit() and raw.isascii() and len(raw) <= _MAX_DIGITS:
        return int(raw)  # the usual value, and what the general reader gives for it
    text = _number_text(raw)
    if text is None:
        return None
    return float(text) if "." in text else int(text)


# A header value is parsed once per distinct text: limits are constant, resets
# change once a second, so most values repeat (remaining counts do not, and
# cost a parse each).
_numbers: BoundedCache[str, int | float | None] = BoundedCache(1024)
#: Seconds of a reset sent as a delta (below ``EPOCH_SECONDS_THRESHOLD``), by
#: text, for the units that read such a value as a delta: the same text
#: always means the same wait, whatever the time.
_delta_resets: BoundedCache[str, float] = BoundedCache(1024)
_DELTA_UNITS: Final = frozenset({"auto", "delta_seconds"})
_UNSEEN: Final = object()


def _number(raw: object) -> int | float | None:
    """A non-negative number read from a header value (finite), or ``None``."""
    if type(raw) is not str:
        return _parse_number(raw) if raw is not None else None
    found = _numbers.get(raw, _UNSEEN)
    if found is _UNSEEN:
        return _numbers.put(raw, _parse_number(raw))
    return found  # type: ignore[return-value]  # a value the cache holds


# Counts (limit, remaining) by text, apart from numbers: "12.5" is a number
# but no count, and a hit then needs no check.
_counts: BoundedCache[str, int | None] = BoundedCache(1024)


def _count(raw: object) -> int | None:
    """A count read from a header value: a plain non-negative integer, or ``None``."""
    number = _parse_number(raw) if raw is not None else None  # cached here, as a count
    count = number if type(number) is int else None
    if type(raw) is str:
        _counts.put(raw, count)
    return count


def _reset_seconds(number: float | None, now: float, reset_unit: str) -> float | None:
    """Seconds until a reset read as ``number`` (see ``ratelimit_wait_seconds``)."""
    if number is None:
        return None
    # Finite and >= 0: only the past and the upper bound need clamping.
    if reset_unit == "delta_seconds" or (
        reset_unit not in _EPOCH_UNITS and number < EPOCH_SECONDS_THRESHOLD
    ):
        seconds = number
    elif reset_unit == "epoch_milliseconds" or (
        reset_unit != "epoch_seconds" and number >= EPOCH_MILLISECONDS_THRESHOLD
    ):
        seconds = number / 1000.0 - now
    else:
        seconds = number - now
    # Compared rather than min()/max(): this runs on every response.
    if seconds <= 0:
        return 0.0
    return MAX_WAIT_SECONDS if seconds >= MAX_WAIT_SECONDS else float(seconds)


_EPOCH_UNITS: Final = frozenset({"epoch_seconds", "epoch_milliseconds"})


def _clamp_wait(seconds: float) -> float:
    if math.isnan(seconds):
        return 0.0
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


def retry_after_seconds(headers: Headers, *, now: float) -> float | None:
    """Seconds to wait according to ``Retry-After`` (delta seconds or HTTP-date).

    Args:
        headers: Response headers.
        now: The current time as epoch seconds (``time.time()``), for dates.

    Returns:
        The wait in ``0 .. MAX_WAIT_SECONDS`` (a date in the past gives 0), or
        ``None`` when the header is absent or neither form parses.
    """
    value = _stripped(_raw(headers, _RETRY_AFTER))
    if not value:
        return None
    if _NUMBER_RE.fullmatch(value):
        return _clamp_wait(float(value))
    try:
        when = parsedate_to_datetime(value)
        # A "-0000" zone yields a naive datetime; HTTP-dates are always GMT.
        seconds = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    except (ValueError, TypeError, OverflowError, OSError, IndexError):
        return None
    return _clamp_wait(seconds - now)


def ratelimit_wait_seconds(
    headers: Headers, *, now: float, reset_unit: ResetUnit | str = "auto"
) -> float | None:
    """Seconds until the API will accept requests again, or ``None`` if it did not say.

    ``X-RateLimit-Reset`` is read in ``reset_unit``. In ``auto`` mode (also
    used for any unknown unit) values of at least ``EPOCH_MILLISECONDS_THRESHOLD``
    are epoch milliseconds, values of at least ``EPOCH_SECONDS_THRESHOLD`` are
    epoch seconds (GitHub's convention) and smaller ones delta seconds (the
    IETF RateLimit draft's). When that header is absent or not a non-negative
    number, ``Retry-After`` answers instead. The result is clamped to
    ``0 .. MAX_WAIT_SECONDS``.
    """
    reset = _reset_seconds(_number(_raw(headers, _RESET)), now, reset_unit)
    if reset is not None:
        return reset
    return retry_after_seconds(headers, now=now)


def ratelimit_fields(
    headers: Headers, now: float, reset_unit: ResetUnit | str
) -> tuple[int | None, int | None, float | None]:
    """``(limit, remaining, reset_seconds)`` a response announced; ``None`` where it did not.

    Limit and remaining must be plain non-negative integers of at most 18
    digits (anything else, including ``-1``, ``1e3`` and ``12.5``, is
    ``None``); the reset comes from ``ratelimit_wait_seconds``.
    """
    try:
        get = headers.get
        raw_limit, raw_remaining, raw_reset = get(_LIMIT), get(_REMAINING), get(_RESET)
        # Called on every response: the cache look-ups are made here, and
        # only a value not seen yet (or not a str, or an epoch reset) costs a call.
        cached = _counts.get
        limit = cached(raw_limit, _UNSEEN)  # type: ignore[arg-type]  # any value; misses are parsed
        remaining = cached(raw_remaining, _UNSEEN)  # type: ignore[arg-type]
        # A delta reset does not depend on the clock: its seconds are cached by text.
        seconds = _delta_resets.get(raw_reset) if reset_unit in _DELTA_UNITS else None  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a broken headers object must not break the call
        return None, None, None
    if limit is _UNSEEN:
        limit = _count(raw_limit)
    if remaining is _UNSEEN:
        remaining = _count(raw_remaining)
    if seconds is None:
        reset = _number(raw_reset)
        seconds = _reset_seconds(reset, now, reset_unit)
        if seconds is None:
            seconds = retry_after_seconds(headers, now=now)
        elif reset_unit in _DELTA_UNITS and reset is not None and reset < EPOCH_SECONDS_THRESHOLD:
            _delta_resets.put(raw_reset, seconds)  # type: ignore[arg-type]  # hashable: looked up above
    return limit, remaining, seconds  # type: ignore[return-value]  # counts, as cached


def request_id(headers: Headers, names: Sequence[str], max_length: int = 128) -> str | None:
    """The first of ``names`` (lower-case) present with a usable value, safe to record.

    An id made only of letters, digits and ``. _ : ; / -`` (UUIDs, ULIDs,
    ``req_…``, AWS trace ids) is recorded as it is, cut to ``max_length``,
    unless it holds a JWT, an API key of a known shape (``sk_live_…``,
    ``AKIA…``, ``ghp_…``), a ``password:…`` pair or what may be a phone
    number. Anything else goes through ``scrub_text`` (servers echo e-mails
    and ``Bearer …`` into these headers), control characters removed first,
    then keeps its printable ASCII characters, stripped. A header whose
    value is empty after cleaning counts as absent.
    """
    if max_length <= 0:
        return None
    for name in names:
        try:
            raw = headers.get(name)
        except Exception:  # noqa: BLE001 - a broken headers object must not break the call
            return None
        if (
            type(raw) is str
            and len(raw) <= max_length
            and _PLAIN_ID_RE.fullmatch(raw)
            and "eyJ" not in raw  # no JWT
            and not has_api_key(raw)
            # A phone number needs a separator; most ids have none.
            and not (("-" in raw or "." in raw or "/" in raw) and _PHONE_HINT_RE.search(raw))
            and not (":" in raw and has_secret_pair(raw))
        ):
            return raw
        if isinstance(raw, bytes):
            raw = raw.decode("latin-1")
        if not isinstance(raw, str):
            continue
        value = _cleaned(raw, max_length)
        if value:
            return value
    return None


def _cleaned(raw: str, max_length: int) -> str:
    # Cut first so a megabyte header costs no more than a short one.
    value = raw[: 4 * max_length + 64]
    if value.isascii() and value.isprintable():
        return scrub_text(value.strip(), max_length=max_length).rstrip()
    # Scrubbed before its non-ASCII characters go, so that an e-mail such as
    # "josé@例子.中国" is seen whole (not as "jos@." once they are dropped).
    # HTTP clients read header bytes as Latin-1: UTF-8 is read again as such.
    if not value.isascii():
        with contextlib.suppress(UnicodeError):
            value = value.encode("latin-1").decode("utf-8")
    value = "".join(c for c in value if c.isprintable()).strip()
    scrubbed = scrub_text(value, max_length=max_length)
    return "".join(c for c in scrubbed if " " <= c <= "~").strip()
