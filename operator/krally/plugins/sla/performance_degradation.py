"""SLA ``performance_degradation``: slowest vs fastest successful iteration, in percent."""

from __future__ import annotations

import math
from typing import Any

from krally import consts
from krally.task import sla


@sla.configure(name="performance_degradation")
class PerformanceDegradation(sla.SLA):
    """``(max/min - 1)·100`` over successful iteration durations stays ≤ ``max_degradation``.

    Rally raises ValueError on a duration ≤ 0 (which crashes its result consumer); here such a
    duration is ignored, as it says nothing about degradation.
    """

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "properties": {"max_degradation": {"type": "number", "minimum": 0.0}},
        "required": ["max_degradation"],
        "additionalProperties": False,
    }

    def __init__(self, criterion_value: dict[str, Any]):
        super().__init__(criterion_value)
        self.max_degradation = criterion_value["max_degradation"]
        self.min_duration = math.inf
        self.max_duration = 0.0
        self.degradation = 0.0

    def _update(self) -> bool:
        if self.min_duration < math.inf:
            self.degradation = (self.max_duration / self.min_duration - 1) * 100.0
        self.success = self.degradation <= self.max_degradation
        return self.success

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        duration = iteration["duration"]
        if not iteration["error"] and duration > 0:
            self.min_duration = min(self.min_duration, duration)
            self.max_duration = max(self.max_duration, duration)
        return self._update()

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, PerformanceDegradation)
        self.min_duration = min(self.min_duration, other.min_duration)
        self.max_duration = max(self.max_duration, other.max_duration)
        return self._update()

    def details(self) -> str:
        return f"Current degradation: {self.degradation:.2f}% - {self.status()}"
