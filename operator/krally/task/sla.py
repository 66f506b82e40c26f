"""SLA plugins: success criteria evaluated as iteration records arrive (Rally's ``sla`` module).

``SLAChecker({"failure_rate": {"max": 0}, ...})`` builds one SLA plugin per criterion;
``add_iteration(record)`` feeds them all and returns False as soon as one fails (the engine may
then abort the load); after the load, ``add_impact(impacts)`` gives the per-firing disruption
impact to the criteria that define ``add_impact`` (e.g. ``disruption_impact``); ``results()``
is Rally's list of ``{criterion, success, detail}``, plus the pseudo-criteria
``aborted_on_sla``, ``aborted_manually`` and ``something_went_wrong``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from krally.consts import JSON_SCHEMA
from krally.errors import InvalidConfig
from krally.task import plugin

S = TypeVar("S", bound=type)

# A number of seconds > 0 (Rally's schema of every duration limit).
POSITIVE_NUMBER = {"type": "number", "minimum": 0.0, "exclusiveMinimum": True}


class SLA(plugin.Plugin, kind="sla"):
    """Base of SLA plugins: ``criterion_value`` is the plugin's config."""

    def __init__(self, criterion_value: Any):
        self.criterion_value = criterion_value
        self.success = True

    def add_iteration(self, iteration: dict[str, Any]) -> bool:
        """Account for one record; return whether the criterion still holds."""
        raise NotImplementedError

    def merge(self, other: SLA) -> bool:
        raise NotImplementedError(f"SLA {self.get_name()!r} cannot be merged")

    # -- a distributed load: each runner pod judges its shard, the merge judges the load -------

    @classmethod
    def mergeable(cls) -> bool:
        """Whether results of several runner pods can be combined (Rally's ``merge``)."""
        return cls.merge is not SLA.merge

    def to_state(self) -> dict[str, Any]:
        """This criterion's counters, JSON-safe (its attributes; the config is not repeated)."""
        return {k: _encode(v) for k, v in vars(self).items() if k != "criterion_value"}

    @classmethod
    def from_state(cls, criterion_value: Any, state: dict[str, Any]) -> SLA:
        """A criterion built from its config, with the counters :meth:`to_state` gave."""
        criterion = cls(criterion_value)
        for key, value in state.items():
            setattr(criterion, key, _decode(value, getattr(criterion, key, None)))
        return criterion

    def details(self) -> str:
        raise NotImplementedError

    def short(self) -> str:
        """A failed criterion in a few words for ``kubectl get``: what was measured against which
        limit (``failure_rate 2.1% > 1%``). '' when it passed or has no such form; the display
        then shows the criterion and its detail's first line."""
        return ""

    def status(self) -> str:
        return "Passed" if self.success else "Failed"

    def result(self) -> dict[str, Any]:
        result = {"criterion": self.get_name(), "success": self.success, "detail": self.details()}
        short = "" if self.success else self.short()
        if short:
            result["short"] = short
        return result


class SecondsLimit(SLA):
    """Base of criteria whose config is one limit in seconds: ``measured`` must stay at most
    ``criterion_value``; ``details()`` says so in Rally's words (``LABEL``)."""

    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"$schema": JSON_SCHEMA, **POSITIVE_NUMBER}
    LABEL: ClassVar[str] = ""

    @property
    def measured(self) -> float:
        raise NotImplementedError

    def check(self) -> bool:
        self.success = self.measured <= self.criterion_value
        return self.success

    def details(self) -> str:
        return f"{self.LABEL} {self.measured:.2f}s <= {self.criterion_value:.2f}s - {self.status()}"

    def short(self) -> str:
        limit = two_decimals(self.criterion_value)
        return f"{self.get_name()} {two_decimals(self.measured)}s > {limit}s"


def two_decimals(value: float) -> str:
    """Rally's two decimals without trailing zeros: 2.10 -> '2.1', 1.00 -> '1'."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def configure(name: str, platform: str = "default") -> Callable[[S], S]:
    """Register an SLA subclass as criterion ``name`` (Rally: ``@sla.configure(name=...)``)."""
    return plugin.configure(SLA, name, platform)


def validate(config: Any, path: str = "sla") -> list[InvalidConfig]:
    """Every problem of a workload's ``sla`` section (unknown criteria, bad values)."""
    if not isinstance(config, dict):
        return [InvalidConfig(path, f"must be an object, got {type(config).__name__}")]
    problems: list[InvalidConfig] = []
    for name, value in config.items():
        problems += SLA.validate(name, value, plugin.join_path(path, [name]))
    return problems


