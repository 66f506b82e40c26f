"""The operator's planner: plain data in, actions out (no API, no event loop, no globals)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from krally.kube.operator.planner import (
    Abort,
    CreateIdentity,
    CreateJob,
    FlushLater,
    Memory,
    Observed,
    WriteStatus,
    describe,
    newest,
    plan,
    plan_firings,
)
from krally.kube.operator.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings(runner_image="img/runner:1", hook_image="img/hook:1", status_write_period=4)
ACCEPTED = [{"type": "Accepted", "status": "True"}]


def make_task(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {
            "name": "t",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "10",
        },
        "spec": {
            "scenario": {"name": "Dummy.dummy", "args": {}},
            "runner": {"type": "constant", "times": 100},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "/bin/true",
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5, 50]}},
                }
            ],
            # Arming has tests of its own (test_kube_arming.py); these plan unarmed hooks.
            "arming": {"enabled": False},
            **spec,
        },
        "status": status or {},
    }


def job(name: str, state: str = "active") -> dict[str, Any]:
    status: dict[str, Any] = {"active": 1} if state == "active" else {}
    if state == "complete":
        status = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "ownerReferences": [{"uid": "uid-1"}]},
        "status": status,
    }


def running(*values: int) -> dict[str, Any]:
    firings = [{"hook": 0, "eventType": "iteration", "value": v, "firedAt": "x"} for v in values]
    return {
        "runnerJob": "krally-t-runner",
        "phase": "Running",
        "conditions": ACCEPTED,
        "runner": {"state": "Running", "firings": firings},
    }


def accepted_memory(**fields: Any) -> Memory:
    return Memory(uid="uid-1", problems=[], **fields)


def kinds(actions: list[Any]) -> list[str]:
    return [describe(a) for a in actions]


def test_a_new_task_gets_identity_runner_and_a_first_status() -> None:
    actions = plan(make_task(), Observed(), accepted_memory(), SETTINGS, now=NOW, clock=100.0)
    identity, runner, write = actions
    assert isinstance(identity, CreateIdentity)
    assert [(kind, body["metadata"]["name"]) for kind, body in identity.bodies] == [
        ("ServiceAccount", "krally-t-runner"),
        ("Role", "krally-t-runner"),
        ("RoleBinding", "krally-t-runner"),
        # The hook names no ServiceAccount: it runs as the task's own, rightless one.
        ("ServiceAccount", "krally-t-hooks"),
    ]
    assert isinstance(runner, CreateJob) and runner.name == "krally-t-runner"
    assert runner.body["spec"]["template"]["spec"]["containers"][0]["image"] == "img/runner:1"
    assert isinstance(write, WriteStatus)
    # The status counts the runner Job this very pass creates.
    assert write.patch["phase"] == "Pending" and write.patch["runnerJob"] == "krally-t-runner"
    assert write.events == ()  # Pending is no Event; Started comes with Running


def test_identity_and_runner_are_created_once() -> None:
    memory = accepted_memory(identity_done=True)
    actions = plan(make_task(), Observed(), memory, SETTINGS, now=NOW, clock=100.0)
    assert [type(a) for a in actions][:1] == [CreateJob]
    memory.created["krally-t-runner"] = {"metadata": {"name": "krally-t-runner"}}
    again = plan(make_task(), Observed(), memory, SETTINGS, now=NOW, clock=100.0)
    assert not [a for a in again if isinstance(a, CreateJob | CreateIdentity)]
    # Nor when the status already names it (its Job deleted: the phase says so instead).
    recorded = make_task({"runnerJob": "krally-t-runner", "conditions": ACCEPTED})
    actions = plan(recorded, Observed(), accepted_memory(), SETTINGS, now=NOW, clock=100.0)
    assert not [a for a in actions if isinstance(a, CreateJob | CreateIdentity)]
    (write,) = actions
    assert isinstance(write, WriteStatus) and write.patch["phase"] == "Failed"


def test_every_new_firing_gets_one_hook_job() -> None:
    task = make_task(running(5, 50, 5))
    observed = Observed(jobs=(job("krally-t-runner"),))
    actions = plan(task, observed, accepted_memory(), SETTINGS, now=NOW, clock=100.0)
    hooks = [a for a in actions if isinstance(a, CreateJob)]
    assert [(h.name, h.role, h.firing["value"]) for h in hooks] == [
        ("t-h0-i5", "hook", 5),
        ("t-h0-i50", "hook", 50),
    ]
    assert (
        hooks[0].body["metadata"]["annotations"]["krally.dev/created-at"].startswith("2026-01-01")
    )
    # In flight (created, not yet seen) or seen: not again.
    memory = accepted_memory(created={"t-h0-i5": {"metadata": {"name": "t-h0-i5"}}})
    observed = Observed(jobs=(job("krally-t-runner"), job("t-h0-i50")))
    assert plan_firings(task, observed, memory, SETTINGS, now=0) == []


def test_a_finished_firing_whose_job_was_cleaned_up_is_not_run_again() -> None:
    status = running(5)
    status["hooks"] = [{"index": 0, "results": [{"job": "t-h0-i5", "status": "success"}]}]
    task = make_task(status)
    assert (
        plan_firings(task, Observed((job("krally-t-runner"),)), accepted_memory(), SETTINGS, now=0)
        == []
    )
    # A pending one (its Job never appeared) is created.
    status["hooks"][0]["results"][0]["status"] = "pending"
    (again,) = plan_firings(
        task, Observed((job("krally-t-runner"),)), accepted_memory(), SETTINGS, now=0
    )
    assert again.name == "t-h0-i5"


def test_no_firing_before_acceptance_or_for_a_namesake() -> None:
    task = make_task(running(5))
    assert plan_firings(task, Observed(), Memory(uid="uid-1"), SETTINGS, now=0) == []
    assert (
        plan_firings(task, Observed(), Memory(uid="uid-1", problems=["bad"]), SETTINGS, now=0) == []
    )
    assert plan_firings(task, Observed(), Memory(uid="other", problems=[]), SETTINGS, now=0) == []
    with pytest.raises(ValueError, match="validation"):
        plan(task, Observed(), Memory(uid="uid-1"), SETTINGS, now=NOW, clock=1.0)


def test_a_rejected_spec_only_writes_why() -> None:
    memory = Memory(uid="uid-1", problems=["spec.hooks[0].trigger.args.at: [] is too short"])
    (write,) = plan(make_task(), Observed(), memory, SETTINGS, now=NOW, clock=100.0)
    assert isinstance(write, WriteStatus)
    assert write.patch["phase"] == "Failed"
    cond = next(c for c in write.patch["conditions"] if c["type"] == "Accepted")
    assert cond["status"] == "False" and "spec.hooks[0].trigger" in cond["message"]


def test_abort_deletes_the_runner_job_once() -> None:
    task = make_task(running(), abort=True)
    observed = Observed(jobs=(job("krally-t-runner"),))
    actions = plan(task, observed, accepted_memory(), SETTINGS, now=NOW, clock=100.0)
    # Only the object this task owns: the uid is the delete's precondition.
    assert Abort("krally-t-runner", "uid-krally-t-runner") in actions
    assert not [a for a in actions if isinstance(a, CreateJob | CreateIdentity)]
    done = plan(task, observed, accepted_memory(abort_sent=True), SETTINGS, now=NOW, clock=100.0)
    assert not [a for a in done if isinstance(a, Abort)]
    # No runner Job (never created): nothing to delete, but the abort is recorded.
    gone = plan(make_task({"conditions": ACCEPTED}, abort=True), Observed(), accepted_memory(),
                SETTINGS, now=NOW, clock=100.0)  # fmt: skip
    assert Abort(None) in gone


def test_status_writes_are_throttled_unless_urgent() -> None:
    task = make_task(running())
    task["status"]["runner"]["progress"] = {"done": 1, "total": 100}
    observed = Observed(jobs=(job("krally-t-runner"),))
    first = plan(task, observed, accepted_memory(), SETTINGS, now=NOW, clock=100.0)
    (write,) = [a for a in first if isinstance(a, WriteStatus)]
    # Apply it, as the applier would, then progress moves on 1 s later: held back 3 s.
    task["status"].update({k: v for k, v in write.patch.items() if v is not None})
    task["status"]["runner"]["progress"] = {"done": 2, "total": 100}
    memory = accepted_memory(last_write=100.0)
    (later,) = plan(task, observed, memory, SETTINGS, now=NOW, clock=101.0)
    assert isinstance(later, FlushLater) and later.delay == pytest.approx(3.0)
    # Past the period: written.
    (due,) = plan(task, observed, memory, SETTINGS, now=NOW, clock=104.5)
    assert isinstance(due, WriteStatus) and due.patch["progress"]["done"] == 2
    # A phase change is written at once, with its Events.
    task["status"]["runner"]["state"] = "Error"
    (urgent,) = plan(task, observed, memory, SETTINGS, now=NOW, clock=101.0)
    assert isinstance(urgent, WriteStatus) and urgent.patch["phase"] == "Failed"
    assert urgent.events


def test_nothing_to_do_when_the_status_is_current() -> None:
    task = make_task(running())
    observed = Observed(jobs=(job("krally-t-runner"),))
    (write,) = plan(task, observed, accepted_memory(), SETTINGS, now=NOW, clock=100.0)
    assert isinstance(write, WriteStatus)
    task["status"].update({k: v for k, v in write.patch.items() if v is not None})
    assert (
        plan(task, observed, accepted_memory(last_write=100.0), SETTINGS, now=NOW, clock=200.0)
        == []
    )


def test_a_deleted_task_gets_nothing() -> None:
    task = make_task(running(5))
    task["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert plan(task, Observed(), accepted_memory(), SETTINGS, now=NOW, clock=1.0) == []
    assert plan_firings(task, Observed(), accepted_memory(), SETTINGS, now=0) == []


def test_warnings_found_at_acceptance_stay_in_status() -> None:
    memory = accepted_memory(warnings=["spec.hooks[0].trigger.args.at: [500] beyond times"])
    actions = plan(make_task(), Observed(), memory, SETTINGS, now=NOW, clock=1.0)
    (write,) = [a for a in actions if isinstance(a, WriteStatus)]
    assert write.patch["warnings"] == memory.warnings
    assert ("Warning", "SpecWarning") in {(e[0], e[1]) for e in write.events}
    # After a restart memory has none: the status keeps them (no removal patch).
    task = make_task({"warnings": memory.warnings, "conditions": ACCEPTED})
    again = plan(task, Observed(), accepted_memory(), SETTINGS, now=NOW, clock=1.0)
    assert all("warnings" not in a.patch for a in again if isinstance(a, WriteStatus))


def test_our_own_newer_status_write_wins_over_a_stale_watch() -> None:
    task = make_task()
    snapshot = copy.deepcopy(task)
    snapshot["metadata"]["resourceVersion"] = "11"
    assert newest(task, snapshot) is snapshot
    assert newest(snapshot, task) is snapshot
    assert newest(task, None) is task


def test_describe_names_every_action() -> None:
    actions = plan(make_task(), Observed(), accepted_memory(), SETTINGS, now=NOW, clock=1.0)
    assert kinds(actions)[:2] == [
        "create ServiceAccount krally-t-runner, Role krally-t-runner, RoleBinding krally-t-runner, "
        "ServiceAccount krally-t-hooks",
        "create runner Job krally-t-runner",
    ]
    assert describe(FlushLater(2.0)) == "flush status in 2.0 s"
    assert describe(Abort(None)) == "abort (no runner Job)"
