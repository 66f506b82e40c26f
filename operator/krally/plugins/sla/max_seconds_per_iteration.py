"""SLA ``max_seconds_per_iteration``: no iteration (failed ones included) takes longer."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.task import sla


@sla.configure(name="max_seconds_per_iteration")
class IterationTime(sla.SLA):
    """Maximum duration of any iteration, in seconds."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "number",
        "minimum": 0.0,
        "exclusiveMinimum": True,
    }

    def __init__(self, criterion_value: float):
        super().__init__(criterion_value)
        self.max_iteration_time = 0.0

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        if iteration["duration"] > self.max_iteration_time:
            self.max_iteration_time = iteration["duration"]
        self.success = self.max_iteration_time <= self.criterion_value
        return self.success

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, IterationTime)
        self.max_iteration_time = max(self.max_iteration_time, other.max_iteration_time)
        self.success = self.max_iteration_time <= self.criterion_value
        return self.success

    def details(self) -> str:
        return (
            f"Maximum seconds per iteration {self.max_iteration_time:.2f}s <= "
            f"{self.criterion_value:.2f}s - {self.status()}"
        )
