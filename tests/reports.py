"""Reports made by the real engine, in-process, for the report writers' tests."""

from __future__ import annotations

from typing import Any

from krally.task.spec import HookSpec, TaskSpec, WorkloadSpec
from krally.task.task_run import run_task


def event_hook(action: str, args: Any, at: list[int]) -> HookSpec:
    """A hook fired at these iterations."""
    return HookSpec(
        action_name=action,
        action_args=args,
        trigger_name="event",
        trigger_args={"unit": "iteration", "at": at},
    )


def run_report(*workloads: WorkloadSpec, title: str) -> dict[str, Any]:
    return run_task(TaskSpec(title=title, workloads=workloads))
