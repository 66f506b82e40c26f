"""derive_status and friends: the operator's whole status logic, driven with plain dicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from krally.api.times import rfc3339
from krally.kube import events as kevents
from krally.kube.operator import builders as kjobs
from krally.kube.operator import planner
from krally.kube.operator.status.budget import json_size
from krally.kube.operator.status.derive import derive_status, rejected_status
from krally.kube.operator.status.display import (
    MAX_CRITERION_TEXT,
    MAX_FAILED_SLA,
    failed_sla_text,
    sla_short,
)
from krally.kube.operator.status.patch import status_patch, urgent
from krally.kube.operator.status.phase import PHASE_RULES, PhaseFacts, next_phase, phase_rule
from krally.kube.pods.hook import pod as hookpod

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 1, 12, 5, 0, tzinfo=UTC)
AT = [5, 50, 200, 1000]


def make_task(runner: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "t", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "runner": {"type": "constant", "times": 1500},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "/bin/echo 123",
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": AT}},
                }
            ],
        },
        "status": dict(status),
    }
    if runner is not None:
        task["status"]["runner"] = runner
    return task


def runner_job(state: str = "active") -> dict[str, Any]:
    conditions = {
        "complete": [{"type": "Complete", "status": "True"}],
        "failed": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        "deadline": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "x"}
        ],
        "active": [],
    }[state]
    return {
        "metadata": {"name": "krally-t-runner", "labels": {"krally.dev/role": "runner"}},
        "spec": {"activeDeadlineSeconds": 60},
        "status": {"active": 1 if state == "active" else 0, "conditions": conditions},
    }


def hook_job(value: int, state: str = "complete") -> dict[str, Any]:
    name = kjobs.hook_job_name("t", 0, "iteration", value)
    conditions = []
    if state == "complete":
        conditions = [{"type": "Complete", "status": "True"}]
    elif state == "failed":
        conditions = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    elif state == "deadline":
        conditions = [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    return {
        "metadata": {"name": name, "labels": {"krally.dev/role": "hook"}},
        "spec": {"activeDeadlineSeconds": 300},
        "status": {"conditions": conditions, "startTime": "2026-01-01T11:59:00Z"},
    }


def hook_pod(value: int, result: dict[str, Any] | None, exit_code: int = 0) -> dict[str, Any]:
    name = kjobs.hook_job_name("t", 0, "iteration", value)
    state: dict[str, Any] = {"running": {"startedAt": "2026-01-01T11:59:01Z"}}
    if result is not None:
        state = {"terminated": {"exitCode": exit_code, "message": json.dumps(result)}}
    return {
        "metadata": {
            "name": f"{name}-abcde",
            "labels": {"batch.kubernetes.io/job-name": name},
            "creationTimestamp": "2026-01-01T11:59:00Z",
        },
        "status": {"phase": "Succeeded", "containerStatuses": [{"state": state}]},
    }


def success(value: int) -> dict[str, Any]:
    return {
        "status": "success",
        "started_at": 1767268800.0 + value,
        "finished_at": 1767268800.5 + value,
        "triggered_by": {"event_type": "iteration", "value": value},
        "output": {"additive": [], "complete": []},
    }


def firings(values: list[int]) -> list[dict[str, Any]]:
    return [
        {"hook": 0, "eventType": "iteration", "value": v, "firedAt": "2026-01-01T11:59:00.000Z"}
        for v in values
    ]


FINISHED_RUNNER = {
    "state": "Finished",
    "startedAt": "2026-01-01T11:58:00.000Z",
    "finishedAt": "2026-01-01T11:59:30.000Z",
    "progress": {"done": 1500, "total": 1500, "failures": 0},
    "firings": firings(AT),
    "summary": {
        "iterations": 1500,
        "failures": 0,
        "loadDuration": 15.0,
        "fullDuration": 15.1,
        "durations": {"min": 0.01, "median": 0.01, "p90": 0.011, "p95": 0.012, "max": 0.02},
        "sla": [{"criterion": "failure_rate", "success": True, "detail": "ok"}],
        "passSLA": True,
    },
}


def test_pending_before_the_runner_job_exists() -> None:
    status = derive_status(make_task(), [], [], NOW, created=())
    assert status["phase"] == "Pending"
    accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "True" and accepted["observedGeneration"] == 1
    assert status["runnerJob"] is None
    assert status["display"] == {
        "progress": "",
        "hooks": "0/0",
        "sla": "",
        "recovery": "",
        "failures": "",
        "p95": "",
        "failedSLA": "",
    }


def test_running_with_pending_and_finished_hooks() -> None:
    runner = {
        "state": "Running",
        "progress": {"done": 750, "total": 1500, "failures": 0},
        "firings": firings([5, 50]),
    }
    jobs = [runner_job(), hook_job(5), hook_job(50, "active")]
    pods = [hook_pod(5, success(5)), hook_pod(50, None)]
    status = derive_status(make_task(runner), jobs, pods, NOW, created=())
    assert status["phase"] == "Running"
    assert status["runnerJob"] == "krally-t-runner"
    assert status["display"]["progress"] == "750/1500"
    assert status["display"]["hooks"] == "1/2"
    results = status["hooks"][0]["results"]
    assert [r["status"] for r in results] == ["success", "running"]
    assert results[0]["triggeredBy"] == {"eventType": "iteration", "value": 5}
    assert results[0]["job"] == "t-h0-i5"
    assert results[0]["startedAt"].endswith("Z") and "output" in results[0]
    assert status["hooks"][0]["summary"] == {"success": 1}
    running = next(c for c in status["conditions"] if c["type"] == "Running")
    assert running["status"] == "True"


def test_succeeded_only_after_every_fired_hook_finished() -> None:
    jobs = [runner_job("complete"), *(hook_job(v) for v in AT[:3]), hook_job(1000, "active")]
    pods = [*(hook_pod(v, success(v)) for v in AT[:3]), hook_pod(1000, None)]
    task = make_task(FINISHED_RUNNER)
    status = derive_status(task, jobs, pods, NOW, created=())
    assert status["phase"] == "Finishing"
    assert "1 hook(s) still running" in status["message"]

    jobs[-1] = hook_job(1000)
    pods[-1] = hook_pod(1000, success(1000))
    status = derive_status(task, jobs, pods, NOW, created=())
    assert status["phase"] == "Succeeded"
    hook = status["hooks"][0]
    assert hook["summary"] == {"success": 4}
    assert [r["triggeredBy"]["value"] for r in hook["results"]] == AT
    assert status["display"] == {
        "progress": "1500/1500",
        "hooks": "4/4",
        "sla": "Passed",
        "recovery": "",
        "failures": "0",
        "p95": "0.012s",
        "failedSLA": "",
    }
    assert status["passSLA"] is True and status["sla"][0]["criterion"] == "failure_rate"
    assert status["result"]["iterations"] == 1500
    assert status["result"]["durations"]["p95"] == 0.012
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert complete["status"] == "True"
    assert status["finishedAt"] == rfc3339(NOW)


def test_succeeded_only_after_the_runner_pod_exited() -> None:
    jobs = [runner_job("active"), *(hook_job(v) for v in AT)]
    pods = [hook_pod(v, success(v)) for v in AT]
    task = make_task(FINISHED_RUNNER)
    status = derive_status(task, jobs, pods, NOW, created=())
    assert status["phase"] == "Finishing"
    assert "runner pod exiting" in status["message"]

    jobs[0] = runner_job("complete")
    assert derive_status(task, jobs, pods, NOW, created=())["phase"] == "Succeeded"


def test_last_transition_time_kept_while_status_holds() -> None:
    task = make_task({"state": "Running", "progress": {"done": 1}})
    first = derive_status(task, [runner_job()], [], NOW, created=())
    task["status"].update(first)
    second = derive_status(task, [runner_job()], [], LATER, created=())
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times["Running"] == rfc3339(NOW)
    assert status_patch(task["status"], second) == {}

    task["status"]["runner"] = dict(FINISHED_RUNNER, firings=[])
    third = derive_status(task, [runner_job("complete")], [], LATER, created=())
    changed = {c["type"]: c["lastTransitionTime"] for c in third["conditions"]}
    assert changed["Running"] == rfc3339(LATER)  # True → False
    assert changed["Accepted"] == rfc3339(NOW)


def test_failed_hook_records_exit_code_from_its_result() -> None:
    failed = {
        "status": "failed",
        "started_at": 1767268800.0,
        "finished_at": 1767268800.1,
        "triggered_by": {"event_type": "iteration", "value": 5},
        "error": {"etype": "n/a", "msg": "Subprocess returned 1", "details": ""},
    }
    runner = dict(FINISHED_RUNNER, firings=firings([5]))
    status = derive_status(
        make_task(runner), [runner_job("complete"), hook_job(5, "failed")], [
            hook_pod(5, failed, exit_code=1)
        ], NOW, created=()
    )  # fmt: skip
    assert status["phase"] == "Succeeded"  # a failed hook does not fail the task (Rally)
    result = status["hooks"][0]["results"][0]
    assert result["status"] == "failed" and result["error"]["msg"] == "Subprocess returned 1"
    assert status["hooks"][0]["summary"] == {"failed": 1}
    assert status["display"]["hooks"] == "0/1"


def test_hook_without_result_fails_by_timeout_with_the_cause() -> None:
    pod = {
        "metadata": {"name": "p", "labels": {"batch.kubernetes.io/job-name": "t-h0-i5"}},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}],
        },
    }
    runner = dict(FINISHED_RUNNER, firings=firings([5]))
    status = derive_status(
        make_task(runner), [runner_job("complete"), hook_job(5, "deadline")], [pod], NOW, created=()
    )
    result = status["hooks"][0]["results"][0]
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "Timeout"
    assert "300 s" in result["error"]["msg"] and "ImagePullBackOff" in result["error"]["msg"]


def test_unschedulable_hook_records_why_it_waits_and_fails_by_timeout_with_it() -> None:
    unschedulable = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    pod = {
        "metadata": {"name": "p", "labels": {"batch.kubernetes.io/job-name": "t-h0-i5"}},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": unschedulable},
            ],
        },
    }  # fmt: skip
    runner = dict(FINISHED_RUNNER, firings=firings([5]))
    task = make_task(runner)
    active = hook_job(5, "active")
    waiting = derive_status(task, [runner_job("complete"), active], [pod], NOW, created=())
    result = waiting["hooks"][0]["results"][0]
    assert result["status"] == "pending"  # not a failure yet, but it says why
    assert result["error"]["etype"] == "NotStarted"
    assert "Unschedulable" in result["error"]["msg"] and unschedulable in result["error"]["msg"]
    assert waiting["phase"] == "Finishing"
    task["status"].update(waiting)

    # The deadline: the Job controller fails the Job and removes the pod at once, so the
    # cause comes from the pending result recorded before.
    failed_job = hook_job(5, "deadline")
    timed_out = derive_status(task, [runner_job("complete"), failed_job], [], LATER, created=())
    result = timed_out["hooks"][0]["results"][0]
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "Timeout"
    assert "300 s" in result["error"]["msg"]
    assert "pod never scheduled: Unschedulable" in result["error"]["msg"]
    assert unschedulable in result["error"]["msg"]
    assert timed_out["phase"] == "Succeeded"  # a failed hook does not fail the task (Rally)
    # Seen together with the pod being deleted, the pod itself says it; the result then stays.
    both = derive_status(task, [runner_job("complete"), failed_job], [pod], LATER, created=())
    assert both["hooks"][0]["results"][0]["error"] == result["error"]
    task["status"].update(timed_out)
    again = derive_status(task, [runner_job("complete"), failed_job], [], LATER, created=())
    assert again["hooks"] == timed_out["hooks"]


def test_hook_pod_exit_code_without_json() -> None:
    pod = hook_pod(5, None)
    pod["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 127, "reason": "Error", "message": "exec: not found"}
    }
    runner = dict(FINISHED_RUNNER, firings=firings([5]))
    status = derive_status(
        make_task(runner), [runner_job("complete"), hook_job(5, "failed")], [pod], NOW, created=()
    )
    error = status["hooks"][0]["results"][0]["error"]
    assert "code 127" in error["msg"] and "not found" in error["details"]


def test_runner_failures() -> None:
    running = {"state": "Running", "progress": {"done": 10, "total": 100}}
    deleted = derive_status(
        make_task(running, runnerJob="krally-t-runner"), [], [], NOW, created=()
    )
    assert deleted["phase"] == "Failed"
    failed = next(c for c in deleted["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "RunnerDeleted" and failed["status"] == "True"
    assert deleted["progress"] == {"done": 10, "total": 100}

    timed = derive_status(make_task(running), [runner_job("deadline")], [], NOW, created=())
    assert timed["phase"] == "Failed" and "timeoutSeconds" in timed["message"]

    killed = dict(running, state="Aborted", error="stopped by SIGTERM")
    timed = derive_status(make_task(killed), [runner_job("deadline")], [], NOW, created=())
    assert next(c for c in timed["conditions"] if c["type"] == "Failed")["reason"] == (
        "RunnerTimedOut"
    )

    crashed = derive_status(make_task(running), [runner_job("failed")], [], NOW, created=())
    assert crashed["phase"] == "Failed"

    terminated = dict(running, state="Aborted", error="stopped by SIGTERM")
    gone = derive_status(make_task(terminated), [runner_job("failed")], [], NOW, created=())
    assert gone["phase"] == "Failed" and "deleted" in gone["message"]
    assert next(c for c in gone["conditions"] if c["type"] == "Failed")["reason"] == (
        "RunnerTerminated"
    )

    error = dict(running, state="Error", error="ValueError: boom")
    assert "boom" in derive_status(make_task(error), [], [], NOW, created=())["message"]


def test_runner_oom_killed_names_the_memory_limit_and_keeps_progress() -> None:
    pod = {
        "metadata": {
            "name": "krally-t-runner-abcde",
            "labels": {"batch.kubernetes.io/job-name": "krally-t-runner"},
            "creationTimestamp": "2026-01-01T11:59:00Z",
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"state": {"terminated": {"exitCode": 1, "reason": "OOMKilled"}}}
            ],
        },
    }
    # A killed worker makes the runner report an error before it exits: the kill still wins.
    for state in ("Running", "Error"):
        runner = {"state": state, "error": "worker died", "progress": {"done": 7, "total": 100}}
        task = make_task(runner)
        task["spec"]["runnerPod"] = {"resources": {"limits": {"memory": "64Mi"}}}
        status = derive_status(task, [runner_job("failed")], [pod], NOW, created=())
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert (status["phase"], failed["reason"]) == ("Failed", "OOMKilled")
        assert "memory limit" in status["message"] and "64Mi" in status["message"]
        assert status["progress"] == {"done": 7, "total": 100}


def test_abort() -> None:
    task = make_task({"state": "Running", "progress": {"done": 10}}, runnerJob="krally-t-runner")
    task["spec"]["abort"] = True
    aborting = derive_status(task, [runner_job()], [], NOW, created=())
    assert aborting["phase"] == "Running" and aborting["conditions"][1]["reason"] == "Aborting"
    assert derive_status(task, [], [], NOW, created=())["phase"] == "Aborted"
    task["status"]["runner"]["state"] = "Aborted"
    assert derive_status(task, [], [], NOW, created=())["phase"] == "Aborted"


def test_terminal_phase_is_sticky_and_finished_results_survive_job_cleanup() -> None:
    task = make_task(FINISHED_RUNNER)
    jobs = [runner_job("complete"), *(hook_job(v) for v in AT)]
    pods = [hook_pod(v, success(v)) for v in AT]
    done = derive_status(task, jobs, pods, NOW, created=())
    task["status"].update(done)
    # Every Job garbage-collected (e.g. TTL): nothing changes, nothing is re-created.
    later = derive_status(task, [], [], LATER, created=())
    assert later["phase"] == "Succeeded"
    assert later["hooks"] == done["hooks"]
    assert planner.firings_without_job(task, {}) == []


def test_firings_without_job_are_each_created_once() -> None:
    runner = {"state": "Running", "firings": [*firings([5, 50]), *firings([5])]}
    task = make_task(runner)
    todo = planner.firings_without_job(task, {})
    assert [(i, name) for i, _f, name in todo] == [(0, "t-h0-i5"), (0, "t-h0-i50")]
    assert planner.firings_without_job(task, {"t-h0-i5": {}}, created={"t-h0-i50"}) == []
    # A created Job not yet seen by the watch counts as pending, not missing.
    status = derive_status(task, [runner_job()], [], NOW, created={"t-h0-i5"})
    assert [r["status"] for r in status["hooks"][0]["results"]] == ["pending", "pending"]
    # Firings of hooks that do not exist are ignored.
    task["status"]["runner"]["firings"].append({"hook": 7, "eventType": "iteration", "value": 1})
    assert len(planner.firings_without_job(task, {})) == 2


def test_unreached_values_are_reported() -> None:
    runner = dict(FINISHED_RUNNER, firings=firings([5]))
    runner["summary"] = dict(
        FINISHED_RUNNER["summary"], unreached=[{"hook": 0, "eventType": "iteration", "value": 50}]
    )
    status = derive_status(make_task(runner), [runner_job("complete"), hook_job(5)], [
        hook_pod(5, success(5))
    ], NOW, created=())  # fmt: skip
    assert status["hooks"][0]["unreached"] == [{"eventType": "iteration", "value": 50}]


def test_rejected_status_names_the_field() -> None:
    problems = ["spec.hooks[0].trigger.args.at: [] is too short"]
    status = rejected_status(make_task(), problems, NOW)
    assert status["phase"] == "Failed"
    accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False" and "spec.hooks[0].trigger.args.at" in accepted["message"]
    events = kevents.transitions({}, status)
    assert events and events[0][0] == "Warning" and events[0][1] == "InvalidSpec"


def test_status_patch_and_progress_throttling() -> None:
    task = make_task({"state": "Running", "progress": {"done": 1, "total": 10}})
    first = derive_status(task, [runner_job()], [], NOW, created=())
    patch = status_patch(task["status"], first)
    assert patch["phase"] == "Running" and "runner" not in patch
    task["status"].update(first)
    task["status"]["runner"]["progress"] = {"done": 5, "total": 10}
    second = derive_status(task, [runner_job()], [], NOW, created=())
    patch = status_patch(task["status"], second)
    assert set(patch) <= {"progress", "display", "message", "conditions"}
    assert not urgent(patch, task["status"])  # progress alone may wait
    assert urgent(first, {})  # a phase change may not
    # A pending hook's newly known cause may not either (the pod showing it may soon be gone).
    stuck = {"job": "t-h0-i5", "status": "pending", "error": {"etype": "NotStarted", "msg": "x"}}
    waiting = {"job": "t-h0-i5", "status": "pending"}
    assert urgent({"hooks": [{"results": [stuck]}]}, {"hooks": [{"results": [waiting]}]})
    assert not urgent({"hooks": [{"results": [stuck]}]}, {"hooks": [{"results": [stuck]}]})
    assert not urgent({"hooks": [{"results": [waiting]}]}, {})
    # Removing a field is a null in the merge patch.
    assert status_patch({"sla": [1]}, {"sla": None}) == {"sla": None}


def test_events_follow_transitions() -> None:
    task = make_task({"state": "Running", "firings": firings([5])})
    before = derive_status(task, [runner_job()], [], NOW, created={"t-h0-i5"})
    reasons = [e[1] for e in kevents.transitions({}, before)]
    assert reasons == ["Started", "HookFired"]
    after = derive_status(
        task, [runner_job(), hook_job(5)], [hook_pod(5, success(5))], NOW, created=()
    )
    assert [e[1] for e in kevents.transitions(before, after)] == ["HookSucceeded"]
    assert kevents.transitions(after, after) == []


def test_spec_warnings_are_kept_and_posted_once() -> None:
    from krally.kube.operator import admission
    from krally.kube.operator.settings import Settings

    spec = {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
        "runner": {"type": "constant", "times": 10},
        "contexts": {"users": {"tenants": 1}},
        "hooks": [
            {
                "name": "sys_call",
                "args": "/bin/true",
                "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5, 50]}},
            }
        ],
    }
    problems, warnings = admission.validate(spec, Settings())
    assert problems == []
    assert any("spec.contexts.users" in w and "OpenStack" in w for w in warnings)
    assert any("spec.hooks[0].trigger" in w and "50" in w for w in warnings)

    derived = {**derive_status(make_task(), [], [], NOW, created=()), "warnings": warnings}
    patch = status_patch({}, derived)
    assert patch["warnings"] == warnings
    posted = [e for e in kevents.transitions({}, derived) if e[1] == "SpecWarning"]
    assert [(e[0], e[2]) for e in posted] == [("Warning", w) for w in warnings]
    assert not [e for e in kevents.transitions(derived, derived) if e[1] == "SpecWarning"]


def test_hook_result_fits_the_termination_message() -> None:
    result = {
        "status": "failed",
        "started_at": 1.0,
        "finished_at": 2.0,
        "triggered_by": {"event_type": "iteration", "value": 5},
        "error": {"etype": "n/a", "msg": "Subprocess returned 3", "details": "x" * 20000},
        "output": {"additive": [], "complete": [{"title": "big", "data": "y" * 5000}]},
    }
    text = hookpod.fit(result)
    assert len(text.encode()) <= 4096
    data = json.loads(text)
    assert data["truncated"] is True and data["status"] == "failed"
    assert data["error"]["msg"] == "Subprocess returned 3"
    assert data["error"]["details"].endswith("x")
    small = dict(result, error={"etype": "a", "msg": "b", "details": "c"}, output=None)
    assert json.loads(hookpod.fit(small)) == small


def test_hook_pod_main_writes_result_and_exit_code(tmp_path: Any) -> None:
    path = tmp_path / "termination-log"
    payload = {
        "name": "sys_call",
        "args": "/bin/false",
        "triggeredBy": {"event_type": "iteration", "value": 1},
    }
    assert hookpod.main(str(path), payload) == 1
    data = json.loads(path.read_text())
    assert data["status"] == "failed" and "returned 1" in data["error"]["msg"]
    payload["args"] = "/bin/echo 123"
    assert hookpod.main(str(path), payload) == 0
    assert json.loads(path.read_text())["status"] == "success"
    payload["name"] = "no_such_hook"
    assert hookpod.main(str(path), payload) == 1
    assert "no_such_hook" in json.loads(path.read_text())["error"]["msg"]


# -- the phase as a transition table -------------------------------------------------------------

# One set of facts per row of PHASE_RULES, that row being the first to hold.
PHASE_EXAMPLES = {
    "runner-timed-out": (
        PhaseFacts(state="Aborted", job="failed", job_reason="DeadlineExceeded", deadline=9),
        "Failed",
        "RunnerTimedOut",
        "runner did not finish within spec.runnerPod.timeoutSeconds (9 s)",
    ),
    "oom-killed": (
        PhaseFacts(state="Error", killed_reason="OOMKilled", memory_limit="64Mi"),
        "Failed",
        "OOMKilled",
        "killed by its memory limit (spec.runnerPod.resources.limits.memory: 64Mi)",
    ),
    "runner-error": (
        PhaseFacts(state="Error", error="boom"),
        "Failed",
        "RunnerError",
        "boom",
    ),
    "aborted-by-spec": (
        PhaseFacts(state="Aborted", abort=True, at=" at 3/9 iterations"),
        "Aborted",
        "Aborted",
        "aborted by spec.abort at 3/9 iterations; partial results kept",
    ),
    "runner-terminated": (
        PhaseFacts(state="Aborted", error="SIGTERM"),
        "Failed",
        "RunnerTerminated",
        "(SIGTERM: pod deleted or evicted)",
    ),
    "waiting-for-runner-exit": (
        PhaseFacts(state="Finished", job="active", busy_hooks=2),
        "Finishing",
        "WaitingForRunnerExit",
        "runner pod exiting",
    ),
    "waiting-for-hooks": (
        PhaseFacts(state="Finished", job="complete", busy_hooks=2),
        "Finishing",
        "WaitingForHooks",
        "2 hook(s) still running",
    ),
    "completed": (
        PhaseFacts(state="Finished", job="complete"),
        "Succeeded",
        "Completed",
        "every fired hook finished",
    ),
    "aborted-runner-gone": (
        PhaseFacts(state="Running", abort=True, job="failed"),
        "Aborted",
        "Aborted",
        "aborted by spec.abort",
    ),
    "aborting": (
        PhaseFacts(state="Running", abort=True, job="active"),
        "Running",
        "Aborting",
        "stopping the runner",
    ),
    "runner-deleted": (
        PhaseFacts(state="Running", recorded_job="krally-t-runner"),
        "Failed",
        "RunnerDeleted",
        "runner Job krally-t-runner was deleted",
    ),
    "runner-create-refused": (
        PhaseFacts(create_refused="the API server refused to create the runner's Job"),
        "Failed",
        "RunnerCreateFailed",
        "the API server refused to create the runner's Job",
    ),
    "creating-runner": (PhaseFacts(), "Pending", "CreatingRunner", "creating"),
    "runner-pod-deleted": (
        PhaseFacts(state="Running", job="failed", pod_deleting=True),
        "Failed",
        "RunnerPodDeleted",
        "runner pod was deleted",
    ),
    "runner-killed": (
        PhaseFacts(state="Running", job="failed", exit_code=137, at=" at 3/10 iterations"),
        "Failed",
        "RunnerKilled",
        "the runner was killed (SIGKILL, exit code 137) at 3/10 iterations",
    ),
    "runner-failed": (
        PhaseFacts(job="failed", job_reason="BackoffLimitExceeded", exit_detail="exit code 2"),
        "Failed",
        "RunnerFailed",
        "runner failed (BackoffLimitExceeded: exit code 2)",
    ),
    "runner-exited-silently": (
        PhaseFacts(state="Running", job="complete"),
        "Failed",
        "RunnerFailed",
        "without reporting",
    ),
    "running": (
        PhaseFacts(state="Running", job="active", at=" at 5/9 iterations"),
        "Running",
        "Running",
        "load running at 5/9 iterations",
    ),
    "runner-pod-deleting": (
        PhaseFacts(job="pending", pod_deleting=True),
        "Running",
        "RunnerPodDeleting",
        "being deleted",
    ),
    "waiting-for-runner": (
        PhaseFacts(job="pending"),
        "Pending",
        "WaitingForRunner",
        "waiting for the runner pod",
    ),
}


def test_every_phase_rule_has_an_example() -> None:
    assert list(PHASE_EXAMPLES) == [rule.id for rule in PHASE_RULES]


@pytest.mark.parametrize("rule_id", list(PHASE_EXAMPLES))
def test_phase_rule(rule_id: str) -> None:
    facts, phase, reason, message = PHASE_EXAMPLES[rule_id]
    rule = phase_rule(facts)
    assert rule.id == rule_id
    assert next_phase({}, facts) == (phase, reason, rule.message(facts))
    assert message in rule.message(facts)


@pytest.mark.parametrize("previous", ["Pending", "Running", "Finishing"])
@pytest.mark.parametrize("rule_id", list(PHASE_EXAMPLES))
def test_a_non_terminal_phase_moves_to_the_rule(previous: str, rule_id: str) -> None:
    facts, phase, reason, _ = PHASE_EXAMPLES[rule_id]
    assert next_phase({"phase": previous}, facts)[:2] == (phase, reason)


@pytest.mark.parametrize(
    ("previous", "condition"),
    [("Succeeded", "Complete"), ("Failed", "Failed"), ("Aborted", "Failed")],
)
@pytest.mark.parametrize("rule_id", list(PHASE_EXAMPLES))
def test_a_terminal_phase_is_absorbing(previous: str, condition: str, rule_id: str) -> None:
    facts = PHASE_EXAMPLES[rule_id][0]
    status = {
        "phase": previous,
        "message": "as it ended",
        "conditions": [{"type": condition, "status": "True", "reason": "AsItEnded"}],
    }
    assert next_phase(status, facts) == (previous, "AsItEnded", "as it ended")
    # Without a recorded reason or message, the rule's stand in; the phase still holds.
    rule = phase_rule(facts)
    assert next_phase({"phase": previous}, facts) == (
        previous,
        rule.reason,
        rule.message(facts),
    )


# -- display (`kubectl get bt -o wide`) and the verdict's Events --------------------------------


def _sla_results(config: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SLA results the real plugins give for these iteration records (Rally's details)."""
    from krally.task import plugin
    from krally.task.sla import SLAChecker

    plugin.load_builtin_plugins()
    checker = SLAChecker(config)
    for record in records:
        checker.add_iteration(record)
    return checker.results()


