"""SLA ``outliers``: few iterations slower than mean + sigmas * std of the earlier ones."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.task import sla


@sla.configure(name="outliers")
class Outliers(sla.SLA):
    """At most ``max`` outliers. Streaming, like Rally (so approximate): once ``min_iterations``
    successful iterations were seen, an iteration is an outlier if its duration exceeds
    mean + ``sigmas``·std of the successful iterations before it."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "properties": {
            "max": {"type": "integer", "minimum": 0},
            "min_iterations": {"type": "integer", "minimum": 3},
            "sigmas": sla.POSITIVE_NUMBER,
        },
        "additionalProperties": False,
    }

    def __init__(self, criterion_value: dict[str, Any]):
        super().__init__(criterion_value)
        self.max_outliers = criterion_value.get("max", 0)
        self.min_iterations = max(3, criterion_value.get("min_iterations", 3))
        self.sigmas = criterion_value.get("sigmas", 3.0)
        self.iterations = 0
        self.outliers = 0
        self.threshold: float | None = None
        self._stats = sla.StreamingStats()

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        if not iteration["error"]:
            duration = iteration["duration"]
            self.iterations += 1
            if (
                self.iterations >= self.min_iterations
                and self.threshold is not None
                and duration > self.threshold
            ):
                self.outliers += 1
            self._stats.add(duration)
            std = self._stats.std
            if std is not None:
                self.threshold = self._stats.mean + self.sigmas * std
        self.success = self.outliers <= self.max_outliers
        return self.success

    def merge(self, other: sla.SLA) -> bool:
        assert isinstance(other, Outliers)
        # Like Rally: outlier counts add up; the threshold is not recomputed.
        self.outliers += other.outliers
        self.iterations += other.iterations
        self.success = self.outliers <= self.max_outliers
        return self.success

    def details(self) -> str:
        return (
            f"Maximum number of outliers {self.outliers} <= {self.max_outliers} - {self.status()}"
        )

    def short(self) -> str:
        return f"{self.get_name()} {self.outliers} > {self.max_outliers}"
