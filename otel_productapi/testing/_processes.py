"""Child processes for the tests and the demo: started, waited for, always stopped.

A ``Process`` runs one program in its own process group with its output in a
log file, waits until a readiness probe passes (failing early, with the log's
tail, if the program exits), and stops its whole group: SIGTERM, then SIGKILL
after a grace period. Every live ``Process`` is also in a process-wide
registry that ``stop_all()`` (registered with ``atexit``) empties, so nothing
outlives the interpreter that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

__all__ = [
    "Process",
    "free_port",
    "http_ok",
    "port_open",
    "stop_all",
    "terminate_group",
    "wait_until",
]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET ``url`` (a loopback URL) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.25,
    watch: Sequence[Process] = (),
) -> T:
    """Poll ``probe`` until it returns something truthy, and return that.

    Raises:
        RuntimeError: A process in ``watch`` exited meanwhile (with its log's tail).
        TimeoutError: ``timeout`` seconds passed (with the logs' tails of ``watch``).
    """
    deadline = time.monotonic() + timeout
    while True:
        for process in watch:
            process.check_running()
        with contextlib.suppress(OSError):
            result = probe()
            if result:
                return result
        if time.monotonic() >= deadline:
            tails = "".join(p.describe() for p in watch)
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{tails}")
        time.sleep(interval)


def terminate_group(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    else:
        # The leader is gone; children it left in the group go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


_P = TypeVar("_P", bound="Process")


class Process:
    """One program in its own process group, its output in ``log``; a context manager.

    Args:
        name: What to call it in messages (``"prometheus"``).
        args: The command line.
        log: File that receives stdout and stderr (created, truncated).
        env: The environment; default: this process's.
        cwd: Working directory; default: the log's folder.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.args = [str(a) for a in args]
        self.log = log
        self._env = dict(env) if env is not None else None
        self._cwd = cwd or log.parent
        self._popen: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Its process id while it runs."""
        return self._popen.pid if self._popen is not None else None

    @property
    def returncode(self) -> int | None:
        """Its exit status once it exited, else ``None``."""
        return self._popen.poll() if self._popen is not None else None

    def start(self: _P) -> _P:
        """Start it (in a new session, so in its own process group); returns ``self``."""
        if self._popen is not None:
            return self
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.log.open("wb")
        self._popen = subprocess.Popen(
            self.args,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,
        )
        _register(self)
        return self

    def wait_ready(self, probe: Callable[[], object], timeout: float) -> None:
        """Wait until ``probe()`` is truthy; stop it and raise if it exits or times out."""
        try:
            wait_until(f"{self.name} to be ready", probe, timeout, watch=[self])
        except BaseException:
            self.stop()
            raise

    def check_running(self) -> None:
        """Raise ``RuntimeError`` (with the log's tail) if it has exited."""
        code = self.returncode
        if self._popen is not None and code is not None:
            raise RuntimeError(f"{self.name} exited with status {code}{self.describe()}")

    def stop(self, grace: float = 5.0) -> None:
        """Stop its whole process group (SIGTERM, then SIGKILL). Safe twice."""
        popen, self._popen = self._popen, None
        if popen is not None:
            terminate_group(popen, grace)
            _unregister(self)
        out, self._out = self._out, None
        if out is not None:
            out.close()

    def output(self) -> str:
        """What it printed so far."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self, tail: int = 4000) -> str:
        """A block for error messages: its name, command line and the log's last characters."""
        text = self.output()[-tail:]
        return f"\n--- {self.name}: {' '.join(self.args)}\n{text}"

    def __enter__(self: _P) -> _P:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_live: list[Process] = []
_lock = threading.Lock()


def _register(process: Process) -> None:
    with _lock:
        _live.append(process)


def _unregister(process: Process) -> None:
    with _lock, contextlib.suppress(ValueError):
        _live.remove(process)


def stop_all() -> None:
    """Stop every ``Process`` still running (also run at interpreter exit)."""
    with _lock:
        live = list(_live)
    for process in reversed(live):
        process.stop()


atexit.register(stop_all)
