"""One BenchmarkSchedule pass, planned from objects and an injected clock (no cluster)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from krally.kube.operator.schedule_planner import plan

T0 = dt.datetime(2026, 12, 3, 8, 0, 0, tzinfo=dt.UTC)
UID = "6b0f3c1e-0000-4000-8000-000000000001"
QUICK = {"scenario": {"name": "Dummy.dummy"}, "runner": {"type": "constant", "times": 3}}


def schedule(
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkSchedule",
        "metadata": {
            "name": "web",
            "namespace": "team-a",
            "uid": UID,
            "generation": 1,
            "creationTimestamp": "2026-12-03T08:00:00Z",
            "annotations": annotations or {},
        },
        "spec": {
            "schedule": "@every 5s",
            "taskTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": QUICK},
            **(spec or {}),
        },
        "status": status or {},
    }


def task(name: str, phase: str | None, finished: str | None = None, uid: str = UID) -> dict:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if finished:
        status["finishedAt"] = finished
    return {
        "metadata": {
            "name": name,
            "ownerReferences": [{"kind": "BenchmarkSchedule", "name": "web", "uid": uid}],
            "annotations": {},
        },
        "status": status,
    }


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def slot_name(seconds: int) -> str:
    return f"web-{int(T0.timestamp()) + seconds}"


def test_nothing_on_creation_then_one_task_at_the_first_slot() -> None:
    first = plan(schedule(), [], at(0.5))
    assert first.creates == [] and 4 < (first.requeue_after or 0) < 5
    due = plan(schedule(status={"observedGeneration": 1}), [], at(5.02))
    (body,) = due.creates
    meta = body["metadata"]
    assert meta["name"] == slot_name(5) and body["spec"] == QUICK
    assert meta["labels"] == {"team": "a", "krally.dev/schedule": "web"}
    assert meta["annotations"]["krally.dev/scheduled-time"] == "2026-12-03T08:00:05.000Z"
    (owner,) = meta["ownerReferences"]
    assert owner["uid"] == UID and owner["controller"] is True
    assert due.status["lastScheduleTime"] == due.status["lastSlotTime"]
    assert due.status["activeCount"] == 1 and due.status["active"][0]["name"] == slot_name(5)
    assert ("Normal", "Scheduled", f"started {slot_name(5)}") in due.events


def test_a_task_made_before_a_crash_is_recorded_not_made_again() -> None:
    # The task exists (created), the status does not say so (the pass stopped in between).
    again = plan(schedule(status={"observedGeneration": 1}), [task(slot_name(5), None)], at(6))
    assert again.creates == []
    assert again.status["lastSlotTime"] == "2026-12-03T08:00:05.000Z"
    assert not [e for e in again.events if e[1] == "Scheduled"]


def test_forbid_skips_and_replace_aborts() -> None:
    running = [task(slot_name(5), "Running")]
    status = {"lastSlotTime": "2026-12-03T08:00:05.000Z", "skippedSlots": 2}
    forbid = plan(schedule({"concurrencyPolicy": "Forbid"}, status), running, at(10.1))
    assert forbid.creates == [] and forbid.aborts == []
    assert forbid.status["skippedSlots"] == 3
    assert forbid.status["lastSlotTime"] == "2026-12-03T08:00:10.000Z"  # dealt with, not retried
    assert [e[1] for e in forbid.events] == ["SkippedSlot"]
    replace = plan(schedule({"concurrencyPolicy": "Replace"}, status), running, at(10.1))
    assert replace.aborts == [slot_name(5)]
    assert [b["metadata"]["name"] for b in replace.creates] == [slot_name(10)]


def test_missed_slots_are_counted_and_only_the_latest_starts() -> None:
    status = {"lastSlotTime": "2026-12-03T08:00:05.000Z", "missedSlots": 1}
    late = plan(schedule({"startingDeadlineSeconds": 3}, status), [], at(32))
    # Slots 10..30 passed: 30 is within 3 s and starts; 10, 15, 20, 25 are missed.
    assert [b["metadata"]["name"] for b in late.creates] == [slot_name(30)]
    assert late.status["missedSlots"] == 5
    assert any(e[1] == "MissedSlots" and "4 slot(s)" in e[2] for e in late.events)
    too_late = plan(schedule({"startingDeadlineSeconds": 1}, status), [], at(32))
    assert too_late.creates == [] and too_late.status["missedSlots"] == 6


def test_run_now_once_per_value_and_never_on_creation() -> None:
    created = plan(schedule(annotations={"krally.dev/run-now": "v1"}), [], at(1))
    assert created.creates == [] and created.status["lastRunNow"]["value"] == "v1"
    recorded = {"observedGeneration": 1, "lastRunNow": created.status["lastRunNow"]}
    same = plan(schedule(status=recorded, annotations={"krally.dev/run-now": "v1"}), [], at(2))
    assert same.creates == []
    bumped = plan(schedule(status=recorded, annotations={"krally.dev/run-now": "v2"}), [], at(2))
    (body,) = bumped.creates
    assert body["metadata"]["name"].startswith("web-run-")
    assert body["metadata"]["annotations"]["krally.dev/run-now"] == "v2"
    assert bumped.status["lastRunNow"]["task"] == body["metadata"]["name"]
    assert bumped.status["active"] == [{"name": body["metadata"]["name"], "runNow": True}]
    # Forbid with a task running: the request waits (unrecorded), it is not lost.
    busy = [task(slot_name(5), "Running")]
    waiting = plan(
        schedule({"concurrencyPolicy": "Forbid"}, recorded, {"krally.dev/run-now": "v2"}),
        busy,
        at(2),
    )
    assert waiting.creates == [] and waiting.status.get("lastRunNow") is None


def test_history_limits_delete_the_oldest_and_other_owners_are_ignored() -> None:
    done = [
        task(slot_name(5), "Succeeded", "2026-12-03T08:00:07Z"),
        task(slot_name(10), "Succeeded", "2026-12-03T08:00:12Z"),
        task(slot_name(15), "Failed", "2026-12-03T08:00:17Z"),
        task(slot_name(20), "Succeeded", "2026-12-03T08:00:22Z"),
        task("web-someone-elses", "Succeeded", "2026-12-03T08:00:01Z", uid="other"),
    ]
    status = {"lastSlotTime": "2026-12-03T08:00:20.000Z"}
    out = plan(schedule({"successfulRunsHistoryLimit": 1, "suspend": True}, status), done, at(23))
    assert sorted(out.deletes) == [slot_name(5), slot_name(10)]
    assert out.status["lastResult"] == "Succeeded"
    assert out.status["lastSuccessfulTime"] == "2026-12-03T08:00:22.000Z"
    assert out.status["activeCount"] == 0 and out.status["nextScheduleTime"] is None


def test_a_bad_time_zone_is_a_condition_naming_the_field_and_no_requeue() -> None:
    out = plan(schedule({"timeZone": "Mars/Olympus"}), [], at(60))
    (accepted,) = out.status["conditions"]
    assert accepted["status"] == "False" and "spec.timeZone" in accepted["message"]
    assert out.creates == [] and out.requeue_after is None
    assert [e[0] for e in out.events] == ["Warning"]
    again = plan(schedule({"timeZone": "Mars/Olympus"}, out.status), [], at(61))
    assert again.events == []  # said once, not at every pass
