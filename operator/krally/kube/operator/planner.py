"""The planner: what to do about one task, as a pure function of what is known.

``plan(task, observed, memory, settings, now=..., clock=...)`` returns the actions that bring the
cluster and the task's status in line: create the runner's identity and Job, create the hook Job
of every new firing, delete the runner Job on abort, write (or hold back) a status patch. It
performs no I/O, so unit tests drive it with plain data; :mod:`.apply` carries the actions out
in order (a failed action stops the pass, and the pass is planned again).

Every input is explicit: ``task`` (spec and the status last seen, which holds what the status
itself remembers: recorded hook results, the terminal phase, conditions' transition times),
``observed`` (the owned Jobs and their pods), and ``memory`` (what this operator process
remembers: validation, Jobs created that the watch has not shown yet, the last write).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from krally.api.names import REASON_NAME_CONFLICT, ROLE_HOOK, ROLE_RUNNER
from krally.api.times import rfc3339
from krally.api.types import HOOK_PENDING, TERMINAL, HookError
from krally.kube import events as kevents
from krally.kube.operator import arming, inflight
from krally.kube.operator import builders as kjobs
from krally.kube.operator.settings import Settings
from krally.kube.operator.status.budget import fit_budget, json_size
from krally.kube.operator.status.derive import derive_status, rejected_status
from krally.kube.operator.status.hooks import is_late
from krally.kube.operator.status.observed import (
    fired_by_job,
    job_state,
    pods_by_job,
    previous_results,
)
from krally.kube.operator.status.patch import status_patch, urgent
from krally.kube.throttle import write_delay

Key = tuple[str, str]  # (namespace, task name as a label value)
Obj = dict[str, Any]


@dataclass(frozen=True)
class Observed:
    """The task's children as the watch shows them: owned Jobs and the pods of those Jobs."""

    jobs: tuple[Obj, ...] = ()
    pods: tuple[Obj, ...] = ()


@dataclass
class Memory:
    """What this operator process remembers about one task (rebuilt from the cluster after a
    restart: validation is redone, never taken from the status, which the task's author may
    patch; nothing else is needed for correctness)."""

    uid: str = ""
    problems: list[str] | None = None  # None: not validated yet
    warnings: list[str] | None = None  # found by that validation
    created: dict[str, Obj] = field(default_factory=dict)  # Job name → create reply
    snapshot: Obj | None = None  # the task as returned by our last status patch
    last_write: float = 0.0  # monotonic time of our last status write (0: none yet)
    abort_sent: bool = False
    identity_done: bool = False
    # A child's name taken by an object this task does not control (the task fails with it).
    conflict: str | None = None
    stopped: set[str] = field(default_factory=set)  # hook Jobs deleted because of spec.abort
    deadlines: set[str] = field(default_factory=set)  # armed hook Jobs given their timeout
    # Creates the API server refused for good (until the status records them): hook Job name →
    # the firing's error; the runner's (its Job or identity) as a message.
    refused: dict[str, HookError] = field(default_factory=dict)
    runner_refused: str = ""
    failures: dict[str, int] = field(
        default_factory=dict
    )  # failed creates in a row, by Job ('' = runner)


# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateIdentity:
    """The runner's ServiceAccount, Role and RoleBinding, and the hooks' ServiceAccount when a
    hook names none (a 409 counts as created only for an object this task controls)."""

    bodies: tuple[tuple[str, Obj], ...]


@dataclass(frozen=True)
class CreateJob:
    name: str
    body: Obj
    role: str  # ROLE_RUNNER or ROLE_HOOK
    firing: Obj | None = None


@dataclass(frozen=True)
class Abort:
    """Stop the load: delete the runner Job (its pod gets SIGTERM), if there is one; only the
    object ``uid`` (the one this task owns) is deleted."""

    job: str | None
    uid: str | None = None


@dataclass(frozen=True)
class StopHooks:
    """spec.abort: delete the hook Jobs still running (404 counts as deleted); ``uids`` (same
    order) are the preconditions: only the objects this task owns are deleted."""

    jobs: tuple[str, ...]
    uids: tuple[str | None, ...] = ()
    why: str = "spec.abort"


