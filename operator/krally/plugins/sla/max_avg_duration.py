"""SLA ``max_avg_duration``: the mean duration of successful iterations stays below a limit."""

from __future__ import annotations

from typing import Any

from krally.task import sla


@sla.configure(name="max_avg_duration")
class MaxAverageDuration(sla.SecondsLimit):
    """Maximum average duration of one (successful) iteration, in seconds."""

    LABEL = "Average duration of one iteration"

    def __init__(self, criterion_value: float):
        super().__init__(criterion_value)
        self.count = 0
        self.total = 0.0
        self.avg = 0.0

    @property
    def measured(self) -> float:
        return self.avg

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        if not iteration["error"]:
            self.count += 1
            self.total += iteration["duration"]
            self.avg = self.total / self.count
        return self.check()

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, MaxAverageDuration)
        self.count += other.count
        self.total += other.total
        self.avg = self.total / self.count if self.count else 0.0
        return self.check()