def _record(duration: float, error: bool = False, boot: float | None = None) -> dict[str, Any]:
    atomics = [{"name": "boot", "started_at": 0.0, "finished_at": boot}] if boot else []
    return {"duration": duration, "error": ["E", "x"] if error else [], "atomic_actions": atomics}


def test_sla_short_says_measured_against_limit_for_every_builtin_criterion() -> None:
    records = [_record(0.1, boot=0.1) for _ in range(9)] + [_record(3.0, True, boot=2.5)]
    records += [_record(0.1, boot=2.9), _record(2.0, boot=3.0)]
    config = {
        "failure_rate": {"max": 1},
        "max_seconds_per_iteration": 1.5,
        "max_avg_duration": 0.2,
        "max_avg_duration_per_atomic": {"boot": 0.5},
        "performance_degradation": {"max_degradation": 50},
        "outliers": {"max": 0},
    }
    results = _sla_results(config, records)
    shorts = {r["criterion"]: sla_short(r) for r in results}
    assert all(not r["success"] for r in results), results
    assert shorts == {
        "failure_rate": "failure_rate 8.33% > 1%",
        "max_seconds_per_iteration": "max_seconds_per_iteration 3s > 1.5s",
        "max_avg_duration": "max_avg_duration 0.27s > 0.2s",
        "max_avg_duration_per_atomic": "max_avg_duration_per_atomic 'boot' 0.62s > 0.5s",
        # No limit in Rally's detail: its first line.
        "performance_degradation": "performance_degradation: Current degradation: 1900.00%",
        "outliers": "outliers 1 > 0",
    }
    # Below a minimum, the measured value comes first.
    low = _sla_results({"failure_rate": {"min": 50}}, records)[0]
    assert sla_short(low) == "failure_rate 8.33% < 50%"
    # Rally's pseudo-criteria; a passing comparison is not shown as a failure.
    assert sla_short({"criterion": "aborted_on_sla", "detail": "Task was..."}) == ("aborted_on_sla")
    wrong = {"criterion": "something_went_wrong", "detail": "Unexpected error: " + "x" * 80}
    assert sla_short(wrong).startswith("something_went_wrong: Unexpected error: x")
    assert len(sla_short(wrong)) == MAX_CRITERION_TEXT


