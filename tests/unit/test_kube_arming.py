"""Armed hooks in the planner: which Jobs are armed, when the load is released, what ends."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import timedelta
from typing import Any

from tests.unit.test_kube_planner import NOW, SETTINGS, accepted_memory, make_task

from krally.api.names import ANNOTATION_ARMED
from krally.api.status_schema import pruned_fields
from krally.kube.operator import arming
from krally.kube.operator import builders as kjobs
from krally.kube.operator.planner import (
    CreateIdentity,
    CreateJob,
    FlushLater,
    Observed,
    SetDeadline,
    StopHooks,
    WriteStatus,
    plan,
)
from krally.kube.operator.status.hooks import derive_hooks
from krally.task import plugin

plugin.load_builtin_plugins()


def armed_task(at: list[int] | None = None, status: dict[str, Any] | None = None, **spec: Any):
    task = make_task(status, **spec)
    task["spec"]["arming"] = spec.get("arming") or {}
    if at is not None:
        task["spec"]["hooks"][0]["trigger"]["args"]["at"] = at
    return task


def created(actions: list[Any]) -> list[str]:
    return [a.name for a in actions if isinstance(a, CreateJob)]


def as_observed(action: CreateJob, ready: bool = False, state: str = "active") -> tuple:
    """The Job the watch shows for a create, with its pod (ready or not)."""
    job = copy.deepcopy(action.body)
    job["metadata"]["uid"] = f"uid-{action.name}"
    job["status"] = {"active": 1}
    if state == "complete":
        job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    pod = {
        "metadata": {
            "name": f"{action.name}-pod",
            "labels": {"batch.kubernetes.io/job-name": action.name},
            "creationTimestamp": "2026-01-01T12:00:00Z",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"state": {"running": {"startedAt": "2026-01-01T12:00:01Z"}}}],
        },
    }
    return job, pod


def observe(actions: list[Any], ready: bool = False) -> Observed:
    pairs = [as_observed(a, ready) for a in actions if isinstance(a, CreateJob)]
    return Observed(tuple(j for j, _ in pairs), tuple(p for _, p in pairs))


def status_of(actions: list[Any]) -> dict[str, Any]:
    (write,) = [a for a in actions if isinstance(a, WriteStatus)]
    return write.patch


# -- what is known ahead ---------------------------------------------------------------------


def spec_with(*triggers: dict[str, Any], times: int = 100) -> dict[str, Any]:
    return {
        "runner": {"type": "constant", "times": times},
        "hooks": [{"name": "sys_call", "args": "true", "trigger": t} for t in triggers],
    }


def test_event_values_are_armed_earliest_first_within_the_runs_iterations() -> None:
    spec = spec_with({"name": "event", "args": {"unit": "iteration", "at": [50, 5, 200]}})
    assert arming.predictable(spec, set(), "t", 10) == [(0, "iteration", 5), (0, "iteration", 50)]


def test_hooks_take_turns_and_known_jobs_are_skipped() -> None:
    spec = spec_with(
        {"name": "event", "args": {"unit": "iteration", "at": [1, 2, 3]}},
        {"name": "periodic", "args": {"unit": "time", "step": 10}},  # endless
    )
    skip = {kjobs.hook_job_name("t", 0, "iteration", 1), kjobs.hook_job_name("t", 1, "time", 0)}
    assert arming.predictable(spec, skip, "t", 4) == [
        (0, "iteration", 2),
        (1, "time", 10),
        (0, "iteration", 3),
        (1, "time", 20),
    ]


def test_periodic_iterations_end_with_the_runner_and_unknown_triggers_are_not_armed() -> None:
    spec = spec_with({"name": "periodic", "args": {"unit": "iteration", "step": 40}}, times=100)
    assert [v for _, _, v in arming.predictable(spec, set(), "t", 10)] == [1, 41, 81]
    spec = spec_with({"name": "no_such_trigger", "args": {}})
    assert arming.predictable(spec, set(), "t", 10) == []


# -- the plan -------------------------------------------------------------------------------


def test_a_new_task_arms_its_first_firings_and_holds_the_load() -> None:
    actions = plan(armed_task(), Observed(), accepted_memory(), SETTINGS, now=NOW, clock=100.0)
    identity = actions[0]
    assert isinstance(identity, CreateIdentity)
    bodies = {(kind, b["metadata"]["name"]): b for kind, b in identity.bodies}
    reader = bodies[("Role", "krally-t-hooks")]
    assert reader["rules"] == [
        {
            "apiGroups": ["krally.dev"],
            "resources": ["benchmarktasks"],
            "resourceNames": ["t"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = bodies[("RoleBinding", "krally-t-hooks")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "krally-t-hooks", "namespace": "ns"}
    ]
    # Both firings armed, no runner Job yet: the load waits for their pods.
    assert created(actions) == ["t-h0-i5", "t-h0-i50"]
    patch = status_of(actions)
    assert patch["arming"]["startedAt"] and patch["arming"]["waiting"] == 2
    assert "waits for 2 armed hook pods" in patch["message"]
    assert pruned_fields(patch) == []
    assert isinstance(actions[-1], FlushLater) and actions[-1].delay == 120


def test_an_armed_job_waits_for_its_firing_with_a_token_and_no_deadline() -> None:
    (action, *_) = [
        a
        for a in plan(armed_task(), Observed(), accepted_memory(), SETTINGS, now=NOW, clock=1.0)
        if isinstance(a, CreateJob)
    ]
    job = action.body
    assert job["metadata"]["annotations"][ANNOTATION_ARMED] == "true"
    assert "activeDeadlineSeconds" not in job["spec"] and job["spec"]["backoffLimit"] == 0
    (rule,) = job["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "Ignore" and rule["onExitCodes"]["values"] == [3]
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "krally-t-hooks"
    assert pod["automountServiceAccountToken"] is True
    container = pod["containers"][0]
    assert container["startupProbe"]["tcpSocket"]["port"] == 8086
    payload = json.loads(next(e["value"] for e in container["env"] if e["name"] == "KRALLY_HOOK"))
    assert payload["armed"] == {"readyPort": 8086, "maxDelaySeconds": 60}
    assert payload["triggeredBy"] == {"event_type": "iteration", "value": 5}
    assert payload["timeoutSeconds"] == SETTINGS.hook_timeout_seconds


def test_the_runner_starts_once_the_armed_pods_are_ready() -> None:
    memory = accepted_memory()
    first = plan(armed_task(), Observed(), memory, SETTINGS, now=NOW, clock=1.0)
    memory.identity_done = True
    status = {"arming": status_of(first)["arming"], "conditions": status_of(first)["conditions"]}
    later = NOW + timedelta(seconds=4)
    # One pod ready of two: still held.
    observed = observe(first)
    pods = list(observed.pods)
    pods[0] = as_observed(first[1], ready=True)[1]
    half = Observed(observed.jobs, tuple(pods))
    held = plan(armed_task(status=status), half, memory, SETTINGS, now=later, clock=5.0)
    assert "krally-t-runner" not in created(held)
    ready = plan(
        armed_task(status=status), observe(first, True), memory, SETTINGS, now=later, clock=9.0
    )
    assert created(ready) == ["krally-t-runner"]
    released = status_of(ready)["arming"]
    assert released["waitedSeconds"] == 4.0 and released["awaited"] == 2
    assert released["readyAtRelease"] == 2 and released["timedOut"] is False


def test_the_load_starts_anyway_after_the_start_timeout() -> None:
    memory = accepted_memory()
    first = plan(armed_task(arming={"startTimeoutSeconds": 30}), Observed(), memory, SETTINGS,
                 now=NOW, clock=1.0)  # fmt: skip
    memory.identity_done = True
    status = {"arming": status_of(first)["arming"]}
    task = armed_task(status=status, arming={"startTimeoutSeconds": 30})
    late = NOW + timedelta(seconds=31)
    actions = plan(task, observe(first), memory, SETTINGS, now=late, clock=50.0)
    assert created(actions) == ["krally-t-runner"]
    released = status_of(actions)["arming"]
    assert released["timedOut"] is True and released["readyAtRelease"] == 0
    assert "0 of 2 armed pods ready" in released["message"]


def test_at_most_max_armed_wait_and_the_next_are_armed_as_they_fire() -> None:
    task = armed_task(at=[1, 2, 3, 4, 5], arming={"maxArmed": 2})
    memory = accepted_memory()
    first = plan(task, Observed(), memory, SETTINGS, now=NOW, clock=1.0)
    assert created(first) == ["t-h0-i1", "t-h0-i2"]
    memory.identity_done = True
    # Iteration 1 fired: its Job is no longer waiting, so iteration 3 is armed.
    fired = {"hook": 0, "eventType": "iteration", "value": 1, "firedAt": "2026-01-01T12:00:05Z"}
    status = {
        "runnerJob": "krally-t-runner",
        "arming": {**status_of(first)["arming"], "loadReleasedAt": "2026-01-01T12:00:02Z"},
        "runner": {"state": "Running", "firings": [fired]},
    }
    task = armed_task(at=[1, 2, 3, 4, 5], status=status, arming={"maxArmed": 2})
    later = NOW + timedelta(seconds=5)
    actions = plan(task, observe(first, True), memory, SETTINGS, now=later, clock=9.0)
    assert created(actions) == ["t-h0-i3"]
    (result,) = status_of(actions)["hooks"][0]["results"]
    # Running since its firing (its pod started long before).
    assert result["armed"] is True and result["status"] == "running"
    assert result["startedAt"] == result["firedAt"] == "2026-01-01T12:00:05Z"


def test_armed_jobs_the_load_never_reached_are_ended_and_counted() -> None:
    memory = accepted_memory(identity_done=True)
    first = plan(armed_task(), Observed(), memory, SETTINGS, now=NOW, clock=1.0)
    fired = {"hook": 0, "eventType": "iteration", "value": 5, "firedAt": "2026-01-01T12:00:05Z"}
    status = {
        "runnerJob": "krally-t-runner",
        "arming": status_of(first)["arming"],
        "runner": {"state": "Finished", "firings": [fired]},
    }
    observed = observe(first, True)
    actions = plan(armed_task(status=status), observed, memory, SETTINGS, now=NOW, clock=9.0)
    (stop,) = [a for a in actions if isinstance(a, StopHooks)]
    assert stop.jobs == ("t-h0-i50",) and stop.uids == ("uid-t-h0-i50",)
    assert not created(actions)
    assert status_of(actions)["arming"]["unreached"] == 1
    # Stopped once: the next pass (memory.stopped) does not delete it again, and still counts it.
    memory.stopped.add("t-h0-i50")
    again = plan(armed_task(status=status), observed, memory, SETTINGS, now=NOW, clock=99.0)
    assert not [a for a in again if isinstance(a, StopHooks)]


def test_a_firing_faster_than_arming_gets_its_job_on_fire_and_says_so() -> None:
    firings = [
        {"hook": 0, "eventType": "iteration", "value": v, "firedAt": "2026-01-01T12:00:05Z"}
        for v in (1, 2, 3)
    ]
    status = {
        "runnerJob": "krally-t-runner",
        "arming": {"startedAt": "2026-01-01T12:00:00Z", "loadReleasedAt": "2026-01-01T12:00:01Z"},
        "runner": {"state": "Running", "firings": firings},
    }
    spec = {"arming": {"maxArmed": 1}}
    task = armed_task(at=[1, 2, 3, 4], status=status, **spec)
    task["spec"]["arming"] = spec["arming"]
    first = {"eventType": "iteration", "value": 1}
    armed_one = kjobs.hook_job(task, 0, first, SETTINGS, armed=True)
    armed_one["metadata"]["uid"] = "u1"
    memory = accepted_memory(identity_done=True)
    observed = Observed((armed_one,))
    actions = plan(task, observed, memory, SETTINGS, now=NOW + timedelta(seconds=5), clock=9.0)
    on_fire = [a for a in actions if isinstance(a, CreateJob) and a.firing is not None]
    assert [a.name for a in on_fire] == ["t-h0-i2", "t-h0-i3"]
    assert all(ANNOTATION_ARMED not in a.body["metadata"]["annotations"] for a in on_fire)
    # And the next unfired value is armed (one waiting at most).
    assert [a.name for a in actions if isinstance(a, CreateJob) and a.firing is None] == ["t-h0-i4"]
    memory.created.update({a.name: a.body for a in on_fire})
    jobs = (armed_one, *(as_observed(a)[0] for a in on_fire))
    again = plan(task, Observed(jobs), memory, SETTINGS, now=NOW + timedelta(seconds=6), clock=20.0)
    arming_status = status_of(again)["arming"]
    assert arming_status["onFire"] == 2
    assert "only as they fired" in arming_status["message"]
    results = status_of(again)["hooks"][0]["results"]
    assert [r["armed"] for r in results] == [True, False, False]


def test_arming_disabled_or_nothing_predictable_keeps_the_unarmed_flow() -> None:
    off = armed_task(arming={"enabled": False})
    actions = plan(off, Observed(), accepted_memory(), SETTINGS, now=NOW, clock=1.0)
    assert created(actions) == ["krally-t-runner"]
    assert "arming" not in status_of(actions) or status_of(actions)["arming"] is None
    custom = armed_task()
    custom["spec"]["hooks"][0]["trigger"] = {"name": "no_such_trigger", "args": {}}
    actions = plan(custom, Observed(), accepted_memory(), SETTINGS, now=NOW, clock=1.0)
    assert created(actions) == ["krally-t-runner"]


def test_the_armed_flag_outlives_the_cleaned_up_job() -> None:
    fired = {"hook": 0, "eventType": "iteration", "value": 5, "firedAt": "2026-01-01T12:00:05Z"}
    task = armed_task(status={"runner": {"state": "Running", "firings": [fired]}})
    job = kjobs.hook_job(task, 0, fired, SETTINGS, armed=True)
    job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    hooks = derive_hooks(task, {job["metadata"]["name"]: job}, {})
    assert hooks[0]["results"][0]["armed"] is True
    task["status"]["hooks"] = hooks
    again = derive_hooks(task, {}, {})
    assert again[0]["results"][0]["armed"] is True
    assert list(itertools.chain.from_iterable(h["results"] for h in again))


def test_a_pod_that_cannot_start_does_not_hold_the_load() -> None:
    memory = accepted_memory()
    first = plan(armed_task(), Observed(), memory, SETTINGS, now=NOW, clock=1.0)
    memory.identity_done = True
    observed = observe(first, ready=True)
    stuck = copy.deepcopy(observed.pods[1])
    stuck["status"] = {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no"}
        ],
    }
    task = armed_task(status={"arming": status_of(first)["arming"]})
    later = NOW + timedelta(seconds=3)
    observed = Observed(observed.jobs, (observed.pods[0], stuck))
    actions = plan(task, observed, memory, SETTINGS, now=later, clock=9.0)
    assert created(actions) == ["krally-t-runner"]
    released = status_of(actions)["arming"]
    assert released["readyAtRelease"] == 1 and released["timedOut"] is False
    assert "1 cannot start" in released["message"]


def test_a_fired_armed_job_gets_its_timeout_from_the_firing_once() -> None:
    fired = {"hook": 0, "eventType": "iteration", "value": 5, "firedAt": "2026-01-01T12:01:00Z"}
    status = {"runnerJob": "krally-t-runner", "runner": {"state": "Running", "firings": [fired]}}
    task = armed_task(status=status)
    task["spec"]["hooks"][0]["job"] = {"timeoutSeconds": 30}
    job = kjobs.hook_job(task, 0, fired, SETTINGS, armed=True)
    job["metadata"]["uid"] = "u5"
    job["status"] = {"active": 1, "startTime": "2026-01-01T12:00:00Z"}
    memory = accepted_memory(identity_done=True)
    actions = plan(task, Observed((job,)), memory, SETTINGS, now=NOW, clock=1.0)
    (deadline,) = [a for a in actions if isinstance(a, SetDeadline)]
    # 60 s armed before the firing, then the hook's 30 s (and 5 s for the pod to report it).
    assert (deadline.job, deadline.uid, deadline.seconds) == ("t-h0-i5", "u5", 95)
    memory.deadlines.add("t-h0-i5")
    again = plan(task, Observed((job,)), memory, SETTINGS, now=NOW, clock=50.0)
    assert not [a for a in again if isinstance(a, SetDeadline)]


def test_a_release_whose_status_write_was_lost_is_recorded_from_the_runner_job() -> None:
    status = {
        "runnerJob": "krally-t-runner",
        "arming": {"startedAt": "2026-01-01T12:00:00Z", "armed": 2},
        "runner": {"state": "Running", "firings": []},
    }
    runner = {
        "metadata": {
            "name": "krally-t-runner",
            "uid": "r",
            "creationTimestamp": "2026-01-01T12:00:07Z",
        },
        "status": {"active": 1},
    }
    actions = plan(
        armed_task(status=status),
        Observed((runner,)),
        accepted_memory(identity_done=True),
        SETTINGS,
        now=NOW + timedelta(seconds=30),
        clock=1.0,
    )
    arming_status = status_of(actions)["arming"]
    assert arming_status["loadReleasedAt"] == "2026-01-01T12:00:07.000Z"
    assert arming_status["waitedSeconds"] == 7.0


def test_once_the_load_runs_the_soonest_firings_are_armed_first() -> None:
    spec = spec_with(
        {"name": "event", "args": {"unit": "iteration", "at": [10, 100000]}},
        {"name": "periodic", "args": {"unit": "time", "step": 2}},
        times=200000,
    )
    # 100 iterations/s: iteration 10 comes at 0.1 s, 100000 after 1000 s, long after the ticks.
    assert arming.predictable(spec, set(), "t", 3, rate=100.0) == [
        (1, "time", 0),
        (0, "iteration", 10),
        (1, "time", 2),
    ]
    status = {"runner": {"progress": {"done": 500, "elapsedSeconds": 5.0}}}
    assert arming._rate({"status": status}) == 100.0
    assert (
        arming._rate({"status": {"runner": {"progress": {"done": 3, "elapsedSeconds": 0.2}}}})
        is None
    )


def test_waiting_armed_pods_get_a_grace_to_exit_by_themselves_after_the_load() -> None:
    memory = accepted_memory(identity_done=True)
    first = plan(armed_task(), Observed(), memory, SETTINGS, now=NOW, clock=1.0)
    fired = {"hook": 0, "eventType": "iteration", "value": 5, "firedAt": "2026-01-01T12:00:05Z"}
    status = {
        "runnerJob": "krally-t-runner",
        "arming": status_of(first)["arming"],
        "runner": {"state": "Finished", "finishedAt": "2026-01-01T12:00:10Z", "firings": [fired]},
    }
    observed = observe(first, True)
    soon = NOW + timedelta(seconds=15)  # 5 s after the load's end
    actions = plan(armed_task(status=status), observed, memory, SETTINGS, now=soon, clock=9.0)
    assert not [a for a in actions if isinstance(a, StopHooks)]
    assert isinstance(actions[-1], FlushLater) and actions[-1].delay == 25.0
    later = NOW + timedelta(seconds=41)
    actions = plan(armed_task(status=status), observed, memory, SETTINGS, now=later, clock=99.0)
    (stop,) = [a for a in actions if isinstance(a, StopHooks)]
    assert stop.jobs == ("t-h0-i50",)


def test_a_load_that_started_unarmed_is_not_armed_later() -> None:
    # E.g. a task started by an operator from before arming: its hooks have no reader Role.
    status = {"runnerJob": "krally-t-runner", "runner": {"state": "Running", "firings": []}}
    runner = {"metadata": {"name": "krally-t-runner", "uid": "r"}, "status": {"active": 1}}
    actions = plan(armed_task(status=status), Observed((runner,)),
                   accepted_memory(identity_done=True), SETTINGS, now=NOW, clock=1.0)  # fmt: skip
    assert created(actions) == []
    assert status_of(actions).get("arming") is None
