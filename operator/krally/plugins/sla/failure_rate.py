"""SLA ``failure_rate``: the percentage of failed iterations stays within [min, max]."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.task import sla

_PERCENT = {"type": "number", "minimum": 0.0, "maximum": 100.0}


@sla.configure(name="failure_rate")
class FailureRate(sla.SLA):
    """Failure rate (percent) between ``min`` (default 0) and ``max`` (default 100)."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "properties": {"min": _PERCENT, "max": _PERCENT},
        "minProperties": 1,
        "additionalProperties": False,
    }

    def __init__(self, criterion_value: dict[str, Any]):
        super().__init__(criterion_value)
        self.min_percent = criterion_value.get("min", 0.0)
        self.max_percent = criterion_value.get("max", 100.0)
        self.errors = 0
        self.total = 0
        self.error_rate = 0.0

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        self.total += 1
        if iteration["error"]:
            self.errors += 1
        self.error_rate = self.errors * 100.0 / self.total
        self.success = self.min_percent <= self.error_rate <= self.max_percent
        return self.success

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, FailureRate)
        self.total += other.total
        self.errors += other.errors
        if self.total:
            self.error_rate = self.errors * 100.0 / self.total
            self.success = self.min_percent <= self.error_rate <= self.max_percent
        return self.success

    def details(self) -> str:
        return (
            f"Failure rate criteria {self.min_percent:.2f}% <= {self.error_rate:.2f}% "
            f"<= {self.max_percent:.2f}% - {self.status()}"
        )

    def short(self) -> str:
        rate = f"{sla.two_decimals(self.error_rate)}%"
        if self.error_rate > self.max_percent:
            return f"{self.get_name()} {rate} > {sla.two_decimals(self.max_percent)}%"
        return f"{self.get_name()} {rate} < {sla.two_decimals(self.min_percent)}%"
