"""The phase is a table of rules (:data:`PHASE_RULES`) over :class:`PhaseFacts`, read from the
runner's report and its Job and pods, and one transition (:func:`next_phase`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from krally.api.shards import runner_view
from krally.api.types import (
    ABORTED,
    FAILED,
    FINISHING,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
)
from krally.kube.operator.status.display import progress_text
from krally.kube.operator.status.observed import (
    container_state,
    job_state,
    reported_pod,
    still_running,
)


@dataclass(frozen=True)
class PhaseFacts:
    """Everything the phase depends on, read from the runner's report and its Job and pod."""

    state: str | None = None  # status.runner.state: Running, Finished, Aborted, Error
    job: str | None = None  # the runner Job: None (absent), pending, active, complete, failed
    job_reason: str = ""
    job_message: str = ""
    deadline: Any = None  # the runner Job's activeDeadlineSeconds
    abort: bool = False  # spec.abort
    recorded_job: str | None = None  # status.runnerJob: the runner Job was created once
    pod_deleting: bool = False
    killed_reason: str = ""  # the runner container's terminated reason, e.g. OOMKilled
    memory_limit: str = "none"  # spec.runnerPod.resources.limits.memory
    exit_detail: str = ""  # the runner container's exit code and last message line
    exit_code: int | None = None  # the runner container's exit code, once terminated
    create_refused: str = ""  # why the API server refused the runner's Job or identity
    busy_hooks: int = 0  # fired hooks not finished yet
    error: str = ""  # status.runner.error
    at: str = ""  # " at 750/1500 iterations", or ""

    @property
    def job_done(self) -> bool:
        return self.job in ("failed", "complete")


@dataclass(frozen=True)
class PhaseRule:
    """One row of the phase table: when ``when(facts)`` holds (first match wins), the task is
    in ``phase`` for ``reason``, explained by ``message(facts)``."""

    id: str
    when: Callable[[PhaseFacts], bool]
    phase: str
    reason: str
    message: Callable[[PhaseFacts], str]


_KEPT = "; partial results kept"

# The phase from the runner's report and its Job, in order of precedence.
PHASE_RULES: tuple[PhaseRule, ...] = (
    # Checked first: the deadline kills the pod, so the runner also reports "Aborted".
    PhaseRule(
        "runner-timed-out",
        lambda f: (
            f.state != "Finished" and f.job == "failed" and f.job_reason == "DeadlineExceeded"
        ),
        FAILED,
        "RunnerTimedOut",
        lambda f: (
            f"runner did not finish within spec.runnerPod.timeoutSeconds ({f.deadline} s)"
            f"{f.at}{_KEPT}"
        ),
    ),
    # Checked before the runner's own report: a killed worker makes it report an error too.
    PhaseRule(
        "oom-killed",
        lambda f: f.state != "Finished" and f.killed_reason == "OOMKilled",
        FAILED,
        "OOMKilled",
        lambda f: (
            "runner container was killed by its memory limit "
            f"(spec.runnerPod.resources.limits.memory: {f.memory_limit}){f.at}{_KEPT}"
        ),
    ),
    PhaseRule(
        "runner-error",
        lambda f: f.state == "Error",
        FAILED,
        "RunnerError",
        lambda f: f"runner failed: {f.error or 'unknown error'}",
    ),
    PhaseRule(
        "aborted-by-spec",
        lambda f: f.state == "Aborted" and f.abort,
        ABORTED,
        "Aborted",
        lambda f: f"aborted by spec.abort{f.at}{_KEPT}",
    ),
    PhaseRule(
        "runner-terminated",
        lambda f: f.state == "Aborted",
        FAILED,
        "RunnerTerminated",
        lambda f: (
            "runner pod was stopped before the load finished "
            f"({f.error or 'terminated'}: pod deleted or evicted){f.at}{_KEPT}"
        ),
    ),
    # The load is recorded, but "Complete" should mean every child is done, so that
    # `kubectl wait` users never find a runner pod still alive.
    PhaseRule(
        "waiting-for-runner-exit",
        lambda f: f.state == "Finished" and f.job is not None and not f.job_done,
        FINISHING,
        "WaitingForRunnerExit",
        lambda f: "load finished; runner pod exiting",
    ),
    PhaseRule(
        "waiting-for-hooks",
        lambda f: f.state == "Finished" and f.busy_hooks > 0,
        FINISHING,
        "WaitingForHooks",
        lambda f: f"load finished; {f.busy_hooks} hook(s) still running",
    ),
    PhaseRule(
        "completed",
        lambda f: f.state == "Finished",
        SUCCEEDED,
        "Completed",
        lambda f: "load and every fired hook finished",
    ),
    PhaseRule(
        "aborted-runner-gone",
        lambda f: f.abort and (f.job is None or f.job_done),
        ABORTED,
        "Aborted",
        lambda f: f"aborted by spec.abort{f.at}{_KEPT}",
    ),
    PhaseRule(
        "aborting",
        lambda f: f.abort,
        RUNNING,
        "Aborting",
        lambda f: "abort requested; stopping the runner",
    ),
    PhaseRule(
        "runner-deleted",
        lambda f: f.job is None and bool(f.recorded_job),
        FAILED,
        "RunnerDeleted",
        lambda f: f"runner Job {f.recorded_job} was deleted before the load finished{f.at}{_KEPT}",
    ),
    PhaseRule(
        "runner-create-refused",
        lambda f: f.job is None and bool(f.create_refused),
        FAILED,
        "RunnerCreateFailed",
        lambda f: f.create_refused,
    ),
    PhaseRule(
        "creating-runner",
        lambda f: f.job is None,
        PENDING,
        "CreatingRunner",
        lambda f: "creating the runner Job",
    ),
    PhaseRule(
        "runner-pod-deleted",
        lambda f: f.job == "failed" and f.pod_deleting,
        FAILED,
        "RunnerPodDeleted",
        lambda f: f"runner pod was deleted{f.at}{_KEPT}",
    ),
    # SIGKILL (not a graceful stop: the runner had no chance to report): 128 + 9.
    PhaseRule(
        "runner-killed",
        lambda f: f.job == "failed" and f.exit_code == 137 and f.state != "Finished",
        FAILED,
        "RunnerKilled",
        lambda f: f"the runner was killed (SIGKILL, exit code 137){f.at}{_KEPT}",
    ),
    PhaseRule(
        "runner-failed",
        lambda f: f.job == "failed",
        FAILED,
        "RunnerFailed",
        lambda f: f"runner failed ({f.job_reason}: {f.exit_detail or f.job_message}){f.at}",
    ),
    PhaseRule(
        "runner-exited-silently",
        lambda f: f.job == "complete",
        FAILED,
        "RunnerFailed",
        lambda f: "runner exited without reporting that the load finished",
    ),
    PhaseRule(
        "running",
        lambda f: f.state == "Running",
        RUNNING,
        "Running",
        lambda f: f"load running{f.at}",
    ),
    PhaseRule(
        "runner-pod-deleting",
        lambda f: f.pod_deleting,
        RUNNING,
        "RunnerPodDeleting",
        lambda f: "runner pod is being deleted",
    ),
    PhaseRule(
        "waiting-for-runner",
        lambda f: True,
        PENDING,
        "WaitingForRunner",
        lambda f: "waiting for the runner pod to start",
    ),
)


