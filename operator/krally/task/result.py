"""What a workload's run gives: its progress snapshots and Rally's workload result, built from
the bounded statistics and the SLA verdict of one run or of a distributed load's merged shards."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from krally.api.times import format_time
from krally.task.spec import WorkloadSpec

# Rally's JSON report format that `rally task import` reads.
FORMAT_VERSION = "1.2"


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress bars and the runner pod's status writes."""

    done: int
    total: int | None
    failures: int
    hooks_fired: int
    hooks_finished: int
    elapsed: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[Progress], None]


def assemble_result(
    workload: WorkloadSpec,
    stats: Any,
    sla: Any,
    hooks: list[dict[str, Any]],
    *,
    position: int,
    created_at: str,
    full_duration: float,
    contexts_results: list[Any],
    warnings: list[str],
    aborted: bool,
    impact: list[dict[str, Any]] | None = None,
    error: list[Any] | None = None,
) -> dict[str, Any]:
    """Rally's workload result from the statistics (a WorkloadStats) and the SLA verdict (an
    SLAChecker): one run's, or a distributed load's merged ones."""
    sla_results = sla.results()
    result: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "description": workload.description or "",
        "position": position,
        "scenario": {workload.scenario_name: workload.scenario_args},
        "runner": {workload.runner_type: workload.runner_args},
        "contexts": dict(workload.contexts),
        "hooks": hooks,
        "sla": dict(workload.sla),
        "sla_results": {"sla": sla_results},
        "pass_sla": all(item.get("success") for item in sla_results),
        "created_at": created_at,
        "updated_at": iso_time(time.time()),
        "full_duration": full_duration,
        "contexts_results": contexts_results,
        "warnings": warnings,
        "aborted": aborted,
        "timeline": stats.timeline(),
        "timeline_start": stats.timeline_start,
        "histogram": stats.durations.bins(),
    }
    result.update(workload_durations(stats))
    if impact is not None:
        result["impact"] = impact
    if error is not None:
        result["error"] = error
    return result


def workload_durations(stats: Any) -> dict[str, Any]:
    """The Rally duration fields, from the bounded statistics (H3's WorkloadStats)."""
    every = stats.durations.summary()  # failed iterations included, like Rally's min/max
    return {
        "statistics": {"durations": stats.statistics()},
        "total_iteration_count": stats.iterations,
        "failed_iteration_count": stats.failures,
        "min_duration": every.get("min"),
        "max_duration": every.get("max"),
        "start_time": stats.start_time,
        "load_duration": stats.load_duration,
    }


def iso_time(epoch: float) -> str:
    return format_time(epoch, digits=0, zone=False)