def test_sla_short_of_disruption_impact_names_each_failed_limit() -> None:
    from tests.unit.test_sla_disruption_impact import LIMITS, check, entry

    result = check(LIMITS, [entry(error_rate=0.2, recovery=None, recovered=False, p95_ratio=3)])
    assert sla_short(result) == (
        "disruption_impact error rate during 20% > 5%, recovery never <= 10s, p95 ratio 3 > 2"
    )


def test_failed_sla_text_is_bounded_and_counts_what_does_not_fit() -> None:
    items = [
        {"criterion": f"c{i}", "success": False, "detail": "-", "short": f"c{i} {i}s > 1s"}
        for i in range(2, 40)
    ]
    text = failed_sla_text([{"criterion": "ok", "success": True}, *items])
    assert text.startswith("c2 2s > 1s; c3 3s > 1s; ") and text.endswith(" more")
    assert len(text) <= MAX_FAILED_SLA
    shown = text.count(" > ")
    assert text.endswith(f"; +{len(items) - shown} more")
    huge = [{"criterion": "c" * 300, "success": False, "detail": ""}, *items[:1]]
    text = failed_sla_text(huge)
    assert len(text) <= MAX_FAILED_SLA and text.endswith("...; +1 more")
    assert failed_sla_text(None) == ""


