"""Decide once per route what a call to it records, then look it up.

A URL's host verdict, ``url.template``, span names and whether its URL needs
redacting are the same for every call to the same route, so ``RouteTable``
works them out on a route's first call and answers later calls from a
``BoundedCache``. Two keys make repeated routes hit:

- a URL whose last segment is a short run of ASCII digits (``…/items/123``,
  the commonest id) is cached by the text before that segment, so distinct
  ids share one entry: digits are always ``{id}`` in a template and never
  need redacting (a digit run is neither an e-mail, a phone number nor a
  token to the scrubber), so the answer cannot depend on them (unless the
  URL is long enough to be cut: such URLs take the general path);
- any other URL is cached whole (list endpoints, verbs, repeated reads).

When the route templater learns a new placeholder (``RouteTemplater.generation``
changes), every cached answer is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from otel_productapi._core import names as n
from otel_productapi._core.cache import BoundedCache
from otel_productapi._core.routes import RouteTemplater
from otel_productapi._core.status import KNOWN_METHODS, OTHER_METHOD
from otel_productapi._core.urls import MAX_URL_LENGTH, HostMatcher, needs_redaction, split_url

__all__ = ["Route", "RouteTable"]

#: Routes kept per cache (two caches: by URL prefix, by whole URL).
MAX_ROUTES: Final = 1024
#: Digit ids at most this long share their route's cache entry: int64 ids
#: have at most 19 digits, and long digit runs are left to the general path.
MAX_CACHED_ID_DIGITS: Final = 20


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """What every call to one route records.

    Attributes:
        host: ``server.address`` (lower-cased, no port).
        template: ``url.template``.
        redact: The URL attributes must be rewritten with ``redact_url``.
        span_names: Span name per normalised method (``GET /v1/items/{id}``;
            ``HTTP /v1/items/{id}`` for ``_OTHER``).
        attributes: ``{url.template: template}``, ready for ``set_attributes``.

    The mappings are plain dicts typed read-only, not ``MappingProxyType``:
    the SDK checks a mapping it is given against the ``collections.abc``
    classes, which costs a proxy about 3,000 instructions more per call.
    """

    host: str
    template: str
    redact: bool
    span_names: Mapping[str, str] = field(repr=False)
    attributes: Mapping[str, str] = field(repr=False)


def _route(host: str, template: str, redact: bool) -> Route:
    names = {method: f"{method} {template}" for method in KNOWN_METHODS}
    names[OTHER_METHOD] = f"HTTP {template}"
    return Route(
        host=host,
        template=template,
        redact=redact,
        span_names=names,
        attributes={n.ATTR_URL_TEMPLATE: template},
    )


# Cached for URLs on hosts we do not instrument, so they cost one look-up too.
_NOT_OURS: Final = _route("", "", redact=False)


class RouteTable:
    """The ``Route`` of any URL, or ``None`` for hosts we do not instrument.

    Args:
        hosts: Which hosts are the Product API.
        templater: Turns paths into ``url.template`` values.
        max_routes: Entries per cache before it starts over.
    """

    __slots__ = ("_by_prefix", "_by_url", "_generation", "_hosts", "_ids_are_digits", "_templater")

    def __init__(
        self, hosts: HostMatcher, templater: RouteTemplater, max_routes: int = MAX_ROUTES
    ) -> None:
        self._hosts = hosts
        self._templater = templater
        self._generation = templater.generation
        self._by_prefix: BoundedCache[str, Route] = BoundedCache(max_routes)
        self._by_url: BoundedCache[str, Route] = BoundedCache(max_routes)
        # A configured template with an all-digit literal ("/v1/api/2/...")
        # makes digits meaningful: then no URL is cached by its prefix.
        self._ids_are_digits = not any(
            segment.isdigit() for template in templater.templates for segment in template.split("/")
        )

    def lookup(self, url: str) -> Route | None:
        """The route of ``url``; ``None`` when its host is not the Product API's."""
        if self._generation != self._templater.generation:
            self._forget()
        prefix, _, last = url.rpartition("/")
        if (
            last.isdigit()
            and last.isascii()
            and len(last) <= MAX_CACHED_ID_DIGITS
            and len(url) <= MAX_URL_LENGTH  # a longer URL is cut, whatever its id
            and self._ids_are_digits
        ):
            route = self._by_prefix.get(prefix)
            if route is None:
                route = self._by_prefix.put(prefix, self._decide(url))
        else:
            route = self._by_url.get(url)
            if route is None:
                route = self._by_url.put(url, self._decide(url))
        return None if route is _NOT_OURS else route

    def _decide(self, url: str) -> Route:
        parts = split_url(url)
        if parts is None:
            return _NOT_OURS
        host, path = parts
        if not self._hosts(host):
            return _NOT_OURS
        return _route(host, self._templater.template(path), needs_redaction(url))

    def _forget(self) -> None:
        self._generation = self._templater.generation
        self._by_prefix.clear()
        self._by_url.clear()
