"""Which hosts are the Product API, low-cardinality routes, and safe URLs.

Everything here runs on every request, so each helper does its parsing once
(at construction) and caches per-request answers in bounded caches: memory
stays flat however many distinct hosts or ids flow through.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from otel_productapi._core.scrub import EMAIL, PHONE, TOKEN, scrub_text

__all__ = [
    "ID",
    "MAX_TEMPLATE_LENGTH",
    "MAX_URL_LENGTH",
    "REDACTED",
    "SENSITIVE_QUERY_PARTS",
    "UUID",
    "HostMatcher",
    "RouteTemplater",
    "needs_redaction",
    "redact_url",
    "split_url",
]

#: Longest ``url.template`` we emit; longer routes are cut.
MAX_TEMPLATE_LENGTH: Final = 256
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
_HOST_LABEL_RE: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]*[a-z0-9_])?")
_IPV6_RE: Final = re.compile(r"[0-9a-f:.]+")
_PLACEHOLDER_RE: Final = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")

# --- Hosts -------------------------------------------------------------------


def _normalize_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _validate_host_pattern(pattern: str) -> str:
    """Return the normalized pattern, or raise ``ValueError`` saying what is wrong."""
    host = _normalize_host(pattern)
    name = host[2:] if host.startswith("*.") else host
    if ":" in name and _IPV6_RE.fullmatch(name):
        return host
    labels = name.split(".")
    if not name or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(
            f"host pattern {pattern!r} must be a host name such as 'api.example.com' "
            "or '*.example.com' (no scheme, port, path, spaces or other wildcards)"
        )
    return host


class HostMatcher:
    """Decide whether a request's host is one we instrument.

    Patterns are exact host names (case-insensitive, trailing dot ignored) or
    ``*.suffix``, which matches every subdomain of ``suffix`` at any depth but
    *not* ``suffix`` itself (list both to match both). An empty pattern list
    matches every host, including a missing one.

    Raises:
        ValueError: A pattern is not a host name or ``*.`` wildcard.
    """

    __slots__ = ("_cached", "_exact", "_match_all", "_suffixes", "patterns")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        normalized = [_validate_host_pattern(p) for p in patterns]
        self.patterns: tuple[str, ...] = tuple(normalized)
        self._match_all = not normalized
        self._exact = frozenset(p for p in normalized if not p.startswith("*."))
        self._suffixes = tuple(p[1:] for p in normalized if p.startswith("*."))
        self._cached = functools.lru_cache(maxsize=_CACHE_SIZE)(self._match)

    def _match(self, host: str) -> bool:
        host = _normalize_host(host)
        return host in self._exact or host.endswith(self._suffixes)

    def __call__(self, host: str | None) -> bool:
        """True when ``host`` (a host name, without port) is instrumented."""
        if self._match_all:
            return True
        if not host:
            return False
        return self._cached(host)

    def __repr__(self) -> str:
        return f"HostMatcher({list(self.patterns)!r})"


# --- Routes ------------------------------------------------------------------

#: Placeholders the default templater puts in place of path segments, with
#: ``{email}``, ``{phone}`` and ``{token}`` from ``_scrub``.
ID: Final = "{id}"
UUID: Final = "{uuid}"

_SAFE_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9._~:\-]+")
_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_HEX_ID_RE: Final = re.compile(r"[0-9a-fA-F]{8,}")
_PHONE_SEGMENT_RE: Final = re.compile(r"\+[0-9 ().\-]{6,}")
_TOKEN_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_\-+/=.]{32,}")
_DIGIT_RUN_RE: Final = re.compile(r"[0-9]{3}")
_MAX_LITERAL_SEGMENT: Final = 64
# Paths longer than this are cut before templating so one huge path cannot
# pin megabytes in the cache; the output is far shorter anyway.
_MAX_PATH_INPUT: Final = 4096
_KEPT_CACHE_SIZE: Final = 4096
#: Raw segment -> the literal it is kept as (see ``_template_segment``).
_kept: dict[str, str] = {}


def _is_phone(segment: str) -> bool:
    return bool(_PHONE_SEGMENT_RE.fullmatch(segment)) and (
        7 <= sum(c.isdigit() for c in segment) <= 15
    )


def _is_hex_id(segment: str) -> bool:
    return bool(_HEX_ID_RE.fullmatch(segment)) and any(c.isdigit() for c in segment)


# The default rule for one (percent-decoded) path segment: the first check
# that holds gives the placeholder; a segment no check flags is kept.
_SEGMENT_RULES: Final[tuple[tuple[Callable[[str], object], str], ...]] = (
    (lambda s: "@" in s, EMAIL),
    (_is_phone, PHONE),
    (str.isdigit, ID),
    (_UUID_RE.fullmatch, UUID),
    (lambda s: s.startswith("eyJ") or _TOKEN_SEGMENT_RE.fullmatch(s), TOKEN),
    (_is_hex_id, ID),
    (_DIGIT_RUN_RE.search, ID),
    (lambda s: len(s) > _MAX_LITERAL_SEGMENT, TOKEN),
    (lambda s: not _SAFE_SEGMENT_RE.fullmatch(s), ID),
)


def _template_segment(raw: str) -> str:
    """Template one segment by ``_SEGMENT_RULES``, after percent-decoding.

    ===========================================================  ===========
    segment                                                      becomes
    ===========================================================  ===========
    contains ``@``                                               ``{email}``
    ``+`` and 7-15 digits (spaces, dots, dashes, parentheses)    ``{phone}``
    only digits                                                  ``{id}``
    UUID                                                         ``{uuid}``
    ``eyJ...`` or 32+ token characters                           ``{token}``
    8+ hex characters with a digit                               ``{id}``
    3+ consecutive digits (``ord_12345``, ``2024-01-15``)        ``{id}``
    longer than 64 characters                                    ``{token}``
    anything outside ``A-Z a-z 0-9 . _ ~ : -``                   ``{id}``
    anything ``scrub_text`` would change                         ``{token}``
    anything else                                                kept
    ===========================================================  ===========

    Kept segments are cached (``_KEPT_CACHE_SIZE`` of them, then the cache
    starts over): literals such as ``v1`` and ``projects`` repeat on every
    request, while ids are answered by the first check.
    """
    if raw.isdigit():  # the most frequent case (ids); no rule before it can hold
        return ID
    known = _kept.get(raw)
    if known is not None:
        return known
    segment = unquote(raw, errors="replace") if "%" in raw else raw
    result = _apply_segment_rules(segment)
    if result is segment:
        # Only kept literals are cached ("v1", "projects"): they repeat, ids do
        # not. Cleared when full, so memory stays bounded.
        if len(_kept) >= _KEPT_CACHE_SIZE:
            _kept.clear()
        _kept[raw] = result
    return result


def _apply_segment_rules(segment: str) -> str:
    """The placeholder for a decoded segment, or ``segment`` itself if kept."""
    # Most segments are short words ("v1" is not: it has a digit); they need no
    # rule, and scrub_text cannot change them either.
    if len(segment) < 32 and segment.isascii() and segment.isalpha() and segment[:3] != "eyJ":
        return segment
    for check, placeholder in _SEGMENT_RULES:
        if check(segment):
            return placeholder
    # A kept segment must be something scrub_text would keep too (a secret run
    # between "~" or ":" escapes the token rule above).
    if scrub_text(segment) != segment:
        return TOKEN
    return segment


def _path_only(path: str) -> str:
    """Drop scheme/host if a whole URL was passed, and the query and fragment."""
    if "://" in path[:16]:
        # A path never contains "://" this early; treat it as a URL.
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    for mark in ("?", "#"):
        if mark in path:
            path = path.split(mark, 1)[0]
    return path[:_MAX_PATH_INPUT]


def _parse_template(template: str) -> tuple[str | None, ...]:
    """Segments of a configured template; ``None`` stands for a ``{name}`` segment."""
    if not template.startswith("/") or "?" in template or "#" in template:
        raise ValueError(f"route template {template!r} must be a path starting with '/'")
    segments: list[str | None] = []
    for segment in template[1:].split("/"):
        if _PLACEHOLDER_RE.fullmatch(segment):
            segments.append(None)
        elif "{" in segment or "}" in segment:
            raise ValueError(
                f"route template {template!r}: segment {segment!r} must be a literal "
                "or a whole '{name}' placeholder"
            )
        else:
            segments.append(segment)
    return tuple(segments)


class RouteTemplater:
    """Turn request paths into low-cardinality ``url.template`` values.

    Configured templates such as ``/v1/projects/{project}/users/{user_id}``
    match paths segment by segment: a literal segment must be equal
    (case-sensitive), a ``{name}`` segment matches any one segment. The most
    specific template (most literal segments) wins; ties go to the first
    listed. A path no template matches is templated segment by segment by
    ``_template_segment``, so ids, e-mails, phones and tokens never become
    part of a route. The query and fragment are always dropped, the result is
    at most ``MAX_TEMPLATE_LENGTH`` characters, and the last 1024 distinct
    paths are cached.

    Raises:
        ValueError: A template does not start with ``/`` or has a brace
            that is not a whole ``{name}`` segment.
    """

    __slots__ = ("_by_head", "_cached", "_templates", "digits_are_ids", "generation", "templates")

    def __init__(self, templates: Iterable[str] = ()) -> None:
        parsed = [(t, _parse_template(t)) for t in templates]
        self.templates: tuple[str, ...] = tuple(t for t, _ in parsed)
        # sorted() is stable, so equally specific templates keep their order.
        self._templates = tuple(
            sorted(parsed, key=lambda item: -sum(s is not None for s in item[1]))
        )
        self._cached = functools.lru_cache(maxsize=_CACHE_SIZE)(self._template)
        # When no configured template has an all-digit literal segment, an
        # all-digit last segment gives the same route whatever its value, so
        # ``path_template`` caches the route by what comes before it (and so
        # may the hooks).
        self.digits_are_ids: bool = not any(
            p is not None and p.isdigit() for _, pattern in parsed for p in pattern
        )
        self._by_head: dict[str, str] = {}
        #: Bumped when a learnt placeholder changes answers (callers drop their caches).
        self.generation = 0

    def _template(self, path: str) -> str:
        segments = path[1:].split("/") if path.startswith("/") else path.split("/")
        for text, pattern in self._templates:
            if len(pattern) == len(segments) and all(
                p is None or p == s for p, s in zip(pattern, segments, strict=True)
            ):
                return text[:MAX_TEMPLATE_LENGTH]
        # _template_segment's two fast answers (an id, a cached literal) inlined:
        # this runs for every new path.
        kept = _kept.get
        result = "/" + "/".join(
            [
                (ID if s.isdigit() else (kept(s) or _template_segment(s))) if s else s
                for s in segments
            ]
        )
        return result[:MAX_TEMPLATE_LENGTH]

    def template(self, path: str) -> str:
        """The route of ``path`` (a path, or a whole URL whose path is used)."""
        if "?" in path or "#" in path or len(path) > _MAX_PATH_INPUT or "://" in path[:16]:
            path = _path_only(path)
        return self._cached(path)

    def path_template(self, path: str) -> str:
        """``template(path)`` for a path without query or fragment, faster for ids.

        A path ending in an all-digit segment (``/v1/items/12345``) is answered
        from a cache keyed by the rest of the path (``_CACHE_SIZE`` entries,
        then it starts over), so distinct ids cost one look-up.
        """
        head, _, last = path.rpartition("/")
        if not (last.isdigit() and self.digits_are_ids) or "://" in path[:16]:
            return self.template(path)
        by_head = self._by_head
        known = by_head.get(head)
        if known is None:
            if len(path) > _MAX_PATH_INPUT:
                return self.template(path)
            known = self.template(path)
            if len(by_head) >= _CACHE_SIZE:
                by_head.clear()
            by_head[head] = known
        return known

    def __repr__(self) -> str:
        return f"RouteTemplater({list(self.templates)!r})"


# --- URLs --------------------------------------------------------------------

# Characters left unescaped when a scrubbed part is re-quoted: the URL
# delimiters that were literal before, plus the braces of our placeholders.
_PATH_SAFE: Final = "/{}:@!$&'()*+,;=-._~"
_QUERY_SAFE: Final = "{}:@!$'()*+,;/?-._~"


_SENSITIVE_RE: Final = re.compile("|".join(SENSITIVE_QUERY_PARTS), re.IGNORECASE)


def _scrub_component(raw: str, safe: str) -> str:
    """Scrub the decoded text; keep the original spelling when nothing changed."""
    decoded = unquote(raw, errors="replace") if "%" in raw else raw
    scrubbed = scrub_text(decoded)
    if scrubbed == decoded:
        return raw
    return quote(scrubbed, safe=safe)


def _redact_query(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        # Decoded with unquote, not unquote_plus: "+4915..." in a query is far
        # more often a phone number than a space before digits.
        if sep and _SENSITIVE_RE.search(unquote(name, errors="replace") if "%" in name else name):
            value = REDACTED
        elif sep:
            value = _scrub_component(value, _QUERY_SAFE)
        parts.append(_scrub_component(name, _QUERY_SAFE) + sep + value)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """A copy of ``url`` that is safe to record.

    Userinfo becomes ``REDACTED:REDACTED@`` (as OpenTelemetry's semantic
    conventions ask), values of query parameters named like a secret (see
    ``SENSITIVE_QUERY_PARTS``) become ``REDACTED``, and ``scrub_text`` runs
    on every path segment and remaining query name and value, percent-decoded,
    so e-mails, phones and tokens never survive. The fragment is dropped (it
    is never sent, and OAuth puts tokens there). The result is at most
    ``MAX_URL_LENGTH`` characters; anything ``urlsplit`` rejects gives
    ``REDACTED``. Never raises.
    """
    if not isinstance(url, str):
        return REDACTED
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "REDACTED:REDACTED@" + netloc.rpartition("@")[2]
    path = "/".join(_scrub_component(s, _PATH_SAFE) for s in parts.path.split("/"))
    query = _redact_query(parts.query) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))[:MAX_URL_LENGTH]


_AUTHORITY_PATH: Final = re.compile(r"([^/?#]*)([^?#]*)")


def split_url(url: str) -> tuple[str, str] | None:
    """``(host, path)`` of a URL: lower-cased host, path without query or fragment.

    ``None`` when ``url`` has no ``://`` or no host. Hand-written because
    ``urlsplit`` costs several microseconds on URLs it has not cached.
    """
    start = url.find("://")
    if start < 0:
        return None
    found = _AUTHORITY_PATH.match(url, start + 3)
    if found is None:  # pragma: no cover - the pattern matches any string
        return None
    hostport, path = found.groups()
    if "@" in hostport:
        hostport = hostport.rpartition("@")[2]
    host = hostport[1 : hostport.find("]")] if hostport[:1] == "[" else hostport.partition(":")[0]
    if not host:
        return None
    return host.lower(), path or "/"


_PLAIN_URL: Final = re.compile(r"[A-Za-z0-9/._~:\-]*")
_LONG_RUN: Final = re.compile(r"[A-Za-z0-9_.\-]{12}")


def needs_redaction(url: str) -> bool:
    """False only when ``redact_url(url) == url`` for certain (cheap pre-check)."""
    start = url.find("://")
    if start < 0 or len(url) > MAX_URL_LENGTH:
        return True
    if _PLAIN_URL.fullmatch(url, start + 3) is None:
        return True
    found = split_url(url)
    path = found[1] if found else url
    return "eyJ" in path or _LONG_RUN.search(path) is not None
