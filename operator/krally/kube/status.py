"""Derive a BenchmarkTask's user-facing status from what the runner wrote and the child Jobs/pods.

Pure functions only: ``derive_status(task, jobs, pods, now, created=...)`` is the whole of the
operator's status logic, so unit tests drive it with plain dicts. The operator writes everything
here; ``status.runner`` belongs to the runner pod and is only read. The phase is a table of rules
(:data:`PHASE_RULES`) and one transition (:func:`next_phase`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from krally.api.names import ANNOTATION_CREATED_AT, ANNOTATION_HOOK_TIMEOUT
from krally.api.shards import failed_indexes, runner_view
from krally.api.times import format_time, parse_time, rfc3339
from krally.api.types import (
    ABORTED,
    ACTIVE,
    CONDITION_TYPES,
    FAILED,
    FINISHING,
    HOOK_FAILED,
    HOOK_FINAL,
    HOOK_PENDING,
    HOOK_RUNNING,
    HOOK_SUCCESS,
    NOT_STARTED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    Display,
    HookError,
    HookResult,
    hook_error,
    hook_result,
)
from krally.kube import armedpod
from krally.kube import jobs as kjobs
from krally.kube.firingsignal import firing_key

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


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return cond
    return None


def job_state(job: dict[str, Any]) -> tuple[str, str, str]:
    """(state, reason, message) of a Job: complete, failed, active or pending."""
    for ctype, state in (
        ("Failed", "failed"),
        ("FailureTarget", "failed"),
        ("Complete", "complete"),
        ("SuccessCriteriaMet", "complete"),
    ):
        cond = _condition(job, ctype)
        if cond:
            return state, cond.get("reason") or ctype, cond.get("message") or ""
    status = job.get("status") or {}
    # A failed pod fails the Job at once (backoffLimit 0), except with backoffLimitPerIndex (a
    # distributed load's Continue): the other indexes run on, and the Job's conditions say when
    # it is over.
    if status.get("failed") and (job.get("spec") or {}).get("backoffLimitPerIndex") is None:
        return "failed", "PodFailed", ""
    if status.get("active") or status.get("ready"):
        return "active", "", ""
    return "pending", "", ""


def _pod_job(pod: dict[str, Any]) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    name = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")
    if name:
        return name
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Job":
            return ref.get("name")
    return None


def pods_by_job(pods: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        name = _pod_job(pod)
        if name:
            grouped.setdefault(name, []).append(pod)
    for items in grouped.values():
        items.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    return grouped


def container_state(pod: dict[str, Any]) -> dict[str, Any]:
    """The first container's state: {'terminated': {...}} / {'running': ...} / {'waiting': ...}."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (statuses[0].get("state") or {}) if statuses else {}


