"""History limits: which finished tasks of a schedule to delete, and what the last result was."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from krally.api.types import SUCCEEDED, TERMINAL


@dataclass(frozen=True)
class FinishedTask:
    """A task of the schedule: ``phase`` is its status.phase, ``finished_at`` its
    status.finishedAt (None: unknown, sorted as the oldest)."""

    name: str
    phase: str | None
    finished_at: datetime | None = None


def _order(task: FinishedTask) -> tuple[float, str]:
    # Oldest first; the name breaks ties, so every replica picks the same tasks.
    return (task.finished_at.timestamp() if task.finished_at else float("-inf"), task.name)


def _finished(tasks: Iterable[FinishedTask]) -> list[FinishedTask]:
    return sorted((t for t in tasks if t.phase in TERMINAL), key=_order)


def prune(
    tasks: Iterable[FinishedTask], successful_limit: int | None, failed_limit: int | None
) -> list[str]:
    """Names of the tasks to delete, oldest first: Succeeded beyond ``successful_limit``,
    Failed and Aborted beyond ``failed_limit`` (None: keep all). Tasks not finished are never
    returned."""
    for limit in (successful_limit, failed_limit):
        if limit is not None and limit < 0:
            raise ValueError(f"history limits must be >= 0, got {limit}")
    finished = _finished(tasks)
    doomed: list[FinishedTask] = []
    for keep, group in (
        (successful_limit, [t for t in finished if t.phase == SUCCEEDED]),
        (failed_limit, [t for t in finished if t.phase != SUCCEEDED]),
    ):
        if keep is not None and len(group) > keep:
            doomed.extend(group[: len(group) - keep])
    return [t.name for t in sorted(doomed, key=_order)]


def last_finished(tasks: Iterable[FinishedTask]) -> FinishedTask | None:
    """The most recently finished task (status.lastResult is its phase)."""
    finished = _finished(tasks)
    return finished[-1] if finished else None


def last_successful_time(tasks: Iterable[FinishedTask]) -> datetime | None:
    """When the latest Succeeded task finished (status.lastSuccessfulTime)."""
    times = [t.finished_at for t in tasks if t.phase == SUCCEEDED and t.finished_at]
    return max(times) if times else None
