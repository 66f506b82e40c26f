"""Trigger ``event``: fire at the listed iterations or seconds (Rally's ``EventTrigger``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from krally import consts
from krally.task import trigger


def _unit_schema(unit: str, minimum: int) -> dict[str, Any]:
    return {
        "properties": {
            "unit": {"enum": [unit]},
            "at": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "integer", "minimum": minimum},
            },
        },
        "required": ["unit", "at"],
        "additionalProperties": False,
    }


@trigger.configure(name="event")
class EventTrigger(trigger.Trigger):
    """Triggers the hook on the listed values of an event: iterations (from 1) or seconds
    since iteration 1 started (from 0)."""

    CONFIG_SCHEMA = trigger.per_unit_schema(_unit_schema)

    def __init__(self, context: dict[str, Any], task: Any, hook_cls: type[Any]) -> None:
        super().__init__(context, task, hook_cls)
        # A set for the per-iteration membership test; the config itself stays untouched.
        self._at = frozenset(self.config["at"])

    def get_listening_event(self) -> str:
        return self.config["unit"]

    def on_event(self, event_type: str, value: Any = None) -> bool:
        if event_type != self.config["unit"] or value not in self._at:
            return False
        return super().on_event(event_type, value)

    @classmethod
    def upcoming(cls, config: Any, iterations: int | None) -> Iterable[Any] | None:
        values = sorted(v for v in config.get("at") or [] if isinstance(v, int))
        if config.get("unit") == consts.EventUnit.ITERATION and iterations is not None:
            values = [v for v in values if v <= iterations]
        return values

    @classmethod
    def unreachable(cls, config: Any, iterations: int, path: str) -> list[str]:
        if config.get("unit") != consts.EventUnit.ITERATION:
            return []
        beyond = [v for v in config.get("at") or [] if isinstance(v, int) and v > iterations]
        if not beyond:
            return []
        return [
            f"{path}.at: {beyond} beyond the runner's times ({iterations}); "
            "never fired, reported as unreached"
        ]

    def planned_values(self) -> Sequence[int]:
        return sorted(self._at)
