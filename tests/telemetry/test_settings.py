"""Settings come from PRODUCTAPI_OTEL_* (and an env file only when named), and bad values
name their variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from otel_productapi._core.body import default_batch_extractor
from otel_productapi._telemetry.settings import ProductApiSettings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in its empty tmp_path so no stray .env is read."""
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    """Without configuration every host is instrumented with the documented defaults."""
    settings = load_settings()
    assert settings.model_dump() == {
        "hosts": [],
        "route_templates": [],
        "request_id_headers": ["X-Request-Id"],
        "request_id_max_length": 128,
        "capture_message": True,
        "message_max_length": 256,
        "max_body_bytes": 65536,
        "batch_extractor": None,
        "route_learn_threshold": 20,
        "ratelimit_reset_unit": "auto",
    }
    assert settings.host_matcher()("any.host.test") is True
    assert settings.resolved_batch_extractor() is default_batch_extractor


@pytest.mark.parametrize(
    ("expected", "variable", "value"),
    [
        (
            {"hosts": ["api.example.com", "*.example.org"]},
            "HOSTS",
            " api.example.com , *.example.org,,",
        ),
        ({"hosts": ["[::1]"]}, "HOSTS", "[::1]"),
        ({"hosts": []}, "HOSTS", ""),
        ({"route_templates": ["/v1/{a}/b", "/v2/c"]}, "ROUTE_TEMPLATES", "/v1/{a}/b,/v2/c"),
        ({"request_id_headers": ["X-Req", "X-Trace"]}, "REQUEST_ID_HEADERS", "X-Req, X-Trace"),
        ({"capture_message": False}, "CAPTURE_MESSAGE", "false"),
        ({"message_max_length": 8192}, "MESSAGE_MAX_LENGTH", "8192"),
        ({"max_body_bytes": 0}, "MAX_BODY_BYTES", "0"),
        ({"max_body_bytes": 16 * 1024 * 1024}, "MAX_BODY_BYTES", str(16 * 1024 * 1024)),
        (
            {"ratelimit_reset_unit": "epoch_milliseconds"},
            "RATELIMIT_RESET_UNIT",
            "epoch_milliseconds",
        ),
        ({"request_id_max_length": 1}, "REQUEST_ID_MAX_LENGTH", "1"),
        ({"route_learn_threshold": 5}, "ROUTE_LEARN_THRESHOLD", "5"),
        (
            {"batch_extractor": "otel_productapi._core.body:default_batch_extractor"},
            "BATCH_EXTRACTOR",
            "otel_productapi._core.body:default_batch_extractor",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isupper() else "",
)
def test_environment_values(
    monkeypatch: pytest.MonkeyPatch, expected: dict[str, object], variable: str, value: str
) -> None:
    """Each variable is read, lists split on commas (not parsed as JSON)."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_" + variable, value)
    dumped = load_settings().model_dump()
    assert {key: dumped[key] for key in expected} == expected


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    """productapi_otel_hosts works as well as the upper-case name."""
    monkeypatch.setenv("productapi_otel_hosts", "api.example.com")
    assert load_settings().hosts == ["api.example.com"]


def test_a_dotenv_file_in_the_working_directory_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cloned repository's .env configures nothing, and names no code to import."""
    (tmp_path / "planted.py").write_text("raise SystemExit('imported from .env')\n")
    (tmp_path / ".env").write_text(
        "PRODUCTAPI_OTEL_HOSTS=api.example.com\nPRODUCTAPI_OTEL_BATCH_EXTRACTOR=planted:f\n"
    )
    # In that directory, with it importable: reading the .env would import planted.
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = load_settings()
    assert (settings.hosts, settings.batch_extractor) == ([], None)


def test_an_env_file_named_by_its_variable_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PRODUCTAPI_OTEL_ENV_FILE names the one env file read; other keys are ignored."""
    env_file = tmp_path / "productapi.env"
    env_file.write_text(
        "PRODUCTAPI_OTEL_HOSTS=api.example.com\n"
        "PRODUCTAPI_OTEL_MAX_BODY_BYTES=1024\n"
        "SOMETHING_ELSE=1\n"
    )
    monkeypatch.setenv("PRODUCTAPI_OTEL_ENV_FILE", str(env_file))
    settings = load_settings()
    assert (settings.hosts, settings.max_body_bytes) == (["api.example.com"], 1024)


def test_environment_wins_over_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real environment variable overrides the same key in the env file."""
    (tmp_path / "productapi.env").write_text("PRODUCTAPI_OTEL_MESSAGE_MAX_LENGTH=10\n")
    monkeypatch.setenv("PRODUCTAPI_OTEL_ENV_FILE", str(tmp_path / "productapi.env"))
    monkeypatch.setenv("PRODUCTAPI_OTEL_MESSAGE_MAX_LENGTH", "20")
    assert load_settings().message_max_length == 20


def test_a_missing_env_file_is_an_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An env file that is not there fails fast rather than being ignored."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(SettingsError, match=r"^PRODUCTAPI_OTEL_ENV_FILE: no such file, got '"):
        load_settings()


def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword arguments to load_settings beat the environment."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_HOSTS", "env.example.com")
    assert load_settings(hosts=["kw.example.com"]).hosts == ["kw.example.com"]


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("MAX_BODY_BYTES", "abc", "valid integer, unable to parse string as an integer, got 'abc'"),
        ("MAX_BODY_BYTES", "-1", "greater than or equal to 0"),
        ("MAX_BODY_BYTES", str(16 * 1024 * 1024 + 1), "less than or equal to 16777216"),
        ("MESSAGE_MAX_LENGTH", "0", "greater than or equal to 1"),
        ("MESSAGE_MAX_LENGTH", "8193", "less than or equal to 8192"),
        ("REQUEST_ID_MAX_LENGTH", "x", "valid integer"),
        ("CAPTURE_MESSAGE", "maybe", "valid boolean"),
        ("RATELIMIT_RESET_UNIT", "minutes", "'auto', 'delta_seconds'"),
        ("HOSTS", "https://api.example.com", "host pattern 'https://api.example.com'"),
        ("HOSTS", "api.example.com/v1", "no scheme, port, path"),
        ("HOSTS", "api.example.com:443", "host pattern"),
        ("ROUTE_TEMPLATES", "v1/things", "must be a path starting with '/'"),
        ("ROUTE_TEMPLATES", "/v1/{a", "segment '{a'"),
        ("REQUEST_ID_HEADERS", "X Request Id", "not a valid header name"),
        ("BATCH_EXTRACTOR", "no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("BATCH_EXTRACTOR", "nocolon", "must look like 'package.module:function'"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    """Every invalid value fails fast with one line naming the environment variable."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_" + variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    lines = str(info.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"PRODUCTAPI_OTEL_{variable}: ")
    assert fragment in lines[0]


def test_example_message_from_the_brief(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-integer body limit reads as variable, pydantic's message and the input."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_MAX_BODY_BYTES", "abc")
    with pytest.raises(SettingsError, match=r"^PRODUCTAPI_OTEL_MAX_BODY_BYTES: Input should be"):
        load_settings()


def test_every_problem_gets_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bad variables are all reported at once."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_MAX_BODY_BYTES", "abc")
    monkeypatch.setenv("PRODUCTAPI_OTEL_HOSTS", "http://x")
    with pytest.raises(SettingsError) as info:
        load_settings()
    names = sorted(line.split(":", 1)[0] for line in str(info.value).splitlines())
    assert names == ["PRODUCTAPI_OTEL_HOSTS", "PRODUCTAPI_OTEL_MAX_BODY_BYTES"]


def test_settings_error_is_a_value_error() -> None:
    """Callers can catch configuration problems as ValueError."""
    assert issubclass(SettingsError, ValueError)


def test_unknown_override_is_refused() -> None:
    """A misspelled keyword is an error, not silently ignored."""
    with pytest.raises(SettingsError, match=r"^mesage_max_length: not a setting$"):
        load_settings(mesage_max_length=10)


@pytest.mark.parametrize(
    "variable",
    ["MAX_BODY_BYTES", "HOSTS", "ROUTE_TEMPLATES", "REQUEST_ID_HEADERS", "BATCH_EXTRACTOR"],
)
def test_a_megabyte_of_bad_input_gives_a_short_message(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """The offending value is quoted, but cut, in pydantic's part of the line and in our
    validators' own messages, so a huge value cannot flood logs."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_" + variable, "x:" * 500_000)
    with pytest.raises(SettingsError) as info:
        load_settings()
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"PRODUCTAPI_OTEL_{variable}: ")
    assert len(line) < 400


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        (":", "host pattern ':'"),
        ("::", "host pattern '::'"),
        ("a" * 64 + ".example.com", "host pattern 'aaaa"),
        ("*", "host pattern '*'"),
        ("api..example.com", "host pattern 'api..example.com'"),
        ("a" * 300, "(300 characters)"),
        ('["a.com"]', "host pattern '[\"a.com\"]' must be a host name such as"),
        ("[a.com]", "host pattern '[a.com]' must be a host name such as"),
    ],
    ids=[
        "colon",
        "double-colon",
        "label-over-63",
        "bare-wildcard",
        "empty-label",
        "300-chars",
        "json-list",
        "bracketed-name",
    ],
)
def test_host_patterns_must_be_host_names(
    monkeypatch: pytest.MonkeyPatch, pattern: str, fragment: str
) -> None:
    """Host patterns that no host name can match are refused at start-up."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_HOSTS", f"api.example.com,{pattern}")
    with pytest.raises(SettingsError, match=r"^PRODUCTAPI_OTEL_HOSTS: ") as info:
        load_settings()
    assert fragment in str(info.value)


@pytest.mark.parametrize("hosts", [[""], ["api.example.com", " "]], ids=["empty", "blank"])
def test_an_empty_host_pattern_is_refused(hosts: list[str]) -> None:
    """An empty pattern (which would match nothing, or everything) fails fast."""
    with pytest.raises(SettingsError, match=r"^PRODUCTAPI_OTEL_HOSTS: host pattern '\s*' is empty"):
        load_settings(hosts=hosts)


def test_direct_construction_raises_pydantic_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constructing ProductApiSettings directly keeps pydantic's own error type."""
    monkeypatch.setenv("PRODUCTAPI_OTEL_MAX_BODY_BYTES", "abc")
    with pytest.raises(ValidationError):
        ProductApiSettings()


def test_settings_are_frozen() -> None:
    """Settings cannot change after instrument() read them."""
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.max_body_bytes = 1


def test_runtime_helpers_are_built_once() -> None:
    """host_matcher and route_templater return the same object on every call."""
    settings = load_settings(hosts=["*.example.com"], route_templates=["/v1/u/{id}"])
    assert settings.host_matcher() is settings.host_matcher()
    assert settings.route_templater() is settings.route_templater()
    assert settings.host_matcher()("a.example.com") is True
    assert settings.route_templater().template("/v1/u/abc") == "/v1/u/{id}"
