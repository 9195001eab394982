"""Which hosts are the Product API, and URLs that are safe to record.

One URL parser for the whole package: ``split_url`` gives a request's host
and path (the hooks and the retry helper call it on every new URL, so it is
a single pattern match, not ``urlsplit``), ``redact_url`` and
``needs_redaction`` work on the same split. Routes are in ``routes``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, unquote, unquote_plus

from otel_productapi._core.cache import BoundedCache
from otel_productapi._core.scrub import CUT_MARGIN, scrub_text, unplaced_length

__all__ = [
    "MAX_URL_LENGTH",
    "REDACTED",
    "SENSITIVE_QUERY_PARTS",
    "HostMatcher",
    "needs_redaction",
    "redact_url",
    "shorten",
    "split_url",
]

#: Longest redacted URL we emit (the common limit of URL-handling systems).
MAX_URL_LENGTH: Final = 2048
#: Replaces credentials and sensitive query values; also the whole result for
#: a URL that cannot be parsed.
REDACTED: Final = "REDACTED"
#: A query parameter whose lower-cased name *contains* any of these has its
#: value replaced. Substring matching over-redacts (``author``, ``zipcode``)
#: on purpose: a lost value is cheaper than a leaked secret.
SENSITIVE_QUERY_PARTS: Final = (
    "token",
    "key",
    "secret",
    "signature",
    "sig",
    "password",
    "passwd",
    "pwd",
    "auth",
    "credential",
    "session",
    "code",
    "jwt",
)

_CACHE_SIZE: Final = 1024
_SHOWN: Final = 80


def shorten(value: str, limit: int = _SHOWN) -> str:
    """``repr(value)``, cut to about ``limit`` characters, for error messages.

    A configuration error must name the bad value without echoing a megabyte
    of it back (into logs, terminals, CI output).
    """
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


# --- Splitting ---------------------------------------------------------------

# Authority up to the first "/", "?" or "#"; path up to the first "?" or "#".
_AUTHORITY_PATH_MATCH: Final = re.compile(r"([^/?#]*)([^?#]*)").match
_AUTHORITY_MATCH: Final = re.compile(r"[^/?#]*").match
_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def _scheme_end(url: str) -> int:
    """Index of the ``://`` after a valid scheme, or -1 (``urlsplit``'s rule)."""
    end = url.find("://")
    if end <= 0:
        return -1
    scheme = url[:end]
    if scheme.isalpha() and scheme.isascii():  # http, https: the usual case
        return end
    return end if _SCHEME_RE.fullmatch(scheme) else -1


def _host_of(authority: str) -> str | None:
    """The host of an authority (userinfo and port removed), or None if malformed."""
    if "@" in authority:
        authority = authority.rpartition("@")[2]
    if authority[:1] == "[":
        end = authority.find("]")
        return authority[1:end] if end > 0 else None
    if "]" in authority:
        return None
    return authority.partition(":")[0]


def split_url(url: str) -> tuple[str, str] | None:
    """``(host, path)`` of an absolute URL, as ``urlsplit`` reads them.

    The host is lower-cased, without userinfo, port or IPv6 brackets; the
    path has no query or fragment and is ``/`` when empty. ``None`` when the
    URL has no ``scheme://`` or no host.
    """
    start = _scheme_end(url)
    if start < 0:
        return None
    hostport, path = _AUTHORITY_PATH_MATCH(url, start + 3).groups()  # type: ignore[union-attr]
    host = _host_of(hostport)
    if not host:
        return None
    return host.lower(), path or "/"


# --- Hosts -------------------------------------------------------------------

_HOST_LABEL_RE: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_MAX_HOST_NAME: Final = 253


