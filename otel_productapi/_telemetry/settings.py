"""Settings read once at ``instrument()`` time from ``PRODUCTAPI_OTEL_*`` variables.

Every setting is validated here, so bad configuration fails when the
application starts, with a message naming the environment variable (and
showing at most the first 80 characters of a bad value), rather than on the
first request.

No ``.env`` file is read unless ``PRODUCTAPI_OTEL_ENV_FILE`` names one: a
repository someone cloned must not be able to configure (or, through
``PRODUCTAPI_OTEL_BATCH_EXTRACTOR``, import code into) every instrumented
program run inside it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from otel_productapi._core import names as n
from otel_productapi._core.body import BatchExtractor, default_batch_extractor, load_batch_extractor
from otel_productapi._core.headers import ResetUnit
from otel_productapi._core.routes import DEFAULT_LEARN_THRESHOLD, RouteTemplater
from otel_productapi._core.urls import HostMatcher

__all__ = ["ProductApiSettings", "SettingsError", "load_settings"]

_MAX_BODY_BYTES_LIMIT: Final = 16 * 1024 * 1024
# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_INPUT_SHOWN: Final = 80
_MAX_MESSAGE_SHOWN: Final = 240
#: Names the one env file read (never an implicit ``.env`` in the working directory).
ENV_FILE_VARIABLE: Final = n.ENV_PREFIX + "ENV_FILE"


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

    Each field is read from ``PRODUCTAPI_OTEL_<FIELD NAME>`` (any case), then
    from the env file ``PRODUCTAPI_OTEL_ENV_FILE`` names, if any; keyword
    arguments win over both. Lists are comma-separated in the environment.
    """

    model_config = SettingsConfigDict(env_prefix=n.ENV_PREFIX, extra="ignore", frozen=True)

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
    route_learn_threshold: int = Field(
        default=DEFAULT_LEARN_THRESHOLD,
        ge=1,
        le=10_000,
        description="Distinct literal values one path position may show under the same "
        "prefix before it is reported as a placeholder.",
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
            self._route_templater = RouteTemplater(
                self.route_templates, learn_threshold=self.route_learn_threshold
            )
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


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: Any) -> str:
    # Validators quote the value in their messages too: both are cut, so a
    # megabyte of bad configuration gives a line of a few hundred characters.
    message = _cut(str(error["msg"]).removeprefix("Value error, "), _MAX_MESSAGE_SHOWN)
    shown = _cut(repr(error.get("input")), _MAX_INPUT_SHOWN)
    return f"{_env_name(tuple(error['loc']))}: {message}, got {shown}"


def load_settings(**overrides: Any) -> ProductApiSettings:
    """Read the settings; keyword arguments (field names) override the environment.

    Raises:
        SettingsError: A value is invalid, or an override names no setting;
            one line per problem, naming the environment variable.
    """
    unknown = sorted(set(overrides) - set(ProductApiSettings.model_fields))
    if unknown:
        raise SettingsError(
            "\n".join(f"{_cut(name, _MAX_INPUT_SHOWN)}: not a setting" for name in unknown)
        )
    env_file = os.environ.get(ENV_FILE_VARIABLE)
    if env_file is not None and not Path(env_file).is_file():
        shown = _cut(repr(env_file), _MAX_INPUT_SHOWN)
        raise SettingsError(f"{ENV_FILE_VARIABLE}: no such file, got {shown}")
    try:
        return ProductApiSettings(_env_file=env_file, **overrides)  # type: ignore[call-arg]  # pydantic-settings init option
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise SettingsError("\n".join(lines)) from None
