"""status.hooks: each firing's result, from its hook Job and pod, the result the hook pod wrote
(untrusted), and what the status recorded before (results outlive cleaned-up Jobs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from krally.api import wire
from krally.api.names import ANNOTATION_CREATED_AT, ANNOTATION_HOOK_TIMEOUT
from krally.api.shards import runner_view
from krally.api.times import parse_time, rfc3339
from krally.api.types import (
    HOOK_FAILED,
    HOOK_FINAL,
    HOOK_PENDING,
    HOOK_RUNNING,
    HOOK_SUCCESS,
    NOT_STARTED,
    HookError,
    HookResult,
    hook_error,
    hook_result,
)
from krally.kube.operator import builders as kjobs
from krally.kube.operator.status.observed import (
    container_state,
    job_state,
    previous_results,
    termination_message,
    unique_firings,
)

INVALID_HOOK_RESULT = "InvalidHookResult"
# A result's output is charts for the report; more than this is no result krally wrote (its
# termination message is cut to 4096 bytes), so it is refused, not stored.
MAX_RESULT_OUTPUT = 4096
_RESULT_STATUSES = HOOK_FINAL


class InvalidResult(ValueError):
    """A termination message that is not a hook result; the message says what is wrong."""


def _result_time(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidResult(f"{key} is {type(value).__name__}, not a time")
    seconds = parse_time(value)
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        raise InvalidResult(f"{key} {str(value)[:40]!r} is not a time")
    return rfc3339(seconds)


DEFAULT_MAX_DELAY = wire.DEFAULT_MAX_DELAY
LATE = "Late"
ABORTED_HOOK = "Aborted"


def firing_delay(firing: dict[str, Any], now: float) -> float | None:
    """Seconds between a firing (its firedAt) and ``now``; None when it carries no time."""
    fired = parse_time(firing.get("firedAt"))
    return None if fired is None else now - fired


# A Job created this long after its firing waited for it (a plain create takes milliseconds):
# queued behind the in-flight bound (KRALLY_MAX_HOOK_JOBS), or the operator was busy or down.
QUEUED_AFTER = 1.0


def queued_seconds(job: dict[str, Any] | None, fired_at: Any) -> float | None:
    """Seconds from the firing to its Job's creation, when it waited (else None)."""
    annotations = ((job or {}).get("metadata") or {}).get("annotations") or {}
    start, end = parse_time(fired_at), parse_time(annotations.get(ANNOTATION_CREATED_AT))
    if start is None or end is None or end - start < QUEUED_AFTER:
        return None
    return round(end - start, 3)


def is_late(firing: dict[str, Any], spec_hook: dict[str, Any], now: float) -> bool:
    """The firing is seen more than ``maxDelaySeconds`` after it happened: it must not run (a
    disruption minutes late misleads), it is recorded failed (etype Late) instead."""
    delay = firing_delay(firing, now)
    limit = spec_hook.get("maxDelaySeconds") or DEFAULT_MAX_DELAY
    return delay is not None and delay > limit


def late_result(firing: dict[str, Any], spec_hook: dict[str, Any], now: float) -> HookResult:
    delay = firing_delay(firing, now) or 0.0
    limit = spec_hook.get("maxDelaySeconds") or DEFAULT_MAX_DELAY
    return hook_result(
        HOOK_FAILED,
        error=hook_error(
            LATE,
            f"not run: the operator saw this firing {delay:.0f} s after it happened "
            f"(maxDelaySeconds: {limit})",
        ),
    )


