"""One BenchmarkSchedule pass, planned from what the API shows (pure: no API call here).

From the schedule object, the tasks it owns and the time, :func:`plan` says which task to
create (the slot's, or the ``krally.dev/run-now`` one), which to abort (``Replace``), which to
delete (history limits), the status to write, the Events to post and when to look again. The
slot logic is :mod:`krally.schedule`'s. Exactly once per slot: a slot's task name derives from
the slot, ``lastSlotTime`` is written only after the task exists (a crash in between finds the
task and records it), and a task that already exists is never created again.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from krally.api import names
from krally.api.schedule_schema import (
    ACCEPTED,
    DEFAULT_FAILED_HISTORY,
    DEFAULT_SUCCESSFUL_HISTORY,
    SUSPENDED,
)
from krally.api.times import rfc3339
from krally.api.types import TERMINAL
from krally.schedule import (
    FinishedTask,
    ScheduleError,
    TaskState,
    concurrency,
    due,
    label_value,
    last_finished,
    last_successful_time,
    parse_schedule,
    prune,
    run_now_pending,
    run_now_task_name,
    task_name,
)

Obj = dict[str, Any]
# Look again at least this often (a clock jump, a lost timer): a pass is cheap.
RESYNC_SECONDS = 300.0
# A timer fires a little after the slot, so that the pass sees it as passed.
SLOT_MARGIN = 0.05


@dataclass
class SchedulePlan:
    creates: list[Obj] = field(default_factory=list)
    aborts: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _stamp(value: dt.datetime | None) -> str | None:
    return rfc3339(value.timestamp()) if value is not None else None


def _condition(status: Obj, type_: str, ok: bool, reason: str, message: str, now: str) -> Obj:
    previous: Obj = next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})
    value = "True" if ok else "False"
    changed = previous.get("status") != value
    return {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:1024],
        "lastTransitionTime": now if changed else previous.get("lastTransitionTime", now),
    }


def owned(schedule: Obj, task: Obj) -> bool:
    uid = schedule["metadata"].get("uid")
    return any(
        ref.get("kind") == names.SCHEDULE_KIND and ref.get("uid") == uid
        for ref in task.get("metadata", {}).get("ownerReferences") or []
    )


def task_body(schedule: Obj, name: str, annotations: dict[str, str]) -> Obj:
    """The task for a slot or a run-now value: the template, labelled and owned."""
    meta = schedule["metadata"]
    template = (schedule.get("spec") or {}).get("taskTemplate") or {}
    template_meta = template.get("metadata") or {}
    labels = {
        **(template_meta.get("labels") or {}),
        names.LABEL_SCHEDULE: label_value(meta["name"]),
    }
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {**(template_meta.get("annotations") or {}), **annotations},
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": names.SCHEDULE_KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def plan(schedule: Obj, tasks: list[Obj], now: dt.datetime) -> SchedulePlan:
    """One pass: the slot's task, the run-now task, the history to prune, the status."""
    meta = schedule["metadata"]
    spec = schedule.get("spec") or {}
    status = schedule.get("status") or {}
    created = _time(meta.get("creationTimestamp")) or now
    try:
        parsed = parse_schedule(spec.get("schedule") or "", spec.get("timeZone"), anchor=created)
    except ScheduleError as exc:
        return _invalid(schedule, exc, _stamp(now) or "")
    last = _time(status.get("lastSlotTime")) or _time(status.get("lastScheduleTime"))
    decision = due(
        parsed,
        created,
        last,
        now,
        spec.get("startingDeadlineSeconds"),
        suspend=bool(spec.get("suspend")),
    )
    one = _Pass(schedule, [t for t in tasks if owned(schedule, t)], _stamp(now) or "")
    one.slot(decision)
    one.run_now()
    one.history()
    one.write_status(decision.next_slot)
    if decision.requeue_after is not None:
        one.out.requeue_after = min(decision.requeue_after + SLOT_MARGIN, RESYNC_SECONDS)
    else:
        one.out.requeue_after = RESYNC_SECONDS
    return one.out


def _invalid(schedule: Obj, exc: ScheduleError, now_text: str) -> SchedulePlan:
    """A schedule that cannot be parsed: Accepted=False naming the field, and nothing else."""
    status = schedule.get("status") or {}
    out = SchedulePlan()
    text = f"{exc.field}: {exc.message}"
    accepted = _condition(status, ACCEPTED, False, exc.reason, text, now_text)
    if accepted["lastTransitionTime"] == now_text or status.get("message") != text:
        out.events.append(("Warning", exc.reason, text))
    out.status = {
        "observedGeneration": schedule["metadata"].get("generation"),
        "conditions": [accepted],
        "message": text,
    }
    return out  # nothing to wait for: a new spec is a new event


