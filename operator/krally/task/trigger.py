"""Trigger plugins: Rally's ``HookTrigger`` API.

A trigger listens to one event type (``get_listening_event()``: ``"iteration"`` or ``"time"``);
its ``on_event`` decides whether a value fires and then calls the base ``on_event``, which
always fires: it launches the hook through the executor's launcher (or, used on its own, runs
the hook in a local thread). A trigger fires at most once per (event_type, value), whatever a
subclass does. Written the Rally way (``from krally.task import trigger``;
``@trigger.configure(name=...)``; ``class X(trigger.Trigger)``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from krally import consts
from krally.task import plugin

T = TypeVar("T", bound=type)


class HookHandle(Protocol):
    """What a launcher returns for one fired hook (a local ``Hook`` is one)."""

    def result(self, timeout: float | None = None) -> dict[str, Any] | None: ...


# (event_type, value) -> handle, or None when this (event_type, value) already fired.
LaunchFn = Callable[[str, Any], HookHandle | None]


def per_unit_schema(unit_schema: Callable[[str, int], dict[str, Any]]) -> dict[str, Any]:
    """A CONFIG_SCHEMA with one branch per event unit: ``unit_schema(unit, minimum)`` where the
    minimum value is 0 for time (seconds) and 1 for iterations (numbered from 1)."""
    return {
        "type": "object",
        "$schema": consts.JSON_SCHEMA,
        "oneOf": [
            unit_schema(consts.EventUnit.TIME, 0),
            unit_schema(consts.EventUnit.ITERATION, 1),
        ],
    }


class Trigger(plugin.Plugin, kind="trigger"):
    """Base of trigger plugins.

    ``context`` is the hook config as Rally hands it over (``HookSpec.rally_hook_cfg()``:
    ``{"description", "action": (name, args), "trigger": (name, args)}``); ``self.config`` is
    the trigger's args.
    """

    def __init__(self, context: dict[str, Any], task: Any, hook_cls: type[Any]) -> None:
        self.context = context
        self.hook_cfg = context  # Rally's attribute name
        self.config = context["trigger"][1]
        self.task = task
        self.hook_cls = hook_cls
        self._runs: list[HookHandle] = []
        self._fired: set[tuple[str, Any]] = set()
        # The executor replaces this with its launcher (which also enforces at-most-once).
        self._launch: LaunchFn = self._launch_locally

    def get_listening_event(self) -> str:
        """The event type this trigger wants: ``"iteration"`` or ``"time"``."""
        raise NotImplementedError

    def on_event(self, event_type: str, value: Any = None) -> bool:
        """Fire the hook for this event (subclasses filter first); True if it fired."""
        handle = self._launch(event_type, value)
        if handle is None:
            return False
        self._runs.append(handle)
        return True

    def planned_values(self) -> Sequence[Any] | None:
        """Every value this trigger would fire at, if finite and known (for "never reached"
        reporting); None when unbounded or unknown. krally addition, not Rally API."""
        return None

    @classmethod
    def upcoming(cls, config: Any, iterations: int | None) -> Iterable[Any] | None:
        """The values this (valid) trigger config fires at, in firing order, as far as they are
        known before the load starts (``iterations``: the runner's count, None if unknown); may
        be endless. None: not predictable, so its firings are never armed ahead (the hook Job
        is created when it fires). krally addition, not Rally API."""
        return None

    @classmethod
    def unreachable(cls, config: Any, iterations: int, path: str) -> list[str]:
        """Warnings, each naming its field under ``path``, for what this (valid) trigger config
        plans beyond a load of ``iterations`` iterations: values it never fires at. Default:
        none. krally addition, not Rally API."""
        return []

    def get_results(self) -> dict[str, Any]:
        """Rally's per-hook results: config, one HookResult per run (waits), summary counts."""
        results = []
        for handle in self._runs:
            result = handle.result()
            if result is not None:
                results.append(result)
        summary = dict(collections.Counter(r["status"] for r in results))
        return {"config": _rally_config(self.context), "results": results, "summary": summary}

    def _launch_locally(self, event_type: str, value: Any) -> HookHandle | None:
        key = (event_type, value)
        if key in self._fired:
            return None
        self._fired.add(key)
        action = self.hook_cls(
            self.task, self.context["action"][1], {"event_type": event_type, "value": value}
        )
        action.run_async()
        return action


def _rally_config(context: dict[str, Any]) -> dict[str, Any]:
    action_name, action_args = context["action"]
    trigger_name, trigger_args = context["trigger"]
    return {
        "description": context.get("description") or "",
        "action": {action_name: action_args},
        "trigger": {trigger_name: trigger_args},
    }


# Rally's name for the trigger base (``rally.task.hook.HookTrigger``).
HookTrigger = Trigger


def configure(name: str, platform: str = "default") -> Callable[[T], T]:
    """``@trigger.configure(name="event")``: register a Trigger subclass."""
    return plugin.configure(Trigger, name, platform)
