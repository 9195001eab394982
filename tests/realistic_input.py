"""Realistic ids and personal-data needles, shared by the property tests.

Ids are generated the way services mint them (random bytes in the id's own
alphabet and length: Stripe-style prefixed ids, ULIDs, KSUIDs, nanoids,
MongoDB ObjectIds, AWS access keys, IP addresses, slugs with a random
suffix, base64url), so the shapes the templater must recognise are the real
ones, not whatever a character-class strategy shrinks to. Personal data and
secrets come from a corpus of needles (e-mails in several scripts and
encodings, phone numbers in international and national formats, JWTs,
credentials, API keys, ``key=value`` secrets).
"""

from __future__ import annotations

import base64
import ipaddress
import random
import re
import string
import uuid
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from hypothesis import strategies as st

# --- Realistic ids ------------------------------------------------------------------

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
STRIPE_PREFIXES = ["cus", "ch", "pi", "sub", "in", "prod", "price", "acct", "evt", "txn", "pm"]
OTHER_PREFIXES = ["ord", "usr", "org", "inv", "team"]


def _pick(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def stripe_id(r: random.Random) -> str:
    """cus_NffrFeUfNV2Hib: a type prefix and 14-24 base62 characters."""
    prefix = r.choice(STRIPE_PREFIXES + OTHER_PREFIXES)
    return prefix + r.choice("_-") + _pick(r, B62, r.randint(14, 24))


def ulid(r: random.Random) -> str:
    """26 Crockford base32 characters, a 48-bit time then 80 random bits."""
    return r.choice("01") + _pick(r, CROCKFORD, 25)


def ksuid(r: random.Random) -> str:
    """27 base62 characters (a 32-bit time and 128 random bits)."""
    return _pick(r, B62, 27)


def nanoid(r: random.Random) -> str:
    """21 characters of the URL-safe alphabet A-Za-z0-9_-."""
    return _pick(r, string.ascii_letters + string.digits + "_-", 21)


def object_id(r: random.Random) -> str:
    """MongoDB ObjectId: 12 bytes as 24 lower-case hex characters."""
    return f"{r.getrandbits(96):024x}"


def aws_access_key(r: random.Random) -> str:
    """AKIA/ASIA and 16 base32 characters (upper case and 2-7)."""
    return r.choice(["AKIA", "ASIA"]) + _pick(r, string.ascii_uppercase + "234567", 16)


def ipv4(r: random.Random) -> str:
    return str(ipaddress.IPv4Address(r.getrandbits(32)))


def ipv6(r: random.Random) -> str:
    return str(ipaddress.IPv6Address(r.getrandbits(128)))


def uuid4(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def base64url_id(r: random.Random) -> str:
    """16 or 18 random bytes, base64url without padding (22 or 24 characters)."""
    return base64.urlsafe_b64encode(r.randbytes(r.choice([16, 18]))).decode().rstrip("=")


SLUG_WORDS = ["my", "post", "summer", "sale", "hello", "world", "big", "launch", "new", "blue"]


def slug(r: random.Random) -> str:
    """my-post-3f9a8c: words, then a random suffix of 6-8 base36 characters."""
    words = "-".join(r.choice(SLUG_WORDS) for _ in range(r.randint(1, 3)))
    return f"{words}-{_pick(r, string.ascii_lowercase + string.digits, r.randint(6, 8))}"


def base32_id(r: random.Random) -> str:
    """10 random bytes, lower-case base32 (16 characters)."""
    return base64.b32encode(r.randbytes(10)).decode().lower()


def short_code(r: random.Random) -> str:
    """6 base36 characters: too short to be told from a word by shape alone."""
    return _pick(r, string.ascii_lowercase + string.digits, 6)


# Generators whose shape alone tells them for (nearly) every value: 10,000 of
# them under one route give one template.
SHAPED: dict[str, Callable[[random.Random], str]] = {
    "stripe": stripe_id,
    "ulid": ulid,
    "ksuid": ksuid,
    "nanoid": nanoid,
    "objectid": object_id,
    "aws": aws_access_key,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "uuid": uuid4,
    "base64url": base64url_id,
    "number": lambda r: str(r.randint(0, 10**12)),
}
# Generators with a fair share of values that look like words (a slug whose
# suffix is all letters): learning bounds them.
LEARNED: dict[str, Callable[[random.Random], str]] = {
    "slug": slug,
    "base32": base32_id,
    "short": short_code,
    "hex-any-length": lambda r: f"{r.getrandbits(r.choice([24, 32, 40])):x}",
}
ALWAYS_SHAPED = {"ulid", "objectid", "aws", "ipv4", "ipv6", "uuid", "number"}


def seeded(make: Callable[[random.Random], str]) -> st.SearchStrategy[str]:
    """A strategy drawing realistic values: hypothesis picks the seed, not the characters."""
    return st.integers(0, 2**64 - 1).map(lambda seed: make(random.Random(seed)))


any_id = st.one_of([seeded(make) for make in {**SHAPED, **LEARNED}.values()])

COLLECTIONS = [
    "users",
    "orders",
    "customers",
    "payment_intents",
    "subscriptions",
    "invoice-items",
    "settings",
    "members",
    "audiences",
    "events",
    "webhook_endpoints",
    "tax_rates",
]

# --- Needles: personal data and secrets ----------------------------------------------

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9\-]{0,10}[a-z0-9])?", fullmatch=True)
ascii_emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._+\-]{0,20}[A-Za-z0-9])?", fullmatch=True),
    st.lists(_label, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
unicode_emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.sampled_from(["jürgen", "josé.garcía", "αλέξης", "用户", "zoë+news", "ødegård"]),
    st.sampled_from(
        ["münchen.de", "例子.中国", "xn--mnchen-3ya.de", "bücher.example", "пример.рф", "mail.com"]
    ),
)
emails = ascii_emails | unicode_emails


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.from_regex(rf"[0-9]{{{n}}}", fullmatch=True)