@dataclass(frozen=True)
class SetDeadline:
    """An armed hook Job whose firing came: its timeout, as activeDeadlineSeconds counted from
    the Job's start (the wait before the firing does not count), so a pod that never ran (e.g.
    unschedulable) fails by the Job controller like an unarmed one. ``uid``: only that object."""

    job: str
    uid: str | None
    seconds: int


@dataclass(frozen=True)
class WriteStatus:
    patch: Obj
    message: str
    events: tuple[tuple[str, str, str], ...] = ()  # (type, reason, message) to post


@dataclass(frozen=True)
class FlushLater:
    """A status change that may wait: plan again after ``delay`` seconds."""

    delay: float


Action = CreateIdentity | CreateJob | Abort | StopHooks | SetDeadline | WriteStatus | FlushLater


# -- firings -----------------------------------------------------------------------------------


def firings_without_job(
    task: Obj, jobs_by_name: Mapping[str, Any], created: Iterable[str] = ()
) -> list[tuple[int, Obj, str]]:
    """(hook index, firing, job name) of every firing whose Job must still be created: no Job
    seen, none created by this process, and no result recorded (a finished Job cleaned up
    must not be re-run)."""
    previous = previous_results(task.get("status") or {})
    done = set(created)
    todo = []
    for job_name, firing in fired_by_job(task).items():
        if job_name in jobs_by_name or job_name in done:
            continue
        if (previous.get(job_name) or {}).get("status") not in (None, HOOK_PENDING):
            continue
        todo.append((int(firing["hook"]), firing, job_name))
    return todo


def conflict_stand_in(name: str, message: str, at: str | None = None) -> Obj:
    """What this process remembers for a hook Job whose name is taken by an object the task does
    not control: a failed Job of its own (reason NameConflict), so the status derives that
    firing's failed result naming the object, and the firing is never created again."""
    condition = {
        "type": "Failed",
        "status": "True",
        "reason": REASON_NAME_CONFLICT,
        "message": message,
    }
    if at:
        condition["lastTransitionTime"] = at
    return {"metadata": {"name": name}, "status": {"conditions": [condition]}}


def _by_name(jobs: Iterable[Obj]) -> dict[str, Obj]:
    return {j["metadata"]["name"]: j for j in jobs}


def plan_firings(
    task: Obj, observed: Observed, memory: Memory, settings: Settings, *, now: float
) -> list[CreateJob]:
    """The firing fast path: a hook Job for every new firing of an accepted task, now.
    ``now`` (epoch seconds) stamps the Jobs' created-at annotation."""
    meta = task["metadata"]
    if memory.problems is None or memory.problems or memory.uid != meta["uid"]:
        return []  # not accepted (yet): the full plan validates first
    if meta.get("deletionTimestamp"):
        return []
    spec = task.get("spec") or {}
    if spec.get("abort"):
        return []  # no firing starts after an abort (the status records them as not run)
    spec_hooks = spec.get("hooks") or []
    created_at = rfc3339(now)
    wanted = [
        CreateJob(
            name,
            kjobs.hook_job(task, index, firing, settings, created_at=created_at),
            ROLE_HOOK,
            firing,
        )
        for index, firing, name in firings_without_job(
            task, _by_name(observed.jobs), [*memory.created, *memory.refused]
        )
        # Too late to run (the status records it failed, etype Late).
        if not is_late(firing, spec_hooks[index], now)
    ]
    # At most max_hook_jobs unfinished hook Jobs: the oldest firings first, the rest wait.
    return inflight.admit(wanted, _room(task, observed, memory, settings))


def _room(task: Obj, observed: Observed, memory: Memory, settings: Settings) -> int:
    runner = kjobs.runner_name(task["metadata"]["name"])
    pending = [name for name in memory.created if name != runner]
    return settings.max_hook_jobs - inflight.in_flight(observed.jobs, pending, memory.stopped)


