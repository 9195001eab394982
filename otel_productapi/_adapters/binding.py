"""One HTTP library bound to its OpenTelemetry instrumentation with our hooks, by identity.

``instrument()`` and the zero-code entry point both go through the library's
``Binding``, so they agree on what is ours and neither removes someone else's:

    instrument(tagger) .. patch.acquire(), then Instrumentor().instrument(our hooks);
                          remember the method it installed (owner.method) as an object
    uninstrument() ...... Instrumentor().uninstrument() only while that object is still
                          in place (someone may have re-instrumented since); patch.release()
    compose(kwargs) ..... zero-code: the distro's kwargs with ours first in every hook slot;
                          patch.acquire() once, before the instrumentor wraps anything
    installed() ......... zero-code: remember the method that carries the composed hooks
    undone() ............ zero-code: the instrumentation was undone; patch.release()

The patch (the requests ``HTTPAdapter.send`` or httpx transport wrapper that
reports calls without a response) must sit inside the instrumentation's
wrapper, which is why it is always acquired before instrumenting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_productapi._adapters.zero_code import compose_hook, is_ours
from otel_productapi._telemetry.metrics import metrics_for
from otel_productapi._telemetry.settings import load_settings
from otel_productapi._telemetry.tagger import Tagger

__all__ = ["Binding", "HookSet", "Hooks", "Instrumentor", "Patch"]

_LOG = logging.getLogger("otel_productapi")

Hooks = Mapping[str, Callable[..., Any]]


class Patch(Protocol):
    """A counted patch: installed with its first user, removed with its last."""

    def acquire(self) -> None:
        """Count one more user, installing the patch if needed."""
        ...

    def release(self) -> None:
        """Count one user less."""
        ...

    @property
    def users(self) -> int:
        """How many users hold the patch now."""
        ...


class HookSet(Protocol):
    """An adapter's hooks of one tagger."""

    def by_slot(self) -> Hooks:
        """The hooks by the instrumentor's keyword names."""
        ...


class Instrumentor(Protocol):
    """What we use of an OpenTelemetry ``BaseInstrumentor`` (a singleton per class)."""

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        """True between its ``instrument`` and ``uninstrument``."""
        ...

    def instrument(self, **kwargs: Any) -> object:
        """Instrument the library (``_instrument`` with these arguments)."""
        ...

    def uninstrument(self, **kwargs: Any) -> object:
        """Undo ``instrument``."""
        ...