def _hook_result_from_json(data: dict[str, Any]) -> HookResult:
    """A hook pod's termination message (Rally's snake_case result) → a status result; raises
    InvalidResult when it is not one (wrong status, types or size)."""
    status = data.get("status")
    if not isinstance(status, str) or status not in _RESULT_STATUSES:
        raise InvalidResult(f"status {str(status)[:40]!r} is not one of {sorted(_RESULT_STATUSES)}")
    error = data.get("error")
    if isinstance(error, dict):
        error = hook_error(*(str(error.get(k) or "")[:2000] for k in ("etype", "msg", "details")))
    elif isinstance(error, str | list):
        error = hook_error("Error", str(error)[:2000]) if error else None
    elif error is not None:
        raise InvalidResult(f"error is {type(error).__name__}, not an object")
    output = data.get("output")
    if output is not None:
        if not isinstance(output, dict) or not all(isinstance(v, list) for v in output.values()):
            raise InvalidResult("output is not {additive: [...], complete: [...]}")
        if len(json.dumps(output)) > MAX_RESULT_OUTPUT:
            raise InvalidResult(f"output is larger than {MAX_RESULT_OUTPUT} bytes")
    return hook_result(
        cast(Any, status),
        started_at=_result_time(data, "started_at"),
        finished_at=_result_time(data, "finished_at"),
        error=error or None,
        output=output,
    )


def invalid_result(why: str, text: str) -> HookResult:
    """The failed result of a firing whose pod wrote something that is not a hook result."""
    return hook_result(
        HOOK_FAILED,
        error=hook_error(
            INVALID_HOOK_RESULT,
            f"the hook pod's termination message is not a hook result: {why}",
            text[:500],
        ),
    )


_DONE = frozenset({"complete", "failed"})


def _aborted_result(previous: dict[str, Any] | None, ran: bool) -> HookResult:
    """A firing stopped (or never started) because of spec.abort."""
    return hook_result(
        HOOK_FAILED,
        started_at=(previous or {}).get("startedAt"),
        error=hook_error(
            ABORTED_HOOK,
            "hook Job stopped by spec.abort"
            if ran
            else "not run: the task was aborted (spec.abort) before its Job started",
        ),
    )


# Waiting reasons of a pod on its way to run, not stuck.
_STARTING = frozenset({"ContainerCreating", "PodInitializing"})


def stuck_cause(pod: dict[str, Any]) -> str:
    """Why a pod is not running yet when it says (bad image, unschedulable), else ''."""
    waiting = container_state(pod).get("waiting") or {}
    if waiting.get("reason") and waiting["reason"] not in _STARTING:
        return f"pod never started: {waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"pod never scheduled: {cond.get('reason', '')}: {cond.get('message', '')}"
    return ""


def _never_started_cause(pod: dict[str, Any] | None, remembered: str = "") -> str:
    """Why a pod never ran (image pull, unschedulable), from its status, or else from what a
    pending result recorded before the pod was removed (the Job controller deletes it)."""
    cause = stuck_cause(pod) if pod is not None else ""
    if cause or remembered:
        return cause or remembered
    if pod is None:
        return "its pod was never created or was removed"
    waiting = container_state(pod).get("waiting") or {}
    if waiting.get("reason"):
        return f"pod never started: {waiting['reason']}"
    phase = (pod.get("status") or {}).get("phase")
    return f"pod phase {phase}" if phase else ""


def firing_result(
    job_name: str,
    job: dict[str, Any] | None,
    pods: Sequence[dict[str, Any]],
    previous: dict[str, Any] | None,
    created: bool,
    aborted: bool = False,
) -> HookResult:
    """status, startedAt, finishedAt, error, output of one firing's Job (without triggeredBy).
    ``aborted``: spec.abort is set, so a firing without a Job never gets one, and the Jobs
    still running are stopped."""
    if previous and previous.get("status") in HOOK_FINAL and (job is None or not pods):
        # The Job (or its pod) was cleaned up after it finished: its recorded result stands.
        kept = {k: v for k, v in previous.items() if k not in ("triggeredBy", "firedAt", "job")}
        return cast(HookResult, kept)
    if job is None:
        return _without_job(job_name, previous, created, aborted)
    written = _written_result(pods)
    if written is not None:
        return written
    state, reason, message = job_state(job)
    if aborted and not created and state not in _DONE:
        return _aborted_result(previous, True)  # its Job is being deleted
    pod = pods[-1] if pods else None
    job_status = job.get("status") or {}
    if state == "failed":
        return hook_result(
            HOOK_FAILED,
            started_at=job_status.get("startTime"),
            finished_at=_failed_at(job_status),
            error=_failure(job, pod, previous, reason, message),
        )
    if state == "complete":
        # Succeeded but no readable result (e.g. the message was lost): trust the exit code.
        return hook_result(
            HOOK_SUCCESS,
            started_at=job_status.get("startTime"),
            finished_at=job_status.get("completionTime"),
        )
    running = container_state(pod).get("running") if pod else None
    if running or (pod and (pod.get("status") or {}).get("phase") == "Running"):
        started = (running or {}).get("startedAt") or job_status.get("startTime")
        return hook_result(HOOK_RUNNING, started_at=started)
    cause = stuck_cause(pod) if pod else ""
    # Not a failure (yet): why it waits, kept for the timeout's message once the pod is gone.
    return hook_result(HOOK_PENDING, error=hook_error(NOT_STARTED, cause) if cause else None)