def hook_jobs_to_stop(task: Obj, observed: Observed, memory: Memory) -> list[str]:
    """Hook Jobs still running when the task is aborted (deleted once each; their results are
    recorded failed, etype Aborted)."""
    if not (task.get("spec") or {}).get("abort"):
        return []
    return unfinished_hook_jobs(task, observed, memory)


def unfinished_hook_jobs(task: Obj, observed: Observed, memory: Memory) -> list[str]:
    """The task's hook Jobs not finished and not stopped yet (what a stop must delete)."""
    runner = kjobs.runner_name(task["metadata"]["name"])
    return [
        name
        for job in observed.jobs
        if (name := job["metadata"]["name"]) != runner
        and name not in memory.stopped
        and job_state(job)[0] not in ("complete", "failed")
    ]


def _stop_refused(task: Obj, observed: Observed, memory: Memory) -> list[Action]:
    """Abort and StopHooks for the owned Jobs of a task refused by admission (none: nothing)."""
    if (task.get("status") or {}).get("phase") in TERMINAL:
        return []
    actions: list[Action] = []
    by_name = _by_name(observed.jobs)
    runner = by_name.get(kjobs.runner_name(task["metadata"]["name"]))
    if runner is not None and not memory.abort_sent:
        actions.append(Abort(runner["metadata"]["name"], runner["metadata"].get("uid")))
    running = unfinished_hook_jobs(task, observed, memory)
    if running:
        uids = tuple(by_name[name]["metadata"].get("uid") for name in running)
        actions.append(StopHooks(tuple(running), uids))
    return actions


# -- the plan ----------------------------------------------------------------------------------


def _status_actions(
    task: Obj, derived: Obj, memory: Memory, settings: Settings, clock: float
) -> list[Action]:
    status = task.get("status") or {}
    patch = status_patch(status, derived)
    if not patch:
        return []
    delay = write_delay(
        memory.last_write, settings.status_write_period, clock, urgent(patch, status)
    )
    if delay > 0:
        return [FlushLater(delay)]
    new_status = {**status, **{k: v for k, v in patch.items() if v is not None}}
    events = tuple(kevents.transitions(status, new_status))
    return [WriteStatus(patch, str(derived.get("message") or ""), events)]


def plan(
    task: Obj,
    observed: Observed,
    memory: Memory,
    settings: Settings,
    *,
    now: datetime,
    clock: float,
) -> list[Action]:
    """Every action for ``task`` in order. ``memory.problems`` must be known (the controller
    validates first); ``now`` is the wall clock (status times), ``clock`` the monotonic one
    (write throttling)."""
    if task["metadata"].get("deletionTimestamp"):
        return []  # the garbage collector removes the children
    if memory.problems is None:
        raise ValueError("plan() needs the validation result in memory.problems")
    if memory.problems:
        rejected = rejected_status(task, memory.problems, now)
        # Refused after it started (an opt-in revoked, an allow-list tightened, found when a
        # restarted operator validates again): stop what runs; what was recorded stays.
        return [
            *_stop_refused(task, observed, memory),
            *_status_actions(task, rejected, memory, settings, clock),
        ]
    if memory.conflict:
        failed = rejected_status(
            task, [memory.conflict], now, reason=REASON_NAME_CONFLICT, accepted=True
        )
        return _status_actions(task, failed, memory, settings, clock)
    one = _Pass(task, observed, memory, settings, now)
    one.children()
    one.stops()
    one.status(clock)
    return one.actions


