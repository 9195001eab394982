"""Low-cardinality routes (``url.template``) from request paths.

A route must name the endpoint, never the resource: ``url.template`` is a
span-name part and a metric label, so one value per id would blow every
series cap (issue 8 saw 133k templates over 200k requests). Three layers
decide, first match wins:

1. configured templates (``PRODUCTAPI_OTEL_ROUTE_TEMPLATES``);
2. the shape of each segment (``segment_shape``): numbers, UUIDs, hex,
   random-looking tokens, prefixed ids, IP addresses, slugs ending in a
   random part, e-mails, phones and secrets become placeholders; words,
   versions and verbs stay;
3. learning, for ids that look like words (user names, project slugs):
   when one position under the same templated prefix has seen more than
   ``learn_threshold`` distinct literal values, it becomes ``{id}`` from
   then on.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import unquote

from otel_productapi._core.cache import BoundedCache
from otel_productapi._core.scrub import (
    EMAIL,
    PHONE,
    SECRET,
    TOKEN,
    has_credential,
    looks_random,
    scrub_text,
)
from otel_productapi._core.urls import shorten, split_url

__all__ = [
    "COLLECTION_FACTOR",
    "DEFAULT_LEARN_THRESHOLD",
    "DEFAULT_MAX_PREFIXES",
    "ID",
    "MAX_TEMPLATE_LENGTH",
    "UUID",
    "RouteTemplater",
    "segment_shape",
]

#: Longest ``url.template`` we emit; longer routes are cut.
MAX_TEMPLATE_LENGTH: Final = 256
#: Placeholders the templater puts in place of path segments, with
#: ``{email}``, ``{phone}`` and ``{token}`` from ``scrub``.
ID: Final = "{id}"
UUID: Final = "{uuid}"

#: Distinct literal values one position may take before it becomes ``{id}``.
DEFAULT_LEARN_THRESHOLD: Final = 20
#: Positions right under the root or a version (``/{x}``, ``/v1/{x}``,
#: ``/api/v2/{x}``) hold an API's collections: they get this many times the
#: threshold before being learned, so a large API is not folded into
#: ``/v1/{id}`` (Stripe has about 70 collections under ``/v1``).
COLLECTION_FACTOR: Final = 4
#: Templated prefixes whose positions are tracked; when full, literals under
#: any new prefix become ``{id}`` (see ``RouteTemplater``).
DEFAULT_MAX_PREFIXES: Final = 1024

# Paths longer than this are cut before templating, so one huge path cannot
# pin megabytes in a cache; the output is far shorter anyway.
_MAX_PATH_INPUT: Final = 4096
_MAX_LITERAL_SEGMENT: Final = 64
_PATH_CACHE_SIZE: Final = 1024
_SHAPE_CACHE_SIZE: Final = 4096
_PLACEHOLDER_RE: Final = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")

# --- The shape of one segment -----------------------------------------------

_SAFE_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9._~:\-]+")
_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_TOKEN_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_\-+/=.]{32,}")
_HEX_ID_RE: Final = re.compile(r"[0-9a-fA-F]{8,}")
_DIGITS3_RE: Final = re.compile(r"[0-9]{3}")
_IPV4_RE: Final = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_IPV6_CHARS_RE: Final = re.compile(r"[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?")
_PARTS_RE: Final = re.compile(r"[A-Za-z0-9]+")
# v1, V2, v2beta1, v1p1beta1, v3alpha: each letter run but the last ends in
# digits, so a segment splits one way only (no catastrophic backtracking).
_VERSION_RE: Final = re.compile(
    r"[vV][0-9]{1,4}(?:[a-z]+[0-9]+)*[a-z]*|[0-9]{1,3}(?:\.[0-9]{1,3})+"
)
_VERB_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_STRUCTURAL_WORDS: Final = frozenset({"api", "API", "rest"})

#: Raw segment -> its template, for literals only (ids do not repeat).
_literal_shapes: BoundedCache[str, str] = BoundedCache(_SHAPE_CACHE_SIZE)


def _is_ip(segment: str) -> bool:
    if _IPV4_RE.fullmatch(segment) or (
        segment.count(":") >= 2 and _IPV6_CHARS_RE.fullmatch(segment)
    ):
        try:
            ipaddress.ip_address(segment)
        except ValueError:
            return False
        return True
    return False


def _scrubbed_placeholder(segment: str) -> str | None:
    """The placeholder for a segment ``scrub_text`` would change, else None.

    E-mails and phones keep their placeholder. A segment of under 32
    characters caught only for looking random (a KSUID, a ULID: in prose the
    scrubber cannot tell an id from a key) is an ``{id}``; a key prefix, a
    JWT, a credential or a ``key=value`` secret is a ``{token}``.
    """
    scrubbed = scrub_text(segment)
    if scrubbed == segment:
        return None
    if EMAIL in scrubbed:
        return EMAIL
    if PHONE in scrubbed:
        return PHONE
    if (
        len(segment) < 32
        and SECRET not in scrubbed
        and _SAFE_SEGMENT_RE.fullmatch(segment)
        and not has_credential(segment)
    ):
        return ID
    return TOKEN


def _word_shape(segment: str) -> str:
    """Template a decoded ASCII segment of ``A-Z a-z 0-9 . _ ~ -`` characters."""
    if _VERSION_RE.fullmatch(segment):
        return segment
    if _DIGITS3_RE.search(segment):
        return ID  # ord_12345, 2024-01-15, invoice-2024
    if _HEX_ID_RE.fullmatch(segment) and not segment.isalpha():
        return ID  # deadbeef12, MongoDB ObjectIds
    parts = _PARTS_RE.findall(segment)
    for part in parts:
        if looks_random(part) or (len(part) >= 16 and not part.isalpha()):
            return ID  # cus_NffrFeUfNV2Hib, 01ARZ3NDEK..., summer-sale-x7k2p9
    joined = "".join(parts)
    if len(parts) > 1 and len(joined) >= 12 and looks_random(joined):
        return ID  # nanoids and base64url ids, whose "-" and "_" are random too
    return segment


# Checks on the whole decoded segment, before anything looks inside it.
_WHOLE_SEGMENT_RULES: Final[tuple[tuple[Callable[[str], object], str], ...]] = (
    (lambda s: s.isdigit() and s.isascii(), ID),
    (lambda s: "@" in s, EMAIL),
    (_UUID_RE.fullmatch, UUID),
    (_is_ip, ID),
)


def _shape(segment: str) -> str:
    """``segment_shape`` of a percent-decoded, non-empty segment."""
    for check, placeholder in _WHOLE_SEGMENT_RULES:
        if check(segment):
            return placeholder
    found = _scrubbed_placeholder(segment)
    if found is None and (
        len(segment) > _MAX_LITERAL_SEGMENT or _TOKEN_SEGMENT_RE.fullmatch(segment)
    ):
        found = TOKEN
    elif found is None and not _SAFE_SEGMENT_RE.fullmatch(segment):
        found = ID  # non-ASCII, spaces, braces, base64 padding...
    return found if found is not None else _verb_or_word_shape(segment)


def _verb_or_word_shape(segment: str) -> str:
    base, colon, verb = segment.rpartition(":")
    if colon and base and _VERB_RE.fullmatch(verb) and not looks_random(verb):
        # A custom method (AIP-136): users:search, {id}:cancel, events:batchCreate.
        shaped = _shape(base)
        return segment if shaped == base else shaped + colon + verb
    return _word_shape(segment)


def segment_shape(raw: str) -> str:
    """The template of one raw path segment by its shape alone.

    The segment is percent-decoded, then the first rule that holds decides:

    1. digits: ``{id}``; contains ``@``: ``{email}``; a UUID (with or
       without dashes): ``{uuid}``; an IPv4 or IPv6 address: ``{id}``;
    2. anything ``scrub_text`` would change: ``{email}`` or ``{phone}`` for
       those, ``{id}`` for a short random run it took for a key (a KSUID, a
       ULID), else ``{token}`` (API keys, JWTs, ``key=value`` secrets);
    3. 32+ key characters, or longer than 64 characters: ``{token}``;
    4. anything outside ``A-Z a-z 0-9 . _ ~ : -`` (non-ASCII, spaces,
       braces): ``{id}``;
    5. ``name:verb`` (``users:search``, ``ord_123:cancel``): the shape of
       ``name``, then ``:verb``;
    6. a version (``v1``, ``v2beta1``, ``1.0``): kept;
    7. three digits in a row (``ord_12345``, ``2024-01-15``), 8+ hex
       characters with a digit (ObjectIds), a part between ``.``, ``_``,
       ``~`` or ``-`` that ``looks_random`` or has 16+ letters and digits
       (``cus_NffrFeUfNV2Hib``, ``my-post-3f9a8c``), or parts that look
       random once joined (nanoids, base64url): ``{id}``;
    8. anything else (``users``, ``batchCreate``, ``oauth2``, ``k8s``): kept.

    Kept segments are cached (``_SHAPE_CACHE_SIZE`` of them, then the cache
    starts over): literals repeat on every request, ids do not.
    """
    if raw in _literal_shapes:
        return raw  # the caller's own object: "is raw" tells it a literal
    segment = unquote(raw, errors="replace") if "%" in raw else raw
    shaped = _shape(segment) if segment else segment
    if shaped == segment and segment is raw:
        _literal_shapes.put(raw, raw)
        return raw
    if shaped == segment:
        return ID  # kept once decoded, but the raw spelling differs: "%41bc"
    return shaped


def _learned_form(literal: str) -> str:
    """What a literal becomes once its position is learned: ``{id}`` (keeping a verb)."""
    base, colon, verb = literal.rpartition(":")
    return ID + colon + verb if colon and base else ID


def _is_structural(template_segment: str) -> bool:
    return template_segment in _STRUCTURAL_WORDS or bool(_VERSION_RE.fullmatch(template_segment))


# --- Configured templates ------------------------------------------------------


def _parse_template(template: str) -> tuple[str | None, ...]:
    """Segments of a configured template; ``None`` stands for a ``{name}`` segment."""
    if not isinstance(template, str) or not template.startswith("/"):
        raise ValueError(f"route template {_shown(template)} must be a path starting with '/'")
    if "?" in template or "#" in template:
        raise ValueError(f"route template {_shown(template)} must not have a query or fragment")
    segments: list[str | None] = []
    for segment in template[1:].split("/"):
        if _PLACEHOLDER_RE.fullmatch(segment):
            segments.append(None)
        elif "{" in segment or "}" in segment:
            raise ValueError(
                f"route template {_shown(template)}: segment {_shown(segment)} must be a "
                "literal or a whole '{name}' placeholder"
            )
        else:
            segments.append(segment)
    return tuple(segments)


def _shown(value: object) -> str:
    return shorten(value) if isinstance(value, str) else type(value).__name__


# --- The templater -------------------------------------------------------------


class _Position:
    """What the templater knows of one path position (the segment after a prefix)."""

    __slots__ = ("holds_ids", "learned", "values")

    def __init__(self) -> None:
        #: Hashes of the distinct literals seen here, until learned.
        self.values: set[int] = set()
        #: The position has become ``{id}``.
        self.learned = False
        #: A segment here was an id by shape: looser id shapes apply (``_id_like``).
        self.holds_ids = False


def _id_like(literal: str) -> bool:
    """Looser than ``segment_shape``, for a position known to hold ids.

    A part with letters and digits of five or more characters (``ieqh52``,
    ``item7x``), or letters only, eight or more, with two capitals and a
    lowercase letter (a random base62 id without digits): at a position
    that already took ``/users/12345``, ``/users/ab12cd`` is an id too,
    while ``/users/me`` and ``/users/search`` stay literal.
    """
    parts = _PARTS_RE.findall(literal.rpartition(":")[0] or literal)
    if len(parts) > 1:
        parts.append("".join(parts))
    for part in parts:
        if part.isalpha():
            upper = sum(c.isupper() for c in part)
            if len(part) >= 8 and upper >= 2 and len(part) > upper:
                return True
        elif not part.isdigit() and len(part) >= 5:
            return True
    return False


class RouteTemplater:
    """Turn request paths into low-cardinality ``url.template`` values.

    Configured templates such as ``/v1/projects/{project}/users/{user_id}``
    match paths segment by segment: a literal segment must be equal
    (case-sensitive), a ``{name}`` segment matches any one segment. The most
    specific template (most literal segments) wins; ties go to the first
    listed. Any other path is templated segment by segment: by
    ``segment_shape``, then by learning.

    Learning: for each templated prefix (``/v1/users`` for the third
    segment of ``/v1/users/alice/repos``) the templater keeps the distinct
    literal values seen at the next position, as a set of hashes capped at
    ``learn_threshold`` (``COLLECTION_FACTOR`` times that right under the
    root or a version, where collections live). One more distinct value
    and the position is learned: its values become ``{id}`` from then on,
    the set is dropped, and the prefixes under the old literals are
    forgotten. A position that has taken an id by shape (``/users/12345``)
    also takes looser id shapes (``_id_like``: ``/users/ab12cd``) without
    waiting for the threshold. At most ``max_prefixes`` prefixes are
    tracked; when the table is full, a literal under a prefix not in it
    becomes ``{id}`` at once: the templater fails towards *low* cardinality
    (a new fixed word there is folded) rather than forgetting what it
    learned. Memory is bounded by ``max_prefixes`` sets of at most
    ``COLLECTION_FACTOR * learn_threshold`` hashes: 2.5 MiB with the
    defaults, measured with 1024 prefixes each one value short of learning.

    ``generation`` increases whenever learning may change the answer for
    some paths already answered (a position learned, or a position with
    literals taking its first id), so a caller that caches answers per URL
    knows to drop them.

    Thread-safe: answers for known paths, and for known literals under known
    prefixes, take no lock; a lock is taken only to record a new value.
    The query and fragment are always dropped, the result is at most
    ``MAX_TEMPLATE_LENGTH`` characters, and the last ``_PATH_CACHE_SIZE``
    distinct paths are cached.

    Args:
        templates: Configured templates.
        learn_threshold: Distinct literal values a position may take before
            it becomes ``{id}``; at least 1.
        max_prefixes: Templated prefixes tracked; at least 1.

    Raises:
        ValueError: A template does not start with ``/``, has a query, or
            has a brace that is not a whole ``{name}`` segment; or a limit
            is below 1.
    """

    __slots__ = (
        "_cache",
        "_heads",
        "_lock",
        "_positions",
        "_templates",
        "digits_are_ids",
        "generation",
        "learn_threshold",
        "max_prefixes",
        "templates",
    )

    def __init__(
        self,
        templates: Iterable[str] = (),
        *,
        learn_threshold: int = DEFAULT_LEARN_THRESHOLD,
        max_prefixes: int = DEFAULT_MAX_PREFIXES,
    ) -> None:
        if learn_threshold < 1:
            raise ValueError(f"learn_threshold must be at least 1, got {learn_threshold}")
        if max_prefixes < 1:
            raise ValueError(f"max_prefixes must be at least 1, got {max_prefixes}")
        parsed = [(t, _parse_template(t)) for t in templates]
        self.templates: tuple[str, ...] = tuple(t for t, _ in parsed)
        # sorted() is stable, so equally specific templates keep their order.
        self._templates = tuple(
            sorted(parsed, key=lambda item: -sum(s is not None for s in item[1]))
        )
        #: True when no configured template has an all-digit literal segment:
        #: then an all-digit segment is ``{id}`` whatever its value and
        #: position, and callers may cache routes by what surrounds it.
        self.digits_are_ids: bool = not any(
            p is not None and p.isdigit() for _, pattern in parsed for p in pattern
        )
        self.learn_threshold = learn_threshold
        self.max_prefixes = max_prefixes
        self.generation = 0
        self._cache: BoundedCache[str, str] = BoundedCache(_PATH_CACHE_SIZE)
        #: Path without its all-digit last segment -> the route (see template()).
        self._heads: BoundedCache[str, str] = BoundedCache(_PATH_CACHE_SIZE)
        self._positions: dict[str, _Position] = {}
        self._lock = threading.Lock()

    def template(self, path: str) -> str:
        """The route of ``path`` (a path, or a whole URL whose path is used)."""
        cache = self._cache  # a learning step swaps in a new one
        known = cache.get(path)
        if known is not None:
            return known
        head, slash, last = path.rpartition("/")
        if (
            slash
            and last.isdigit()
            and last.isascii()
            and self.digits_are_ids
            and len(path) <= _MAX_PATH_INPUT
            and "?" not in path
            and "#" not in path
            and "://" not in path[:16]
        ):
            # The usual call, /v1/items/12345: the answer does not depend on
            # the id, so it is cached by what comes before it.
            heads = self._heads
            known = heads.get(head)
            if known is None:
                known = heads.put(head, self._template(path))
            return known
        key = path
        split = split_url(path) if "://" in path[:16] else None
        if split is not None:
            path = split[1]
        elif "?" in path or "#" in path:
            path = path.partition("?")[0].partition("#")[0]
        if len(path) > _MAX_PATH_INPUT:
            path = path[:_MAX_PATH_INPUT]
        result = self._template(path)
        if len(key) <= _MAX_PATH_INPUT:
            cache.put(key, result)
        return result

    def _template(self, path: str) -> str:
        segments = path[1:].split("/") if path.startswith("/") else path.split("/")
        for text, pattern in self._templates:
            if len(pattern) == len(segments) and all(
                p is None or p == s for p, s in zip(pattern, segments, strict=True)
            ):
                return text[:MAX_TEMPLATE_LENGTH]
        prefix = ""
        structural = True
        for raw in segments:
            if raw.isdigit() and raw.isascii():
                shaped = ID
                self._holds_ids(prefix)
            elif raw:
                shaped = segment_shape(raw)
                if shaped is raw:  # a literal: does its position hold ids?
                    shaped = self._learn(prefix, raw, structural)
                else:
                    self._holds_ids(prefix)
            else:
                shaped = raw
            if ":" in shaped:
                shaped = self._learn_verb(prefix, shaped)
            if structural:
                structural = _is_structural(shaped)
            prefix = f"{prefix}/{shaped}"
            if len(prefix) >= MAX_TEMPLATE_LENGTH:
                break
        return (prefix or "/")[:MAX_TEMPLATE_LENGTH]

    def _holds_ids(self, prefix: str) -> None:
        """Note that the position under ``prefix`` took an id by shape."""
        position = self._positions.get(prefix)
        if position is not None and position.holds_ids:
            return
        with self._lock:
            position = self._position(prefix)
            if position is None or position.holds_ids:
                return
            position.holds_ids = True
            if position.values:
                # Literals already answered here may now read as ids (_id_like).
                self._new_generation()

    def _position(self, prefix: str) -> _Position | None:
        """The position under ``prefix``, added if the table has room (lock held)."""
        position = self._positions.get(prefix)
        if position is None and len(self._positions) < self.max_prefixes:
            position = self._positions[prefix] = _Position()
        return position

    def _learn(self, prefix: str, literal: str, structural: bool) -> str:
        """``literal``, or ``{id}`` if its position under ``prefix`` holds ids."""
        position = self._positions.get(prefix)
        value = hash(literal)
        if position is not None:
            if position.learned or (position.holds_ids and _id_like(literal)):
                return _learned_form(literal)
            if value in position.values:
                return literal
        with self._lock:
            position = self._position(prefix)
            if position is None:
                return _learned_form(literal)  # table full: fail towards low cardinality
            if position.learned:
                return _learned_form(literal)
            position.values.add(value)
            limit = self.learn_threshold * (COLLECTION_FACTOR if structural else 1)
            if len(position.values) <= limit:
                return literal
            self._learn_position(prefix, position)
            return _learned_form(literal)

    def _learn_verb(self, prefix: str, shaped: str) -> str:
        """``shaped`` (``name:verb``, ``{id}:verb``), its verb learned like a segment.

        A verb is a literal too, and what follows a ``:`` is not always a
        method (``/users/name:jane``): the verbs seen after the same name at
        the same position count towards the learning threshold, and past it
        the verb becomes ``{id}`` (``name:{id}``), so that it cannot grow
        ``url.template`` without bound.
        """
        base, colon, verb = shaped.rpartition(":")
        if not (colon and base and verb) or verb.startswith("{"):
            return shaped
        learned = self._learn(f"{prefix}/{base}:", verb, structural=False)
        return shaped if learned == verb else f"{base}:{ID}"

    def _learn_position(self, prefix: str, position: _Position) -> None:
        """Make the position under ``prefix`` a placeholder (called with the lock held)."""
        position.learned = True
        position.values = set()
        # Prefixes that went through one of the old literals are dead: paths
        # now go through "{id}". Forget them so the table does not fill up.
        start = prefix + "/"
        placeholder = start + "{"
        self._positions = {
            p: known
            for p, known in self._positions.items()
            if not p.startswith(start) or p.startswith(placeholder)
        }
        self._new_generation()

    def _new_generation(self) -> None:
        """Drop every cached answer and tell callers to (called with the lock held)."""
        self._cache = BoundedCache(_PATH_CACHE_SIZE)
        self._heads = BoundedCache(_PATH_CACHE_SIZE)
        self.generation += 1

    def __repr__(self) -> str:
        return f"RouteTemplater({list(self.templates)!r})"
