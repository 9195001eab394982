"""Settings read once at ``instrument()`` time from ``PRODUCTAPI_OTEL_*`` and ``.env``.

Every setting is validated here, so bad configuration fails when the
application starts, with a message naming the environment variable, rather
than on the first request.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from otel_productapi._core import names as n
from otel_productapi._core.body import BatchExtractor, default_batch_extractor, load_batch_extractor
from otel_productapi._core.headers import ResetUnit
from otel_productapi._core.routes import RouteTemplater
from otel_productapi._core.urls import HostMatcher

__all__ = ["ProductApiSettings", "SettingsError", "load_settings"]

_MAX_BODY_BYTES_LIMIT: Final = 16 * 1024 * 1024
# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_INPUT_SHOWN: Final = 80


class SettingsError(ValueError):
    """Configuration is invalid; the message has one line per problem, each
    starting with the environment variable to fix."""


def _split_commas(value: object) -> object:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; lists pass through for pydantic to check."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


class ProductApiSettings(BaseSettings):
    """What the hooks record and how they read responses.

    Each field is read from ``PRODUCTAPI_OTEL_<FIELD NAME>`` (any case) or a
    ``.env`` file in the working directory; keyword arguments win over both.
    Lists are comma-separated in the environment.
    """

    model_config = SettingsConfigDict(
        env_prefix=n.ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    hosts: CommaList = Field(
        default_factory=list,
        description="Host names to instrument, exact (case-insensitive) or '*.example.com' "
        "for every subdomain (not example.com itself). Empty: every host.",
    )
    route_templates: CommaList = Field(
        default_factory=list,
        description="Routes such as '/v1/projects/{project}/users/{user_id}' to report as "
        "url.template; other paths have their ids replaced by placeholders.",
    )
    request_id_headers: CommaList = Field(
        default_factory=lambda: ["X-Request-Id"],
        description="Response headers holding the request id, first present wins.",
    )
    request_id_max_length: int = Field(
        default=128, ge=1, le=1024, description="Longest request id recorded."
    )
    capture_message: bool = Field(
        default=True, description="Record the 'message' of JSON error bodies (scrubbed)."
    )
    message_max_length: int = Field(
        default=256, ge=1, le=8192, description="Longest error message recorded."
    )
    max_body_bytes: int = Field(
        default=65536,
        ge=0,
        le=_MAX_BODY_BYTES_LIMIT,
        description="Largest already-read body parsed for the message or batch outcome; "
        "0 disables body parsing.",
    )
    batch_extractor: str | None = Field(
        default=None,
        description="'package.module:function' reading batch outcomes; unset uses the "
        "built-in extractor. Imported at start-up.",
    )
    ratelimit_reset_unit: ResetUnit = Field(
        default="auto",
        description="How X-RateLimit-Reset is written; 'auto' tells the three apart by magnitude.",
    )

    _host_matcher: HostMatcher | None = PrivateAttr(default=None)
    _route_templater: RouteTemplater | None = PrivateAttr(default=None)
    _batch_extractor: BatchExtractor | None = PrivateAttr(default=None)

    _split = field_validator("hosts", "route_templates", "request_id_headers", mode="before")(
        _split_commas
    )

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        HostMatcher(value)  # raises ValueError naming the bad pattern
        return value

    @field_validator("route_templates")
    @classmethod
    def _check_templates(cls, value: list[str]) -> list[str]:
        RouteTemplater(value)
        return value

    @field_validator("request_id_headers")
    @classmethod
    def _check_header_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _HEADER_NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
        return value

    @field_validator("batch_extractor")
    @classmethod
    def _check_extractor(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            load_batch_extractor(value.strip())
            return value.strip()
        return None

    def host_matcher(self) -> HostMatcher:
        """The matcher for ``hosts``, built on first use and then reused."""
        if self._host_matcher is None:
            self._host_matcher = HostMatcher(self.hosts)
        return self._host_matcher

    def route_templater(self) -> RouteTemplater:
        """The templater for ``route_templates``, built on first use and then reused."""
        if self._route_templater is None:
            self._route_templater = RouteTemplater(self.route_templates)
        return self._route_templater

    def resolved_batch_extractor(self) -> BatchExtractor:
        """The configured extractor, or ``default_batch_extractor`` when unset."""
        if self._batch_extractor is None:
            self._batch_extractor = (
                load_batch_extractor(self.batch_extractor)
                if self.batch_extractor
                else default_batch_extractor
            )
        return self._batch_extractor


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    name = n.ENV_PREFIX + field.upper()
    if len(loc) > 1:
        name += f" (item {loc[1]})"
    return name


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = repr(error.get("input"))
    if len(shown) > _MAX_INPUT_SHOWN:
        shown = shown[: _MAX_INPUT_SHOWN - 3] + "..."
    return f"{_env_name(tuple(error['loc']))}: {message}, got {shown}"


def load_settings(**overrides: Any) -> ProductApiSettings:
    """Read the settings; keyword arguments (field names) override the environment.

    Raises:
        SettingsError: A value is invalid, or an override names no setting;
            one line per problem, naming the environment variable.
    """
    unknown = sorted(set(overrides) - set(ProductApiSettings.model_fields))
    if unknown:
        raise SettingsError("\n".join(f"{name}: not a setting" for name in unknown))
    try:
        return ProductApiSettings(**overrides)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise SettingsError("\n".join(lines)) from None
