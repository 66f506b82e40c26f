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
    meta = schedule["metadata"]
    spec = schedule.get("spec") or {}
    status = schedule.get("status") or {}
    name = meta["name"]
    now_text = _stamp(now) or ""
    out = SchedulePlan()
    created = _time(meta.get("creationTimestamp")) or now
    try:
        parsed = parse_schedule(spec.get("schedule") or "", spec.get("timeZone"), anchor=created)
    except ScheduleError as exc:
        text = f"{exc.field}: {exc.message}"
        accepted = _condition(status, ACCEPTED, False, exc.reason, text, now_text)
        if accepted["lastTransitionTime"] == now_text or status.get("message") != text:
            out.events.append(("Warning", exc.reason, text))
        out.status = {
            "observedGeneration": meta.get("generation"),
            "conditions": [accepted],
            "message": text,
        }
        return out  # nothing to wait for: a new spec is a new event

    mine = [t for t in tasks if owned(schedule, t)]
    by_name = {t["metadata"]["name"]: t for t in mine}
    phases = {n: (t.get("status") or {}).get("phase") for n, t in by_name.items()}
    states = [TaskState(n, p) for n, p in phases.items()]
    policy = spec.get("concurrencyPolicy")
    patch: Obj = {}
    messages: list[str] = []
    created_now: list[str] = []
    aborted: set[str] = set()

    def start(task: str, annotations: dict[str, str]) -> bool:
        """Create ``task`` unless it exists; the concurrency policy decides. True: it runs."""
        if task in by_name:
            return True  # made by an earlier pass that stopped before recording it
        decision = concurrency(policy, [*states, *(TaskState(n, None) for n in created_now)], task)
        if not decision.start:
            messages.append(decision.message)
            return False
        for victim in decision.abort:
            if victim not in aborted:
                aborted.add(victim)
                out.aborts.append(victim)
        out.creates.append(task_body(schedule, task, annotations))
        created_now.append(task)
        return True

    last = _time(status.get("lastSlotTime")) or _time(status.get("lastScheduleTime"))
    decision = due(
        parsed,
        created,
        last,
        now,
        spec.get("startingDeadlineSeconds"),
        suspend=bool(spec.get("suspend")),
    )
    if decision.start is not None:
        slot_task = task_name(name, decision.start)
        slot_text = _stamp(decision.start) or ""
        annotations = {names.ANNOTATION_SCHEDULED_TIME: slot_text}
        if start(slot_task, annotations):
            patch["lastScheduleTime"] = slot_text
            if slot_task in created_now:
                replaced = f" (Replace: aborted {', '.join(out.aborts)})" if out.aborts else ""
                out.events.append(("Normal", "Scheduled", f"started {slot_task}{replaced}"))
                messages.append(f"started {slot_task} for the slot {slot_text}")
        else:
            patch["skippedSlots"] = int(status.get("skippedSlots") or 0) + 1
            out.events.append(("Normal", "SkippedSlot", f"slot {slot_text}: {messages[-1]}"))
    if decision.slot is not None:
        patch["lastSlotTime"] = _stamp(decision.slot)
    if decision.missed:
        total = int(status.get("missedSlots") or 0) + decision.missed
        patch["missedSlots"] = total
        at_least = "" if decision.missed_exact else "at least "
        why = "past startingDeadlineSeconds" if decision.late else "while the operator was away"
        out.events.append(
            (
                "Warning",
                "MissedSlots",
                f"{at_least}{decision.missed} slot(s) missed {why}: not started late",
            )
        )

    # Run-now: each new value of the annotation starts one task (GitOps reruns).
    value = (meta.get("annotations") or {}).get(names.ANNOTATION_RUN_NOW)
    handled = (status.get("lastRunNow") or {}).get("task")
    first_seen = not status
    if first_seen and value:  # the value a schedule is created with is recorded, not run
        patch["lastRunNow"] = {
            "value": value[:256],
            "task": run_now_task_name(name, value),
            "time": now_text,
        }
    pending = run_now_pending(name, value, handled, first_seen=first_seen)
    if pending is not None and value is not None:
        annotations = {names.ANNOTATION_RUN_NOW: value[:256]}
        if start(pending, annotations):
            patch["lastRunNow"] = {"value": value[:256], "task": pending, "time": now_text}
            if pending in created_now:
                out.events.append(("Normal", "RunNow", f"started {pending} (run-now {value!r})"))
        # else (Forbid): left unrecorded, so it starts once the running task ends

    # History: the finished tasks beyond the limits, oldest first.
    finished = [
        FinishedTask(n, phases[n], _time((t.get("status") or {}).get("finishedAt")))
        for n, t in by_name.items()
        if phases[n] in TERMINAL
    ]
    out.deletes = prune(
        finished,
        spec.get("successfulRunsHistoryLimit", DEFAULT_SUCCESSFUL_HISTORY),
        spec.get("failedRunsHistoryLimit", DEFAULT_FAILED_HISTORY),
    )
    active = [
        {"name": n, "slot": (by_name[n]["metadata"].get("annotations") or {}).get(
            names.ANNOTATION_SCHEDULED_TIME)}
        for n in sorted(by_name)
        if phases[n] not in TERMINAL
    ]  # fmt: skip
    for body in out.creates:
        note = body["metadata"]["annotations"]
        active.append(
            {"name": body["metadata"]["name"], "slot": note.get(names.ANNOTATION_SCHEDULED_TIME)}
        )
    for item in active:
        if item["slot"] is None:
            item.pop("slot")
            item["runNow"] = True
    latest = last_finished(finished)
    success = last_successful_time(finished)
    patch.update(
        {
            "observedGeneration": meta.get("generation"),
            "active": active,
            "activeCount": len(active),
            "nextScheduleTime": None if spec.get("suspend") else _stamp(decision.next_slot),
            "conditions": [
                _condition(status, ACCEPTED, True, "Valid", "the schedule is valid", now_text),
                _condition(
                    status,
                    SUSPENDED,
                    bool(spec.get("suspend")),
                    "Suspended" if spec.get("suspend") else "Scheduling",
                    "spec.suspend is true: no task starts"
                    if spec.get("suspend")
                    else "tasks start at their slots",
                    now_text,
                ),
            ],
        }
    )
    if latest is not None:
        patch["lastResult"] = latest.phase
    if success is not None:
        patch["lastSuccessfulTime"] = _stamp(success)
    if messages:
        patch["message"] = "; ".join(messages)[:1024]
    out.status = patch
    if decision.requeue_after is not None:
        out.requeue_after = min(decision.requeue_after + SLOT_MARGIN, RESYNC_SECONDS)
    else:
        out.requeue_after = RESYNC_SECONDS
    return out