class _Pass:
    """One pass over a valid schedule and the tasks it owns; its steps fill ``out``."""

    def __init__(self, schedule: Obj, mine: list[Obj], now_text: str) -> None:
        self.schedule = schedule
        self.meta = schedule["metadata"]
        self.spec = schedule.get("spec") or {}
        self.status = schedule.get("status") or {}
        self.now_text = now_text
        self.by_name = {t["metadata"]["name"]: t for t in mine}
        self.phases = {n: (t.get("status") or {}).get("phase") for n, t in self.by_name.items()}
        self.states = [TaskState(n, p) for n, p in self.phases.items()]
        self.out = SchedulePlan()
        self.patch: Obj = {}
        self.messages: list[str] = []
        self.created_now: list[str] = []
        self.aborted: set[str] = set()
        self.finished: list[FinishedTask] = []

    def start(self, task: str, annotations: dict[str, str]) -> bool:
        """Create ``task`` unless it exists; the concurrency policy decides. True: it runs."""
        if task in self.by_name:
            return True  # made by an earlier pass that stopped before recording it
        states = [*self.states, *(TaskState(n, None) for n in self.created_now)]
        decision = concurrency(self.spec.get("concurrencyPolicy"), states, task)
        if not decision.start:
            self.messages.append(decision.message)
            return False
        for victim in decision.abort:
            if victim not in self.aborted:
                self.aborted.add(victim)
                self.out.aborts.append(victim)
        self.out.creates.append(task_body(self.schedule, task, annotations))
        self.created_now.append(task)
        return True

    def slot(self, decision: Any) -> None:
        """The due slot's task (or the skip the policy decides), and the slots missed."""
        events, patch = self.out.events, self.patch
        if decision.start is not None:
            slot_task = task_name(self.meta["name"], decision.start)
            slot_text = _stamp(decision.start) or ""
            if self.start(slot_task, {names.ANNOTATION_SCHEDULED_TIME: slot_text}):
                patch["lastScheduleTime"] = slot_text
                if slot_task in self.created_now:
                    aborts = self.out.aborts
                    replaced = f" (Replace: aborted {', '.join(aborts)})" if aborts else ""
                    events.append(("Normal", "Scheduled", f"started {slot_task}{replaced}"))
                    self.messages.append(f"started {slot_task} for the slot {slot_text}")
            else:
                patch["skippedSlots"] = int(self.status.get("skippedSlots") or 0) + 1
                events.append(("Normal", "SkippedSlot", f"slot {slot_text}: {self.messages[-1]}"))
        if decision.slot is not None:
            patch["lastSlotTime"] = _stamp(decision.slot)
        if decision.missed:
            patch["missedSlots"] = int(self.status.get("missedSlots") or 0) + decision.missed
            at_least = "" if decision.missed_exact else "at least "
            why = "past startingDeadlineSeconds" if decision.late else "while the operator was away"
            text = f"{at_least}{decision.missed} slot(s) missed {why}: not started late"
            events.append(("Warning", "MissedSlots", text))

    def run_now(self) -> None:
        """Each new value of the run-now annotation starts one task (GitOps reruns)."""
        name = self.meta["name"]
        value = (self.meta.get("annotations") or {}).get(names.ANNOTATION_RUN_NOW)
        handled = (self.status.get("lastRunNow") or {}).get("task")
        first_seen = not self.status
        if first_seen and value:  # the value a schedule is created with is recorded, not run
            self.patch["lastRunNow"] = {
                "value": value[:256],
                "task": run_now_task_name(name, value),
                "time": self.now_text,
            }
        pending = run_now_pending(name, value, handled, first_seen=first_seen)
        if pending is None or value is None:
            return
        if self.start(pending, {names.ANNOTATION_RUN_NOW: value[:256]}):
            self.patch["lastRunNow"] = {
                "value": value[:256],
                "task": pending,
                "time": self.now_text,
            }
            if pending in self.created_now:
                text = f"started {pending} (run-now {value!r})"
                self.out.events.append(("Normal", "RunNow", text))
        # else (Forbid): left unrecorded, so it starts once the running task ends

    def history(self) -> None:
        """The finished tasks beyond the history limits, oldest first, are deleted."""
        self.finished = [
            FinishedTask(n, self.phases[n], _time((t.get("status") or {}).get("finishedAt")))
            for n, t in self.by_name.items()
            if self.phases[n] in TERMINAL
        ]
        self.out.deletes = prune(
            self.finished,
            self.spec.get("successfulRunsHistoryLimit", DEFAULT_SUCCESSFUL_HISTORY),
            self.spec.get("failedRunsHistoryLimit", DEFAULT_FAILED_HISTORY),
        )

    def active(self) -> list[Obj]:
        """The tasks still running (those created by this pass too), with their slot."""
        slots = {
            n: (self.by_name[n]["metadata"].get("annotations") or {}).get(
                names.ANNOTATION_SCHEDULED_TIME
            )
            for n in sorted(self.by_name)
            if self.phases[n] not in TERMINAL
        }
        for body in self.out.creates:
            note = body["metadata"]["annotations"]
            slots[body["metadata"]["name"]] = note.get(names.ANNOTATION_SCHEDULED_TIME)
        return [
            {"name": n, "slot": slot} if slot is not None else {"name": n, "runNow": True}
            for n, slot in slots.items()
        ]

    def write_status(self, next_slot: dt.datetime | None) -> None:
        suspend = bool(self.spec.get("suspend"))
        active = self.active()
        now_text, status = self.now_text, self.status
        self.patch.update(
            {
                "observedGeneration": self.meta.get("generation"),
                "active": active,
                "activeCount": len(active),
                "nextScheduleTime": None if suspend else _stamp(next_slot),
                "conditions": [
                    _condition(status, ACCEPTED, True, "Valid", "the schedule is valid", now_text),
                    _condition(
                        status,
                        SUSPENDED,
                        suspend,
                        "Suspended" if suspend else "Scheduling",
                        "spec.suspend is true: no task starts"
                        if suspend
                        else "tasks start at their slots",
                        now_text,
                    ),
                ],
            }
        )
        latest = last_finished(self.finished)
        success = last_successful_time(self.finished)
        if latest is not None:
            self.patch["lastResult"] = latest.phase
        if success is not None:
            self.patch["lastSuccessfulTime"] = _stamp(success)
        if self.messages:
            self.patch["message"] = "; ".join(self.messages)[:1024]
        self.out.status = self.patch