def phase_facts(
    task: dict[str, Any],
    runner_job: dict[str, Any] | None,
    runner_pods: Sequence[dict[str, Any]],
    hooks_busy: int,
) -> PhaseFacts:
    spec = task.get("spec") or {}
    status = task.get("status") or {}
    runner = runner_view(status.get("runner") or {})
    progress = progress_text(runner.get("progress") or {})
    pod = reported_pod(runner_pods)
    jstate = jreason = jmessage = ""
    if runner_job is not None:
        jstate, jreason, jmessage = job_state(runner_job)
    if jstate == "failed" and len(runner_pods) > 1 and any(map(still_running, runner_pods)):
        # One pod of a distributed load failed it; the others are still writing what they ran
        # (and pod 0 the merged result): the task is over when they are.
        jstate = "active"
    terminated = container_state(pod).get("terminated") if pod else None
    detail = ""
    if terminated:
        detail = f"exit code {terminated.get('exitCode')}"
        if terminated.get("message"):
            detail += f": {terminated['message'].strip().splitlines()[-1][:300]}"
    limits = ((spec.get("runnerPod") or {}).get("resources") or {}).get("limits") or {}
    return PhaseFacts(
        state=runner.get("state"),
        job=jstate or None,
        job_reason=jreason,
        job_message=jmessage,
        deadline=((runner_job or {}).get("spec") or {}).get("activeDeadlineSeconds"),
        abort=bool(spec.get("abort")),
        recorded_job=status.get("runnerJob"),
        killed_reason=str((terminated or {}).get("reason") or ""),
        memory_limit=str(limits.get("memory", "none")),
        pod_deleting=bool(pod is not None and (pod.get("metadata") or {}).get("deletionTimestamp")),
        exit_detail=detail,
        exit_code=code if isinstance(code := (terminated or {}).get("exitCode"), int) else None,
        busy_hooks=hooks_busy,
        error=str(runner.get("error") or ""),
        at=f" at {progress} iterations" if progress else "",
    )


def phase_rule(facts: PhaseFacts) -> PhaseRule:
    """The first row of PHASE_RULES that holds (the last one always does)."""
    return next(rule for rule in PHASE_RULES if rule.when(facts))


def next_phase(previous: dict[str, Any], facts: PhaseFacts) -> tuple[str, str, str]:
    """(phase, reason, message) after ``previous`` (the status last written) given ``facts``.

    The transition: a terminal phase (Succeeded, Failed, Aborted) is absorbing, keeping its
    reason and message (its Jobs may be cleaned up later; hook results still update, e.g. hooks
    fired before a runner failure that finish afterwards); any other phase moves to the phase
    of the first PHASE_RULES row that holds.
    """
    rule = phase_rule(facts)
    phase, reason, message = rule.phase, rule.reason, rule.message(facts)
    kept = previous.get("phase")
    if kept not in TERMINAL:
        return phase, reason, message
    condition = "Complete" if kept == SUCCEEDED else "Failed"
    reasons = (
        c.get("reason") for c in previous.get("conditions") or [] if c.get("type") == condition
    )
    return str(kept), next(reasons, reason) or reason, previous.get("message") or message
