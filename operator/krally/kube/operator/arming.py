"""Armed hooks, planned: which firings get their Job ahead, when the load may start, and which
armed Jobs to end. Pure functions of the task and its observed Jobs and pods (no I/O).

A firing is known ahead when its trigger's ``upcoming(config, iterations)`` lists it (event
values; periodic values, bounded by the runner's iterations when the unit is iteration). The
operator keeps at most ``maxArmed`` armed pods waiting per task, the earliest firings first
(taken in turn from each hook), and arms the next ones as earlier ones fire. The runner Job is
created once the first armed pods are ready (watching the task), or ``startTimeoutSeconds``
after arming began. An armed Job whose firing the load never reached is ended (its pod also
exits by itself when it sees the runner's final state); a firing no armed Job was made for gets
its Job as it fires (create-on-fire), as without arming.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from krally.api.shards import runner_view
from krally.api.times import parse_time, rfc3339
from krally.api.types import TERMINAL
from krally.api.wire import RUNNER_DONE
from krally.errors import PluginNotFound
from krally.kube.operator import builders as kjobs
from krally.kube.operator.status.hooks import stuck_cause
from krally.kube.operator.status.observed import fired_by_job, job_state, previous_results
from krally.task.runner import ScenarioRunner
from krally.task.trigger import Trigger

Obj = dict[str, Any]
Firing = tuple[int, str, Any]  # (hook index, unit, value)

DEFAULT_MAX_ARMED = 10
DEFAULT_START_TIMEOUT = 120
DISARM_GRACE = 30.0


@dataclass(frozen=True)
class Config:
    enabled: bool = True
    max_armed: int = DEFAULT_MAX_ARMED
    start_timeout: float = DEFAULT_START_TIMEOUT


def config(spec: Obj) -> Config:
    arming = spec.get("arming") or {}
    return Config(
        enabled=arming.get("enabled", True) is not False and bool(spec.get("hooks")),
        max_armed=int(arming.get("maxArmed") or DEFAULT_MAX_ARMED),
        start_timeout=float(arming.get("startTimeoutSeconds", DEFAULT_START_TIMEOUT)),
    )


def _expected_iterations(spec: Obj) -> int | None:

    runner = dict(spec.get("runner") or {"type": "serial"})
    try:
        runner_cls = ScenarioRunner.get(str(runner.pop("type", "serial")))
        return runner_cls.expected_iterations(runner)
    except (PluginNotFound, TypeError, ValueError):
        return None


def _upcoming(spec: Obj) -> list[Iterator[Firing]]:
    """Per hook, its predictable firings in order (empty for a trigger that cannot say)."""

    iterations = _expected_iterations(spec)
    streams: list[Iterator[Firing]] = []
    for index, hook in enumerate(spec.get("hooks") or []):
        trigger = hook.get("trigger") or {}
        args = trigger.get("args") or {}
        values: Iterable[Any] | None = None
        try:
            values = Trigger.get(str(trigger.get("name"))).upcoming(args, iterations)
        except (PluginNotFound, TypeError, ValueError, AttributeError):
            values = None
        streams.append(_stream(index, str(args.get("unit", "")), values or ()))
    return streams


def _stream(index: int, unit: str, values: Iterable[Any]) -> Iterator[Firing]:
    return ((index, unit, v) for v in values)


def predictable(
    spec: Obj, skip: set[str], task_name: str, limit: int, rate: float | None = None
) -> list[Firing]:
    """The next ``limit`` predictable firings whose Job name is not in ``skip``, soonest first:
    by their time into the load (a time value is one; an iteration's is estimated from the
    load's iterations per second, ``rate``, once it runs), else each hook's next in turn."""
    if limit <= 0:
        return []
    candidates: list[tuple[int, Firing]] = []  # (rank within its hook, firing)
    for stream in _upcoming(spec):
        rank = 0
        # Each stream skips at most len(skip) names: bounded even for endless triggers.
        for firing in itertools.islice(stream, len(skip) + limit):
            if kjobs.hook_job_name(task_name, *firing) in skip:
                continue
            candidates.append((rank, firing))
            rank += 1
            if rank == limit:
                break

    def seconds(firing: Firing) -> float | None:
        _, unit, value = firing
        if not isinstance(value, int | float):
            return None
        if unit == "time":
            return float(value)
        return float(value) / rate if rate else None

    timed = [seconds(f) for _, f in candidates]
    if all(t is not None for t in timed):
        order = sorted(range(len(candidates)), key=lambda k: (timed[k], candidates[k][1][0]))
    else:
        order = sorted(
            range(len(candidates)), key=lambda k: (candidates[k][0], candidates[k][1][0])
        )
    return [candidates[k][1] for k in order[:limit]]


def _rate(task: Obj) -> float | None:
    """The load's iterations per second so far (None before it has run a second)."""
    progress = runner_view((task.get("status") or {}).get("runner") or {}).get("progress") or {}
    done, elapsed = progress.get("done"), progress.get("elapsedSeconds")
    if isinstance(done, int | float) and isinstance(elapsed, int | float) and elapsed >= 1:
        return done / elapsed if done > 0 else None
    return None


# An armed hook that was ready starts within milliseconds of its firing; one started this much
# later was not ready when its firing came.
LATE_START = 0.5


def _late_armed(status: Obj) -> int:
    """Recorded armed results that started more than LATE_START after their firing."""
    late = 0
    for hook in status.get("hooks") or []:
        for item in hook.get("results") or []:
            if not item.get("armed") or item.get("status") not in ("success", "failed"):
                continue
            fired, started = parse_time(item.get("firedAt")), parse_time(item.get("startedAt"))
            if fired is not None and started is not None and started - fired > LATE_START:
                late += 1
    return late


def _pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


@dataclass(frozen=True)
class ArmingPlan:
    arm: tuple[Firing, ...]  # armed Jobs to create now
    hold_runner: bool  # do not create the runner Job yet
    recheck: float  # plan again after this many seconds at the latest (0: no need)
    disarm: tuple[str, ...]  # armed Jobs to delete: their firing will never come
    status: Obj | None  # status.arming


NOTHING = ArmingPlan((), False, 0.0, (), None)


def plan(
    task: Obj,
    jobs: Mapping[str, Obj],
    pods: Mapping[str, list[Obj]],
    created: Iterable[str],
    *,
    now: float,
    runner_exists: bool,
    stopped: Iterable[str] = (),
) -> ArmingPlan:
    """Arming for one accepted task. ``jobs``: its Jobs by name (observed and just created),
    ``pods``: their pods by Job name, ``created``: hook Job names created by this process the
    watch has not shown, ``runner_exists``: the runner Job exists or was created."""
    if not config(task.get("spec") or {}).enabled:
        return NOTHING
    one = _Arming(task, jobs, set(created), set(stopped), now, runner_exists)
    if runner_exists and not one.previous and not one.armed_jobs:
        # The load started unarmed (a task from before arming, or one with nothing to arm
        # then): its hook identity has no reader Role, so nothing is armed now either.
        return NOTHING
    arm, disarm, grace = one.decide()
    started_at = one.previous.get("startedAt") or (
        rfc3339(now) if (arm or one.armed_jobs) else None
    )
    recheck = grace if disarm == () and grace > 0 and one.waiting else 0.0
    status: Obj = dict(one.previous)
    hold = False
    if started_at:
        status["startedAt"] = started_at
        if not one.previous.get("loadReleasedAt"):
            hold, wait = one.release(status, started_at, arm, pods)
            recheck = wait if hold else recheck
    on_fire = one.counts(status, arm, disarm)
    if not started_at and not on_fire:
        return NOTHING  # nothing armable: no arming status
    return ArmingPlan(tuple(arm), hold, recheck, disarm, status)


class _Arming:
    """What one pass knows of a task's armed Jobs, and its decisions and status."""

    def __init__(
        self,
        task: Obj,
        jobs: Mapping[str, Obj],
        created: set[str],
        stopped: set[str],
        now: float,
        runner_exists: bool,
    ) -> None:
        self.task, self.jobs, self.created, self.stopped = task, jobs, created, stopped
        self.now, self.runner_exists = now, runner_exists
        self.spec: Obj = task.get("spec") or {}
        self.status: Obj = task.get("status") or {}
        self.name = task["metadata"]["name"]
        self.cfg = config(self.spec)
        self.previous: Obj = self.status.get("arming") or {}
        self.runner = runner_view(self.status.get("runner") or {})
        self.runner_job = jobs.get(kjobs.runner_name(self.name))
        self.load_over = (
            self.runner.get("state") in RUNNER_DONE
            or bool(self.spec.get("abort"))
            or self.status.get("phase") in TERMINAL
            or (self.runner_job is not None and _finished(self.runner_job))
        )
        self.armed_jobs = {n: j for n, j in jobs.items() if kjobs.is_armed(j)}
        self.fired = set(fired_by_job(task))
        self.done = {n for n, j in self.armed_jobs.items() if _finished(j)}
        self.waiting = sorted(n for n in self.armed_jobs if n not in self.fired | self.done)

    def decide(self) -> tuple[list[Firing], tuple[str, ...], float]:
        """(firings to arm now, armed Jobs to delete, seconds until the disarm grace ends)."""
        if not self.load_over:
            skip = set(self.jobs) | self.created | self.fired | set(previous_results(self.status))
            room = self.cfg.max_armed - len(self.waiting)
            return predictable(self.spec, skip, self.name, room, _rate(self.task)), (), 0.0
        # The pods see the runner's final state and exit by themselves (cleanly, saying why);
        # the Jobs still waiting DISARM_GRACE later (or at once after an abort or a runner
        # that died without a final state) are deleted.
        load_end = None
        if self.runner.get("state") in RUNNER_DONE:
            load_end = parse_time(self.runner.get("finishedAt"))
        abort = self.spec.get("abort")
        grace = 0.0 if load_end is None or abort else load_end + DISARM_GRACE - self.now
        if grace > 0:
            return [], (), grace
        return [], tuple(n for n in self.waiting if n not in self.stopped), grace

    def release(
        self, status: Obj, started_at: str, arm: list[Firing], pods: Mapping[str, list[Obj]]
    ) -> tuple[bool, float]:
        """Whether the load still waits for the first armed pods, and how long at most; once
        it is released, status says how long it waited and how many were ready."""
        cfg = self.cfg
        # The first armed pods: those created so far (this pass's included), up to maxArmed.
        awaited = sorted([*self.waiting, *(kjobs.hook_job_name(self.name, *f) for f in arm)])
        ready = sum(1 for n in awaited if any(_pod_ready(p) for p in pods.get(n, [])))
        # A pod that cannot start (unschedulable, bad image) is not waited for: its firing
        # fails by its timeout, with the cause, as unarmed.
        stuck = sum(1 for n in awaited if any(stuck_cause(p) for p in pods.get(n, [])))
        released = self.now
        if self.runner_exists:
            # Released by an earlier pass whose status write was lost (throttled, or the
            # operator restarted): the runner Job's creation is when.
            created_at = ((self.runner_job or {}).get("metadata") or {}).get("creationTimestamp")
            released = parse_time(created_at) or self.now
        waited = released - (parse_time(started_at) or released)
        unready = bool(awaited) and ready + stuck < len(awaited)
        if not self.runner_exists and not self.load_over and unready and waited < cfg.start_timeout:
            status["message"] = (
                f"the load waits for {len(awaited)} armed hook pods to be ready "
                f"({ready} are; at most {cfg.start_timeout:g} s)"
            )
            return True, max(0.5, cfg.start_timeout - waited)
        timed_out = unready and not self.runner_exists
        status.update(
            loadReleasedAt=rfc3339(released),
            waitedSeconds=round(max(0.0, waited), 3),
            awaited=len(awaited),
            readyAtRelease=ready,
            timedOut=timed_out,
            message=_release_message(waited, ready, stuck, len(awaited), timed_out),
        )
        return False, 0.0

    def counts(self, status: Obj, arm: list[Firing], disarm: tuple[str, ...]) -> int:
        """How firings were served, in status (counts only grow: a Job cleaned up later, or
        deleted when disarmed, must not lower them); the firings that got their Job on fire."""
        previous, jobs, fired = self.previous, self.jobs, self.fired
        on_fire = sum(1 for n in fired if n in jobs and not kjobs.is_armed(jobs[n]))
        on_fire = max(on_fire, int(previous.get("onFire") or 0))
        ended = {n for n in self.done if job_state(self.armed_jobs[n])[0] == "complete"}
        unreached = len((ended | self.stopped | set(disarm)) - fired)
        # Armed firings whose hook started late: their pod was not ready yet (the trigger fires
        # faster than pods start, or the pod was replaced), so they ran as late as unarmed ones.
        outrun = max(_late_armed(self.status), int(previous.get("outrun") or 0))
        status.update(
            outrun=outrun,
            armed=max(len(self.armed_jobs) + len(arm), int(previous.get("armed") or 0)),
            waiting=len(self.waiting) + len(arm) - len(disarm),
            onFire=on_fire,
            unreached=max(unreached, int(previous.get("unreached") or 0)),
        )
        if outrun and outrun > int(previous.get("outrun") or 0):
            status["message"] = (
                f"{outrun} armed firing(s) came before their pod was ready (the trigger fires "
                "faster than pods start on this cluster, or the pod was replaced): they ran once "
                "their pod was up, as late as without arming"
            )
        if on_fire and not previous.get("onFire"):
            status["message"] = (
                f"{on_fire} firing(s) got their Job only as they fired: not predictable ahead, "
                f"or firing faster than {self.cfg.max_armed} armed pods at a time "
                "(spec.arming.maxArmed)"
            )
        return on_fire


def _finished(job: Obj) -> bool:
    return job_state(job)[0] in ("complete", "failed")


def _release_message(waited: float, ready: int, stuck: int, awaited: int, timed_out: bool) -> str:
    text = f"load started after {waited:.1f} s with {ready} of {awaited} armed pods ready"
    if timed_out:
        return text + " (startTimeoutSeconds passed)"
    if stuck:
        return text + f" ({stuck} cannot start: see their firings)"
    return text


def deadlines(task: Obj, jobs: Iterable[Obj], default_timeout: int) -> list[tuple[str, Any, int]]:
    """(Job name, uid, activeDeadlineSeconds) for each armed Job whose firing was recorded and
    that has no deadline yet: the hook's timeout counted from the firing."""
    spec_hooks = (task.get("spec") or {}).get("hooks") or []
    fired = fired_by_job(task)
    found = []
    for job in jobs:
        meta = job.get("metadata") or {}
        firing = fired.get(meta.get("name") or "")
        if firing is None or not kjobs.is_armed(job):
            continue
        if (job.get("spec") or {}).get("activeDeadlineSeconds"):
            continue
        if job_state(job)[0] in ("complete", "failed"):
            continue
        started = parse_time((job.get("status") or {}).get("startTime")) or parse_time(
            meta.get("creationTimestamp")
        )
        fired_at = parse_time(firing.get("firedAt"))
        waited = max(0.0, fired_at - started) if started and fired_at else 0.0
        timeout = ((spec_hooks[firing["hook"]].get("job") or {}).get("timeoutSeconds")) or (
            default_timeout
        )
        # A few seconds more than the pod's own timer, which reports the timeout itself.
        seconds = math.ceil(waited) + int(timeout) + 5
        found.append((str(meta["name"]), meta.get("uid"), seconds))
    return found
