"""SLA ``max_avg_duration``: the mean duration of successful iterations stays below a limit."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.task import sla


@sla.configure(name="max_avg_duration")
class MaxAverageDuration(sla.SLA):
    """Maximum average duration of one (successful) iteration, in seconds."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "number",
        "minimum": 0.0,
        "exclusiveMinimum": True,
    }

    def __init__(self, criterion_value: float):
        super().__init__(criterion_value)
        self.count = 0
        self.total = 0.0
        self.avg = 0.0

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        if not iteration["error"]:
            self.count += 1
            self.total += iteration["duration"]
            self.avg = self.total / self.count
        self.success = self.avg <= self.criterion_value
        return self.success

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, MaxAverageDuration)
        self.count += other.count
        self.total += other.total
        self.avg = self.total / self.count if self.count else 0.0
        self.success = self.avg <= self.criterion_value
        return self.success

    def details(self) -> str:
        return (
            f"Average duration of one iteration {self.avg:.2f}s <= "
            f"{self.criterion_value:.2f}s - {self.status()}"
        )
