"""BenchmarkSchedule's pure core: slots, concurrency, task names, history. No Kubernetes here
(like :mod:`krally.task`): the operator feeds it the schedule's spec and status, its tasks and
the time, and applies what it decides.

- :mod:`.slots`: parse ``spec.schedule``/``spec.timeZone`` (:func:`parse_schedule`), the slots
  (:func:`next_slot`, :func:`latest_slot`) and what is due now (:func:`due` → :class:`Decision`).
- :mod:`.policy`: ``spec.concurrencyPolicy`` (:func:`concurrency`).
- :mod:`.naming`: the deterministic task names (:func:`task_name`, :func:`run_now_task_name`).
- :mod:`.history`: the history limits (:func:`prune`).
"""

from krally.schedule.history import FinishedTask, last_finished, last_successful_time, prune
from krally.schedule.naming import (
    label_value,
    name_prefix,
    run_now_pending,
    run_now_task_name,
    task_name,
)
from krally.schedule.policy import Concurrency, ConcurrencyPolicy, TaskState, concurrency
from krally.schedule.slots import (
    Decision,
    Schedule,
    ScheduleError,
    count_slots,
    due,
    latest_slot,
    next_slot,
    parse_duration,
    parse_schedule,
    parse_time_zone,
)

__all__ = [
    "Concurrency",
    "ConcurrencyPolicy",
    "Decision",
    "FinishedTask",
    "Schedule",
    "ScheduleError",
    "TaskState",
    "concurrency",
    "count_slots",
    "due",
    "label_value",
    "last_finished",
    "last_successful_time",
    "latest_slot",
    "name_prefix",
    "next_slot",
    "parse_duration",
    "parse_schedule",
    "parse_time_zone",
    "prune",
    "run_now_pending",
    "run_now_task_name",
    "task_name",
]
