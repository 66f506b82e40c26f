"""Trigger ``periodic``: fire every ``step`` iterations or seconds (Rally's ``PeriodicTrigger``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from krally import consts
from krally.task import trigger


def _unit_schema(unit: str, start_minimum: int) -> dict[str, Any]:
    return {
        "properties": {
            "unit": {"enum": [unit]},
            "step": {"type": "integer", "minimum": 1},
            "start": {"type": "integer", "minimum": start_minimum},
            "end": {"type": "integer", "minimum": 1},
        },
        "required": ["unit", "step"],
        "additionalProperties": False,
    }


@trigger.configure(name="periodic")
class PeriodicTrigger(trigger.Trigger):
    """Triggers the hook every ``step`` iterations or seconds, from ``start`` (default: iteration
    1 or second 0) to ``end`` (inclusive; default: no end)."""

    CONFIG_SCHEMA = trigger.per_unit_schema(_unit_schema)

    def __init__(self, context: dict[str, Any], task: Any, hook_cls: type[Any]) -> None:
        super().__init__(context, task, hook_cls)
        unit = self.config["unit"]
        # Defaults live here, not in the config: Rally writes them into the config and its
        # results then carry `"end": Infinity`, which is not JSON.
        self.step: int = self.config["step"]
        self.start: int = self.config.get("start", 0 if unit == consts.EventUnit.TIME else 1)
        self.end: int | None = self.config.get("end")

    def get_listening_event(self) -> str:
        return self.config["unit"]

    def on_event(self, event_type: str, value: Any = None) -> bool:
        if (
            event_type != self.config["unit"]
            or not isinstance(value, int)
            or value < self.start
            or (self.end is not None and value > self.end)
            or (value - self.start) % self.step
        ):
            return False
        return super().on_event(event_type, value)

    @classmethod
    def upcoming(cls, config: Any, iterations: int | None) -> Iterable[Any] | None:
        unit, step = config.get("unit"), config.get("step")
        if not isinstance(step, int) or step < 1:
            return None
        start = config.get("start", 0 if unit == consts.EventUnit.TIME else 1)
        end = config.get("end")
        if unit == consts.EventUnit.ITERATION and iterations is not None:
            end = iterations if end is None else min(end, iterations)
        # Endless (time unit, no end): the operator only ever takes the next few.
        return range(start, end + 1, step) if end is not None else itertools.count(start, step)

    @classmethod
    def unreachable(cls, config: Any, iterations: int, path: str) -> list[str]:
        start = config.get("start", 1)
        if config.get("unit") != consts.EventUnit.ITERATION or not isinstance(start, int):
            return []
        if start <= iterations:
            return []
        return [
            f"{path}.start: {start} beyond the runner's times ({iterations}); the hook never fires"
        ]

    def planned_values(self) -> Sequence[int] | None:
        if self.end is None:
            return None
        return range(self.start, self.end + 1, self.step)
