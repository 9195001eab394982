"""Read rate-limit state, retry delays and request ids from response headers.

Header values come from the network, so every function here accepts any
value (huge, non-ASCII, ``NaN``, ``1e309``, negative...) and answers ``None``
instead of raising. Results are bounded: counts are integers in
``0 .. 10**18``, waits are finite floats in ``0 .. MAX_WAIT_SECONDS``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Final, Literal, Protocol

from requests.structures import CaseInsensitiveDict

__all__ = [
    "EPOCH_MILLISECONDS_THRESHOLD",
    "EPOCH_SECONDS_THRESHOLD",
    "MAX_WAIT_SECONDS",
    "Headers",
    "RateLimit",
    "ResetUnit",
    "header_value",
    "parse_ratelimit",
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

_LIMIT: Final = "X-RateLimit-Limit"
_REMAINING: Final = "X-RateLimit-Remaining"
_RESET: Final = "X-RateLimit-Reset"
_RETRY_AFTER: Final = "Retry-After"
# Longer values are not numbers or dates any API sends; refusing them early
# keeps the per-request cost flat whatever a server returns.
_MAX_VALUE_LENGTH: Final = 64
_LEADING_NUMBER_RE: Final = re.compile(r"([0-9]{1,18}(?:\.[0-9]{1,9})?)[ \t]*(?:[,;]|\Z)")
_NUMBER_RE: Final = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,9})?")


class Headers(Protocol):
    """What we need of a headers object: ``get`` that is case-insensitive for
    ``requests``' ``CaseInsensitiveDict`` (a plain ``dict`` works too, with
    exact-case keys)."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The rate-limit window a response announced; ``None`` means not sent or invalid.

    Attributes:
        limit: Requests allowed per window (``X-RateLimit-Limit``), >= 0.
        remaining: Requests left in the window (``X-RateLimit-Remaining``), >= 0.
        reset_seconds: Seconds until the window resets, in ``0 .. MAX_WAIT_SECONDS``
            (``X-RateLimit-Reset``, else ``Retry-After``).
    """

    limit: int | None
    remaining: int | None
    reset_seconds: float | None


def header_value(headers: Headers, name: str) -> object:
    """``headers.get(name)``, without the ``Mapping.get`` detour for requests' headers."""
    cls: type = type(headers)
    if cls is CaseInsensitiveDict:
        # What CaseInsensitiveDict.get answers: it keeps (name, value) pairs
        # under lower-cased names in ``_store``.
        store: dict[str, tuple[str, object]] = headers._store  # type: ignore[attr-defined]
        entry = store.get(name.lower())
        return None if entry is None else entry[1]
    return headers.get(name)


def _value(headers: Headers, name: str) -> str | None:
    """The header's value, stripped; ``None`` if absent or implausibly long."""
    try:
        raw = header_value(headers, name)
    except Exception:  # noqa: BLE001 - a broken headers object must not break the call
        return None
    return _stripped(raw)


def _stripped(raw: object) -> str | None:
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    if not isinstance(raw, str) or len(raw) > _MAX_VALUE_LENGTH:
        return None
    return raw.strip()


def _number_text(headers: Headers, name: str) -> str | None:
    """The leading number of a numeric header. Some gateways send a list such
    as ``100, 100;w=60`` (the IETF draft's form); its first element counts."""
    try:
        raw = header_value(headers, name)
    except Exception:  # noqa: BLE001 - a broken headers object must not break the call
        return None
    if raw is None:
        return None
    if type(raw) is str and 0 < len(raw) <= 18 and raw.isdigit() and raw.isascii():
        # The common case (nothing to strip), and what the pattern below gives for it.
        return raw
    value = _stripped(raw)
    if not value:
        return None
    match = _LEADING_NUMBER_RE.match(value)
    return match.group(1) if match else None


def _int(headers: Headers, name: str) -> int | None:
    value = _number_text(headers, name)
    if value is None or "." in value:
        return None
    return int(value)


def _clamp_wait(seconds: float) -> float:
    if math.isnan(seconds):
        return 0.0
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


def _reset_seconds(headers: Headers, now: float, reset_unit: str) -> float | None:
    value = _number_text(headers, _RESET)
    if value is None:
        return None
    number = float(value)
    unit = reset_unit
    if unit not in ("delta_seconds", "epoch_seconds", "epoch_milliseconds"):
        if number >= EPOCH_MILLISECONDS_THRESHOLD:
            unit = "epoch_milliseconds"
        elif number >= EPOCH_SECONDS_THRESHOLD:
            unit = "epoch_seconds"
        else:
            unit = "delta_seconds"
    if unit == "epoch_milliseconds":
        return _clamp_wait(number / 1000.0 - now)
    if unit == "epoch_seconds":
        return _clamp_wait(number - now)
    return _clamp_wait(number)


def retry_after_seconds(headers: Headers, *, now: float) -> float | None:
    """Seconds to wait according to ``Retry-After`` (delta seconds or HTTP-date).

    Args:
        headers: Response headers.
        now: The current time as epoch seconds (``time.time()``), for dates.

    Returns:
        The wait in ``0 .. MAX_WAIT_SECONDS`` (a date in the past gives 0), or
        ``None`` when the header is absent or neither form parses.
    """
    value = _value(headers, _RETRY_AFTER)
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
    reset = _reset_seconds(headers, now, reset_unit)
    if reset is not None:
        return reset
    return retry_after_seconds(headers, now=now)


def parse_ratelimit(
    headers: Headers, *, now: float, reset_unit: ResetUnit | str = "auto"
) -> RateLimit:
    """The ``X-RateLimit-*`` state of a response; fields the API did not send are ``None``.

    Limit and remaining must be plain non-negative integers (anything else,
    including ``-1``, ``1e3`` and ``12.5``, is ``None``); the reset comes from
    ``ratelimit_wait_seconds``.
    """
    return RateLimit(*ratelimit_fields(headers, now, reset_unit))


def ratelimit_fields(
    headers: Headers, now: float, reset_unit: ResetUnit | str
) -> tuple[int | None, int | None, float | None]:
    """``parse_ratelimit`` as a plain ``(limit, remaining, reset_seconds)`` tuple.

    For the response hook, which runs on every response: building the frozen
    ``RateLimit`` costs about a microsecond.
    """
    return (
        _int(headers, _LIMIT),
        _int(headers, _REMAINING),
        ratelimit_wait_seconds(headers, now=now, reset_unit=reset_unit),
    )


def request_id(headers: Headers, names: Sequence[str], max_length: int = 128) -> str | None:
    """The first of ``names`` present with a usable value, cleaned for recording.

    Non-printable and non-ASCII characters are removed, surrounding spaces
    stripped and the rest cut to ``max_length`` characters. A header whose
    value is empty after cleaning counts as absent.
    """
    if max_length <= 0:
        return None
    for name in names:
        try:
            raw = header_value(headers, name)
        except Exception:  # noqa: BLE001 - a broken headers object must not break the call
            return None
        if isinstance(raw, bytes):
            raw = raw.decode("latin-1")
        if not isinstance(raw, str):
            continue
        # Cut first so a megabyte header costs no more than a short one.
        value = raw[: 4 * max_length + 64]
        if not (value.isascii() and value.isprintable()):
            value = "".join(c for c in value if " " <= c <= "~")
        value = value.strip()[:max_length].rstrip()
        if value:
            return value
    return None
