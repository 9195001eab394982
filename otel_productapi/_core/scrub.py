"""Replace personal data and secrets in free text with placeholders.

Error messages, URL paths and query values can carry the e-mail addresses,
phone numbers and tokens the Product API works with (its 404 page lists
"phone, email" in the URL). ``scrub_text`` removes them before anything
reaches a span or a log:

    ========================================  ============
    what                                      placeholder
    ========================================  ============
    e-mail address (``@`` or ``%40``)         ``{email}``
    ``Bearer``/``Basic`` credentials          ``Bearer {token}``
    JWT (``eyJ...``)                          ``{token}``
    long secret (see ``_is_secret``)          ``{token}``
    phone number (see below)                  ``{phone}``
    ========================================  ============

Phone numbers: anything starting with ``+`` that has 7 to 15 digits
(E.164, written compact or grouped with spaces, dots, dashes or an area code
in parentheses), and the North-American shape ``555-123-4567`` /
``(555) 123-4567``. A bare run of digits is *not* a phone number: without a
``+`` or grouping it is indistinguishable from an id, an amount or a
timestamp, and eating those ("page 2", "item 12345", "1700000000") would make
messages useless. (URL paths get their digits templated separately.)

Each pattern runs only when a cheap substring check says it could match, so
text without ``@``, ``+``, digits or long runs costs a few ``in`` checks.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["EMAIL", "PHONE", "TOKEN", "scrub_text"]

EMAIL: Final = "{email}"
PHONE: Final = "{phone}"
TOKEN: Final = "{token}"  # noqa: S105 - a placeholder, not a secret

# Local part and labels are bounded so that a long run without "@" costs a
# bounded amount of backtracking per position instead of quadratic time.
_EMAIL_RE: Final = re.compile(
    r"[A-Za-z0-9._%+\-]{1,64}(?:@|%40)"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?){0,8}"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
_AUTH_RE: Final = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
_JWT_RE: Final = re.compile(r"eyJ[A-Za-z0-9_\-]{5,}(?:\.[A-Za-z0-9_\-]*){0,2}")
_SECRET_RE: Final = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")
_ALNUM_RUN_RE: Final = re.compile(r"[A-Za-z0-9]{20,}")
# Separators are mandatory between groups, so a digit string has exactly one
# way to match and a failed match cannot backtrack exponentially.
_INTL_PHONE_RE: Final = re.compile(
    r"\+\d{7,15}(?!\d)"
    r"|\+\d{1,4}(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]\d{1,8}){1,6}(?!\d)"
)
_NANP_PHONE_RE: Final = re.compile(
    r"(?<![\d+])(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}(?!\d)"
)
_PHONE_PIECE_RE: Final = re.compile(r"\+?[ .\-]?(?:\(\d+\)|\d+)")
_DIGITS3_RE: Final = re.compile(r"\d{3}")
_DIGIT_RE: Final = re.compile(r"\d")
_HEXDIGITS: Final = frozenset("0123456789abcdefABCDEF")


def _auth_placeholder(match: re.Match[str]) -> str:
    return f"{match.group(1)} {TOKEN}"


def _is_secret(run: str) -> bool:
    """A 32+ character run is a secret if it has a digit and is all hex, or
    mixes letters and digits with a stretch of 20+ alphanumerics (random keys
    do; slugs such as ``my-project-2024-launch-page`` and UUIDs do not)."""
    if not any(c.isdigit() for c in run):
        return False
    if _HEXDIGITS.issuperset(run):
        return True
    return any(c.isalpha() for c in run) and _ALNUM_RUN_RE.search(run) is not None


def _secret_placeholder(match: re.Match[str]) -> str:
    run = match.group()
    return TOKEN if _is_secret(run) else run


def _phone_placeholder(match: re.Match[str]) -> str:
    """Replace the longest leading run of groups holding 7-15 digits.

    A grouped number followed by more digit groups ("+49 151 12345678 42")
    is still a phone number followed by something else, so it must not
    escape just because the whole match has too many digits.
    """
    text = match.group()
    digits = 0
    end = 0
    for piece in _PHONE_PIECE_RE.finditer(text):
        digits += sum(c.isdigit() for c in piece.group())
        if digits > 15:
            break
        if digits >= 7:
            end = piece.end()
    return PHONE + text[end:] if end else text


def scrub_text(text: str, *, max_length: int | None = None) -> str:
    """Return ``text`` with e-mails, phone numbers and tokens replaced by placeholders.

    Never raises for any ``str``. With ``max_length`` the text is cut to
    ``max_length`` plus a margin before scrubbing (bounded cost) and to
    ``max_length`` after, so a cut never splits a value the patterns catch.
    """
    if max_length is not None:
        return _scrub(text[: max_length + _MARGIN])[:max_length]
    return _scrub(text)


#: Longer than anything the patterns replace, so no value straddles the first cut.
_MARGIN: Final = 512


def _scrub(text: str) -> str:
    # Nothing we replace is shorter than 6 characters ("a@b.co").
    if len(text) < 6:
        return text
    if "@" in text or "%40" in text:
        text = _EMAIL_RE.sub(EMAIL, text)
    if "earer" in text or "asic" in text or "EARER" in text or "ASIC" in text:
        text = _AUTH_RE.sub(_auth_placeholder, text)
    if "eyJ" in text:
        text = _JWT_RE.sub(TOKEN, text)
    # Secrets (see _is_secret) and phone numbers all contain a digit; most
    # error messages do not.
    if _DIGIT_RE.search(text) is None:
        return text
    if len(text) >= 32:
        text = _SECRET_RE.sub(_secret_placeholder, text)
    if "+" in text:
        text = _INTL_PHONE_RE.sub(_phone_placeholder, text)
    if _DIGITS3_RE.search(text) is not None:
        text = _NANP_PHONE_RE.sub(PHONE, text)
    return text