class Binding:
    """What we installed on one library, and how to undo exactly that.

    Args:
        library: The library's name, for log messages.
        instrumentor: Its OpenTelemetry instrumentor class (a singleton).
        owner: The class whose ``method`` the instrumentor wraps.
        method: That method's name: its current value tells whose
            instrumentation is in place.
        patch: Our failure-reporting patch, held while our hooks are in use.
        hooks: Builds our hooks on a tagger (the adapter's hooks class).
        make_hooks: The public function to name in the "instrumented by
            someone else" warning.
    """

    def __init__(
        self,
        library: str,
        *,
        instrumentor: Callable[[], Instrumentor],
        owner: type,
        method: str,
        patch: Patch,
        hooks: Callable[[Tagger], HookSet],
        make_hooks: str,
    ) -> None:
        self._library = library
        self._instrumentor = instrumentor
        self._owner = owner
        self._method = method
        self._patch = patch
        self._hooks = hooks
        self._make_hooks = make_hooks
        # Reentrant: instrument() calls the instrumentor, whose (zero-code
        # wrapped) _instrument and _uninstrument call compose() and undone().
        self._lock = threading.RLock()
        #: The method our last instrument() installed, while we own it.
        self._installed: object = None
        #: Zero-code: the patch is held, and the method carrying the composed hooks.
        self._holds_patch = False
        self._composed: object = None

    def _current(self) -> object:
        return self._owner.__dict__[self._method]

    # --- instrument() / uninstrument() -------------------------------------------------

    def instrument(
        self,
        tagger: Tagger,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        """Instrument the library with our hooks, unless someone else already did."""
        with self._lock:
            instrumentor = self._instrumentor()
            if self._installed is not None:
                # Ours: re-configure. Gone (replaced or uninstrumented behind our
                # back): only our share of the patch is left to give back.
                if self._current() is self._installed:
                    instrumentor.uninstrument()
                self._patch.release()
                self._installed = None
            if instrumentor.is_instrumented_by_opentelemetry:
                self._leave_alone()
                return
            self._patch.acquire()  # first: the instrumentation must wrap our patch
            instrumentor.instrument(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                **self._hooks(tagger).by_slot(),
            )
            if not instrumentor.is_instrumented_by_opentelemetry:  # it declined (it logged why)
                self._patch.release()
                return
            self._installed = self._current()

    def _leave_alone(self) -> None:
        if self.carries_our_hooks():
            _LOG.info(
                "%s was instrumented by opentelemetry-instrument with the Product API hooks "
                "already; instrument() arguments are ignored for %s",
                self._library,
                self._library,
            )
        elif self._patch.users > int(self._holds_patch):
            # Only make_hooks() users hold the patch besides us: their hooks
            # are most likely in that instrumentation, and they tag its calls.
            _LOG.info(
                "%s is already instrumented by someone else, and hooks from %s are in use "
                "in this process; if they were passed to that instrumentation they tag its "
                "calls; instrument() arguments are ignored for %s",
                self._library,
                self._make_hooks,
                self._library,
            )
        else:
            _LOG.warning(
                "%s is already instrumented by someone else; Product API tagging is off "
                "for %s (pass %s to that instrumentation instead)",
                self._library,
                self._library,
                self._make_hooks,
            )

    def uninstrument(self) -> None:
        """Undo ``instrument``: only what it installed, and harmless if nothing is."""
        with self._lock:
            if self._installed is None:
                return
            if self._current() is self._installed:
                self._instrumentor().uninstrument()
            else:
                _LOG.warning(
                    "otel_productapi: %s's instrumentation was wrapped or replaced by "
                    "someone else since instrument(); it is left as it is (if it still "
                    "wraps ours, the Product API hooks stay active)",
                    self._library,
                )
            self._patch.release()
            self._installed = None

    # --- zero-code (the Adapter protocol of otel_productapi._adapters.zero_code) ---------

    def compose(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The instrumentor's ``_instrument`` arguments with our hooks first; never raises."""
        try:
            if any(is_ours(hook) for hook in kwargs.values()):
                return kwargs  # the programmatic instrument() already passed ours
            ours = self._hooks(
                Tagger(load_settings(), metrics_for(kwargs.get("meter_provider")))
            ).by_slot()
        except Exception:  # noqa: BLE001 - a bad setting must not cost the user their spans
            _LOG.warning(
                "otel_productapi: could not build the Product API hooks; "
                "%s is instrumented without them",
                self._library,
                exc_info=True,
            )
            return kwargs
        with self._lock:
            if not self._holds_patch:
                self._patch.acquire()  # before the instrumentation wraps anything
                self._holds_patch = True
        return {
            **kwargs,
            **{slot: compose_hook(hook, kwargs.get(slot)) for slot, hook in ours.items()},
        }

    def installed(self) -> None:
        """Remember the method that carries the hooks ``compose`` added."""
        with self._lock:
            self._composed = self._current()

    def carries_our_hooks(self) -> bool:
        """True while the library's instrumentation is the one zero-code composed."""
        with self._lock:
            return self._composed is not None and self._current() is self._composed

    def undone(self) -> None:
        """The instrumentation was undone: release the patch ``compose`` acquired."""
        with self._lock:
            if self._holds_patch:
                self._patch.release()
            self._holds_patch = False
            self._composed = None
