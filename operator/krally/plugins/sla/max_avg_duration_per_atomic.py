"""SLA ``max_avg_duration_per_atomic``: per top-level atomic action, a maximum mean duration."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.task import sla
from krally.task.atomic import action_duration


@sla.configure(name="max_avg_duration_per_atomic")
class MaxAverageDurationPerAtomic(sla.SLA):
    """``{atomic_name: seconds}``: the mean duration of each named top-level atomic action over
    successful iterations (an action run several times in one iteration counts their sum)."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "patternProperties": {
            ".*": sla.POSITIVE_NUMBER,
        },
        "minProperties": 1,
    }

    def __init__(self, criterion_value: dict[str, float]):
        super().__init__(criterion_value)
        self.criterion_items = list(criterion_value.items())
        self.totals = {name: 0.0 for name in criterion_value}
        self.counts = {name: 0 for name in criterion_value}
        self.avg_by_action = {name: 0.0 for name in criterion_value}

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        if not iteration["error"]:
            per_iteration: dict[str, float] = {}
            for action in iteration.get("atomic_actions") or ():
                name = action["name"]
                if name in self.totals:
                    per_iteration[name] = per_iteration.get(name, 0.0) + action_duration(action)
            for name, seconds in per_iteration.items():
                self.totals[name] += seconds
                self.counts[name] += 1
                self.avg_by_action[name] = self.totals[name] / self.counts[name]
        self.success = all(
            self.avg_by_action[name] <= limit for name, limit in self.criterion_items
        )
        return self.success

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, MaxAverageDurationPerAtomic)
        for name in self.totals:
            self.totals[name] += other.totals.get(name, 0.0)
            self.counts[name] += other.counts.get(name, 0)
            if self.counts[name]:
                self.avg_by_action[name] = self.totals[name] / self.counts[name]
        self.success = all(
            self.avg_by_action[name] <= limit for name, limit in self.criterion_items
        )
        return self.success

    def details(self) -> str:
        lines = ["Average duration of one iteration for atomic actions:"]
        lines += [
            f"Action: '{name}'. {self.avg_by_action[name]:.2f}s <= {limit:.2f}s"
            for name, limit in self.criterion_items
        ]
        lines.append(f"Status: {self.status()}")
        return "\n".join(lines)

    def short(self) -> str:
        over = [
            f"'{name}' {sla.two_decimals(self.avg_by_action[name])}s > {sla.two_decimals(limit)}s"
            for name, limit in self.criterion_items
            if self.avg_by_action[name] > limit
        ]
        return f"{self.get_name()} {', '.join(over)}"