def _normalize_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _validate_host_pattern(pattern: str) -> str:
    """Return the normalized pattern, or raise ``ValueError`` saying what is wrong.

    A pattern is a host name (labels of 1 to 63 letters, digits, ``-`` or
    ``_``, not starting or ending with ``-``; at most 253 characters; the
    last label not all digits), an IPv4 or IPv6 address other than the
    unspecified ``0.0.0.0`` and ``::`` (brackets allowed),
    or ``*.`` followed by a host name. Non-ASCII names are converted to
    their IDNA (``xn--``) form, which is what HTTP clients send.
    """
    host = _normalize_host(pattern) if isinstance(pattern, str) else ""
    if host and _is_ip(host) and not ipaddress.ip_address(host).is_unspecified:
        return host
    # Brackets hold an IPv6 address, and this is none ('["a.com"]' is a JSON list).
    bracketed = isinstance(pattern, str) and "[" in pattern
    if bracketed:
        host = ""
    name = host[2:] if host.startswith("*.") else host
    if name and not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            name = ""
        host = ("*." if host.startswith("*.") else "") + name
    labels = name.split(".")
    problem = None
    if not name and not bracketed:
        problem = "is empty"
    elif len(name) > _MAX_HOST_NAME:
        problem = f"is longer than {_MAX_HOST_NAME} characters"
    elif bracketed or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        problem = (
            "must be a host name such as 'api.example.com' or '*.example.com', or an IP "
            "address (labels of 1-63 letters, digits, '-' or '_'; no scheme, port, path, "
            "spaces or other wildcards)"
        )
    elif labels[-1].isdigit():
        problem = "is neither a host name nor an IP address (its last label is a number)"
    if problem:
        shown = shorten(pattern) if isinstance(pattern, str) else type(pattern).__name__
        raise ValueError(f"host pattern {shown} {problem}")
    return host


class HostMatcher:
    """Decide whether a request's host is one we instrument.

    Patterns are exact host names (case-insensitive, trailing dot ignored),
    IP addresses, or ``*.suffix``, which matches every subdomain of
    ``suffix`` at any depth but *not* ``suffix`` itself (list both to match
    both). An empty pattern list matches every host, including a missing one.
    Answers are cached (``_CACHE_SIZE`` hosts, then the cache starts over).

    Raises:
        ValueError: A pattern is not a host name, IP address or ``*.``
            wildcard; the message shows at most 80 characters of it.
    """

    __slots__ = ("_cache", "_exact", "_match_all", "_suffixes", "patterns")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        normalized = [_validate_host_pattern(p) for p in patterns]
        self.patterns: tuple[str, ...] = tuple(normalized)
        self._match_all = not normalized
        self._exact = frozenset(p for p in normalized if not p.startswith("*."))
        self._suffixes = tuple(p[1:] for p in normalized if p.startswith("*."))
        self._cache: BoundedCache[str, bool] = BoundedCache(_CACHE_SIZE)

    def _match(self, host: str) -> bool:
        host = _normalize_host(host)
        return host in self._exact or host.endswith(self._suffixes)

    def __call__(self, host: str | None) -> bool:
        """True when ``host`` (a host name, without port) is instrumented."""
        if self._match_all:
            return True
        if not host:
            return False
        known = self._cache.get(host)
        if known is None:
            known = self._cache.put(host, self._match(host))
        return known

    def __repr__(self) -> str:
        return f"HostMatcher({list(self.patterns)!r})"


# --- Redaction ---------------------------------------------------------------

# Characters left unescaped when a scrubbed part is re-quoted: the URL
# delimiters that were literal before, plus the braces of our placeholders.
_PATH_SAFE: Final = "/{}:@!$&'()*+,;=-._~"
# In a query "+" means a space, so a literal "+" is escaped.
_QUERY_SAFE: Final = "{}:@!$'()*,;/?-._~"
_SENSITIVE_RE: Final = re.compile("|".join(SENSITIVE_QUERY_PARTS), re.IGNORECASE)
_SCRUB_ROUNDS: Final = 3


def _scrub_path_segment(raw: str) -> str:
    """Scrub the percent-decoded segment; keep the original spelling when nothing changed."""
    decoded = unquote(raw, errors="replace") if "%" in raw else raw
    scrubbed = scrub_text(decoded)
    return raw if scrubbed == decoded else quote(scrubbed, safe=_PATH_SAFE)


