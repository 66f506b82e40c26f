"""One iteration as the runner's threads run it: the scenario built per iteration with a copy
of the context, its atomic actions and errors recorded Rally's way, and a per-iteration
``timeout`` that raises ``ThreadTimeoutException`` inside the iteration's thread (as Rally does,
via ``PyThreadState_SetAsyncExc``), so the iteration records that error."""

from __future__ import annotations

import copy
import ctypes
import math
import os
import pickle
import threading
import time
import traceback
from typing import Any

from krally.task.scenario import iteration_deadline


class ThreadTimeoutException(Exception):  # Rally's name, shown in results
    """Raised inside an iteration's thread when its ``timeout`` expires."""

    def __init__(self, *args: Any):
        super().__init__(*(args or ("Iteration interrupted due to timeout.",)))


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# Per-iteration timeouts


class _TimeoutMonitor:
    """One thread per process raising ThreadTimeoutException in iterations past their deadline.

    One slot per running iteration thread (not per iteration), so memory does not grow with the
    iteration rate times the timeout.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._slots: dict[int, tuple[float, int]] = {}  # thread ident -> (deadline, token)
        self._token = 0
        # When the loop wakes up next (inf: idle). A registration with an earlier deadline wakes
        # it: loads in one process may have different timeouts (600 s, then 0.2 s).
        self._wake_at = math.inf
        threading.Thread(target=self._loop, name="krally-timeouts", daemon=True).start()

    def register(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        iteration_deadline.value = deadline
        with self._cond:
            self._token += 1
            self._slots[threading.get_ident()] = (deadline, self._token)
            if deadline < self._wake_at:
                self._cond.notify()
            return self._token

    def unregister(self, token: int) -> None:
        iteration_deadline.value = None
        with self._cond:
            ident = threading.get_ident()
            slot = self._slots.get(ident)
            if slot is not None and slot[1] == token:
                del self._slots[ident]

    def _loop(self) -> None:
        with self._cond:
            while True:
                if not self._slots:
                    self._wake_at = math.inf
                    self._cond.wait()
                    continue
                now = time.monotonic()
                expired = [i for i, (deadline, _) in self._slots.items() if deadline <= now]
                for ident in expired:
                    del self._slots[ident]
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(ident), ctypes.py_object(ThreadTimeoutException)
                    )
                if self._slots:
                    self._wake_at = min(d for d, _ in self._slots.values())
                    self._cond.wait(self._wake_at - now)


_monitor: tuple[int, _TimeoutMonitor] | None = None
_monitor_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _monitor_lock
    _monitor_lock = threading.Lock()  # another thread may have held it at fork time


os.register_at_fork(after_in_child=_reset_after_fork)


def _timeout_monitor() -> _TimeoutMonitor:
    """This process's monitor (a forked child gets its own: threads do not survive fork)."""
    global _monitor
    with _monitor_lock:
        if _monitor is None or _monitor[0] != os.getpid():
            _monitor = (os.getpid(), _TimeoutMonitor())
        return _monitor[1]


# --------------------------------------------------------------------------------------------
# One iteration


def _is_immutable(value: Any) -> bool:
    if value is None or isinstance(value, (str, bytes, int, float, bool, frozenset)):
        return True
    if isinstance(value, tuple):
        return all(_is_immutable(v) for v in value)
    return False


class IterationExecutor:
    """Runs one iteration of a scenario and returns Rally's per-iteration record."""

    def __init__(
        self,
        scenario_cls: type[Any],
        scenario_args: dict[str, Any] | None,
        context: dict[str, Any] | None,
        timeout: float = 0,
    ):
        self._cls = scenario_cls
        self._args = dict(scenario_args or {})
        self._context = dict(context or {})
        self._timeout = float(timeout or 0)
        # Rally deep-copies the context for every iteration so one iteration's changes never
        # leak into another. When every value is immutable a shallow copy is exactly as safe
        # and ~50x cheaper; otherwise unpickling a snapshot taken once is ~6x cheaper than
        # deepcopy (deepcopy remains the fallback for unpicklable contexts).
        self._shallow = all(_is_immutable(v) for v in self._context.values())
        self._snapshot: bytes | None = None
        if not self._shallow:
            try:
                self._snapshot = pickle.dumps(self._context, pickle.HIGHEST_PROTOCOL)
            except Exception:
                try:
                    copy.deepcopy(self._context)
                except Exception:
                    # Neither picklable nor deep-copyable (e.g. holds a lock): Rally would fail
                    # every iteration; a shallow copy at least isolates the top level.
                    self._shallow = True

    def _copy_context(self) -> dict[str, Any]:
        if self._shallow:
            return dict(self._context)
        if self._snapshot is not None:
            return pickle.loads(self._snapshot)
        return copy.deepcopy(self._context)

    def __call__(self, number: int) -> dict[str, Any]:
        context = self._copy_context()
        context["iteration"] = number
        monitor = _timeout_monitor() if self._timeout > 0 else None
        scenario = None
        error: list[str] = []
        timestamp = time.time()
        started = time.perf_counter()
        try:
            try:
                token = monitor.register(self._timeout) if monitor else 0
                try:
                    # Built inside the timer, like Rally 5.x.
                    scenario = self._cls(context=context)
                    scenario.run(**self._args)
                finally:
                    if monitor:
                        monitor.unregister(token)
            except Exception as exc:
                error = [type(exc).__name__, str(exc), traceback.format_exc()]
            finished = time.perf_counter()
        except ThreadTimeoutException as exc:
            # Delivered a hair after the scenario returned: still a timeout.
            finished = time.perf_counter()
            error = [type(exc).__name__, str(exc), traceback.format_exc()]
        output: dict[str, Any]
        atomics: list[Any]
        if scenario is None:
            idle, output, atomics = 0.0, {"additive": [], "complete": []}, []
        else:
            idle = scenario._idle_duration
            output, atomics = scenario._output, scenario._atomic_actions
        return {
            "iteration": number,
            "timestamp": timestamp,
            "duration": finished - started - idle,
            "idle_duration": idle,
            "error": error,
            "output": output,
            "atomic_actions": atomics,
        }


# --------------------------------------------------------------------------------------------
