"""Hook Jobs in flight, bounded (KRALLY_MAX_HOOK_JOBS): firings beyond the bound wait, oldest
first, their results say how long; finished hook Jobs are deleted once their result is
recorded (kube/operator/inflight.py, through the planner)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from krally.api import wire
from krally.kube.operator.planner import CreateJob, Memory, Observed, StopHooks, plan, plan_firings
from krally.kube.operator.settings import Settings
from krally.kube.operator.status.hooks import queued_seconds

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
BOUND = Settings(max_hook_jobs=3)


def _task(values: range, results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    firings = [
        {"hook": 0, "eventType": "iteration", "value": v, "firedAt": "2026-01-01T11:59:00.000Z"}
        for v in values
    ]
    return {
        "metadata": {"name": "t", "namespace": "ns", "uid": "uid-1", "resourceVersion": "10"},
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "runner": {"type": "constant", "times": 100},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "true",
                    "trigger": {"name": "periodic", "args": {"unit": "iteration", "step": 1}},
                }
            ],
            "arming": {"enabled": False},
        },
        "status": {
            "runnerJob": "krally-t-runner",
            "phase": "Running",
            "conditions": [{"type": "Accepted", "status": "True"}],
            "runner": {"state": "Running", "firings": firings},
            "hooks": [{"index": 0, "results": results or []}],
        },
    }


def _hook_job(value: int, state: str = "active") -> dict[str, Any]:
    status: dict[str, Any] = {"active": 1}
    if state == "complete":
        status = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    return {
        "metadata": {
            "name": _name(value),
            "uid": f"uid-{value}",
            "labels": {"krally.dev/role": "hook"},
            "annotations": {"krally.dev/created-at": "2026-01-01T11:59:42.500Z"},
        },
        "status": status,
    }


def _name(value: int) -> str:
    return wire.hook_job_name("t", 0, "iteration", value)


def _memory() -> Memory:
    return Memory(uid="uid-1", problems=[], warnings=[], identity_done=True)


def _names(actions: list[Any]) -> list[str]:
    return [a.name for a in actions if isinstance(a, CreateJob)]


def test_beyond_the_bound_firings_wait_oldest_first() -> None:
    task = _task(range(1, 31))
    created = plan_firings(task, Observed(), _memory(), BOUND, now=NOW.timestamp())
    assert _names(created) == [_name(1), _name(2), _name(3)]
    # Two still run, one finished: room for one more, the oldest waiting.
    jobs = (_hook_job(1, "complete"), _hook_job(2), _hook_job(3))
    again = plan_firings(task, Observed(jobs=jobs), _memory(), BOUND, now=NOW.timestamp())
    assert _names(again) == [_name(4)]


def test_creates_the_watch_has_not_shown_count_as_in_flight() -> None:
    memory = _memory()
    memory.created = {_name(v): {"metadata": {}} for v in (1, 2)}
    task = _task(range(1, 31))
    assert _names(plan_firings(task, Observed(), memory, BOUND, now=NOW.timestamp())) == [_name(3)]


def test_the_full_plan_keeps_the_bound_too() -> None:
    jobs = tuple(_hook_job(v) for v in (1, 2, 3))
    actions = plan(_task(range(1, 31)), Observed(jobs=jobs), _memory(), BOUND, now=NOW, clock=100.0)
    assert _names(actions) == []


def test_a_firing_that_waited_says_how_long() -> None:
    job = _hook_job(4)
    assert queued_seconds(job, "2026-01-01T11:59:00.000Z") == 42.5
    assert queued_seconds(job, "2026-01-01T11:59:42.000Z") is None  # 0.5 s: not queued
    assert queued_seconds(None, "2026-01-01T11:59:00.000Z") is None


def test_finished_jobs_are_deleted_once_their_result_is_recorded() -> None:
    recorded = [{"job": _name(1), "status": "success"}]
    task = _task(range(1, 3), recorded)
    jobs = (_hook_job(1, "complete"), _hook_job(2, "complete"))
    actions = plan(task, Observed(jobs=jobs), _memory(), BOUND, now=NOW, clock=100.0)
    (stop,) = [a for a in actions if isinstance(a, StopHooks)]
    # Only the recorded one: the other's result is not in the status yet.
    assert stop.jobs == (_name(1),) and stop.uids == ("uid-1",)
    assert stop.why == "its result is recorded"
    keep = Settings(max_hook_jobs=3, keep_hook_jobs=True)
    kept = plan(task, Observed(jobs=jobs), _memory(), keep, now=NOW, clock=100.0)
    assert not [a for a in kept if isinstance(a, StopHooks)]


@pytest.mark.parametrize("text", ["0", "-1", "lots"])
def test_a_bad_bound_names_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="KRALLY_MAX_HOOK_JOBS"):
        Settings.from_env({"KRALLY_MAX_HOOK_JOBS": text})
    loaded = Settings.from_env({"KRALLY_MAX_HOOK_JOBS": "5", "KRALLY_KEEP_HOOK_JOBS": "1"})
    assert (loaded.max_hook_jobs, loaded.keep_hook_jobs) == (5, True)
    assert (Settings.from_env({}).max_hook_jobs, Settings.from_env({}).keep_hook_jobs) == (
        20,
        False,
    )