phones = st.one_of(
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),  # E.164, compact
    st.builds(
        lambda a, b: f"+1 ({a}) 555-{b}",
        st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
        _digits(4),
    ),
    st.builds(
        lambda cc, area, sub, sep: f"+{cc}{sep}(0){area}{sep}{sub[:4]}{sep}{sub[4:]}",
        st.sampled_from(["49", "43", "41", "44"]),
        st.from_regex(r"[1-9][0-9]{1,3}", fullmatch=True),
        _digits(8),
        st.sampled_from([" ", "-", "."]),
    ),
    st.builds(
        lambda area, sub, sep: f"0{area}{sep}{sub}",
        st.from_regex(r"[1-9][0-9]{1,3}", fullmatch=True),
        st.from_regex(r"[1-9][0-9]{6,7}", fullmatch=True),
        st.sampled_from([" ", "-", "/"]),
    ),  # German national
    st.builds(
        lambda a, b, c, sep: f"{a}{sep}{b}{sep}{c}",
        st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
        _digits(3),
        _digits(4),
        st.sampled_from(["-", ".", " "]),
    ),  # North American
    st.builds(
        lambda d, rest: f"0{d} {rest[0:2]} {rest[2:4]} {rest[4:6]} {rest[6:8]}",
        st.integers(1, 9),
        _digits(8),
    ),  # French 0X XX XX XX XX
    st.builds(
        lambda cc, rest: f"00{cc} {rest[:3]} {rest[3:]}",
        st.sampled_from(["49", "33", "39"]),
        _digits(8),
    ),
    st.builds(lambda a, b: f"+91 {a} {b}", _digits(5), _digits(5)),
    st.builds(lambda a, b: f"(11) 9{a}-{b}", _digits(4), _digits(4)),
)
# National formats as people write them: a trunk prefix ("(0)", a leading 0),
# spaces, dots, dashes, slashes and brackets, as in the numbering plans of
# the UK, France, Italy, Switzerland, the Netherlands, Spain, Japan, China,
# Brazil, Australia and North America.
_WORLD_FORMATS = (
    "+44 (0)20 #### ####",
    "020 #### ####",
    "+33 (0)6 ## ## ## ##",
    "+33 6 ## ## ## ##",
    "+39 06 #### ####",
    "+41 (0)44 ### ## ##",
    "+31 (0)20 ### ####",
    "+34 6## ## ## ##",
    "03-####-####",
    "090-####-####",
    "+81 90-####-####",
    "+86 138 #### ####",
    "+55 (11) 9####-####",
    "+61 4## ### ###",
    "(02) #### ####",
    "+1.415.###.####",
    "1-800-###-####",
    "+49 (0) 30 / ### ### ##",
    "0049 (0)30 ########",
    "0151/########",
)
world_phones = st.builds(
    lambda template, digits: "".join(next(digits) if c == "#" else c for c in template),
    st.sampled_from(_WORLD_FORMATS),
    st.lists(st.sampled_from("0123456789"), min_size=12, max_size=12).map(iter),
)
phones = phones | world_phones
jwts = st.from_regex(
    r"eyJ[A-Za-z0-9_\-]{10,40}\.eyJ[A-Za-z0-9_\-]{10,60}\.[A-Za-z0-9_\-]{10,40}", fullmatch=True
)
#: API keys whose shape says "key": a documented prefix (Stripe, AWS, GitHub,
#: Slack, Google).
prefixed_api_keys = st.one_of(
    seeded(
        lambda r: r.choice(["sk_live_", "sk_test_", "rk_live_", "pk_live_"]) + _pick(r, B62, 24)
    ),
    seeded(aws_access_key),
    seeded(lambda r: r.choice(["ghp_", "gho_", "ghs_"]) + _pick(r, B62, 36)),
    seeded(lambda r: "github_pat_" + _pick(r, B62, 22) + "_" + _pick(r, B62, 59)),
    seeded(lambda r: "xoxb-" + _pick(r, string.digits, 12) + "-" + _pick(r, B62, 24)),
    seeded(lambda r: "AIza" + _pick(r, B62 + "_-", 35)),
)
#: Secrets that are nothing but a long random run: in free text they are
#: keys, but a request id is exactly such a run, so they are kept there.
random_keys = st.one_of(
    seeded(lambda r: _pick(r, B62, 40)).filter(lambda k: sum(c.isdigit() for c in k) >= 3),
    seeded(lambda r: f"{r.getrandbits(128):032x}"),
)
api_keys = prefixed_api_keys | random_keys
credentials = st.builds(
    lambda scheme, value: (f"{scheme} {value}", value),
    st.sampled_from(["Bearer", "Basic", "bearer"]),
    seeded(lambda r: base64.b64encode(r.randbytes(r.randint(12, 40))).decode()),
)
kv_secrets = st.builds(
    lambda key, sep, value: (f"{key}{sep}{value}", value),
    st.sampled_from(
        ["password", "passwd", "secret", "token", "api_key", "apiKey", "client_secret"]
    ),
    st.sampled_from(["=", ": ", "=", ":"]),
    seeded(
        lambda r: _pick(r, string.ascii_letters, 3) + _pick(r, string.digits, 2) + _pick(r, B62, 6)
    ),
)
# (text to embed, what must not survive)
needles = st.one_of(
    emails.map(lambda e: (e, e)),
    phones.map(lambda p: (p, p)),
    jwts.map(lambda j: (j, j)),
    api_keys.map(lambda k: (k, k)),
    credentials,
    kv_secrets,
)
#: ``needles`` without the bare random runs (``random_keys``): what must not
#: survive even in a request id.
id_needles = st.one_of(
    emails.map(lambda e: (e, e)),
    phones.map(lambda p: (p, p)),
    jwts.map(lambda j: (j, j)),
    prefixed_api_keys.map(lambda k: (k, k)),
    credentials,
    kv_secrets,
)
# Prose around a needle: letters in several scripts, spaces and punctuation,
# no digits (so the digits of a phone cannot be confused with the prose's).
prose = st.text(
    st.characters(categories=["Lu", "Ll", "Zs", "Po"], exclude_characters="@%+"), max_size=40
)


