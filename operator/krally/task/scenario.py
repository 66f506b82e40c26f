"""Scenario plugins: the code one benchmark iteration runs (Rally's ``scenario`` module).

Rally's API is kept::

    @scenario.configure(name="Dummy.dummy")
    class Dummy(scenario.Scenario):
        def run(self, sleep=0):
            with atomic.ActionTimer(self, "foo"):
                ...

A new instance is built for every iteration with that iteration's context (a copy of the
workload context plus ``"iteration"``, 1-based). ``sleep_between`` adds to the iteration's
``idle_duration``; ``add_output`` adds Rally chart output to the iteration's record.
"""

from __future__ import annotations

import random
import string
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from krally.errors import KrallyError
from krally.task import plugin
from krally.task.charts import validate_output

S = TypeVar("S", bound=type)

# Sleeps are taken in short slices so a per-iteration timeout (an exception raised
# asynchronously in the iteration's thread) interrupts them promptly, as in Rally.
SLEEP_SLICE = 0.1
SPIN_FINISH = 0.0004

# The running iteration's timeout deadline (time.monotonic()), set by the runner per thread:
# a slice never sleeps past it, so a timeout interrupts a sleep on time, not up to a slice late.
iteration_deadline = threading.local()


_sleepers = 0  # threads of this process inside interruptable_sleep
_sleepers_lock = threading.Lock()


def interruptable_sleep(seconds: float, atomic_delay: float = SLEEP_SLICE) -> None:
    """Sleep ``seconds`` in ``atomic_delay`` slices (Rally's ``utils.interruptable_sleep``).

    A kernel sleep wakes up late (70-200 µs on small VMs: 2 % of a 10 ms sleep, and a
    benchmark's ideal load duration is made of these sleeps), so the last ``SPIN_FINISH``
    seconds are waited by polling the clock: busily when this is the only sleeping thread
    (most precise), between zero-length sleeps otherwise (yielding the GIL and the CPU).
    """
    global _sleepers
    if seconds <= 0:
        return
    timeout_at = getattr(iteration_deadline, "value", None)
    now = time.monotonic()
    deadline = now + seconds
    while True:
        left = deadline - now
        if left <= SPIN_FINISH:
            break
        step = left - SPIN_FINISH
        if step > atomic_delay:
            step = atomic_delay
        if timeout_at is not None and timeout_at - now < step:
            step = max(timeout_at - now, 0.0) + 0.0005  # wake just after the timeout fires
        with _sleepers_lock:
            _sleepers += 1
        try:
            time.sleep(step)
        finally:
            with _sleepers_lock:
                _sleepers -= 1
        now = time.monotonic()
    if _sleepers:
        while time.monotonic() < deadline:
            time.sleep(0)
    else:
        while time.monotonic() < deadline:
            pass


class Scenario(plugin.Plugin, kind="scenario"):
    """Base of scenario plugins. Subclasses implement ``run(**args)``."""

    # Rally's per-scenario default context config (``configure(context=...)``).
    DEFAULT_CONTEXT: ClassVar[dict[str, Any]] = {}
    RESOURCE_NAME_FORMAT: ClassVar[str] = "s_rally_XXXXXXXX_XXXXXXXX"

    def __init__(self, context: dict[str, Any] | None = None):
        # Kept minimal: an instance is built for every iteration.
        self.context: dict[str, Any] = context if context is not None else {}
        self._idle_duration = 0.0
        self._output: dict[str, list[Any]] = {"additive": [], "complete": []}
        self._atomic_actions: list[dict[str, Any]] = []
        self._atomic_stack: list[dict[str, Any]] = []

    def run(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"scenario {self.get_name()!r} does not implement run()")

    def sleep_between(
        self, min_sleep: float, max_sleep: float | None = None, atomic_delay: float = SLEEP_SLICE
    ) -> None:
        """Sleep a random time in [min_sleep, max_sleep]; counted as idle, not as duration."""
        if max_sleep is None:
            max_sleep = min_sleep
        if not 0 <= min_sleep <= max_sleep:
            raise KrallyError(
                f"sleep_between: need 0 <= min_sleep <= max_sleep, got {min_sleep}, {max_sleep}"
            )
        seconds = random.uniform(min_sleep, max_sleep)
        started = time.perf_counter()
        try:
            interruptable_sleep(seconds, atomic_delay)
        finally:
            self._idle_duration += time.perf_counter() - started

    def idle_duration(self) -> float:
        return self._idle_duration

    def atomic_actions(self) -> list[dict[str, Any]]:
        return self._atomic_actions

    def add_output(
        self, additive: dict[str, Any] | None = None, complete: dict[str, Any] | None = None
    ) -> None:
        """Add one additive and/or one complete chart to this iteration's output."""
        for kind, item in (("additive", additive), ("complete", complete)):
            if item is not None:
                validate_output(kind, item)
                self._output[kind].append(item)

    def get_output(self) -> dict[str, list[Any]]:
        return self._output

    def generate_random_name(self) -> str:
        """A Rally-style random resource name (``s_rally_xxxxxxxx_xxxxxxxx``)."""
        alphabet = string.ascii_letters + string.digits
        return "".join(
            random.choice(alphabet) if ch == "X" else ch for ch in self.RESOURCE_NAME_FORMAT
        )

    def get_owner_id(self) -> str | None:
        owner = self.context.get("owner_id")
        return owner if isinstance(owner, str) else None


def args_schema(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, extra: bool = False
) -> dict[str, Any]:
    """A scenario's CONFIG_SCHEMA declaring its arguments' types (Rally's ``validation.add``
    number/type checks): ``extra`` when ``run()`` takes ``**kwargs``. A scenario without one is
    checked against ``run()``'s signature only (names, not types)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": extra,
    }


def number(minimum: float = 0, maximum: float | None = None, integer: bool = False) -> dict:
    """An argument that is a number (or integer) in [minimum, maximum]."""
    schema: dict[str, Any] = {"type": "integer" if integer else "number", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def configure(
    name: str, platform: str = "default", context: dict[str, Any] | None = None
) -> Callable[[S], S]:
    """Register a Scenario subclass as ``name`` (Rally: ``@scenario.configure(name=...)``)."""
    register = plugin.configure(Scenario, name, platform)

    def wrap(cls: S) -> S:
        if context is not None:
            cls.DEFAULT_CONTEXT = dict(context)  # type: ignore[attr-defined]
        return register(cls)

    return wrap
