"""The zero-code path: our hooks under ``opentelemetry-instrument``, for every client.

``opentelemetry-instrument`` (through ``sitecustomize``) configures the distro
and the SDK, then calls every ``opentelemetry_pre_instrument`` entry point,
then has the distro call each instrumentor's ``instrument(**kwargs)``:

    sitecustomize
    ├── distro.configure(), configurators (SDK providers, exporters)
    ├── pre_instrument()  <- us: wrap RequestsInstrumentor and HTTPXClientInstrumentor
    │                        (``_instrument`` and ``_uninstrument``)
    └── distro.load_instrumentor(each entry point)
        └── XInstrumentor().instrument(**distro_kwargs)
            └── our wrapper: each hook slot = ours, then the distro's/user's

So we never instrument a library ourselves (the distro decides whether and
when), we never replace a distro, and whatever hooks the distro or the user
passes still run, after ours, seeing the attributes we set. The wrappers stay
in place for later ``instrument()`` calls and add nothing when our hooks are
already among the arguments (recognised by ``HOOK_MARK``, not by module), so
every request still gets exactly one CLIENT span, tagged once. When the
instrumentation is undone, the adapter releases what it installed.

This module imports only the standard library at load time: if loading an
entry point raises, ``opentelemetry-instrument`` stops every instrumentation.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = ["HOOK_MARK", "TARGETS", "compose_hook", "is_ours", "pre_instrument"]

_LOG = logging.getLogger("otel_productapi")

#: Set on every hook we build or compose (and on our hook methods), so that
#: our hooks are recognised wherever the code that builds them lives.
HOOK_MARK: Final = "_otel_productapi_hook"
#: Set on our wrappers of an instrumentor's methods; holds the wrapped original.
WRAPPED_MARK: Final = "_otel_productapi_original"
#: Set on those wrappers when the original was inherited, not the class's own.
INHERITED_MARK: Final = "_otel_productapi_inherited"
#: Where ``BaseInstrumentor`` (whose ``_instrument`` does nothing) lives.
_BASE_INSTRUMENTOR_MODULE: Final = "opentelemetry.instrumentation.instrumentor"
#: Names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` that turn every adapter off.
_OFF_FOR_ALL: Final = frozenset({"*", "productapi"})


class Adapter(Protocol):
    """What an adapter's ``zero_code`` module provides."""

    def compose(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` for ``_instrument`` with our hooks composed in (or ``kwargs`` itself)."""
        ...

    def installed(self) -> None:
        """The instrumentor just instrumented with the hooks ``compose`` added."""
        ...

    def undone(self) -> None:
        """The instrumentation was undone: release what ``compose`` installed."""
        ...


@dataclass(frozen=True, slots=True)
class Target:
    """An instrumentor whose hooks we compose.

    Attributes:
        library: Its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.
        instrumentor: ``module:Class`` of the instrumentor.
        adapter: Module of our adapter's zero-code part (an ``Adapter``).
    """

    library: str
    instrumentor: str
    adapter: str


TARGETS: Final = (
    Target(
        "requests",
        "opentelemetry.instrumentation.requests:RequestsInstrumentor",
        "otel_productapi._adapters.requests.zero_code",
    ),
    Target(
        "httpx",
        "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor",
        "otel_productapi._adapters.httpx.zero_code",
    ),
)


def pre_instrument(**kwargs: Any) -> None:
    """Entry point for ``opentelemetry_pre_instrument``; never raises.

    Wraps each instrumentor of ``TARGETS`` that is installed, unless
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names its library,
    ``productapi`` or ``*``.
    """
    del kwargs  # the loader passes none today; accept any it adds later
    disabled = _disabled_names()
    for target in TARGETS:
        if target.library in disabled or not _OFF_FOR_ALL.isdisjoint(disabled):
            _LOG.debug("otel_productapi: %s instrumentation disabled", target.library)
            continue
        try:
            _wrap(target)
        except Exception:  # noqa: BLE001 - an exception here would stop all auto-instrumentation
            _LOG.warning(
                "otel_productapi: zero-code set-up for %s failed; its spans stay untagged",
                target.library,
                exc_info=True,
            )


def _disabled_names() -> set[str]:
    raw = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return {part.strip() for part in raw.split(",")}


def instrumentor_class(target: Target) -> type | None:
    """The instrumentor class of ``target``, or ``None`` when it is not installed."""
    module_name, _, class_name = target.instrumentor.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = getattr(module, class_name, None)
    return found if isinstance(found, type) else None


def _wrap(target: Target) -> None:
    cls = instrumentor_class(target)
    if cls is None:
        _LOG.debug("otel_productapi: %s is not installed", target.instrumentor)
        return
    instrument = _defined(cls, "_instrument")
    uninstrument = _defined(cls, "_uninstrument")
    if not callable(instrument) or not callable(uninstrument):
        # A release that renamed what we wrap: say so rather than tag nothing silently.
        _LOG.warning(
            "otel_productapi: %s has no _instrument/_uninstrument to wrap; "
            "its spans stay untagged (report this with your versions)",
            target.instrumentor,
        )
        return
    if hasattr(instrument, WRAPPED_MARK):
        return
    adapter: Adapter = importlib.import_module(target.adapter)
    # Set on ``cls`` itself, even when inherited: a sibling instrumentor that
    # shares the base class (httpx's HTTPX2ClientInstrumentor) stays untouched.
    for name, wrapper in (
        ("_instrument", _wrapped(instrument, adapter)),
        ("_uninstrument", _wrapped_undo(uninstrument, adapter.undone)),
    ):
        setattr(wrapper, INHERITED_MARK, name not in cls.__dict__)
        setattr(cls, name, wrapper)


def _defined(cls: type, name: str) -> object:
    """``cls``'s own or inherited ``name``, not ``BaseInstrumentor``'s empty default.

    Some instrumentors inherit both methods from a shared base class
    (``HTTPXClientInstrumentor`` from ``_BaseHTTPXClientInstrumentor``).
    """
    for klass in cls.__mro__:
        if klass.__module__ == _BASE_INSTRUMENTOR_MODULE:
            return None
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def _wrapped(original: Callable[..., Any], adapter: Adapter) -> Callable[..., Any]:
    @functools.wraps(original)
    def _instrument(self: Any, **kwargs: Any) -> Any:
        composed = adapter.compose(kwargs)
        result = original(self, **composed)
        if composed is not kwargs:
            adapter.installed()
        return result

    setattr(_instrument, WRAPPED_MARK, original)
    return _instrument


def _wrapped_undo(original: Callable[..., Any], undone: Callable[[], None]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _uninstrument(self: Any, **kwargs: Any) -> Any:
        try:
            return original(self, **kwargs)
        finally:
            undone()

    setattr(_uninstrument, WRAPPED_MARK, original)
    return _uninstrument


def unwrap(target: Target) -> None:
    """Undo ``pre_instrument``'s wrappers of ``target`` if still in place (tests use this)."""
    cls = instrumentor_class(target)
    if cls is None:
        return
    for name in ("_instrument", "_uninstrument"):
        wrapper = cls.__dict__.get(name)
        original = getattr(wrapper, WRAPPED_MARK, None)
        if original is None:
            continue
        if getattr(wrapper, INHERITED_MARK, False):
            delattr(cls, name)  # inherited again, as before
        else:
            setattr(cls, name, original)


def is_ours(hook: object) -> bool:
    """True for a hook we built or composed."""
    return hook is not None and getattr(hook, HOOK_MARK, False) is True


def compose_hook(ours: Callable[..., Any], theirs: object) -> Callable[..., Any]:
    """Call ours, then theirs: theirs sees our attributes and may override them.

    Ours never raises; theirs behaves exactly as it would without us (an
    exception it raises reaches the caller, as the instrumentation does).
    In an async slot, theirs runs only if it is a coroutine function, since
    that is all the httpx instrumentation accepts there.
    """
    if not callable(theirs):
        return ours
    if inspect.iscoroutinefunction(ours):
        if not inspect.iscoroutinefunction(theirs):
            return ours
        their_coroutine = theirs

        async def composed_async(*args: Any) -> None:
            await ours(*args)
            await their_coroutine(*args)

        setattr(composed_async, HOOK_MARK, True)
        return composed_async

    def composed(*args: Any) -> None:
        ours(*args)
        theirs(*args)

    setattr(composed, HOOK_MARK, True)
    return composed