class StreamingStats:
    """Running count/mean/sample-std/min/max in O(1) memory (Welford's method)."""

    __slots__ = ("_m2", "count", "max", "mean", "min")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    @property
    def std(self) -> float | None:
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else None


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    slots = getattr(type(value), "__slots__", None)
    if slots is not None:  # e.g. StreamingStats
        return {"slots": {name: _encode(getattr(value, name)) for name in slots}}
    raise TypeError(f"{type(value).__name__} cannot cross runner pods")


def _decode(value: Any, current: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v, None) for v in value]
    if not isinstance(value, dict):
        return value
    if "float" in value:
        return float(value["float"])
    if "dict" in value:
        return {_decode(k, None): _decode(v, None) for k, v in value["dict"]}
    if "slots" in value and current is not None:
        for name, item in value["slots"].items():
            setattr(current, name, _decode(item, getattr(current, name, None)))
        return current
    raise ValueError(f"not a criterion state: {value!r:.80}")


class SLAChecker:
    """All SLA criteria of one workload."""

    def __init__(self, sla_config: dict[str, Any] | None):
        config = dict(sla_config or {})
        problems = validate(config)
        if problems:
            raise problems[0]
        self.criteria: list[SLA] = [SLA.get(name)(value) for name, value in config.items()]
        self.aborted_on_sla = False
        self.aborted_manually = False
        self.unexpected_failure: BaseException | str | None = None

    def add_iteration(self, record: dict[str, Any]) -> bool:
        """Feed every criterion (none is skipped); False if any currently fails."""
        ok = True
        for criterion in self.criteria:
            if not criterion.add_iteration(record):
                ok = False
        return ok

    def add_impact(self, impacts: list[dict[str, Any]]) -> bool:
        """After the load: the per-firing disruption impact (:mod:`krally.task.impact`) to every
        criterion that defines ``add_impact(impacts) -> bool``; False if any of them fails."""
        ok = True
        for criterion in self.criteria:
            add = getattr(criterion, "add_impact", None)
            if add is not None and not add(impacts):
                ok = False
        return ok

    def to_state(self) -> dict[str, Any]:
        """Every criterion's counters and the flags, JSON-safe (a runner pod's shard)."""
        return {
            "criteria": [c.to_state() for c in self.criteria],
            "abortedOnSLA": self.aborted_on_sla,
            "abortedManually": self.aborted_manually,
            "unexpectedFailure": None
            if self.unexpected_failure is None
            else str(self.unexpected_failure),
        }

    @classmethod
    def merged(cls, sla_config: dict[str, Any] | None, states: list[dict[str, Any]]) -> SLAChecker:
        """The load's verdict from its shards' states: each criterion rebuilt per shard and
        combined with its ``merge``; a flag set in any shard is set."""
        checker = cls(sla_config)
        for position, criterion in enumerate(checker.criteria):
            parts = [
                type(criterion).from_state(criterion.criterion_value, state["criteria"][position])
                for state in states
            ]
            if parts:
                checker.criteria[position] = combined = parts[0]
                for part in parts[1:]:
                    combined.merge(part)
        checker.aborted_on_sla = any(s.get("abortedOnSLA") for s in states)
        checker.aborted_manually = any(s.get("abortedManually") for s in states)
        failures = [s["unexpectedFailure"] for s in states if s.get("unexpectedFailure")]
        checker.unexpected_failure = "; ".join(failures) if failures else None
        return checker

    def set_aborted_on_sla(self) -> None:
        self.aborted_on_sla = True

    def set_aborted_manually(self) -> None:
        self.aborted_manually = True

    def set_unexpected_failure(self, exc: BaseException | str) -> None:
        self.unexpected_failure = exc

    def results(self) -> list[dict[str, Any]]:
        results = [criterion.result() for criterion in self.criteria]
        if self.aborted_on_sla:
            results.append(
                {
                    "criterion": "aborted_on_sla",
                    "success": False,
                    "detail": "Task was aborted due to SLA failure(s).",
                }
            )
        if self.aborted_manually:
            results.append(
                {
                    "criterion": "aborted_manually",
                    "success": False,
                    "detail": "Task was aborted due to abort signal.",
                }
            )
        if self.unexpected_failure is not None:
            results.append(
                {
                    "criterion": "something_went_wrong",
                    "success": False,
                    "detail": f"Unexpected error: {self.unexpected_failure}",
                }
            )
        return results

    def passed(self) -> bool:
        """Rally's ``pass_sla``."""
        return all(result["success"] for result in self.results())