def _without_job(
    job_name: str, previous: dict[str, Any] | None, created: bool, aborted: bool
) -> HookResult:
    """A firing whose Job is not (or no longer) there."""
    if aborted and not created:
        return _aborted_result(previous, (previous or {}).get("status") == HOOK_RUNNING)
    if previous and previous.get("status") == HOOK_RUNNING and not created:
        return hook_result(
            HOOK_FAILED,
            error=hook_error("JobDeleted", f"hook Job {job_name} was deleted before it finished"),
        )
    return hook_result(HOOK_PENDING)


def _written_result(pods: Sequence[dict[str, Any]]) -> HookResult | None:
    """The result a hook pod wrote as its termination message (the newest pod's first), or the
    failed result of one that wrote something else; None when none wrote anything."""
    for candidate in reversed(pods):
        data, ended = termination_message(candidate)
        text = str(ended.get("message") or "")
        if data is not None and "status" in data:
            try:
                return _hook_result_from_json(data)
            except InvalidResult as exc:
                return invalid_result(str(exc), text)
        if text.strip() and ended.get("exitCode") == 0:
            # A zero exit writes a result (a failing one may leave its log tail instead:
            # FallbackToLogsOnError); anything else there is no result to trust.
            why = "not JSON" if data is None else "no status member"
            return invalid_result(why, text)
    return None


def _failed_at(job_status: dict[str, Any]) -> str | None:
    return next(
        (
            c.get("lastTransitionTime")
            for c in job_status.get("conditions") or []
            if c.get("type") in ("Failed", "FailureTarget")
        ),
        None,
    )


def _failure(
    job: dict[str, Any],
    pod: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    reason: str,
    message: str,
) -> HookError:
    """Why a hook Job failed: its timeout (and why its pod never ran), its exit code, or the
    Job's own reason."""
    terminated = container_state(pod).get("terminated") if pod else None
    if reason == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        annotations = (job.get("metadata") or {}).get("annotations") or {}
        # An armed Job's deadline also counts its wait for the firing: say the hook's own.
        deadline = annotations.get(ANNOTATION_HOOK_TIMEOUT) or deadline
        remembered = ""
        if previous and previous.get("status") == HOOK_PENDING:
            error = previous.get("error") or {}
            remembered = error.get("msg", "") if error.get("etype") == NOT_STARTED else ""
        ran = terminated or (pod and container_state(pod).get("running"))
        cause = "" if ran else _never_started_cause(pod, remembered)
        msg = f"hook did not finish within its timeout of {deadline} s"
        msg += f" ({cause})" if cause else ""
        return hook_error("Timeout", msg, message)
    if terminated:
        code = terminated.get("exitCode")
        return hook_error(
            "ExitCode",
            f"hook pod exited with code {code} ({terminated.get('reason', '')})",
            (terminated.get("message") or message or "")[-2000:],
        )
    return hook_error(reason, message or "hook Job failed")


