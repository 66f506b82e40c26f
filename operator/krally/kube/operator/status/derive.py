"""Derive a BenchmarkTask's user-facing status from what the runner wrote and the child Jobs/pods.

Pure functions only: ``derive_status(task, jobs, pods, now, created=...)`` is the whole of the
operator's status logic, so unit tests drive it with plain dicts. The operator writes everything
here; ``status.runner`` belongs to the runner pod and is only read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from krally.api.shards import failed_indexes, runner_view
from krally.api.times import format_time, parse_time
from krally.api.types import (
    ACTIVE,
    CONDITION_TYPES,
    FAILED,
    HOOK_FINAL,
    HOOK_SUCCESS,
    SUCCEEDED,
    TERMINAL,
    Display,
    HookError,
)
from krally.kube.operator import builders as kjobs
from krally.kube.operator.status.display import EMPTY_DISPLAY, display, recovery_text
from krally.kube.operator.status.hooks import derive_hooks
from krally.kube.operator.status.observed import pods_by_job
from krally.kube.operator.status.phase import next_phase, phase_facts

# Status keys the operator owns (everything but `runner`); absent ones are removed (null).
OPERATOR_KEYS = (
    "observedGeneration",
    "warnings",
    "phase",
    "conditions",
    "message",
    "startedAt",
    "finishedAt",
    "runnerJob",
    "progress",
    "display",
    "hooks",
    "arming",
    "sla",
    "passSLA",
    "result",
    "failedRunnerPods",
)


# -- Jobs and pods -----------------------------------------------------------------------------


def _conditions(
    previous: Sequence[dict[str, Any]],
    wanted: dict[str, tuple[str, str, str]],
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """Conditions in a fixed order; lastTransitionTime kept while a condition's status holds."""
    before = {c.get("type"): c for c in previous or []}
    result = []
    for ctype in CONDITION_TYPES:
        if ctype not in wanted:
            continue
        value, reason, message = wanted[ctype]
        old = before.get(ctype) or {}
        since = old.get("lastTransitionTime") if old.get("status") == value else None
        cond = {
            "type": ctype,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": since or now,
        }
        if generation is not None:
            cond["observedGeneration"] = generation
        result.append(cond)
    return result


def derive_status(
    task: dict[str, Any],
    jobs: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
    now: datetime | str,
    *,
    created: Iterable[str],
    refused: Mapping[str, HookError] | None = None,
    runner_refused: str = "",
) -> dict[str, Any]:
    """The operator-owned part of ``status`` (every key of OPERATOR_KEYS, None = remove).

    Every input is a parameter: ``task`` (its spec, ``status.runner``, and the status last
    written, which is what the status remembers: recorded hook results outlive their cleaned-up
    Jobs, a terminal phase is absorbing, conditions keep their transition times); ``jobs`` and
    ``pods``, this task's children (any order); ``now``; ``created``, what the operator process
    remembers: hook Job names it created that the watch has not shown yet (counted as pending,
    not missing); ``refused``, hook Jobs the API server refused to create (the firing's error),
    and ``runner_refused``, why it refused the runner's Job or identity (the task fails).
    """
    now_text = now if isinstance(now, str) else format_time(now)
    meta = task.get("metadata") or {}
    generation = meta.get("generation")
    status = task.get("status") or {}
    runner = runner_view(status.get("runner") or {})
    by_name = {(j.get("metadata") or {}).get("name") or "": j for j in jobs}
    grouped = pods_by_job(pods)
    runner_job_name = kjobs.runner_name(meta["name"])
    runner_job = by_name.get(runner_job_name)

    hooks = derive_hooks(task, by_name, grouped, created, now=parse_time(now_text), refused=refused)
    busy = sum(1 for h in hooks for r in h["results"] if r["status"] not in HOOK_FINAL)
    facts = phase_facts(task, runner_job, grouped.get(runner_job_name, []), busy)
    if runner_refused:
        facts = replace(facts, create_refused=runner_refused)
    phase, reason, message = next_phase(status, facts)

    summary = runner.get("summary") or {}
    sla, pass_sla = _verdict(summary)
    progress = {
        k: v
        for k, v in (runner.get("progress") or {}).items()
        if k in ("done", "total", "failures")
    }
    result = _result(summary)
    recovery = recovery_text(runner.get("impact"))
    job_status = (runner_job or {}).get("status") or {}
    wanted = _wanted_conditions(phase, reason, message, sla, pass_sla)
    return {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": _conditions(status.get("conditions") or [], wanted, generation, now_text),
        "message": message,
        "startedAt": status.get("startedAt") or runner.get("startedAt"),
        "finishedAt": _finished_at(status, runner, phase, now_text),
        "runnerJob": runner_job_name if (runner_job or status.get("runnerJob")) else None,
        "progress": progress or None,
        "display": display(
            progress, result, sla, pass_sla, hooks=_hooks_text(hooks), recovery=recovery
        ),
        "hooks": hooks or None,
        "sla": sla if isinstance(sla, list) else None,
        "passSLA": pass_sla,
        "result": result,
        # A distributed load's pods the Job controller saw fail (Continue: pod 0 then merges
        # without waiting for their results).
        "failedRunnerPods": failed_indexes(job_status.get("failedIndexes")) or None,
    }


