"""SLA ``disruption_impact``: every analysed hook firing stays within the given impact limits.

Checked after the load on the per-firing impact (:mod:`krally.task.impact`, the workload's
``impact`` result), through ``add_impact``; ``add_iteration`` changes nothing. A firing is
*analysed* when it has a verdict (a baseline and a recovery search); firings without one are
listed in the detail but not checked, and no analysed firing at all fails the criterion: a
resilience gate must not pass vacuously.
"""

from __future__ import annotations

import math
from typing import Any

from krally import consts
from krally.task import impact_analysis, sla

_RATIO = {"type": "number", "minimum": 0.0}

# (config key, entry value, label, unit, at most (True) / at least (False))
_CHECKS = (
    ("max_error_rate_during", "errorRate", "error rate during", "%", True),
    ("max_recovery_seconds", "recoverySeconds", "recovery", "s", True),
    ("max_p95_ratio", "p95Ratio", "p95 ratio", "", True),
    ("min_throughput_ratio", "throughputRatio", "throughput ratio", "", False),
)


@sla.configure(name="disruption_impact")
class DisruptionImpact(sla.SLA):
    """Limits on each hook firing's impact: the error rate during the hook (a fraction, 0.05 =
    5 %, not a percentage), the recovery time in seconds (a firing that never recovered fails
    it), the p95 ratio and the throughput ratio (during / baseline). At least one limit."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "properties": {
            "max_error_rate_during": {
                "type": "number",
                "minimum": 0.0,
                "maximum": 1.0,
                "description": "Highest error rate of the iterations completed while the hook "
                "ran, as a fraction (0.05 = 5 %).",
            },
            "max_recovery_seconds": {
                "type": "number",
                "minimum": 0.0,
                "description": "Longest recovery, in seconds from the hook's start; a firing "
                "that never recovered fails.",
            },
            "max_p95_ratio": {
                **_RATIO,
                "description": "Highest p95 duration during the hook, as a multiple of the "
                "baseline's.",
            },
            "min_throughput_ratio": {
                **_RATIO,
                "description": "Lowest throughput during the hook, as a fraction of the "
                "baseline's.",
            },
        },
        "minProperties": 1,
        "additionalProperties": False,
    }

    def __init__(self, criterion_value: dict[str, Any]):
        super().__init__(criterion_value)
        self.limits = {key: criterion_value[key] for key, *_ in _CHECKS if key in criterion_value}
        self.received = False
        self.firings = 0  # every entry
        self.checked = 0  # analysed entries
        self.failed = 0
        # (score, entry, sentences, short forms of the limits it is past) of the worst firing
        self.worst: tuple[tuple[float, float], dict[str, Any], list[str], list[str]] | None = None

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        return True  # judged on the impact, after the load

    def add_impact(self, impacts: list[dict[str, Any]]) -> bool:
        self.received = True
        self.firings = len(impacts)
        self.checked = self.failed = 0
        self.worst = None
        for entry in impacts:
            if not impact_analysis.analysed(entry):
                continue
            self.checked += 1
            score, parts, over = self._judge(entry)
            if over:
                self.failed += 1
            if self.worst is None or score > self.worst[0]:
                self.worst = (score, entry, parts, over)
        self.success = self.checked > 0 and self.failed == 0
        return self.success

    def _judge(self, entry: dict[str, Any]) -> tuple[tuple[float, float], list[str], list[str]]:
        """((how far past its limits at most, 1 = at a limit; in all), the sentences, the
        short forms of the limits it is past: none when within every limit)."""
        score, total, parts, over = 0.0, 0.0, [], []
        for key, field, label, unit, at_most in _CHECKS:
            if key not in self.limits:
                continue
            limit = float(self.limits[key])
            value = _value(entry, field)
            sign = "<=" if at_most else ">="
            if value is None:
                if key != "max_recovery_seconds" or entry.get("recovered") is not False:
                    continue  # e.g. no successful iteration during the hook: no p95 ratio
                parts.append(f"{label} never <= {_fmt(limit, unit)}")
                over.append(f"{label} never <= {_short(limit, unit)}")
                score, total = math.inf, math.inf
                continue
            if not (value <= limit if at_most else value >= limit):
                past = ">" if at_most else "<"
                over.append(f"{label} {_short(value, unit)} {past} {_short(limit, unit)}")
            if at_most:
                ratio = value / limit if limit else (math.inf if value > 0 else 0.0)
            else:
                ratio = limit / value if value else (math.inf if limit > 0 else 0.0)
            score, total = max(score, ratio), total + ratio
            parts.append(f"{label} {_fmt(value, unit)} {sign} {_fmt(limit, unit)}")
        return (score, total), parts, over

    def details(self) -> str:
        if not self.received or not self.checked:
            unanalysed = f" ({self.firings} firing(s) without a verdict)" if self.firings else ""
            return f"No disruption was analysed{unanalysed} - {self.status()}"
        assert self.worst is not None
        _, entry, parts, _ = self.worst
        by = entry.get("triggeredBy") or {}
        name = entry.get("name") or "hook"
        where = f"hook #{int(entry.get('hook', 0)) + 1} {name} at {by.get('eventType')} "
        where += str(by.get("value"))
        failing = f", {self.failed} of {self.checked} failing" if self.failed else ""
        return (
            f"Disruption impact of {self.checked} firing(s){failing}; worst {where}: "
            f"{', '.join(parts) or 'nothing to check'} - {self.status()}"
        )

    def short(self) -> str:
        over = self.worst[3] if self.worst else []
        return f"{self.get_name()} {', '.join(over)}" if over else ""

    def result(self) -> dict[str, Any]:
        if not self.received or not self.checked:
            self.success = False
        return super().result()


def _value(entry: dict[str, Any], field: str) -> float | None:
    if field == "errorRate":
        during = entry.get("during") or {}
        value = during.get("errorRate")
    else:
        value = entry.get(field)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.2f}%"
    if unit == "s":
        return f"{value:.2f}s"
    return f"{value:.2f}"


def _short(value: float, unit: str) -> str:
    """:func:`_fmt` without trailing zeros: '20%', '3', '10s'."""
    number = value * 100 if unit == "%" else value
    return sla.two_decimals(number) + ("%" if unit == "%" else "s" if unit == "s" else "")
