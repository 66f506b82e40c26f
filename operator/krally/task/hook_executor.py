"""HookExecutor: feeds a workload's events to its triggers and collects the hook results.

Semantics (Rally's, with krally's deliberate choices, see reference/rally-semantics.md):

- the runner calls ``on_event("iteration", n)`` when iteration n (from 1) starts;
- if any trigger listens to ``time``, processing ``("iteration", 1)`` starts a 1 Hz ticker:
  tick 0 at once, tick N at exactly start + N s on an absolute schedule (no drift; a late tick
  is delivered late, never skipped or repeated);
- a trigger fires at most once per (event_type, value), enforced here whatever a trigger does;
- ``stop()`` (the load ended) stops the ticks; values a trigger planned but never reached are
  reported per hook as ``unreached`` (bounded), since they will never fire;
- ``results()`` waits for every fired hook (honouring ``HookSpec.timeout_seconds``) and returns
  Rally's per-hook results in the task's hook order;
- one :class:`~krally.task.shard.Shard` of a distributed load sees only its own iterations, and
  only shard 0 keeps time: each reports unreached only the values it owns, so the shards' union
  is the load's.

A launcher runs a fired hook: ``LocalLauncher`` in a thread of this process; the runner pod
supplies one that records the firing for the operator instead.
"""

from __future__ import annotations

import collections
import copy
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from krally import consts
from krally.api.types import failed_now, hook_error
from krally.task import spec as spec_mod
from krally.task.hook import Hook
from krally.task.shard import Shard
from krally.task.spec import HookSpec
from krally.task.trigger import HookHandle, LaunchFn, Trigger

LOG = logging.getLogger(__name__)

# At most this many unreached values are listed per hook (``unreached_count`` has the total).
MAX_UNREACHED_LISTED = 100


class HookLauncher(Protocol):
    """Runs (or hands off) one fired hook; must return promptly: it is on the runner's path.
    ``launch(index, hook, hook_cls, triggered_by)``, as :meth:`LocalLauncher.launch`."""

    def launch(self, i: int, h: HookSpec, cls: type[Hook], by: dict[str, Any], /) -> HookHandle: ...


class LocalLauncher:
    """Runs each fired hook at once in its own thread (``Hook.run_async``)."""

    def __init__(self, task: Any = None) -> None:
        self.task = task

    def launch(
        self,
        index: int,
        hook: spec_mod.HookSpec,
        hook_cls: type[Hook],
        triggered_by: dict[str, Any],
    ) -> HookHandle:
        # A copy per run: a hook may mutate its config, and runs of one hook can overlap.
        action = hook_cls(self.task, copy.deepcopy(hook.action_args), triggered_by)
        action.timeout = hook.timeout_seconds
        action.run_async()
        return action


class _FailedLaunch:
    """Handle for a launch that raised: recorded as a failed run rather than breaking the load."""

    def __init__(self, triggered_by: dict[str, Any], exc: Exception) -> None:
        self._result = failed_now(
            triggered_by,
            hook_error(type(exc).__name__, f"the hook could not be launched: {exc}"),
        )

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        return copy.deepcopy(self._result)


def _owned(planned: Any, shard: Shard) -> Any:
    """The planned iteration values ``shard`` owns; a range stays a range (a trigger may plan
    millions of values: membership tests and the walk below stay cheap)."""
    if isinstance(planned, range):
        period = shard.count // math.gcd(abs(planned.step), shard.count)
        first = next((v for v in planned[:period] if shard.owns(v)), None)
        if first is None:
            return range(0)
        return range(first, planned.stop, planned.step * period)
    return [v for v in planned if isinstance(v, int) and shard.owns(v)]


