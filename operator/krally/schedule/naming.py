"""Names of the tasks a BenchmarkSchedule makes: deterministic, at most 63 characters.

The name is the whole idempotency key: whoever creates the task of a slot (after a restart, a
second replica, a retry) creates the same name, and the API server's AlreadyExists makes it
once. A task name is also a label value (``krally.dev/task``), hence 63 characters at most.

- slot task: ``<prefix>-<unix seconds of the slot>`` (CronJob writes ``<name>-<minutes>``;
  ``@every 5s`` needs seconds), e.g. ``nightly-1711848600``;
- run-now task: ``<prefix>-run-<first 8 hex of sha256(value)>``, e.g. ``nightly-run-3f2a9c1b``.

``<prefix>`` is the schedule's name when it has at most 50 characters; a longer name is cut to
41 characters (trailing ``-`` and ``.`` dropped) plus ``-`` and the first 8 hex digits of the
sha256 of the whole name, so two long names sharing their first 41 characters still differ.
Both forms fit 63 characters until the year 2286 (10-digit seconds) and never collide with each
other (``run-`` is not digits).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Final

MAX_NAME: Final = 63
# 63 - len("-run-") - 8 hex: the longer of the two suffixes.
MAX_PREFIX: Final = MAX_NAME - 13
_HASH: Final = 8


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH]


def _cut(name: str, limit: int) -> str:
    """``name`` if it fits ``limit``, else its head and a hash of all of it."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - _HASH - 1].rstrip('-.')}-{_short_hash(name)}"


def name_prefix(schedule_name: str) -> str:
    """The part of every task name that comes from the schedule's name (at most 50 chars)."""
    if not schedule_name:
        raise ValueError("schedule name must not be empty")
    return _cut(schedule_name, MAX_PREFIX)


def slot_seconds(slot: datetime) -> int:
    """The slot as whole seconds since the Unix epoch (the name's suffix)."""
    if slot.tzinfo is None:
        raise ValueError(f"slot must be an aware datetime, got {slot!r}")
    seconds = int(slot.astimezone(UTC).timestamp() // 1)
    if seconds < 0:
        raise ValueError(f"slot before 1970: {slot!r}")
    return seconds


def task_name(schedule_name: str, slot: datetime) -> str:
    """``<prefix>-<unix seconds>``: the one name of the task of ``slot``."""
    return f"{name_prefix(schedule_name)}-{slot_seconds(slot)}"


def run_now_task_name(schedule_name: str, value: str | None) -> str | None:
    """``<prefix>-run-<hash of value>`` for a ``krally.dev/run-now`` value; None when the
    annotation is absent or empty (no request)."""
    if not value:
        return None
    return f"{name_prefix(schedule_name)}-run-{_short_hash(value)}"


def run_now_pending(
    schedule_name: str, value: str | None, handled_task: str | None, *, first_seen: bool
) -> str | None:
    """The run-now task to start, or None.

    ``handled_task`` is ``status.lastRunNow.task`` (the latest value already dealt with); a
    value is dealt with once, so deleting its task (history limits) never starts it again.
    ``first_seen``: the schedule has no status yet; the value it was created with is recorded,
    not run (no task on creation; a GitOps re-create does not rerun). Bump the value to run.
    """
    name = run_now_task_name(schedule_name, value)
    if name is None or name == handled_task or first_seen:
        return None
    return name


def label_value(schedule_name: str) -> str:
    """The schedule's name as a label value (``krally.dev/schedule``): cut and hashed past 63."""
    return _cut(schedule_name, MAX_NAME)
