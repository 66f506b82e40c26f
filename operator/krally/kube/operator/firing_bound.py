"""The bound on firings per task: each firing is one hook Job, so a task whose triggers can fire
more than ``KRALLY_MAX_FIRINGS`` times is refused at apply (and by the operator's own
admission), naming the trigger and the count.

A trigger's firings are what its plugin lists ahead (``upcoming(config, iterations)``): an
iteration-unit trigger counts up to the runner's ``times``; a time-unit one counts over the
runner's duration where it is known (its plugin's ``expected_duration``, e.g.
``constant_for_duration``; ``spec.runnerPod.timeoutSeconds`` caps it). A trigger whose firings
cannot be counted (a third-party trigger that does not list them, an endless trigger of a load
of unknown length, e.g. an iteration ``periodic`` without ``end`` of ``constant_for_duration``)
is not refused here: the runner records at most ``krally.api.wire.MAX_FIRINGS`` (500)
firings of any task, the ceiling of this setting, and drops the rest (``droppedFirings``).

Pure: no Kubernetes, testable without a cluster.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from krally import consts
from krally.errors import PluginNotFound
from krally.task.runner import ScenarioRunner
from krally.task.trigger import Trigger


def _runner_bounds(spec: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """(iterations, seconds) the load runs, each None when unknown."""

    runner = dict(spec.get("runner") or {"type": "serial"})
    iterations: int | None = None
    duration: float | None = None
    try:
        runner_cls = ScenarioRunner.get(str(runner.pop("type", "serial")))
        iterations = runner_cls.expected_iterations(runner)
        duration = runner_cls.expected_duration(runner)
    except (PluginNotFound, TypeError, ValueError):
        pass
    runner_pod = spec.get("runnerPod")
    deadline = runner_pod.get("timeoutSeconds") if isinstance(runner_pod, Mapping) else None
    if isinstance(deadline, int | float):
        duration = float(deadline) if duration is None else min(duration, float(deadline))
    return iterations, duration


_EXACT_UP_TO = 100_000


def count(
    values: Iterable[Any], unit: str, duration: float | None, cap: int
) -> tuple[int, bool] | None:
    """(how many of ``values`` fire, whether that is exact): time values only up to
    ``duration`` (past :data:`_EXACT_UP_TO` values, counted up to ``cap`` + 1: enough to know
    it is over the bound, not exact); None when endless with no duration to cut it."""
    if unit == consts.EventUnit.TIME and duration is not None:
        limit = math.floor(duration)
        if isinstance(values, range) and values.step > 0:
            return len(range(values.start, min(values.stop, limit + 1), values.step)), True
        values = itertools.takewhile(lambda v: not isinstance(v, int) or v <= limit, values)
        # Whole seconds from 0: at most limit + 1 values (counted exactly up to a sane size).
        cap = max(cap, min(limit + 1, _EXACT_UP_TO))
    elif isinstance(values, range | list | tuple):
        return len(values), True
    else:
        return None  # endless, the load's length unknown: the runner's cap bounds it
    counted = sum(1 for _ in itertools.islice(values, cap + 1))
    return counted, counted <= cap


def problems(spec: Mapping[str, Any], max_firings: int) -> list[str]:
    """One problem per trigger that fires more than ``max_firings`` times, and one when the
    hooks together do."""

    iterations, duration = _runner_bounds(spec)
    found: list[str] = []
    total = 0
    for index, hook in enumerate(spec.get("hooks") or []):
        if not isinstance(hook, Mapping):
            continue
        trigger = hook.get("trigger") or {}
        args = trigger.get("args") or {}
        try:
            values = Trigger.get(str(trigger.get("name"))).upcoming(args, iterations)
        except (PluginNotFound, TypeError, ValueError, AttributeError):
            continue  # an unknown or invalid trigger is refused by the spec's validation
        if values is None:
            continue
        unit = str(args.get("unit", ""))
        counted = count(values, unit, duration, max_firings)
        if counted is None:
            continue
        fired, exact = counted
        total += fired
        if fired > max_firings:
            amount = str(fired) if exact else f"more than {max_firings}"
            found.append(
                f"spec.hooks[{index}].trigger: {trigger.get('name')} fires "
                f"{amount} times{_over(unit, iterations, duration)}, "
                f"more than the operator's bound of {max_firings} firings per task "
                "(KRALLY_MAX_FIRINGS; each firing is a Job)"
            )
    if not found and total > max_firings:
        found.append(
            f"spec.hooks: the triggers fire {total} times together, more than the operator's "
            f"bound of {max_firings} firings per task (KRALLY_MAX_FIRINGS; each firing is a Job)"
        )
    return found


def _over(unit: str, iterations: int | None, duration: float | None) -> str:
    if unit == consts.EventUnit.TIME and duration is not None:
        return f" over the runner's {duration:g} s"
    if unit == consts.EventUnit.ITERATION and iterations is not None:
        return f" over the runner's {iterations} iterations"
    return ""