def termination_message(pod: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(parsed JSON termination message or None, the terminated state or {}). The message is
    untrusted (any image writes anything): nothing here raises on it."""
    terminated = container_state(pod).get("terminated") or {}
    raw = terminated.get("message")
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return None, terminated
    # FallbackToLogsOnError may put log lines before the JSON: take the last JSON object line.
    for candidate in [text, *reversed(text.splitlines())]:
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            continue
        if isinstance(value, dict):
            return value, terminated
    return None, terminated


# -- hooks -------------------------------------------------------------------------------------


def unique_firings(firings: Iterable[dict[str, Any]], n_hooks: int) -> list[dict[str, Any]]:
    """Firings in order, each (hook, unit, value) once, only for hooks that exist."""
    seen: set[tuple[int, str, str]] = set()
    result = []
    for firing in firings or []:
        index = firing.get("hook")
        if not isinstance(index, int) or not 0 <= index < n_hooks:
            continue
        key = firing_key(index, firing.get("eventType", ""), firing.get("value"))
        if key in seen:
            continue
        seen.add(key)
        result.append(firing)
    return result


def fired_by_job(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Job name → the runner's record, for every recorded firing."""
    name = task["metadata"]["name"]
    status = task.get("status") or {}
    spec_hooks = (task.get("spec") or {}).get("hooks") or []
    firings = runner_view(status.get("runner") or {}).get("firings") or []
    return {
        kjobs.hook_job_name(name, f["hook"], str(f.get("eventType", "")), f.get("value")): f
        for f in unique_firings(firings, len(spec_hooks))
    }


def previous_results(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The hook results the status recorded, by Job name (they outlive cleaned-up Jobs)."""
    found = {}
    for hook in status.get("hooks") or []:
        for item in hook.get("results") or []:
            if item.get("job"):
                found[item["job"]] = item
    return found


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


DEFAULT_MAX_DELAY = armedpod.DEFAULT_MAX_DELAY
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
    if aborted and not created and job is None:
        return _aborted_result(previous, (previous or {}).get("status") == HOOK_RUNNING)
    if job is None:
        if previous and previous.get("status") == HOOK_RUNNING and not created:
            return hook_result(
                HOOK_FAILED,
                error=hook_error(
                    "JobDeleted", f"hook Job {job_name} was deleted before it finished"
                ),
            )
        return hook_result(HOOK_PENDING)
    pod = pods[-1] if pods else None
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
    if aborted and not created and job_state(job)[0] not in _DONE:
        return _aborted_result(previous, True)  # its Job is being deleted
    state, reason, message = job_state(job)
    job_status = job.get("status") or {}
    if state == "failed":
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
            cause = (
                ""
                if terminated or (pod and container_state(pod).get("running"))
                else _never_started_cause(pod, remembered)
            )
            msg = f"hook did not finish within its timeout of {deadline} s"
            msg += f" ({cause})" if cause else ""
            error = hook_error("Timeout", msg, message)
        elif terminated:
            code = terminated.get("exitCode")
            error = hook_error(
                "ExitCode",
                f"hook pod exited with code {code} ({terminated.get('reason', '')})",
                (terminated.get("message") or message or "")[-2000:],
            )
        else:
            error = hook_error(reason, message or "hook Job failed")
        fail_time = next(
            (
                c.get("lastTransitionTime")
                for c in job_status.get("conditions") or []
                if c.get("type") in ("Failed", "FailureTarget")
            ),
            None,
        )
        return hook_result(
            HOOK_FAILED,
            started_at=job_status.get("startTime"),
            finished_at=fail_time,
            error=error,
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
    previous = previous_results(status)
    created = set(created)
    aborted = bool((task.get("spec") or {}).get("abort"))
    hooks: list[dict[str, Any]] = []
    for index, spec_hook in enumerate(spec_hooks):
        trigger = spec_hook.get("trigger") or {}
        entry: dict[str, Any] = {
            "index": index,
            "name": spec_hook.get("name", ""),
            "description": spec_hook.get("description") or "",
            "trigger": {"name": trigger.get("name", ""), "args": trigger.get("args")},
            "summary": {},
            "results": [],
        }
        hooks.append(entry)
    for firing in unique_firings(runner.get("firings") or [], len(spec_hooks)):
        index, unit, value = firing["hook"], str(firing.get("eventType", "")), firing.get("value")
        job_name = kjobs.hook_job_name(name, index, unit, value)
        item: dict[str, Any] = {"triggeredBy": {"eventType": unit, "value": value}}
        fired_at = firing.get("firedAt")
        if fired_at is not None:
            item["firedAt"] = fired_at if isinstance(fired_at, str) else rfc3339(fired_at)
        item["job"] = job_name
        job = jobs_by_name.get(job_name)
        recorded = previous.get(job_name)
        final = recorded is not None and recorded.get("status") in HOOK_FINAL
        if job is None and not final and job_name in (refused or {}):
            item.update(hook_result(HOOK_FAILED, error=(refused or {})[job_name]))
        elif (
            job is None
            and job_name not in created
            and not final
            and now is not None
            and is_late(firing, spec_hooks[index], now)
        ):
            item.update(late_result(firing, spec_hooks[index], now))
        else:
            item.update(
                firing_result(
                    job_name,
                    job,
                    pods_grouped.get(job_name, []),
                    recorded,
                    job_name in created,
                    aborted,
                )
            )
        if job is not None and "armed" not in item:
            item["armed"] = kjobs.is_armed(job)
        queued = queued_seconds(job, item.get("firedAt"))
        if queued is not None and not item.get("armed"):
            item["queuedSeconds"] = queued
        if item.get("armed") and item["status"] == HOOK_RUNNING and item.get("firedAt"):
            # The armed pod ran long before its firing: the hook started when it fired.
            item["startedAt"] = item["firedAt"]
        hooks[index]["results"].append(item)
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


# -- phase -------------------------------------------------------------------------------------


def recovery_text(impact: Any) -> str:
    """The slowest recovery over the analysed firings, for `kubectl get` (empty: none)."""
    if not isinstance(impact, list):
        return ""
    verdicts = [i for i in impact if isinstance(i, dict) and isinstance(i.get("recovered"), bool)]
    if not verdicts:
        return ""
    if not all(i["recovered"] for i in verdicts):
        return "not recovered"
    return f"{max(float(i.get('recoverySeconds') or 0) for i in verdicts):.1f}s"


def _progress_text(progress: dict[str, Any]) -> str:
    if not progress:
        return ""
    done = progress.get("done", 0)
    total = progress.get("total")
    return f"{done}/{total}" if total is not None else str(done)


# -- display: short strings for `kubectl get -o wide` (and the Argo CD health check) -----------

# display.failedSLA is a column, not a report: the full details are in status.sla and Events.
MAX_FAILED_SLA = 120
# A criterion without a comparison to show (e.g. performance_degradation) shows its detail's
# first line, cut to this.
MAX_CRITERION_TEXT = 60
# Rally's pseudo-criteria whose name says it all (their detail is a fixed sentence).
_SELF_EXPLAINING = frozenset({"aborted_on_sla", "aborted_manually"})

_NUMBER = r"-?\d+(?:\.\d+)?"
# "A <= B" / "A >= B" between two numbers with an optional unit, as Rally's details write them
# ("Failure rate criteria 0.00% <= 2.10% <= 1.00%", "... 1.23s <= 1.00s", "outliers 3 <= 1");
# a lookahead, so each link of a chain is found.
_COMPARISON = re.compile(
    rf"(?=(?<![\d.])(?P<a>{_NUMBER})(?P<ua>[%sx]?)\s*(?P<op><=|>=)\s*(?P<b>{_NUMBER})(?P<ub>[%sx]?))"
)
# disruption_impact's "recovery never <= 2.00s".
_NEVER = re.compile(rf"(?P<label>[a-z][\w ]*?) never <= (?P<b>{_NUMBER})(?P<ub>[%sx]?)")
_CHAINED = re.compile(r"\s*(?:<=|>=)")
_VERDICT_SUFFIX = re.compile(r"\s+-\s+(?:Failed|Passed)\s*$")


def short_number(value: float) -> str:
    """Three significant digits, never an exponent: 0.0123, 1.23, 12.3, 1234."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _trim(number: str) -> str:
    """'2.10' -> '2.1', '1.00' -> '1' (Rally writes two decimals)."""
    return number.rstrip("0").rstrip(".") if "." in number else number


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def failures_text(progress: Mapping[str, Any], result: Mapping[str, Any] | None) -> str:
    """Failed iterations, with their share once any failed: '0', '32 (2.1%)'; '' before the
    load started. The final summary wins over the live progress counters."""
    source = result if result and "iterations" in result else progress
    count = source.get("iterations" if source is result else "done")
    failures = source.get("failures") or 0
    if not isinstance(count, int) or not isinstance(failures, int):
        return ""
    if not failures or not count:
        return str(failures)
    return f"{failures} ({short_number(100.0 * failures / count)}%)"


def p95_text(result: Mapping[str, Any] | None) -> str:
    """The p95 iteration duration of the final summary, e.g. '0.012s'; '' until then."""
    p95 = ((result or {}).get("durations") or {}).get("p95")
    if isinstance(p95, bool) or not isinstance(p95, int | float):
        return ""
    return f"{short_number(float(p95))}s"


def sla_short(item: Mapping[str, Any]) -> str:
    """One SLA result in a few words: what was measured against which limit, where the detail
    says (``failure_rate 2.1% > 1%``, ``max_avg_duration_per_atomic 'boot' 1.2s > 1s``), else
    the criterion and its detail's first line (cut)."""
    criterion = str(item.get("criterion") or "?")
    detail = str(item.get("detail") or "")
    parts = []
    for match in _COMPARISON.finditer(detail):
        a, b, op = float(match["a"]), float(match["b"]), match["op"]
        if (a <= b) if op == "<=" else (a >= b):
            continue
        left, right = f"{_trim(match['a'])}{match['ua']}", f"{_trim(match['b'])}{match['ub']}"
        shown = f"{left} {'>' if op == '<=' else '<'} {right}"
        if _CHAINED.match(detail, match.end("ub")):
            # The measured value is the middle of a chain (min <= rate <= max): say it first.
            shown = f"{right} {'<' if op == '<=' else '>'} {left}"
        # The words before it since the last separator name it when several are compared
        # ("error rate during", an atomic's 'name'); Rally's capitalised lead-ins ("Failure
        # rate criteria", "Maximum seconds per iteration") only repeat the criterion's name,
        # and a chain's previous link ("0.00% <=") is no name.
        label = re.split(r"[\n,;:]", detail[: match.start()])[-1].strip().rstrip(".").strip()
        if label.endswith(("<=", ">=")) or label[:1].isupper():
            label = ""
        parts.append(f"{label} {shown}" if label else shown)
    parts += [f"{m['label']} never <= {_trim(m['b'])}{m['ub']}" for m in _NEVER.finditer(detail)]
    if parts:
        return f"{criterion} " + ", ".join(parts)
    if criterion in _SELF_EXPLAINING or not detail.strip():
        return criterion
    first = _VERDICT_SUFFIX.sub("", detail.strip().splitlines()[0])
    return _clip(f"{criterion}: {first}", MAX_CRITERION_TEXT)


def failed_sla_text(sla: Any, limit: int = MAX_FAILED_SLA) -> str:
    """The failed criteria, shortest form, '; '-separated within ``limit`` characters; those
    that do not fit are counted ('; +2 more')."""
    if not isinstance(sla, list):
        return ""
    shorts = [sla_short(i) for i in sla if isinstance(i, dict) and i.get("success") is False]
    text = ""
    for shown, short in enumerate(shorts):
        rest = len(shorts) - shown - 1
        more = f"; +{rest} more" if rest else ""
        candidate = f"{text}; {short}" if text else short
        if len(candidate) + len(more) <= limit:
            text = candidate
            continue
        left = len(shorts) - shown
        if not text:  # not even the first fits: cut it
            return _clip(short, limit - len(more)) + more
        return f"{text}; +{left} more"
    return text


def display(
    progress: Mapping[str, Any],
    result: Mapping[str, Any] | None,
    sla: Any,
    pass_sla: bool | None,
    *,
    hooks: str,
    recovery: str,
) -> Display:
    """status.display: every `kubectl get` column's text, computed once here (a printer
    column can only show a field, and Argo CD's health Lua cannot format numbers)."""
    return {
        "progress": _progress_text(dict(progress)),
        "hooks": hooks,
        "sla": "Passed" if pass_sla is True else "Failed" if pass_sla is False else "",
        "recovery": recovery,
        "failures": failures_text(progress, result),
        "p95": p95_text(result),
        "failedSLA": failed_sla_text(sla) if pass_sla is False else "",
    }


EMPTY_DISPLAY: Display = {
    "progress": "",
    "hooks": "",
    "sla": "",
    "recovery": "",
    "failures": "",
    "p95": "",
    "failedSLA": "",
}


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


def _still_running(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Pending", "Running") and not container_state(pod).get("terminated")


def reported_pod(pods: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The runner pod the phase speaks of: the first one that failed (a distributed load has
    one per shard), else the newest."""
    for pod in pods:
        terminated = container_state(pod).get("terminated") or {}
        if terminated.get("exitCode") not in (None, 0):
            return pod
    return pods[-1] if pods else None


def phase_facts(
    task: dict[str, Any],
    runner_job: dict[str, Any] | None,
    runner_pods: Sequence[dict[str, Any]],
    hooks_busy: int,
) -> PhaseFacts:
    spec = task.get("spec") or {}
    status = task.get("status") or {}
    runner = runner_view(status.get("runner") or {})
    progress = _progress_text(runner.get("progress") or {})
    pod = reported_pod(runner_pods)
    jstate = jreason = jmessage = ""
    if runner_job is not None:
        jstate, jreason, jmessage = job_state(runner_job)
    if jstate == "failed" and len(runner_pods) > 1 and any(map(_still_running, runner_pods)):
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
    name = meta["name"]
    generation = meta.get("generation")
    status = task.get("status") or {}
    runner = runner_view(status.get("runner") or {})
    jobs = list(jobs)
    by_name: dict[str, dict[str, Any]] = {
        (j.get("metadata") or {}).get("name") or "": j for j in jobs
    }
    grouped = pods_by_job(pods)
    runner_job_name = kjobs.runner_name(name)
    runner_job = by_name.get(runner_job_name)

    epoch = parse_time(now_text)
    hooks = derive_hooks(task, by_name, grouped, created, now=epoch, refused=refused)
    fired = sum(len(h["results"]) for h in hooks)
    succeeded = sum(h["summary"].get(HOOK_SUCCESS, 0) for h in hooks)
    busy = sum(1 for h in hooks for r in h["results"] if r["status"] not in HOOK_FINAL)

    facts = phase_facts(task, runner_job, grouped.get(runner_job_name, []), busy)
    if runner_refused:
        facts = replace(facts, create_refused=runner_refused)
    phase, reason, message = next_phase(status, facts)

    summary = runner.get("summary") or {}
    sla = summary.get("sla")
    pass_sla = summary.get("passSLA")
    if pass_sla is None and isinstance(sla, list) and sla:
        pass_sla = all(item.get("success") for item in sla)

    progress = {
        k: v
        for k, v in (runner.get("progress") or {}).items()
        if k in ("done", "total", "failures")
    }
    started_at = status.get("startedAt") or runner.get("startedAt")
    finished_at = None
    if phase in TERMINAL:
        finished_at = (
            status.get("finishedAt")
            or (runner.get("finishedAt") if phase != SUCCEEDED else None)
            or now_text
        )

    failed_reason = reason if phase == FAILED else phase
    sla_failed = [str(item.get("criterion")) for item in sla or [] if not item.get("success")]
    wanted = {
        "Accepted": ("True", "Accepted", "spec and every plugin config are valid"),
        "Running": (
            "True" if phase in ACTIVE else "False",
            reason if phase in ACTIVE else phase,
            message if phase in ACTIVE else "",
        ),
        "Complete": (
            "True" if phase == SUCCEEDED else "False",
            "Completed" if phase == SUCCEEDED else phase,
            message if phase == SUCCEEDED else "",
        ),
        "Failed": (
            "True" if phase == FAILED else "False",
            failed_reason,
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

    result = None
    if summary:
        result = {
            k: summary[k]
            for k in (
                "iterations",
                "failures",
                "loadDuration",
                "fullDuration",
                "durations",
                "atomics",
                "timeline",
            )
            if k in summary
        } or None

    if result is not None:
        result = drop_none(result)
    derived: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": _conditions(status.get("conditions") or [], wanted, generation, now_text),
        "message": message,
        "startedAt": started_at,
        "finishedAt": finished_at,
        "runnerJob": runner_job_name if (runner_job or status.get("runnerJob")) else None,
        "progress": progress or None,
        "display": display(
            progress,
            result,
            sla,
            pass_sla,
            hooks=f"{succeeded}/{fired}" if hooks else "",
            recovery=recovery_text(runner.get("impact")),
        ),
        "hooks": hooks or None,
        "sla": sla if isinstance(sla, list) else None,
        "passSLA": pass_sla,
        "result": result,
        # A distributed load's pods the Job controller saw fail (Continue: pod 0 then merges
        # without waiting for their results).
        "failedRunnerPods": failed_indexes(
            ((runner_job or {}).get("status") or {}).get("failedIndexes")
        )
        or None,
    }
    return derived


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


def status_patch(current: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``current`` into ``derived`` (operator keys only); {} = no write."""
    patch: dict[str, Any] = {}
    for key in OPERATOR_KEYS:
        new = derived.get(key)
        old = current.get(key)
        if new is None:
            if old is not None:
                patch[key] = None
        elif new != old:
            patch[key] = new
    return patch


def urgent(patch: dict[str, Any], current: dict[str, Any]) -> bool:
    """True when a status patch must be written at once: the phase or a condition's status
    changes (kubectl wait and Events must not lag), or a pending hook learns why its pod does not
    start (the cause must be recorded before the Job's timeout removes the pod that shows it).
    Anything else (progress, a hook going pending → running → success) may wait for the
    operator's write period."""
    if "phase" in patch:
        return True
    arming = patch.get("arming") or {}
    if arming.get("loadReleasedAt") and not (current.get("arming") or {}).get("loadReleasedAt"):
        return True  # how long the load waited for its armed pods: recorded with the release
    if _new_not_started(patch.get("hooks"), current.get("hooks")):
        return True
    if "conditions" not in patch:
        return False
    old = {c.get("type"): c.get("status") for c in current.get("conditions") or []}
    new = {c.get("type"): c.get("status") for c in patch["conditions"] or []}
    return old != new


def _new_not_started(new_hooks: Any, old_hooks: Any) -> bool:
    def causes(hooks: Any) -> set[str]:
        return {
            item.get("job", "")
            for hook in hooks or []
            for item in hook.get("results") or []
            if (item.get("error") or {}).get("etype") == NOT_STARTED
        }

    return bool(causes(new_hooks) - causes(old_hooks))


# -- the byte budget ---------------------------------------------------------------------------


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (about what the API server stores)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def fit_budget(derived: dict[str, Any], budget: int) -> dict[str, Any]:
    """``derived`` trimmed until it takes at most ``budget`` bytes, whatever hooks print.

    What goes, oldest results first (by firedAt, then hook order), each step only while over:
    hook outputs, then error details, then the rest of long error messages; a trimmed result
    says ``trimmed: true``. Kept always: every result's status, times, trigger and Job, the
    summaries and counters. Last resort: the oldest half of ``result.timeline``, repeatedly.
    """
    size = json_size(derived)
    if size <= budget:
        return derived
    hooks = derived.get("hooks") or []
    order = sorted(
        ((str(r.get("firedAt") or ""), h, n) for h, hook in enumerate(hooks)
         for n, r in enumerate(hook.get("results") or [])),
    )  # fmt: skip
    results = [hooks[h]["results"][n] for _, h, n in order]

    def trim(result: dict[str, Any], drop: Callable[[dict[str, Any]], None]) -> int:
        before = json_size(result)
        drop(result)
        result["trimmed"] = True
        return before - json_size(result)

    def no_output(r: dict[str, Any]) -> None:
        r.pop("output", None)

    def no_details(r: dict[str, Any]) -> None:
        r["error"] = {**r["error"], "details": ""}

    def short_msg(r: dict[str, Any]) -> None:
        r["error"] = {**r["error"], "msg": r["error"]["msg"][:200]}

    steps: list[tuple[Callable[[dict[str, Any]], bool], Callable[[dict[str, Any]], None]]] = [
        (lambda r: "output" in r, no_output),
        (lambda r: bool((r.get("error") or {}).get("details")), no_details),
        (lambda r: len((r.get("error") or {}).get("msg") or "") > 200, short_msg),
    ]
    for wanted, drop in steps:
        for result in results:
            if size <= budget:
                return derived
            if wanted(result):
                size -= trim(result, drop)  # exact: only this result's bytes change
    timeline = (derived.get("result") or {}).get("timeline")
    if size > budget and isinstance(timeline, list):
        timeline = list(timeline)  # the runner's own list (the task's status): not in place
        derived["result"] = {**derived["result"], "timeline": timeline}
    while size > budget and isinstance(timeline, list) and timeline:
        del timeline[: max(1, len(timeline) // 2)]
        size = json_size(derived)
    return derived
