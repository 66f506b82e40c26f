"""concurrencyPolicy: what to do with a due task while earlier ones of the schedule still run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from krally.api.schedule_schema import CONCURRENCY_POLICIES, DEFAULT_CONCURRENCY_POLICY
from krally.api.types import TERMINAL
from krally.schedule.slots import ScheduleError

FIELD_POLICY: Final = "spec.concurrencyPolicy"


class ConcurrencyPolicy(StrEnum):
    """The values of spec.concurrencyPolicy (the schema's enum, CONCURRENCY_POLICIES)."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


# Event/condition reasons.
REASON_NONE_ACTIVE: Final = "NoneActive"
REASON_ALLOWED: Final = "ConcurrentAllowed"
REASON_FORBIDDEN: Final = "TaskAlreadyActive"
REASON_REPLACED: Final = "ReplacedActive"


@dataclass(frozen=True)
class TaskState:
    """A task of the schedule: its name and ``status.phase`` (None: no status yet)."""

    name: str
    phase: str | None = None

    @property
    def active(self) -> bool:
        # No phase yet means just created: it will run, so it counts.
        return self.phase not in TERMINAL


@dataclass(frozen=True)
class Concurrency:
    """``start``: create the due task; ``abort``: set spec.abort on these first (Replace);
    ``reason``/``message``: for the Event and status.message."""

    start: bool
    abort: tuple[str, ...]
    reason: str
    message: str


def parse_policy(value: str | None) -> ConcurrencyPolicy:
    if value is None:
        return ConcurrencyPolicy(DEFAULT_CONCURRENCY_POLICY)
    try:
        return ConcurrencyPolicy(value)
    except ValueError:
        raise ScheduleError(
            FIELD_POLICY, f"{value!r} is not one of {', '.join(CONCURRENCY_POLICIES)}"
        ) from None


def concurrency(policy: str | None, tasks: Iterable[TaskState], due_task: str) -> Concurrency:
    """Whether to start ``due_task`` given the schedule's ``tasks`` (finished ones are ignored,
    as is ``due_task`` itself: it may exist from before a restart)."""
    chosen = parse_policy(policy)
    active = sorted(t.name for t in tasks if t.active and t.name != due_task)
    if not active:
        return Concurrency(True, (), REASON_NONE_ACTIVE, f"started {due_task}")
    names = ", ".join(active)
    if chosen is ConcurrencyPolicy.ALLOW:
        return Concurrency(
            True, (), REASON_ALLOWED, f"started {due_task} while {names} still run (Allow)"
        )
    if chosen is ConcurrencyPolicy.FORBID:
        return Concurrency(
            False,
            (),
            REASON_FORBIDDEN,
            f"skipped {due_task}: {names} still running (concurrencyPolicy Forbid)",
        )
    return Concurrency(
        True,
        tuple(active),
        REASON_REPLACED,
        f"aborted {names} to start {due_task} (concurrencyPolicy Replace)",
    )