def derive_hooks(
    task: dict[str, Any],
    jobs_by_name: dict[str, dict[str, Any]],
    pods_grouped: dict[str, list[dict[str, Any]]],
    created: Iterable[str] = (),
    now: float | None = None,
    refused: Mapping[str, HookError] | None = None,
) -> list[dict[str, Any]]:
    """status.hooks: per spec hook (in task order) its Rally summary, results and unreached.
    ``now`` (epoch seconds) decides which firings without a Job are late (None: none is)."""
    name = task["metadata"]["name"]
    spec_hooks = (task.get("spec") or {}).get("hooks") or []
    status = task.get("status") or {}
    runner = runner_view(status.get("runner") or {})
    seen = _Seen(
        jobs=jobs_by_name,
        pods=pods_grouped,
        previous=previous_results(status),
        created=set(created),
        refused=refused or {},
        aborted=bool((task.get("spec") or {}).get("abort")),
        now=now,
    )
    hooks = [_hook_entry(index, spec_hook) for index, spec_hook in enumerate(spec_hooks)]
    for firing in unique_firings(runner.get("firings") or [], len(spec_hooks)):
        index = firing["hook"]
        job_name = kjobs.hook_job_name(
            name, index, str(firing.get("eventType", "")), firing.get("value")
        )
        hooks[index]["results"].append(seen.item(firing, spec_hooks[index], job_name))
    for unreached in (runner.get("summary") or {}).get("unreached") or []:
        index = unreached.get("hook")
        if isinstance(index, int) and 0 <= index < len(hooks):
            hooks[index].setdefault("unreached", []).append(
                {"eventType": unreached.get("eventType"), "value": unreached.get("value")}
            )
    for entry in hooks:
        summary: dict[str, int] = {}
        for item in entry["results"]:
            if item["status"] in HOOK_FINAL:
                summary[item["status"]] = summary.get(item["status"], 0) + 1
        entry["summary"] = summary
    return hooks


def _hook_entry(index: int, spec_hook: dict[str, Any]) -> dict[str, Any]:
    trigger = spec_hook.get("trigger") or {}
    return {
        "index": index,
        "name": spec_hook.get("name", ""),
        "description": spec_hook.get("description") or "",
        "trigger": {"name": trigger.get("name", ""), "args": trigger.get("args")},
        "summary": {},
        "results": [],
    }


@dataclass(frozen=True)
class _Seen:
    """What one pass knows of a task's hook Jobs: the children, the results recorded before,
    the Jobs this process created or the API server refused, spec.abort and the time."""

    jobs: Mapping[str, dict[str, Any]]
    pods: Mapping[str, list[dict[str, Any]]]
    previous: Mapping[str, dict[str, Any]]
    created: set[str]
    refused: Mapping[str, HookError]
    aborted: bool
    now: float | None

    def item(
        self, firing: dict[str, Any], spec_hook: dict[str, Any], job_name: str
    ) -> dict[str, Any]:
        """One firing's entry of status.hooks[].results."""
        unit = str(firing.get("eventType", ""))
        item: dict[str, Any] = {"triggeredBy": {"eventType": unit, "value": firing.get("value")}}
        fired_at = firing.get("firedAt")
        if fired_at is not None:
            item["firedAt"] = fired_at if isinstance(fired_at, str) else rfc3339(fired_at)
        item["job"] = job_name
        job = self.jobs.get(job_name)
        recorded = self.previous.get(job_name)
        final = recorded is not None and recorded.get("status") in HOOK_FINAL
        if job is None and not final and job_name in self.refused:
            item.update(hook_result(HOOK_FAILED, error=self.refused[job_name]))
        elif (
            job is None
            and job_name not in self.created
            and not final
            and self.now is not None
            and is_late(firing, spec_hook, self.now)
        ):
            item.update(late_result(firing, spec_hook, self.now))
        else:
            pods = self.pods.get(job_name, [])
            created = job_name in self.created
            item.update(firing_result(job_name, job, pods, recorded, created, self.aborted))
        if job is not None and "armed" not in item:
            item["armed"] = kjobs.is_armed(job)
        queued = queued_seconds(job, item.get("firedAt"))
        if queued is not None and not item.get("armed"):
            item["queuedSeconds"] = queued
        if item.get("armed") and item["status"] == HOOK_RUNNING and item.get("firedAt"):
            # The armed pod ran long before its firing: the hook started when it fired.
            item["startedAt"] = item["firedAt"]
        return item