def test_display_of_a_failed_verdict_is_declared_and_within_the_budget() -> None:
    from krally.api.status_schema import pruned_fields

    runner = json.loads(json.dumps(FINISHED_RUNNER))
    runner["progress"]["failures"] = runner["summary"]["failures"] = 32
    runner["summary"]["passSLA"] = False
    runner["summary"]["sla"] = [
        {
            "criterion": "failure_rate",
            "success": False,
            "detail": "Failure rate criteria 0.00% <= 2.13% <= 1.00% - Failed",
            "short": "failure_rate 2.13% > 1%",
        },
        {
            "criterion": "max_seconds_per_iteration",
            "success": True,
            "detail": "Maximum seconds per iteration 0.02s <= 1.00s - Passed",
        },
    ]
    jobs = [runner_job("complete"), *(hook_job(v) for v in AT)]
    pods = [hook_pod(v, success(v)) for v in AT]
    status = derive_status(make_task(runner), jobs, pods, NOW, created=())
    assert status["phase"] == "Succeeded" and status["passSLA"] is False
    assert status["display"] == {
        "progress": "1500/1500",
        "hooks": "4/4",
        "sla": "Failed",
        "recovery": "",
        "failures": "32 (2.13%)",
        "p95": "0.012s",
        "failedSLA": "failure_rate 2.13% > 1%",
    }
    assert pruned_fields({k: v for k, v in status.items() if v is not None}) == []
    # The columns add little to the status: far below the operator's byte budget.
    assert json_size(status["display"]) < 300
    # While the load runs: failures from the live counters, no p95 yet.
    live = {"state": "Running", "progress": {"done": 750, "total": 1500, "failures": 3}}
    running = derive_status(make_task(live), [runner_job()], [], NOW, created=())
    assert (running["display"]["failures"], running["display"]["p95"]) == ("3 (0.4%)", "")
    assert running["display"]["failedSLA"] == ""