def _scrub_query_part(raw: str) -> str:
    """Scrub a query name or value read both ways a client may have meant it.

    Browsers and ``requests``/``httpx`` form-encode (a space is ``+``), but a
    hand-built URL can hold a literal ``+`` (``+4915112345678``,
    ``john+doe%40example.com``). Both readings are scrubbed; when both
    change, the one that leaves less text besides placeholders wins (it
    recognised more; on a tie the form reading, as clients send it), and
    the result is checked again until neither reading changes. Should a
    pathological value keep changing, it is replaced whole.
    """
    value = raw
    for _ in range(_SCRUB_ROUNDS):
        literal = unquote(value, errors="replace") if "%" in value else value
        scrubbed = scrub_text(literal)
        spaced = unquote_plus(value, errors="replace") if "+" in value else literal
        spaced_scrubbed = scrub_text(spaced) if "+" in value else scrubbed
        if spaced_scrubbed != spaced and (
            scrubbed == literal or unplaced_length(spaced_scrubbed) <= unplaced_length(scrubbed)
        ):
            value = quote(spaced_scrubbed, safe=_QUERY_SAFE + " ").replace(" ", "+")
        elif scrubbed != literal:
            value = quote(scrubbed, safe=_QUERY_SAFE)
        else:
            return value
    return REDACTED


def _is_sensitive_name(name: str) -> bool:
    if "%" in name or "+" in name:
        name = unquote_plus(name, errors="replace")
    return _SENSITIVE_RE.search(name) is not None


def _redact_query(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        if sep and _is_sensitive_name(name):
            value = REDACTED
        elif value:
            value = _scrub_query_part(value)
        parts.append(_scrub_query_part(name) + sep + value)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """A copy of ``url`` that is safe to record.

    Userinfo becomes ``REDACTED:REDACTED@`` (as OpenTelemetry's semantic
    conventions ask), values of query parameters named like a secret (see
    ``SENSITIVE_QUERY_PARTS``) become ``REDACTED``, and ``scrub_text`` runs
    on every path segment (percent-decoded) and every remaining query name
    and value (decoded both as ``%XX`` and with ``+`` as a space), so
    e-mails, phones and secrets never survive. The fragment is dropped (it
    is never sent, and OAuth puts tokens there). The scheme, host and port
    and every part that needed no change keep their spelling. The result is
    at most ``MAX_URL_LENGTH`` characters: longer input is cut to that plus
    ``CUT_MARGIN`` before anything is scrubbed, so the cost is bounded. A
    URL with a malformed or over-long authority gives ``REDACTED``. Never
    raises.
    """
    if not isinstance(url, str):
        return REDACTED
    start = _scheme_end(url)
    if start >= 0:
        authority = _AUTHORITY_MATCH(url, start + 3).group()  # type: ignore[union-attr]
        if len(authority) > MAX_URL_LENGTH or _host_of(authority) is None:
            return REDACTED
        host = authority.rpartition("@")[2]
        if host[:1] == "[" and not _is_ip(host[1 : host.find("]")]):
            return REDACTED
        rest_start = start + 3 + len(authority)
        head = url[: start + 3] + ("REDACTED:REDACTED@" + host if "@" in authority else host)
    else:
        rest_start = 0
        head = ""
    rest = url[rest_start : rest_start + MAX_URL_LENGTH + CUT_MARGIN]
    rest = rest.partition("#")[0]
    path, mark, query = rest.partition("?")
    if path:
        path = "/".join(_scrub_path_segment(s) for s in path.split("/"))
    if query:
        query = _redact_query(query)
    return (head + path + mark + query)[:MAX_URL_LENGTH]


# What could make ``redact_url`` change a URL, beyond characters outside
# _PLAIN_URL (userinfo "@", a query or fragment, percent-escapes, "+", spaces,
# parentheses...): in the path, a JWT ("eyJ"), a ":" (a "key:value" secret),
# ten or more digits, dots and dashes in a row (the shortest phone number
# written with plain characters, 030-123456), or 15 or more key characters
# in a row (the shortest API key, xoxb- and ten). test_core_urls checks the
# pre-check against redact_url over generated near-misses.
_PLAIN_URL: Final = re.compile(r"[A-Za-z0-9/._~:\-]*")
# Runs are tried from their first character only, so a long word costs one
# attempt, not one per character.
_SUSPECT_PATH: Final = re.compile(
    r"eyJ|:|(?<![0-9.\-])[0-9.\-]{10}|(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{15}"
)


def needs_redaction(url: str) -> bool:
    """False only when ``redact_url(url) == url`` for certain (cheap pre-check)."""
    start = _scheme_end(url)
    if start < 0 or len(url) > MAX_URL_LENGTH:
        return True
    if _PLAIN_URL.fullmatch(url, start + 3) is None:
        return True
    path_start = url.find("/", start + 3)
    return path_start >= 0 and _SUSPECT_PATH.search(url, path_start) is not None