class _Pass:
    """One pass over an accepted task: its children, what to stop, then its status."""

    def __init__(
        self, task: Obj, observed: Observed, memory: Memory, settings: Settings, now: datetime
    ) -> None:
        self.task, self.observed, self.memory, self.settings = task, observed, memory, settings
        self.now = now
        self.status_now: Obj = task.get("status") or {}
        self.spec: Obj = task.get("spec") or {}
        self.by_name = _by_name(observed.jobs)
        self.terminal = self.status_now.get("phase") in TERMINAL
        self.runner_name = kjobs.runner_name(task["metadata"]["name"])
        self.runner_job = self.by_name.get(self.runner_name)
        self.actions: list[Action] = []
        self.hooks: list[CreateJob] = []
        self.armed: list[CreateJob] = []
        self.planned_runner: Obj | None = None
        self.armed_plan: arming.ArmingPlan | None = None

    def children(self) -> None:
        """Hook Jobs (normally already created by the fast path); the identities (before any
        pod: an armed hook pod needs its ServiceAccount), the armed hook Jobs, then the runner
        Job, once, when the first armed pods are ready; the armed Jobs' deadlines."""
        task, memory, settings = self.task, self.memory, self.settings
        now = self.now.timestamp()
        self.hooks = plan_firings(task, self.observed, memory, settings, now=now)
        self.actions.extend(self.hooks)
        runner_due = (
            self.runner_job is None
            and self.runner_name not in memory.created
            and not self.status_now.get("runnerJob")
            and not self.spec.get("abort")
            and not self.terminal
            and not memory.runner_refused
        )
        if runner_due and not memory.identity_done:
            self.actions.append(CreateIdentity(tuple(_identity(task))))
        created = [*memory.created, *memory.refused, *(h.name for h in self.hooks)]
        armed_plan = self.armed_plan = arming.plan(
            task,
            {**memory.created, **self.by_name},
            pods_by_job(self.observed.pods),
            created,
            now=now,
            runner_exists=not runner_due,
            stopped=memory.stopped,
        )
        room = _room(task, self.observed, memory, settings) - len(self.hooks)
        self.armed = inflight.admit(self._armed_jobs(armed_plan), room)
        self.actions.extend(self.armed)
        if runner_due and not armed_plan.hold_runner:
            ready = int((armed_plan.status or {}).get("readyAtRelease") or 0)
            body = kjobs.runner_job(task, settings, armed_pods=ready)
            self.actions.append(CreateJob(self.runner_name, body, ROLE_RUNNER))
            # The status below assumes it is created (a failed create stops the pass first).
            self.planned_runner = {"metadata": {"name": self.runner_name}, "status": {}}
        timeouts = arming.deadlines(task, self.observed.jobs, settings.hook_timeout_seconds)
        self.actions.extend(
            SetDeadline(name, uid, seconds)
            for name, uid, seconds in timeouts
            if name not in memory.deadlines
        )

    def _armed_jobs(self, armed_plan: arming.ArmingPlan) -> list[CreateJob]:
        name = self.task["metadata"]["name"]
        created_at = rfc3339(self.now)
        return [
            CreateJob(
                kjobs.hook_job_name(name, index, unit, value),
                kjobs.hook_job(
                    self.task,
                    index,
                    {"eventType": unit, "value": value},
                    self.settings,
                    created_at=created_at,
                    armed=True,
                ),
                ROLE_HOOK,
            )
            for index, unit, value in armed_plan.arm
        ]

    def stops(self) -> None:
        """Abort (deleting the Job makes the pod get SIGTERM; the runner records what it has),
        hook Jobs to stop, armed Jobs whose firing will never come, finished ones recorded."""
        memory, by_name = self.memory, self.by_name
        if self.spec.get("abort") and not memory.abort_sent and not self.terminal:
            known = self.runner_job or memory.created.get(self.runner_name)
            uid = ((known or {}).get("metadata") or {}).get("uid")
            self.actions.append(Abort(self.runner_name if known is not None else None, uid))
        stop = hook_jobs_to_stop(self.task, self.observed, memory)
        disarm = self.armed_plan.disarm if self.armed_plan is not None else ()
        stop += [n for n in disarm if n not in stop and n in by_name]
        if stop:
            uids = tuple((by_name[name].get("metadata") or {}).get("uid") for name in stop)
            self.actions.append(StopHooks(tuple(stop), uids))
        if not self.settings.keep_hook_jobs:  # finished, their result recorded: deleted
            done = [(n, u) for n, u in inflight.recorded_and_finished(self.task, self.observed.jobs)
                    if n not in memory.stopped and n not in stop]  # fmt: skip
            if done:
                names, uids = zip(*done, strict=True)
                self.actions.append(StopHooks(names, uids, why="its result is recorded"))

    def status(self, clock: float) -> None:
        """From the runner's report and the children, counting what this pass creates."""
        memory, observed = self.memory, self.observed
        pending = {n: j for n, j in memory.created.items() if n not in self.by_name}
        jobs_view = [*observed.jobs, *(j for j in pending.values() if j.get("status") is not None)]
        if self.planned_runner is not None:
            jobs_view.append(self.planned_runner)
        created = [*pending, *(h.name for h in self.hooks), *(a.name for a in self.armed)]
        derived = derive_status(
            self.task,
            jobs_view,
            observed.pods,
            self.now,
            created=created,
            refused=memory.refused,
            runner_refused=memory.runner_refused,
        )
        # Found once, at acceptance; afterwards (even after a restart) the status keeps them.
        derived["warnings"] = memory.warnings or self.status_now.get("warnings") or None
        armed_plan = self.armed_plan
        derived["arming"] = armed_plan.status if armed_plan is not None else None
        if armed_plan is not None and armed_plan.hold_runner and armed_plan.status:
            derived["message"] = armed_plan.status.get("message") or derived.get("message")
        # The runner's part counts too (bounded by the runner: MAX_FIRINGS, MAX_TIMELINE).
        budget = self.settings.status_max_bytes - json_size(self.status_now.get("runner") or {})
        derived = fit_budget(derived, budget)
        self.actions.extend(_status_actions(self.task, derived, memory, self.settings, clock))
        if armed_plan is not None and armed_plan.recheck > 0:
            # The startTimeoutSeconds deadline, or the disarm grace's end (pod readiness changes
            # plan again at once); after the status write, which cancels earlier plans-later.
            self.actions.append(FlushLater(armed_plan.recheck))