class HookExecutor:
    """Per-workload hook machinery. ``on_event`` is thread-safe and cheap when nothing listens."""

    def __init__(
        self,
        hooks: Sequence[spec_mod.HookSpec],
        task: Any = None,
        launcher: HookLauncher | None = None,
        *,
        tick_interval: float = 1.0,
        shard: Shard | None = None,
    ) -> None:
        """``tick_interval`` is the length of one ``time`` unit in seconds (tests shorten it)."""
        self.hooks = tuple(hooks)
        self.shard = shard or Shard()
        self.task = task
        self.launcher: HookLauncher = launcher if launcher is not None else LocalLauncher(task)
        self._tick_interval = tick_interval
        self._lock = threading.Lock()
        self._triggers: list[Trigger] = []
        self._hook_classes: list[type[Hook]] = []
        self._fired: list[set[tuple[str, Any]]] = []
        self._trigger_errors: list[str | None] = []
        self._unreached: list[list[dict[str, Any]]] = []
        self._unreached_count: list[int] = []
        by_event: dict[str, list[tuple[int, Trigger]]] = collections.defaultdict(list)
        for index, hook in enumerate(self.hooks):
            path = f"hooks[{index}]"
            hook_cls = Hook.get(hook.action_name)
            trigger_cls = Trigger.get(hook.trigger_name)
            for problem in hook_cls.validate_config(hook.action_args, f"{path}.action"):
                raise problem
            for problem in trigger_cls.validate_config(hook.trigger_args, f"{path}.trigger"):
                raise problem
            # A private copy: Rally's triggers may write defaults into their config, and the
            # results must show the task's config as written.
            trigger = trigger_cls(copy.deepcopy(hook.rally_hook_cfg()), task, hook_cls)
            trigger._launch = self._launch_fn(index)
            self._triggers.append(trigger)
            self._hook_classes.append(hook_cls)
            self._fired.append(set())
            self._trigger_errors.append(None)
            self._unreached.append([])
            self._unreached_count.append(0)
            by_event[trigger.get_listening_event()].append((index, trigger))
        if not self.shard.keeps_time:
            by_event.pop(consts.EventUnit.TIME, None)  # another shard fires them
        # Immutable tuples per event type: the hot path does one dict lookup and no allocation.
        self._by_event: dict[str, tuple[tuple[int, Trigger], ...]] = {
            event: tuple(entries) for event, entries in by_event.items()
        }
        self._has_time = consts.EventUnit.TIME in self._by_event
        self._ticker: threading.Thread | None = None
        self._ticker_started = False
        self._tick_stop = threading.Event()
        self._stopped = False
        self._fired_count = 0
        self._launch_failed: set[int] = set()

    # -- events --------------------------------------------------------------------------------

    def listens_to(self, event_type: str) -> bool:
        return event_type in self._by_event

    @property
    def fired_count(self) -> int:
        """How many hooks fired so far (for progress displays)."""
        return self._fired_count

    def on_event(self, event_type: str, value: Any = None) -> None:
        """Deliver an event; ``("iteration", 1)`` also starts the time ticker if needed."""
        if self._has_time and not self._ticker_started and event_type == "iteration" and value == 1:
            self._start_ticker()
        entries = self._by_event.get(event_type)
        if entries is None or self._stopped:
            return
        self._deliver(entries, event_type, value)

    def _deliver(
        self, entries: tuple[tuple[int, Trigger], ...], event_type: str, value: Any
    ) -> None:
        # One lock for every trigger call: the consumer thread and the ticker both deliver,
        # and third-party triggers need not be thread-safe.
        with self._lock:
            if self._stopped:
                return
            for index, trigger in entries:
                try:
                    trigger.on_event(event_type, value)
                except Exception as exc:  # a broken trigger must not break the load
                    if self._trigger_errors[index] is None:
                        LOG.exception(
                            "trigger of hook %d failed on %s %r", index, event_type, value
                        )
                        self._trigger_errors[index] = (
                            f"trigger {trigger.get_name()!r} raised on {event_type} {value!r}: "
                            f"{type(exc).__name__}: {exc}"
                        )

    def _launch_fn(self, index: int) -> LaunchFn:
        def launch(event_type: str, value: Any) -> HookHandle | None:
            # Called by Trigger.on_event, under self._lock.
            key = (event_type, value)
            fired = self._fired[index]
            if key in fired:
                return None  # at most once per (event_type, value), whatever the trigger does
            fired.add(key)
            self._fired_count += 1
            triggered_by = {"event_type": event_type, "value": value}
            try:
                return self.launcher.launch(
                    index, self.hooks[index], self._hook_classes[index], triggered_by
                )
            except Exception as exc:
                # Full traceback once per hook; a launcher failing on every firing must not
                # flood the log (each failure is still in the results).
                log = LOG.debug if index in self._launch_failed else LOG.exception
                self._launch_failed.add(index)
                log("launching hook %d for %s %r failed", index, event_type, value)
                return _FailedLaunch(triggered_by, exc)

        return launch

    def _start_ticker(self) -> None:
        with self._lock:
            if self._ticker_started or self._stopped:
                return
            self._ticker_started = True
            start = time.monotonic()
            self._ticker = threading.Thread(
                target=self._tick, args=(start,), name="krally-hook-ticker", daemon=True
            )
            self._ticker.start()

    def _tick(self, start: float) -> None:
        entries = self._by_event[consts.EventUnit.TIME]
        tick = 0
        while True:
            self._deliver(entries, consts.EventUnit.TIME, tick)
            tick += 1
            # Absolute deadline start + tick: waiting "1 s from now" would drift.
            delay = start + tick * self._tick_interval - time.monotonic()
            if self._tick_stop.wait(delay) if delay > 0 else self._tick_stop.is_set():
                return

    # -- end of load ---------------------------------------------------------------------------

    def stop(self) -> None:
        """The load ended: no more ticks, later events are ignored, unreached values recorded."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._tick_stop.set()
        if self._ticker is not None:
            self._ticker.join()
        for index, trigger in enumerate(self._triggers):
            try:
                planned = trigger.planned_values()
            except Exception:
                LOG.exception("planned_values() of hook %d failed", index)
                planned = None
            unit = trigger.get_listening_event()
            if planned is None or unit not in self._by_event:
                continue
            if not self.shard.whole and unit == consts.EventUnit.ITERATION:
                planned = _owned(planned, self.shard)
            fired_values = [v for (event, v) in self._fired[index] if event == unit]
            listed: list[dict[str, Any]] = []
            count = len(planned) - sum(1 for v in fired_values if v in planned)
            if count > 0:
                fired_set = set(fired_values)
                # Walks at most len(fired) + MAX_UNREACHED_LISTED values, even for huge ranges.
                for value in planned:
                    if value not in fired_set:
                        listed.append({"event_type": unit, "value": value})
                        if len(listed) >= MAX_UNREACHED_LISTED:
                            break
            self._unreached[index] = listed
            self._unreached_count[index] = max(count, 0)

    def results(self) -> list[dict[str, Any]]:
        """Stop, wait for every fired hook, and return per-hook results in the task's order:
        ``{config, results, summary, unreached?, unreached_count?, trigger_error?}``."""
        self.stop()
        out = []
        for index, trigger in enumerate(self._triggers):
            collected = trigger.get_results()
            entry: dict[str, Any] = {
                "config": self.hooks[index].rally_config(),
                "results": collected["results"],
                "summary": collected["summary"],
            }
            if self._unreached[index]:
                entry["unreached"] = self._unreached[index]
                entry["unreached_count"] = self._unreached_count[index]
            if self._trigger_errors[index]:
                entry["trigger_error"] = self._trigger_errors[index]
            out.append(entry)
        return out