def _verdict(summary: Mapping[str, Any]) -> tuple[Any, bool | None]:
    """(the SLA results, passSLA): the runner's verdict, or all of its criteria passing."""
    sla = summary.get("sla")
    pass_sla = summary.get("passSLA")
    if pass_sla is None and isinstance(sla, list) and sla:
        pass_sla = all(item.get("success") for item in sla)
    return sla, pass_sla


# What status.result takes of the runner's final summary.
_RESULT_KEYS = (
    "iterations",
    "failures",
    "loadDuration",
    "fullDuration",
    "durations",
    "atomics",
    "timeline",
)


def _result(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    result = {k: summary[k] for k in _RESULT_KEYS if k in summary}
    return drop_none(result) if result else None


def _hooks_text(hooks: Sequence[dict[str, Any]]) -> str:
    """'succeeded/fired' for the HOOKS column; '' for a task without hooks."""
    if not hooks:
        return ""
    fired = sum(len(h["results"]) for h in hooks)
    succeeded = sum(h["summary"].get(HOOK_SUCCESS, 0) for h in hooks)
    return f"{succeeded}/{fired}"


def _finished_at(
    status: Mapping[str, Any], runner: Mapping[str, Any], phase: str, now_text: str
) -> str | None:
    """When a terminal phase began: kept once written; a failure at the runner's own end."""
    if phase not in TERMINAL:
        return None
    return (
        status.get("finishedAt")
        or (runner.get("finishedAt") if phase != SUCCEEDED else None)
        or now_text
    )


def _wanted_conditions(
    phase: str, reason: str, message: str, sla: Any, pass_sla: bool | None
) -> dict[str, tuple[str, str, str]]:
    """Each condition's (status, reason, message) for this phase and SLA verdict."""
    active = phase in ACTIVE
    sla_failed = [str(item.get("criterion")) for item in sla or [] if not item.get("success")]
    return {
        "Accepted": ("True", "Accepted", "spec and every plugin config are valid"),
        "Running": (
            "True" if active else "False",
            reason if active else phase,
            message if active else "",
        ),
        "Complete": (
            "True" if phase == SUCCEEDED else "False",
            "Completed" if phase == SUCCEEDED else phase,
            message if phase == SUCCEEDED else "",
        ),
        "Failed": (
            "True" if phase == FAILED else "False",
            reason if phase == FAILED else phase,
            message if phase == FAILED else "",
        ),
        "SLAPassed": (
            ("True", "SLAPassed", "every SLA criterion passed")
            if pass_sla is True
            else ("False", "SLAFailed", "failed: " + ", ".join(sla_failed))
            if pass_sla is False
            else ("Unknown", "NotChecked", "SLA is checked when the load ends")
        ),
    }


def drop_none(value: Any) -> Any:
    """Without null members: a typed CRD field refuses null (e.g. durations of 0 iterations)."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def rejected_status(
    task: dict[str, Any],
    problems: Sequence[str],
    now: datetime | str,
    *,
    reason: str = "InvalidSpec",
    accepted: bool = False,
) -> dict[str, Any]:
    """Status of a task that cannot run: Failed for ``reason``. InvalidSpec (Accepted=False
    naming the field), or with ``accepted`` a valid spec that cannot start (e.g. NameConflict)."""
    now_text = now if isinstance(now, str) else format_time(now)
    meta = task.get("metadata") or {}
    generation = meta.get("generation")
    status = task.get("status") or {}
    message = "; ".join(problems) if accepted else "invalid spec: " + "; ".join(problems)
    started = bool(status.get("runnerJob") or status.get("startedAt"))
    wanted = {
        "Accepted": ("True", "Accepted", "spec and every plugin config are valid")
        if accepted
        else ("False", "InvalidSpec", message),
        "Running": ("False", FAILED, ""),
        "Complete": ("False", FAILED, ""),
        "Failed": ("True", reason, message),
        "SLAPassed": ("Unknown", "NotChecked", "the task never ran" if not started else ""),
    }
    if started:
        # Refused after it started (its Jobs are stopped): what was recorded is kept.
        return {
            **{key: status.get(key) for key in OPERATOR_KEYS},
            "observedGeneration": generation,
            "phase": FAILED,
            "conditions": _conditions(status.get("conditions") or [], wanted, generation, now_text),
            "message": message,
            "finishedAt": status.get("finishedAt") or now_text,
        }
    return {
        "observedGeneration": generation,
        "phase": FAILED,
        "conditions": _conditions(status.get("conditions") or [], wanted, generation, now_text),
        "message": message,
        "startedAt": None,
        "finishedAt": status.get("finishedAt") or now_text,
        "runnerJob": None,
        "progress": None,
        "display": Display(**EMPTY_DISPLAY),
        "hooks": None,
        "sla": None,
        "passSLA": None,
        "result": None,
    }