def test_the_verdict_events_carry_each_failed_criterion_detail() -> None:
    runner = json.loads(json.dumps(FINISHED_RUNNER))
    runner["summary"]["passSLA"] = False
    detail = "Failure rate criteria 0.00% <= 2.13% <= 1.00% - Failed"
    runner["summary"]["sla"] = [
        {"criterion": "failure_rate", "success": False, "detail": detail},
        {"criterion": "outliers", "success": True, "detail": "Maximum number of outliers 0"},
        {
            "criterion": "max_avg_duration_per_atomic",
            "success": False,
            "detail": "Average duration...:\nAction: 'boot'. 2.00s <= 1.00s\nStatus: Failed",
        },
    ]
    jobs = [runner_job("complete"), *(hook_job(v) for v in AT)]
    pods = [hook_pod(v, success(v)) for v in AT]
    live = {"state": "Running", "progress": {"done": 1400, "total": 1500}, "firings": firings(AT)}
    before = derive_status(make_task(live), jobs, pods, NOW, created=())
    after = derive_status(make_task(runner), jobs, pods, NOW, created=())
    events = {reason: (etype, message) for etype, reason, message in
              kevents.transitions(before, {**after, "runner": runner})}  # fmt: skip
    assert events["SLAFailed"] == (
        "Warning",
        f"SLA failed: failure_rate: {detail}; max_avg_duration_per_atomic: "
        "Average duration...: Action: 'boot'. 2.00s <= 1.00s Status: Failed",
    )
    assert events["Completed"] == (
        "Normal",
        "load and every fired hook finished (iterations 1500/1500, failures 0, p95 0.012s, "
        "hooks 4/4, SLA Failed)",
    )
    # Passed: each criterion's detail too.
    passed = {**after, "passSLA": True, "sla": [{"criterion": "failure_rate", "detail": "ok"}]}
    (sla_event,) = [e for e in kevents.transitions({}, passed) if e[1] == "SLAPassed"]
    assert sla_event == ("Normal", "SLAPassed", "every SLA criterion passed: failure_rate: ok")


def test_a_run_error_is_a_warning_event_with_its_cause() -> None:
    crashed = {
        "state": "Error",
        "error": "ZeroDivisionError: division by zero",
        "progress": {"done": 7, "total": 1500},
    }
    task = make_task(crashed)
    status = derive_status(task, [runner_job("failed")], [], NOW, created=())
    events = kevents.transitions({"phase": "Running"}, {**status, "runner": crashed})
    assert ("Warning", "RunnerError", "runner failed: ZeroDivisionError: division by zero") in (
        events
    )
    # A failure whose message does not say the runner's error gets it appended.
    killed = {**crashed, "error": "BrokenProcessPool: a worker died"}
    oom = {"phase": "Failed", "message": "runner container was killed by its memory limit"}
    oom["conditions"] = [{"type": "Failed", "status": "True", "reason": "OOMKilled"}]
    (event,) = kevents.transitions({"phase": "Running"}, {**oom, "runner": killed})
    assert event == (
        "Warning",
        "OOMKilled",
        "runner container was killed by its memory limit: "
        "runner error: BrokenProcessPool: a worker died",
    )
    # Posted once: the same status again is no transition.
    assert kevents.transitions({**oom, "runner": killed}, {**oom, "runner": killed}) == []