def _identity(task: Obj) -> list[tuple[str, Obj]]:
    """The runner's ServiceAccount, Role and RoleBinding; the hooks' ServiceAccount when a hook
    names none; the armed hook pods' reader Role and its binding when the task arms hooks."""
    bodies: list[tuple[str, Obj]] = [
        ("ServiceAccount", kjobs.runner_service_account(task)),
        ("Role", kjobs.runner_role(task)),
        ("RoleBinding", kjobs.runner_role_binding(task)),
    ]
    if kjobs.needs_hook_service_account(task):
        bodies.append(("ServiceAccount", kjobs.hook_service_account(task)))
    if arming.config(task.get("spec") or {}).enabled:
        bodies.append(("Role", kjobs.hook_reader_role(task)))
        bodies.append(("RoleBinding", kjobs.hook_reader_binding(task)))
    return bodies


def newest(task: Obj, snapshot: Obj | None) -> Obj:
    """The task as the watch delivered it, or our own last status write when that is newer."""

    def rv(obj: Obj | None) -> int:
        try:
            return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
        except ValueError:
            return 0

    return snapshot if snapshot is not None and rv(snapshot) > rv(task) else task


def describe(action: Action) -> str:
    """One line per action, for logs and test failure messages."""
    if isinstance(action, CreateJob):
        return f"create {action.role} Job {action.name}"
    if isinstance(action, CreateIdentity):
        return "create " + ", ".join(f"{kind} {b['metadata']['name']}" for kind, b in action.bodies)
    if isinstance(action, Abort):
        return f"abort (delete {action.job})" if action.job else "abort (no runner Job)"
    if isinstance(action, StopHooks):
        return f"stop hook Jobs ({action.why}) " + ", ".join(action.jobs)
    if isinstance(action, SetDeadline):
        return f"set the timeout of armed Job {action.job} ({action.seconds} s from its start)"
    if isinstance(action, WriteStatus):
        return "write status " + json.dumps(sorted(action.patch))
    return f"flush status in {action.delay:.1f} s"
