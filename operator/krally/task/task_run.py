"""Runs a whole task: its workloads in order (each in one process, or spread over shards), and
Rally's JSON report of them (format_version 1.2)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import krally
from krally.task.engine import run_workload
from krally.task.result import FORMAT_VERSION, ProgressCallback, iso_time
from krally.task.spec import TaskSpec, WorkloadSpec
from krally.task.spread import run_spread


def run_task(
    task: TaskSpec,
    *,
    launcher: Any = None,
    on_progress: ProgressCallback | None = None,
    on_workload: Callable[[int, WorkloadSpec], None] | None = None,
    abort: threading.Event | None = None,
    abort_on_sla_failure: bool = False,
    results: Any = None,
) -> dict[str, Any]:
    """Run every workload in order and return Rally's JSON report (format_version 1.2).

    Each workload is its own subtask (Rally's v1 groups a scenario's workloads; the numbers are
    the same). With ``abort_on_sla_failure`` an SLA failure also skips the remaining workloads,
    as Rally does. ``results`` (e.g. ``krally.results.stream.RallyJSONWriter``) gets
    ``begin_workload(position, workload)``, every ``record`` and ``end_workload(result,
    subtask)``.
    """
    created_at = iso_time(time.time())
    subtasks = []
    stopped = False
    for position, workload in enumerate(task.workloads):
        if stopped or (abort is not None and abort.is_set()):
            break
        if on_workload is not None:
            on_workload(position, workload)
        if results is not None:
            results.begin_workload(position, workload)
        run = run_spread if workload.parallelism > 1 else run_workload
        result = run(
            workload,
            launcher=launcher,
            on_progress=on_progress,
            abort=abort,
            abort_on_sla_failure=abort_on_sla_failure,
            task=task,
            position=position,
            on_record=results.record if results is not None else None,
        )
        stopped = abort_on_sla_failure and not result["pass_sla"]
        subtasks.append(_subtask(workload, result))
        if results is not None:
            results.end_workload(result, subtasks[-1])
    return _report(task, subtasks, created_at)


def _subtask(workload: WorkloadSpec, result: dict[str, Any]) -> dict[str, Any]:
    """Each workload is its own subtask in Rally's report."""
    status = "crashed" if "error" in result else ("aborted" if result["aborted"] else "finished")
    return {
        "uuid": str(uuid.uuid4()),
        "title": workload.description or workload.scenario_name,
        "description": workload.description or "",
        "status": status,
        "created_at": result["created_at"],
        "updated_at": result["updated_at"],
        "sla": {},
        "workloads": [result],
    }


def _report(task: TaskSpec, subtasks: list[dict[str, Any]], created_at: str) -> dict[str, Any]:
    """Rally's JSON report of the task's subtasks: the task crashed or aborted if one did."""
    statuses = {s["status"] for s in subtasks}
    status = next((s for s in ("crashed", "aborted") if s in statuses), "finished")
    return {
        "info": {
            "rally_version": f"krally {krally.__version__}",
            "generated_at": iso_time(time.time()),
            "format_version": FORMAT_VERSION,
        },
        "tasks": [
            {
                "uuid": str(uuid.uuid4()),
                "title": task.title,
                "description": task.description or "",
                "status": status,
                "tags": [],
                "env_uuid": "",
                "env_name": "local",
                "created_at": created_at,
                "updated_at": iso_time(time.time()),
                "pass_sla": all(w["pass_sla"] for s in subtasks for w in s["workloads"]),
                "subtasks": subtasks,
                "warnings": list(task.warnings),
            }
        ],
    }
