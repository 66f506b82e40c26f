"""Hook Jobs in flight, bounded: at most ``KRALLY_MAX_HOOK_JOBS`` unfinished hook Jobs per task.

Firings beyond the bound wait for their Job, oldest first (the order the runner recorded
them); each finished Job makes room for the next (its watch event plans the task again). A
firing that waited says so in its result (``queuedSeconds``, derived by
:func:`krally.kube.operator.status.hooks.queued_seconds`: from the firing to its Job's
creation). Finished hook Jobs are deleted once the task's status holds their final result
(the status keeps it; the planner never re-creates a firing whose result is recorded), so a
task of many firings does not leave as many Jobs and pods behind (``KRALLY_KEEP_HOOK_JOBS=1``
keeps them).

Pure: the planner calls these on what it knows; no Kubernetes calls here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from krally.api.names import LABEL_ROLE, ROLE_HOOK
from krally.api.types import HOOK_FINAL
from krally.kube.operator.status.observed import job_state, previous_results

Obj = dict[str, Any]
T = TypeVar("T")


def _is_hook(job: Mapping[str, Any]) -> bool:
    labels = (job.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_ROLE) == ROLE_HOOK


def _finished(job: Mapping[str, Any]) -> bool:
    return job_state(dict(job))[0] in ("complete", "failed")


def in_flight(jobs: Iterable[Mapping[str, Any]], pending: Iterable[str], stopped: set[str]) -> int:
    """Unfinished hook Jobs: those the watch shows (not stopped) plus ``pending`` creates the
    watch has not shown yet."""
    seen = 0
    names = set()
    for job in jobs:
        name = (job.get("metadata") or {}).get("name")
        names.add(name)
        if _is_hook(job) and name not in stopped and not _finished(job):
            seen += 1
    return seen + sum(1 for name in pending if name not in names)


def admit(wanted: Sequence[T], room: int) -> list[T]:
    """The oldest ``room`` of ``wanted`` (in firing order); the rest wait for a later pass."""
    return list(wanted[: max(0, room)])


def recorded_and_finished(task: Obj, jobs: Iterable[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """(name, uid) of the finished hook Jobs whose final result the task's status holds."""
    previous = previous_results(task.get("status") or {})
    done: list[tuple[str, Any]] = []
    for job in jobs:
        meta = job.get("metadata") or {}
        name = str(meta.get("name") or "")
        if not _is_hook(job) or meta.get("deletionTimestamp") or not _finished(job):
            continue
        if (previous.get(name) or {}).get("status") in HOOK_FINAL:
            done.append((name, meta.get("uid")))
    return done