# --- Spellings and leaks ---------------------------------------------------------------

#: How a needle is written where text carries it: as is, percent-encoded
#: (``jane%40example.com``) or form-encoded (``jane+doe%40example.com``).
SPELLINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "percent": lambda s: quote(s, safe=""),
    "form": quote_plus,
}
_PHONE_SEPARATORS = r"(?:[\s.\-/()]|%20|%28|%29|\+)*"


def _ascii_remnant(text: str) -> str:
    """What is left of ``text`` once its non-ASCII characters are dropped."""
    return "".join(c for c in text if c.isascii())


def leaks(secret: str, output: str) -> list[str]:
    """The spellings of ``secret`` that ``output`` (one exported string) still holds.

    ``output`` is read as it is, percent-decoded and form-decoded, so any way
    a client or server encoded the secret counts. Also a leak: the secret
    with its non-ASCII characters dropped (what a header cleaner leaves) when
    that is still six characters or more, and for a phone number its digits
    in order with only separators between them (a phone reformatted).
    """
    readings = {output, unquote(output, errors="replace"), unquote_plus(output, errors="replace")}
    found = [secret for r in readings if secret in r]
    remnant = _ascii_remnant(secret)
    if remnant != secret and sum(c.isalnum() for c in remnant) >= 6:
        found += [remnant for r in readings if remnant in r]
    digits = [c for c in secret if c.isdigit()]
    if len(digits) >= 7 and not any(c.isalpha() for c in secret):
        # The last seven digits, in order, separated by nothing but separators.
        pattern = re.compile(_PHONE_SEPARATORS.join(digits[-7:]))
        found += [secret for r in readings if pattern.search(r)]
    return sorted(set(found))
