"""Hook (action) plugins: Rally's ``HookAction`` API.

A hook runs in its own thread, in parallel with the load, and records a Rally ``HookResult``::

    {status, started_at, finished_at, triggered_by: {event_type, value},
     error?: {etype, msg, details}, output?: {additive: [...], complete: [...]}}

Written the Rally way (``from krally.task import hook``; ``@hook.configure(name=...)``;
``class X(hook.Hook)`` with ``run()``, ``set_error()``, ``add_output()``, ``self.config``).

krally adds an optional per-hook timeout (Rally never kills a hook): when ``self.timeout`` seconds
pass, the result is frozen as failed with etype ``Timeout`` and ``stop()`` kills every process the
hook started through ``self.popen()``. Hooks that block elsewhere are abandoned after a short grace.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from krally import consts
from krally.api.types import hook_error, rally_result
from krally.errors import KrallyError
from krally.task import charts, plugin

H = TypeVar("H", bound=type)

# After a timeout, how long stop() may take to make run() return before the result is handed
# out anyway (the thread is a daemon, so an uncooperative hook cannot keep the process alive).
STOP_GRACE_SECONDS = 5.0


class HookStopped(KrallyError):
    """Raised by ``Hook.popen`` when the hook was already stopped (timed out)."""


def jsonable(value: Any) -> Any:
    """A JSON-safe copy: bytes decoded (Rally's guide hook passes ``proc.stdout.read()``),
    tuples/sets as lists, non-finite floats as None, unknown objects as their str()."""
    if isinstance(value, str | bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


class Hook(plugin.Plugin, kind="hook"):
    """Base of hook (action) plugins; subclasses implement ``run()``."""

    def __init__(self, task: Any, config: Any, triggered_by: dict[str, Any]) -> None:
        self.task = task
        self.config = config
        self.triggered_by = triggered_by
        # Optional per-hook timeout in seconds (HookSpec.timeout_seconds); None = never killed.
        self.timeout: float | None = None
        self._lock = threading.Lock()
        self._proc_lock = threading.Lock()
        self._processes: list[subprocess.Popen[Any]] = []
        self._stop_event = threading.Event()
        self._done = threading.Event()
        self._started = False
        self._launched_at: float | None = None  # epoch seconds of run_async()
        self._frozen = False  # set on timeout: later set_error/add_output are ignored
        self._result: dict[str, Any] = rally_result(
            consts.HookStatus.SUCCESS,
            started_at=0.0,
            finished_at=0.0,
            triggered_by=jsonable(triggered_by),
        )
        self._thread = threading.Thread(
            target=self._thread_main, name=f"hook-{self.get_name()}", daemon=True
        )

    # -- Rally's API ---------------------------------------------------------------------------

    def run(self) -> None:
        """Do the hook's work; report problems with ``set_error``, charts with ``add_output``."""
        raise NotImplementedError

    def prepare(self) -> None:
        """krally's addition: get ready ahead of the firing (an armed hook pod calls it before
        it waits), e.g. import a client library and load credentials, so ``run()`` starts its
        real work at once. Must not raise; a problem is reported when ``run()`` runs."""

    def set_error(self, exception_name: str, description: str, details: Any) -> None:
        with self._lock:
            if self._frozen:
                return
            self._result["status"] = consts.HookStatus.FAILED
            self._result["error"] = hook_error(
                jsonable(exception_name),
                jsonable(description),
                jsonable(details) if details is not None else "",
            )

    def set_status(self, status: str) -> None:
        with self._lock:
            if not self._frozen:
                self._result["status"] = status

    def add_output(
        self, additive: dict[str, Any] | None = None, complete: dict[str, Any] | None = None
    ) -> None:
        """Add one additive and/or one complete chart; raises charts.InvalidOutput if invalid."""
        items = [(kind, item) for kind, item in (("additive", additive), ("complete", complete))]
        for kind, item in items:
            if item is not None:
                charts.validate_output(kind, item)
        with self._lock:
            if self._frozen:
                return
            for kind, item in items:
                if item is not None:
                    output = self._result.setdefault("output", {"additive": [], "complete": []})
                    output[kind].append(jsonable(item))

    def run_sync(self) -> None:
        """Run ``run()`` here; any exception becomes a failed result with its traceback."""
        self._started = True
        # An async run counts from its launch (the firing), not from when its thread got going.
        started_at = self._launched_at or time.time()
        with self._lock:
            if not self._frozen:
                self._result["started_at"] = started_at
        try:
            self.run()
        except Exception as exc:
            self.set_error(type(exc).__name__, str(exc), traceback.format_exc())
        finally:
            finished_at = time.time()
            with self._lock:
                if not self._frozen:
                    self._result["finished_at"] = finished_at
            self._done.set()

    def run_async(self) -> None:
        """Start the hook in its own thread and return at once."""
        if self._launched_at is None:
            self._launched_at = time.time()
        self._started = True
        self._thread.start()

    def result(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The HookResult, after waiting for the hook (``None`` if ``timeout`` elapses first)."""
        if self._started and not self._done.wait(timeout):
            return None
        with self._lock:
            return copy.deepcopy(self._result)

    # -- krally additions: cooperative stop, killable subprocesses -------------------------------

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called (e.g. the hook timed out); long hooks should return."""
        return self._stop_event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep that ``stop()`` interrupts; True if stopped."""
        return self._stop_event.wait(seconds)

    def popen(self, args: Sequence[str] | str, **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` whose process (and its children) ``stop()`` kills."""
        # A new session makes the child a process-group leader, so `sh -c '...'` dies whole.
        kwargs.setdefault("start_new_session", True)
        with self._proc_lock:
            if self._stop_event.is_set():
                raise HookStopped(f"hook {self.get_name()!r} was stopped before starting {args!r}")
            proc = subprocess.Popen(args, **kwargs)
            self._processes.append(proc)
        return proc

    def stop(self) -> None:
        """Ask the hook to stop: sets ``stopping`` and kills the processes from ``popen()``."""
        with self._proc_lock:
            self._stop_event.set()
            processes = list(self._processes)
        for proc in processes:
            _kill(proc)

    def _thread_main(self) -> None:
        timer = None
        if self.timeout is not None:
            # Started here, not in run_async(): keeps the firing path (launch latency) short.
            timer = threading.Timer(self.timeout, self._expire)
            timer.daemon = True
            timer.start()
        try:
            self.run_sync()
        finally:
            if timer is not None:
                timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._frozen = True
            self._result["status"] = consts.HookStatus.FAILED
            self._result["finished_at"] = time.time()
            self._result["error"] = hook_error(
                "Timeout",
                f"hook {self.get_name()!r} did not finish within {self.timeout:g} s "
                "and was stopped",
                f"timeout_seconds: {self.timeout:g}",
            )
        self.stop()
        # Give run() a moment to return; then hand out the frozen result regardless.
        self._done.wait(STOP_GRACE_SECONDS)
        self._done.set()


def _kill(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


# Rally's name for the hook base (``rally.task.hook.HookAction``).
HookAction = Hook


def configure(name: str, platform: str = "default") -> Callable[[H], H]:
    """``@hook.configure(name="sys_call")``: register a Hook subclass."""
    return plugin.configure(Hook, name, platform)
