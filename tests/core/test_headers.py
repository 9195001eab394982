"""Rate-limit state, retry delays and request ids read from response headers."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from requests.structures import CaseInsensitiveDict

from otel_productapi._core.headers import (
    MAX_WAIT_SECONDS,
    ratelimit_fields,
    ratelimit_wait_seconds,
    request_id,
    retry_after_seconds,
)

NOW = 1_700_000_000.0


def headers(**values: str) -> CaseInsensitiveDict[str]:
    """Headers as requests hands them to hooks; underscores become dashes."""
    return CaseInsensitiveDict({k.replace("_", "-"): v for k, v in values.items()})


def test_full_ratelimit_headers() -> None:
    """Limit, remaining and a delta reset are read, case-insensitively."""
    found = ratelimit_fields(
        headers(x_ratelimit_limit="100", X_RateLimit_Remaining="7", x_ratelimit_reset="30"),
        NOW,
        "auto",
    )
    assert found == (100, 7, 30.0)


def test_no_headers_means_nothing_known() -> None:
    """A response without rate-limit headers has every field None."""
    assert ratelimit_fields(headers(), NOW, "auto") == (None, None, None)


@pytest.mark.parametrize(
    ("expected", "value"),
    [
        (0, "0"),
        (42, " 42 "),
        (100, "100, 100;w=60"),
        (None, "-1"),
        (None, "12.5"),
        (None, "1e3"),
        (None, "NaN"),
        (None, "inf"),
        (None, "abc"),
        (None, ""),
        (None, "٣"),
        (None, "9" * 19),
        (999_999_999_999_999_999, "9" * 18),
    ],
    ids=[
        "zero",
        "spaces",
        "draft-list",
        "negative",
        "fraction",
        "exponent",
        "nan",
        "inf",
        "word",
        "empty",
        "arabic-digit",
        "too-big",
        "largest",
    ],
)
def test_limit_and_remaining_must_be_plain_counts(expected: int | None, value: str) -> None:
    """Only non-negative decimal integers below 10**18 are counts."""
    found = ratelimit_fields(
        headers(x_ratelimit_limit=value, x_ratelimit_remaining=value), NOW, "auto"
    )
    assert (expected, expected) == (found[0], found[1])


@pytest.mark.parametrize(
    ("expected", "value", "unit"),
    [
        (30.0, "30", "auto"),
        (0.5, "0.5", "auto"),
        (60.0, str(int(NOW) + 60), "auto"),
        (60.0, str(int(NOW * 1000) + 60_000), "auto"),
        (0.0, str(int(NOW) - 60), "auto"),
        (MAX_WAIT_SECONDS, "999999999", "auto"),
        (MAX_WAIT_SECONDS, str(int(NOW) + 10 * 86_400), "auto"),
        (30.0, "30", "delta_seconds"),
        (0.0, "30", "epoch_seconds"),
        (60.0, str(int(NOW) + 60), "epoch_seconds"),
        (60.0, str(int(NOW * 1000) + 60_000), "epoch_milliseconds"),
        (MAX_WAIT_SECONDS, str(int(NOW) + 60), "delta_seconds"),
        (60.0, str(int(NOW) + 60), "no-such-unit"),
    ],
    ids=[
        "delta",
        "fractional-delta",
        "epoch-seconds",
        "epoch-ms",
        "epoch-in-past",
        "huge-delta-clamped",
        "far-future-clamped",
        "forced-delta",
        "forced-epoch-small-is-past",
        "forced-epoch",
        "forced-epoch-ms",
        "forced-delta-epoch-clamped",
        "unknown-unit-is-auto",
    ],
)
def test_reset_units(expected: float, value: str, unit: str) -> None:
    """X-RateLimit-Reset is read as delta, epoch s or epoch ms, clamped to 0..1 day."""
    assert expected == pytest.approx(
        ratelimit_wait_seconds(headers(x_ratelimit_reset=value), now=NOW, reset_unit=unit)
    )


@pytest.mark.parametrize("value", ["-5", "NaN", "inf", "1e309", "abc", "", "1" * 70], ids=str)
def test_invalid_reset_falls_back_to_retry_after(value: str) -> None:
    """A reset that is not a non-negative number yields to Retry-After."""
    found = ratelimit_wait_seconds(
        headers(x_ratelimit_reset=value, retry_after="7"), now=NOW, reset_unit="auto"
    )
    assert found == 7.0


def test_reset_wins_over_retry_after() -> None:
    """The error page says to retry after X-RateLimit-Reset, so it is read first."""
    found = ratelimit_fields(headers(x_ratelimit_reset="3", retry_after="99"), NOW, "auto")
    assert found[2] == 3.0


@pytest.mark.parametrize(
    ("expected", "value"),
    [
        (120.0, "120"),
        (0.0, "0"),
        (90.0, format_datetime(datetime.fromtimestamp(NOW + 90, timezone.utc), usegmt=True)),
        (
            90.0,
            format_datetime(datetime.fromtimestamp(NOW + 90, timezone.utc)).replace(
                "+0000", "-0000"
            ),
        ),
        (0.0, "Wed, 21 Oct 2015 07:28:00 GMT"),
        (MAX_WAIT_SECONDS, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (MAX_WAIT_SECONDS, "99999999"),
        (None, "-1"),
        (None, "soon"),
        (None, "Wed, 99 Foo 2015 07:28:00 GMT"),
        (None, "1e309"),
        (None, ""),
    ],
    ids=[
        "seconds",
        "zero",
        "http-date",
        "minus-zero-zone",
        "date-in-past",
        "year-9999",
        "huge",
        "negative",
        "word",
        "bad-date",
        "overflow",
        "empty",
    ],
)
def test_retry_after(expected: float | None, value: str) -> None:
    """Retry-After is delta seconds or an HTTP-date; anything else is None."""
    assert expected == retry_after_seconds(headers(retry_after=value), now=NOW)


def test_retry_after_absent() -> None:
    """No Retry-After header means no advice."""
    assert retry_after_seconds(headers(), now=NOW) is None


@pytest.mark.parametrize(
    "raw",
    [
        "pk_live_muQ2GzWVPworJzUMbvwDW8I8",
        "AKIAIOSFODNN7EXAMPLE",
        "req-ghp_" + "a1B2c3D4e5" * 4,
        "200-000-0000",
        "req-0151/12345678",
        "password:yWA04zWVPwo",
    ],
    ids=[
        "stripe-key",
        "aws-key",
        "github-token-after-prefix",
        "nanp-phone",
        "de-phone",
        "secret-pair",
    ],
)
def test_request_id_of_plain_characters_holding_a_key_or_phone_is_scrubbed(raw: str) -> None:
    """An id of id characters only is still scrubbed when it holds a key or a phone number."""
    found = request_id(headers(x_request_id=raw), ["x-request-id"])
    assert found is not None
    assert "{token}" in found or "{phone}" in found or "{secret}" in found
    assert raw[-7:] not in found


@pytest.mark.parametrize(
    "raw",
    [
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678-1234-4234-8234-123456789012",
        "2024-01-15T10:00:00Z-7f3a",
        "1-67891233-abcdef012345678912345678",
        "token:expired",
    ],
    ids=["uuid", "uuid-digit-groups", "timestamped", "aws-trace-id", "pair-of-words"],
)
def test_ordinary_request_ids_are_kept_whichever_path_reads_them(raw: str) -> None:
    """UUIDs, timestamps and trace ids are recorded unchanged, phone hint or not."""
    assert request_id(headers(x_request_id=raw), ["x-request-id"]) == raw


@pytest.mark.parametrize(
    ("expected", "raw"),
    [
        ("abc-123", "abc-123"),
        ("abc-123", "  abc-123\t"),
        ("abc123", "abc\x00\n123"),
        ("abc", "abcé"),
        ("0123456789", "0123456789ABCDEF"),
        (None, "   "),
        (None, "\x01\x02"),
    ],
    ids=["plain", "stripped", "controls", "non-ascii", "truncated", "blank", "only-controls"],
)
def test_request_id_is_cleaned(expected: str | None, raw: str) -> None:
    """Request ids keep printable ASCII only, stripped and cut to max_length."""
    assert expected == request_id(headers(x_request_id=raw), ["x-request-id"], max_length=10)


@pytest.mark.parametrize(
    "raw",
    [
        "josé.garcía@例子.中国",
        "req jürgen@münchen.de",
        "josé.garcía@例子.中国".encode().decode("latin-1"),  # as http.client reads it
    ],
    ids=["unicode", "after-a-word", "utf-8-read-as-latin-1"],
)
def test_request_id_with_a_non_ascii_email_leaves_no_remnant(raw: str) -> None:
    """A non-ASCII e-mail is scrubbed whole, not cut down to its ASCII letters first."""
    found = request_id(headers(x_request_id=raw), ["x-request-id"])
    assert found is not None
    assert found.endswith("{email}")
    assert "garca" not in found
    assert "rgen" not in found


def test_request_id_first_usable_name_wins() -> None:
    """Names are tried in order; absent or blank ones are skipped."""
    found = request_id(
        headers(x_correlation_id=" ", x_amzn_requestid="amz-1", x_request_id="req-1"),
        ["x-trace", "x-correlation-id", "x-amzn-requestid", "x-request-id"],
    )
    assert found == "amz-1"


def test_request_id_huge_value_is_bounded() -> None:
    """A megabyte header yields at most max_length characters."""
    assert request_id(headers(x_request_id="x" * 1_000_000), ["x-request-id"]) == "x" * 128


def test_request_id_non_positive_max_length() -> None:
    """max_length <= 0 records nothing."""
    assert request_id(headers(x_request_id="abc"), ["x-request-id"], max_length=0) is None


def test_plain_dict_headers_are_accepted() -> None:
    """A plain dict works, with lower-case keys (what the hooks hand over)."""
    found = ratelimit_fields({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "1"}, NOW, "auto")
    assert found == (5, 1, None)


def test_a_cached_delta_reset_is_not_read_in_an_epoch_unit() -> None:
    """The same reset text reads as a delta in auto mode and as a past epoch in epoch mode."""
    reset = headers(x_ratelimit_reset="30")
    assert ratelimit_fields(reset, NOW, "auto")[2] == 30.0
    assert ratelimit_fields(reset, NOW, "auto")[2] == 30.0  # from the cache
    assert ratelimit_fields(reset, NOW, "delta_seconds")[2] == 30.0
    assert ratelimit_fields(reset, NOW, "epoch_seconds")[2] == 0.0


def test_an_epoch_reset_follows_the_clock() -> None:
    """An epoch reset is worked out against the current time on every response."""
    reset = headers(x_ratelimit_reset=str(int(NOW) + 60))
    assert ratelimit_fields(reset, NOW, "auto")[2] == 60.0
    assert ratelimit_fields(reset, NOW + 45, "auto")[2] == 15.0


def test_delta_resets_stay_right_when_their_cache_starts_over() -> None:
    """More distinct delta resets than the cache holds are each read right, twice."""
    for _ in range(2):
        for seconds in range(1500):
            found = ratelimit_fields(headers(x_ratelimit_reset=str(seconds)), NOW, "auto")
            assert found == (None, None, float(seconds))


def test_value_caches_answer_the_same_when_full() -> None:
    """The caches of counts, numbers and delta resets start over when full: every
    value, read before, after and while they do, gets the same answer, and a number
    that is no count ("12.5") never becomes one through the cache of numbers."""
    from otel_productapi._core import headers as module

    def read(value: str) -> tuple[int | None, int | None, float | None]:
        names = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
        return ratelimit_fields(dict.fromkeys(names, value), NOW, "auto")

    assert read("12.5") == (None, None, 12.5)
    first = [read(str(i)) for i in range(3000)]
    assert first == [(i, i, float(i)) for i in range(3000)]
    for cache in (module._counts, module._numbers, module._delta_resets):
        assert 0 < len(cache) <= cache.max_size
    assert [read(str(i)) for i in range(3000)] == first
    assert read("12.5") == (None, None, 12.5)
    assert read("1e3") == (None, None, None)
