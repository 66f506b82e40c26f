"""SLA ``max_seconds_per_iteration``: no iteration (failed ones included) takes longer."""

from __future__ import annotations

from typing import Any

from krally.task import sla


@sla.configure(name="max_seconds_per_iteration")
class IterationTime(sla.SecondsLimit):
    """Maximum duration of any iteration, in seconds."""

    LABEL = "Maximum seconds per iteration"

    def __init__(self, criterion_value: float):
        super().__init__(criterion_value)
        self.max_iteration_time = 0.0

    @property
    def measured(self) -> float:
        return self.max_iteration_time

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        self.max_iteration_time = max(self.max_iteration_time, iteration["duration"])
        return self.check()

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, IterationTime)
        self.max_iteration_time = max(self.max_iteration_time, other.max_iteration_time)
        return self.check()
