"""Replace personal data and secrets in free text with placeholders.

Error messages, request ids, URL paths and query values can carry the
e-mail addresses, phone numbers and credentials the Product API works with
(its 404 page lists "phone, email" in the URL). ``scrub_text`` removes them
before anything reaches a span, a metric or a log:

    =====================================================  ======================
    what                                                   becomes
    =====================================================  ======================
    e-mail address, any script (``jürgen@münchen.de``),    ``{email}``
    ``@``, ``%40`` or a full-width at (U+FF20)
    ``Bearer``/``Basic`` credentials                       ``Bearer {token}``
    JWT (``eyJ...``)                                       ``{token}``
    API key with a known prefix (``KEY_PREFIXES``)         ``{token}``
    long random run (see ``looks_random``)                 ``{token}``
    value of a secret-named key (``password=...``)         ``password={secret}``
    userinfo of a URL in the text (``htps://u:pw@host``)    ``htps://{secret}@host``
    phone number (see below)                               ``{phone}``
    =====================================================  ======================

Phone numbers, the hard case: a bare run of digits is *not* one (without a
``+`` or grouping it is indistinguishable from an id, an amount or a
timestamp, and eating those, "page 2", "item 12345", "1700000000", would
make messages useless). What is:

- international: ``+`` (or ``%2B``) and 7 to 15 digits, compact or grouped
  by spaces, dots, dashes, slashes or bracketed groups, including a trunk
  ``(0)`` (``+49 (0)30 1234 5678``, ``+1 (415) 555-0100``); ``00`` followed
  by a country code counts as ``+`` when the number is grouped
  (``0049 30 12345678``; a compact ``0049301234567`` is as likely a
  zero-padded id);
- a bracketed area code and 9 to 15 digits (``(030) 1234567``,
  ``(415) 555-0100``, ``(11) 91234-5678``);
- the North-American ``555-123-4567`` / ``555.123 4567`` (any separators);
- digit groups joined by one repeated separator: 10 to 15 digits in three
  or more groups (``555-123-4567``, ``06 12 34 56 78``, ``138 0013 8000``),
  or 9 to 13 digits in two or more when the first group is a trunk ``0``
  (``030 1234567``, ``0151/12345678``, ``098765 43210``). Thousands groupings
  (``10 000 000``), dotted IPv4 addresses and dates are not phones.

Text is also read percent-decoded, form-decoded and with its compatibility
forms folded to ASCII (full-width at signs, plus signs and digits, as East
Asian input methods type them): a reading that holds more to replace is the
result.

Bounded cost: every pattern is anchored on a character that must be there
(``@``, ``+``, a key prefix...) or made of bounded repetitions that cannot
backtrack more than a constant per position, so the cost is linear in the
text; ``max_length`` bounds the text before any pattern runs. Each pattern
runs only when a cheap substring check says it could match, so ordinary
messages cost a few ``in`` checks.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import unquote, unquote_plus

__all__ = [
    "CUT_MARGIN",
    "EMAIL",
    "KEY_PREFIXES",
    "PHONE",
    "SECRET",
    "TOKEN",
    "has_api_key",
    "has_credential",
    "has_secret_pair",
    "looks_random",
    "scrub_text",
    "unplaced_length",
]

EMAIL: Final = "{email}"
PHONE: Final = "{phone}"
TOKEN: Final = "{token}"  # noqa: S105 - a placeholder, not a secret
#: Replaces the value of a secret-named key in free text (``password=...``).
SECRET: Final = "{secret}"  # noqa: S105 - a placeholder, not a secret

#: ``scrub_text(text, max_length=n)`` scrubs at most ``n + CUT_MARGIN``
#: characters. The margin is longer than anything a pattern needs to see
#: whole (an e-mail as read here is at most 64 + 3 + 8 * 64 + 63 = 642
#: characters, a phone number about 40), so a value that starts inside the
#: first ``n`` characters is always seen whole, or is long enough to be
#: caught from its visible part (tokens, JWTs, key prefixes, secret values).
CUT_MARGIN: Final = 1024

# --- e-mail addresses ---------------------------------------------------------
# Found from each "@" (or "%40"): a pattern that starts with the local part
# tries up to 64 characters at every position of a long run, which is what
# made a crafted body cost seconds. One pattern finds an "@" followed by a
# domain (labels cannot contain ".", so each label has one way to match; the
# TLD is letters in any script or an IDN "xn--" label); the local part is
# then read backwards, by a pattern applied to the reversed 64 characters
# before the "@". \w is Unicode-aware: "jürgen@münchen.de" and
# "用户@例子.中国" count.
# "(?=(X))\1" matches X atomically (Python 3.10 has no atomic groups): the
# labels, each a run followed by "." and another label character, are taken
# greedily once, and the TLD must follow them, ending the domain.
# A percent-encoded domain ("m%C3%BCnchen.de", as a URL echoed in a message
# spells it) is found in the percent-decoded reading (``_scrub_readings``),
# not here: "%XX" as a label character would make every "%40" in a long run
# of them scan 63 characters ahead.
_AT_DOMAIN_RE: Final = re.compile(
    r"(?:@|%40)(?=((?:[\w\-]{1,63}\.(?=[\w\-])){1,8}))\1"
    r"(?:[^\W\d_]{2,63}|xn--[\w\-]{1,59})(?![\w\-]|\.[\w\-])"
)
_LOCAL_REVERSED_RE: Final = re.compile(r"[\w.%+\-]{1,64}")


def _scrub_emails(text: str) -> str:
    pieces: list[str] = []
    done = 0  # text[:done] is already in pieces
    for found in _AT_DOMAIN_RE.finditer(text):
        at = found.start()
        if at < done:
            continue
        local = _LOCAL_REVERSED_RE.match(text[max(done, at - 64) : at][::-1])
        if local is None:
            continue
        pieces.append(text[done : at - local.end()])
        pieces.append(EMAIL)
        done = found.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


# --- credentials ----------------------------------------------------------------

_AUTH_RE: Final = re.compile(r"\b(Bearer|Basic)(\s+)([A-Za-z0-9._~+/=\-]{8,})", re.IGNORECASE)
# base64url of '{"', at the start of a token (random ids contain "eyJ" too).
_JWT_RE: Final = re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}(?:\.[A-Za-z0-9_\-]*){0,4}")

#: Prefixes of API keys with a documented shape (gitleaks and the vendors'
#: docs): Stripe secret/publishable/restricted keys and webhook secrets, AWS
#: access key ids, GitHub classic and fine-grained tokens, Slack bot/user/app
#: tokens, Google API keys, GitLab, OpenAI/Anthropic, npm, PyPI, SendGrid,
#: Shopify, DigitalOcean, Square, Mailgun.
KEY_PREFIXES: Final = (
    "sk_live_",
    "sk_test_",
    "pk_live_",
    "pk_test_",
    "rk_live_",
    "rk_test_",
    "whsec_",
    "AKIA",
    "ASIA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xapp-",
    "AIza",
    "glpat-",
    "sk-",
    "npm_",
    "pypi-",
    "SG.",
    "shpat_",
    "dop_v1_",
    "sq0atp-",
    "key-",
)
_KEY_RE: Final = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"[spr]k_(?:live|test)_[A-Za-z0-9]{10,}"
    r"|whsec_[A-Za-z0-9+/=]{16,}"
    r"|(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA|A3T[A-Z0-9])[A-Z0-9]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abposre]-[A-Za-z0-9\-]{10,}"
    r"|xapp-[A-Za-z0-9\-]{10,}"
    r"|AIza[A-Za-z0-9_\-]{30,}"
    r"|glpat-[A-Za-z0-9_\-]{20,}"
    r"|sk-[A-Za-z0-9_\-]{32,}"
    r"|npm_[A-Za-z0-9]{30,}"
    r"|pypi-[A-Za-z0-9_\-]{50,}"
    r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"
    r"|shp(?:at|ss|ca|pa)_[A-Fa-f0-9]{32}"
    r"|dop_v1_[a-f0-9]{64}"
    r"|sq0(?:atp|csp)-[A-Za-z0-9_\-]{20,}"
    r"|key-[A-Za-z0-9]{32}"
    r")"
)


def has_credential(text: str) -> bool:
    """True when ``text`` holds a JWT or an API key with a known prefix (``KEY_PREFIXES``)."""
    return has_api_key(text) or _JWT_RE.search(text) is not None


def has_api_key(text: str) -> bool:
    """True when ``text`` holds an API key with a known prefix (``KEY_PREFIXES``)."""
    return _KEY_RE.search(text) is not None


# password=..., "api_key": "...", clientSecret: ..., X-Session-Token=...: the
# key is a secret-looking name (whole, or the end of a camelCase/snake_case
# name), the value runs to the next space, quote or delimiter (or, quoted,
# to the closing quote). Names are matched case-insensitively but only at a
# word start or a camelCase hump, so "monkey=" and "compass:" are not keys.
_KV_NAMES: Final = (
    r"pass(?:word|wd|phrase)|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
    r"|private[_\-]?key|credentials?|authorization|auth[_\-]?(?:token|key)"
    r"|session[_\-]?(?:id|key|token)|j?sessionid|phpsessid|signature"
)
_KV_RE: Final = re.compile(
    # The leading class lets the regex engine skip to candidate letters fast.
    r"(?=[PpSsTtAaCcJj])(?:(?<![A-Za-z])(?i:" + _KV_NAMES + r")"
    r"|(?<=[a-z])(?:Pass(?:word|wd|phrase)|Pwd|Secret|Token|Api[_\-]?Key|AccessKey|PrivateKey"
    r"|Credentials?|Signature|Session[_\-]?(?:Id|Key|Token)))"
    r"[A-Za-z0-9_\-]{0,20}[\"']?[ \t]{0,3}(?P<sep>[:=])[ \t]{0,3}"
    r"(?:(?P<quote>[\"'])(?P<quoted>[^\"'\r\n{]{1,256})|(?P<value>[^\s\"'&,;<>{}()\[\]]{1,256}))"
)
_SECRETISH_RE: Final = re.compile(r"[0-9]|.[A-Z]|[^A-Za-z]|.{12}")


def has_secret_pair(text: str) -> bool:
    """True when ``text`` holds a ``key=value`` or ``key: value`` pair whose value
    ``scrub_text`` replaces (``password:yWA04zWVPwo``, not ``token: expired``)."""
    return any(_kv_placeholder(m) != m.group() for m in _KV_RE.finditer(text))


def _auth_placeholder(match: re.Match[str]) -> str:
    # "Basic validation failed" is prose: a credential has a digit, a capital
    # after its first letter, a symbol, or twelve characters or more.
    if _SECRETISH_RE.search(match.group(3)) is None:
        return match.group()
    return f"{match.group(1)}{match.group(2)}{TOKEN}"


def _kv_placeholder(match: re.Match[str]) -> str:
    value = match.group("quoted") or match.group("value")
    # "key=value" is an assignment whatever the value; after ":" only a value
    # that looks like a secret is one ("token: expired" stays readable).
    if match.group("sep") == ":" and _SECRETISH_RE.search(value) is None:
        return match.group()
    start = match.start("quoted") if match.group("quoted") else match.start("value")
    return match.group()[: start - match.start()] + SECRET


# --- random runs -------------------------------------------------------------------

_RUN_RE: Final = re.compile(r"[A-Za-z0-9_\-+/=]{20,}")
_STRETCH_RE: Final = re.compile(r"[A-Za-z0-9]+")
_DIGIT_RUNS_RE: Final = re.compile(r"[0-9]+")
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")
_CAMEL_WORD_RE: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
# Case changes camelCase seldom makes: one lowercase letter between capitals
# ("UgM"), a capital pair after a lowercase letter ("aBC"), or before one.
_ODD_CASE_RE: Final = re.compile(r"(?<=[A-Z])[a-z](?=[A-Z])|[a-z](?=[A-Z]{2})|[A-Z](?=[A-Z][a-z])")
_DIGIT_RE: Final = re.compile(r"[0-9]")
_CASE_TABLE: Final = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "U" * 26 + "l" * 26 + "d" * 10,
)
_CLASS_RUN_RE: Final = re.compile(r"U+|l+|d+")


def looks_random(part: str) -> bool:
    """True for an ASCII alphanumeric string shaped like a random id or key.

    Shapes are told apart by how their character classes alternate, not by
    a list of words:

    - letters and digits, and two or more separate digit runs
      (``x7k2p9``, ``01ARZ3NDEK...``) or six or more characters alternating
      three or more times between classes (``3f9a8c``); one number inside a
      word (``oauth2``, ``v2beta``, ``item7``, ``sha256``) is not enough;
    - letters only, eight or more, mixed case, whose camelCase words average
      under 2.5 letters (``aZbKqLmNpQ``) or whose case changes in ways
      camelCase seldom does at least three times and once every seven
      letters (``GDodnvYtiUgMGBY``); ``batchCreate``, ``getUserProfile`` and
      ``XMLHttpRequest`` are words. Over 85,000 mixed-case identifiers from
      the Python standard library and botocore, 0.35% read as random;
      random letter strings of 17-27 letters are told 94% of the time,
      of 12-16 letters 80% (learning in ``routes`` catches the rest).

    Callers add their own length floor (an id can be short, a secret in
    prose must be long).
    """
    if not part.isascii() or not part.isalnum() or part.isdigit():
        return False
    if part.isalpha():
        return _letters_look_random(part)
    if len(_DIGIT_RUNS_RE.findall(part)) >= 2:
        return True
    classes = len(_CLASS_RUN_RE.findall(part.translate(_CASE_TABLE)))
    return len(part) >= 6 and classes >= 4


def _letters_look_random(part: str) -> bool:
    if len(part) < 8 or part.islower() or part.isupper():
        return False
    if len(part) < 2.5 * len(_CAMEL_WORD_RE.findall(part)):
        return True
    odd = len(_ODD_CASE_RE.findall(part))
    return odd >= 3 and odd * 20 >= len(part) * 3


def _is_secret(run: str) -> bool:
    """A 20+ character run of key characters that is a random key, not a word.

    - 32+ characters with a digit that are all hex (digests, hex keys) or
      hold a 20+ character stretch of letters and digits;
    - a 20+ character alphanumeric stretch, not hex, that ``looks_random``
      (base62/base32 keys, KSUIDs, ULIDs); hex under 32 characters is an id
      (ObjectIds, span ids, short commit hashes) and stays;
    - 32+ characters using lower case, upper case and digits, alternating
      at least every four characters (base64 secrets: an AWS secret key).

    UUIDs and slugs (``my-project-2024-launch-page``) are none of these.
    """
    stretches = _STRETCH_RE.findall(run)
    if len(run) >= 32 and _DIGIT_RE.search(run):
        if _HEX_RE.fullmatch(run):
            return True
        if any(len(s) >= 20 and not s.isdigit() for s in stretches):
            return True
    for stretch in stretches:
        if len(stretch) >= 20 and not _HEX_RE.fullmatch(stretch) and looks_random(stretch):
            return True
    if len(run) >= 32:
        classes = _CLASS_RUN_RE.findall(run.translate(_CASE_TABLE))
        return len({c[0] for c in classes}) == 3 and len(classes) * 4 >= len(run)
    return False


def _secret_placeholder(match: re.Match[str]) -> str:
    run = match.group()
    return TOKEN if _is_secret(run) else run


# --- phone numbers --------------------------------------------------------------------
# Every repetition is of "separator then digits" units where a separator is
# mandatory, so a digit string splits into groups one way only and a failed
# attempt backtracks a bounded amount.

# A separator: a space, ".", "-", "/" (or "%20"), or ".", "-", "/" with a
# space on either side ("030 / 1234567", "+49 (0) 30 / 123 456 78").
_SEP: Final = r"(?: ?[.\-/] ?|[ .\-/]|%20)"
_INTL_PHONE_RE: Final = re.compile(
    r"(?<![\w+%])(?P<lead>\+|%2[Bb]|00(?=[1-9]))"
    # At least seven digits close together, or no need to look further.
    r"(?=(?:(?:[ .\-/()]|%20){0,3}\d){7})"
    r"\d{1,15}(?:(?:" + _SEP + r"?\(\d{1,5}\)" + _SEP + r"?|" + _SEP + r")\d{1,15}){0,7}(?!\d)"
)
_PAREN_PHONE_RE: Final = re.compile(
    r"(?<![\w+%(])\(\d{2,5}\)" + _SEP + r"?\d{2,8}(?:" + _SEP + r"\d{2,8}){0,3}(?!\d)"
)
# Not inside a longer number (a separator between digits continues it), but
# "tel:030 1234567" and a final "." are fine.
_NOT_AFTER_NUMBER: Final = r"(?<![\w+%])(?<!\d[.\-/:])"
_NOT_BEFORE_NUMBER: Final = r"(?!\d|[.\-/:]\d)"
_NANP_PHONE_RE: Final = re.compile(
    _NOT_AFTER_NUMBER + r"(?:1[ .\-])?[2-9]\d{2}[ .\-]\d{3}[ .\-]\d{4}" + _NOT_BEFORE_NUMBER
)
_GROUPED_PHONE_RE: Final = re.compile(
    _NOT_AFTER_NUMBER +
    # A trunk "0" or three groups, and nine digits, or no need to look further.
    r"(?=0\d|\d{1,5}[ .\-/]{1,3}\d{2,8}[ .\-/]{1,3}\d\d)(?=(?:[ .\-/]{0,3}\d){9})"
    r"(?!(?:19|20)\d\d-\d\d-\d\d(?!\d))"  # ISO dates, frequent in logs
    # A first group of up to five digits, or six after a trunk "0" (India: 098765 43210).
    r"(?:0\d{5}|\d{1,5})(?P<sep> ?[.\-/] ?|[ .\-/])\d{2,8}(?:(?P=sep)\d{2,8}){0,4}"
    + _NOT_BEFORE_NUMBER
)
_PHONE_PIECE_RE: Final = re.compile(r"%20|\(\d+\)|\d+")
_YEAR_RE: Final = re.compile(r"(?:19|20)\d\d")


def _intl_placeholder(match: re.Match[str]) -> str:
    """Replace the longest leading run of groups holding 7-15 digits.

    A grouped number followed by more digit groups ("+49 151 12345678 42")
    is still a phone number followed by something else, so it must not
    escape just because the whole match has too many digits.
    """
    text = match.group()
    lead = len(match.group("lead"))
    grouped = lead == 2  # "00" must be grouped: "0049301234" may be a padded id
    digits = 0
    end = 0
    number = -1
    for piece in _PHONE_PIECE_RE.finditer(text, lead):
        group = piece.group()
        if group == "%20":
            continue  # a separator, whose "20" is not part of the number
        number += 1
        if group == "(0)" and number == 1:
            continue  # the trunk prefix of "+49 (0)30 ..." is not dialled
        digits += len(group.strip("()"))
        if digits > 15:
            break
        if digits >= 7 and (number > 0 or not grouped):
            end = piece.end()
    return PHONE + text[end:] if end else text


def _paren_placeholder(match: re.Match[str]) -> str:
    text = match.group()
    digits = sum(len(p) for p in _DIGIT_RUNS_RE.findall(text))
    return PHONE if 9 <= digits <= 15 else text


def _grouped_placeholder(match: re.Match[str]) -> str:
    text = match.group()
    groups = text.split(match.group("sep"))
    digits = sum(len(g) for g in groups)
    rest = groups[1:]
    if len(groups[0]) <= 3 and all(len(g) == 3 for g in rest):
        return text  # a thousands grouping: 10 000 000, 1.234.567
    if match.group("sep") == "." and len(groups) == 4 and all(len(g) <= 3 for g in groups):
        return text  # an IPv4 address
    lengths = [len(g) for g in groups[:3]]
    if (lengths == [4, 2, 2] and _YEAR_RE.fullmatch(groups[0])) or (
        len(lengths) == 3 and lengths[:2] in ([2, 2], [1, 2], [2, 1]) and lengths[2] == 4
    ):
        return text  # a date: 2024-01-15-..., 15.01.2024 ...
    trunk = groups[0][0] == "0" and len(groups[0]) >= 2
    if (len(groups) >= 3 and 10 <= digits <= 15) or (trunk and 9 <= digits <= 13):
        return PHONE
    return text


# --- the scrubber -------------------------------------------------------------------


def scrub_text(text: str, *, max_length: int | None = None) -> str:
    """Return ``text`` with e-mails, phone numbers and secrets replaced by placeholders.

    With ``max_length``, at most ``max_length + CUT_MARGIN`` characters are
    scrubbed and the result is cut to ``max_length``: the cost is bounded
    whatever the length of ``text``, and no value can be cut in half before
    being recognised. Never raises for any ``str``.
    """
    if max_length is not None:
        if max_length <= 0:
            return ""
        if len(text) > max_length + CUT_MARGIN:
            text = text[: max_length + CUT_MARGIN]
        return _scrub(text)[:max_length]
    return _scrub(text)


def _scrub(text: str) -> str:
    source, result = text, _scrub_plain(text)
    # One reading wins a round; what only another reading finds is left for
    # the next ("+4930<full-width hyphen>12345678 / to=030+1234567": the folded
    # reading finds the first number, the form-decoded one the second).
    for _ in range(_MAX_ROUNDS):
        if not ("%" in source or "+" in source or not source.isascii()):
            break
        read = _scrub_readings(source, result)
        if read is result:
            break
        source = result = read
    return result


_PLACEHOLDERS: Final = (EMAIL, PHONE, TOKEN, SECRET)
# Rounds of readings: a round changes the text only with a placeholder more.
_MAX_ROUNDS: Final = 3


def _placeholders(text: str) -> int:
    return sum(text.count(p) for p in _PLACEHOLDERS)


def unplaced_length(text: str) -> int:
    """How much of ``text`` is not a placeholder: of two scrubbed readings of
    the same text, the one with less recognised more."""
    return len(text) - sum(len(p) * text.count(p) for p in _PLACEHOLDERS)


# Characters whose compatibility form (NFKC) is one ASCII character, by block:
# Latin-1 (superscript digits, NBSP), punctuation and letter-like symbols,
# enclosed digits, the ideographic space, small forms ("\ufe6b"), half- and
# full-width forms ("\uff20"), mathematical letters and digits. Folded one for
# one, so a reading is never longer than its text (NFKC itself makes 18
# characters of "\ufdfa", and scrubbing cost follows length).
_FOLDED_BLOCKS: Final = (
    (0x00A0, 0x0100),
    (0x2000, 0x2500),
    (0x3000, 0x3001),
    (0xFE50, 0xFE70),
    (0xFF00, 0xFFF0),
    (0x1D400, 0x1D800),
)
# And what Japanese input methods type for "-" and "." that NFKC keeps: the
# long-vowel mark (090<U+30FC>1234<U+30FC>5678), dashes, the minus sign, the
# ideographic full stop (an address's dots in hiragana mode).
_INPUT_METHOD_FOLDS: Final = {
    **dict.fromkeys((0x2010, 0x2011, 0x2012, 0x2013, 0x2212, 0x30FC, 0xFF70), ord("-")),
    **dict.fromkeys((0x3002, 0xFF61), ord(".")),
}
_ASCII_FOLDS: Final = {
    **{
        code: ord(form)
        for start, end in _FOLDED_BLOCKS
        for code in range(start, end)
        if len(form := unicodedata.normalize("NFKC", chr(code))) == 1 and form.isascii()
    },
    **_INPUT_METHOD_FOLDS,
}


def _readings(text: str) -> list[str]:
    """Other readings of ``text``, at most three: percent-decoded, form-decoded
    and as it is, each with its compatibility forms folded to ASCII."""
    readings = []
    for decoded in (
        unquote(text, errors="replace") if "%" in text else text,
        unquote_plus(text, errors="replace") if "+" in text else text,
        text,
    ):
        reading = decoded if decoded.isascii() else decoded.translate(_ASCII_FOLDS)
        if reading != text and reading not in readings:
            readings.append(reading)
    return readings


def _scrub_readings(text: str, scrubbed: str) -> str:
    """``scrubbed`` (``text`` scrubbed as it is), or a reading of ``text`` that,
    scrubbed, holds more to replace.

    Messages echo URLs and form values as they were sent
    (``no user j%C3%BCrgen%40m%C3%BCnchen.de``, ``phone=%2B1+%28415%29+555-0100``,
    ``to=030+1234567``), and text typed in East Asian scripts writes
    addresses and numbers in full-width forms (``info`` U+FF20
    ``example.co.jp``, U+FF0B and full-width digits), read with those folded
    to ASCII. Readings are of ``text`` itself, not of ``scrubbed``: a number
    with a dash outside ASCII must not lose its head to the plain pass first.
    The reading that replaced most (then: that left least text besides
    placeholders) is the result, if it found anything and beats ``scrubbed``;
    otherwise ``scrubbed`` is kept (the very object).
    """
    best = scrubbed
    best_rank = (_placeholders(scrubbed) - _placeholders(text), -unplaced_length(scrubbed))
    for reading in _readings(text):
        candidate = _scrub_plain(reading)
        found = _placeholders(candidate) - _placeholders(reading)
        rank = (found, -unplaced_length(candidate))
        if found > 0 and rank > best_rank:
            best, best_rank = candidate, rank
    return best


# The userinfo of a URL quoted in text ("No connection adapters were found
# for 'htps://svc:pw@host/'"): tried only right after "://", and a run
# stops at the next "/", so no two attempts scan the same characters.
_USERINFO_RE: Final = re.compile(r"(?<=://)[^\s/?#@\[\]]+@")


def _scrub_plain(text: str) -> str:
    # Nothing we replace is shorter than 6 characters ("a@b.co").
    if len(text) < 6:
        return text
    if "@" in text or "%40" in text:
        if "://" in text:
            text = _USERINFO_RE.sub(SECRET + "@", text)
        text = _scrub_emails(text)
    if "earer" in text or "asic" in text or "EARER" in text or "ASIC" in text:
        text = _AUTH_RE.sub(_auth_placeholder, text)
    if "eyJ" in text:
        text = _JWT_RE.sub(TOKEN, text)
    if "=" in text or ":" in text:
        text = _KV_RE.sub(_kv_placeholder, text)
    if len(text) >= 16:
        text = _KEY_RE.sub(TOKEN, text)
    if len(text) >= 20:
        text = _RUN_RE.sub(_secret_placeholder, text)
    # Every phone has seven digits in a row or separated; most messages have
    # no digit at all.
    if _DIGIT_RE.search(text) is None:
        return text
    if "+" in text or "%2" in text or "00" in text:
        text = _INTL_PHONE_RE.sub(_intl_placeholder, text)
    if "(" in text:
        text = _PAREN_PHONE_RE.sub(_paren_placeholder, text)
    text = _NANP_PHONE_RE.sub(PHONE, text)
    return _GROUPED_PHONE_RE.sub(_grouped_placeholder, text)
