"""Atomic actions: named, nested timings inside a scenario iteration (Rally's ``atomic`` module).

Each action is recorded as Rally records it::

    {"name": str, "started_at": epoch, "finished_at": epoch, "children": [...], "failed": True?}

Actions nest by lexical structure: an action started while another is open becomes its child.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def _stack(scenario: Any) -> list[dict[str, Any]]:
    # The open actions of this scenario instance; created lazily so any object with
    # ``_atomic_actions`` works (Rally's ActionTimerMixin contract).
    try:
        return scenario._atomic_stack
    except AttributeError:
        scenario._atomic_stack = []
        if not hasattr(scenario, "_atomic_actions"):
            scenario._atomic_actions = []
        return scenario._atomic_stack


class ActionTimer:
    """``with ActionTimer(scenario, "name"):`` records one atomic action on ``scenario``."""

    __slots__ = ("_action", "_name", "_scenario")

    def __init__(self, scenario: Any, name: str):
        self._scenario = scenario
        self._name = name
        self._action: dict[str, Any] | None = None

    def __enter__(self) -> ActionTimer:
        stack = _stack(self._scenario)
        action: dict[str, Any] = {
            "name": self._name,
            "started_at": time.time(),
            "finished_at": None,
            "children": [],
        }
        (stack[-1]["children"] if stack else self._scenario._atomic_actions).append(action)
        stack.append(action)
        self._action = action
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        action = self._action
        assert action is not None
        action["finished_at"] = time.time()
        if exc_type is not None:
            action["failed"] = True
        stack = self._scenario._atomic_stack
        # Pop this action even if an inner one leaked (e.g. interrupted by a timeout).
        while stack:
            if stack.pop() is action:
                break


def action_timer(name: str) -> Callable[[F], F]:
    """Decorate a scenario method so each call is recorded as the atomic action ``name``.

    Like Rally, the call may pass ``atomic_action=False`` to skip the timing.
    """

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not kwargs.pop("atomic_action", True):
                return func(self, *args, **kwargs)
            with ActionTimer(self, name):
                return func(self, *args, **kwargs)

        return timed  # type: ignore[return-value]

    return wrap


def optional_action_timer(name: str, argument_name: str = "atomic_action") -> Callable[[F], F]:
    """Rally's variant: timing is on unless the call passes ``<argument_name>=False``."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not kwargs.pop(argument_name, True):
                return func(self, *args, **kwargs)
            with ActionTimer(self, name):
                return func(self, *args, **kwargs)

        return timed  # type: ignore[return-value]

    return wrap


def action_duration(action: dict[str, Any]) -> float:
    """Seconds an action took (0 for one that never finished)."""
    finished = action.get("finished_at")
    return finished - action["started_at"] if finished is not None else 0.0
