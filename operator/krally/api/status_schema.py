"""The BenchmarkTask ``status`` schema, declared in the CRD (:mod:`krally.api.crd`).

It follows the status shape agreed in the project's contract: the operator writes everything but
``runner``, the runner pod writes only ``runner``. Every field is declared, because the API server
prunes undeclared status fields silently (kopf then only warns about "inconsistencies"); the parts
that are Rally's own free-form data (hook output, trigger args, timelines, the runner's final
summary) keep ``x-kubernetes-preserve-unknown-fields`` so they round-trip whatever their shape.
Every node has a description, so ``kubectl explain benchmarktask.status...`` is useful.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from krally.api.schema import PRESERVE, Schema, pruned
from krally.api.shards import READY
from krally.api.types import HOOK_STATUSES, PHASES, RUNNER_STATES


def _obj(
    description: str, properties: dict[str, Schema], required: list[str] | None = None
) -> Schema:
    node: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        node["required"] = required
    return node


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _int(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def _num(description: str) -> Schema:
    # "number" rather than "integer": trigger values and durations may be fractional, and the
    # API server keeps an integral JSON value integral, so nothing is reformatted.
    return {"type": "number", "description": description}


def _bool(description: str) -> Schema:
    return {"type": "boolean", "description": description}


def _time(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


def _free(description: str, type_: str | None = "object") -> Schema:
    node: Schema = {"description": description, PRESERVE: True}
    if type_:
        node["type"] = type_
    return node


def _list(description: str, items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "description": description, "items": items, **extra}


def _trigger_point(description: str) -> Schema:
    return _obj(
        description,
        {
            "eventType": _str("Trigger unit of the event: iteration or time."),
            "value": _num("Iteration number (from 1) or whole seconds since iteration 1 started."),
        },
    )


_ERROR = _obj(
    "Why the hook failed, as Rally records it; on a pending firing, why its pod has not "
    "started yet (etype NotStarted, e.g. Unschedulable).",
    {
        "etype": _str("Exception type name, e.g. CalledProcessError, or the failure's cause."),
        "msg": _str("One-line error message."),
        "details": _str("Details: traceback, command output or the pod's termination reason."),
    },
)

_OUTPUT = _free(
    "Rally hook output: {additive: [...], complete: [...]} charts the hook added (free-form)."
)

_HOOK_RESULT = _obj(
    "One firing of the hook and what came of it (Rally's HookResult plus the Job).",
    {
        "triggeredBy": _obj(
            "The trigger event that fired the hook.",
            {
                "eventType": _str("Trigger unit: iteration or time."),
                "value": _num("Iteration number or seconds since the load started."),
            },
        ),
        "status": _str(
            "State of this firing: pending, running, success, failed or validation_failed.",
            enum=list(HOOK_STATUSES),
        ),
        "firedAt": _time("When the runner recorded the firing."),
        "startedAt": _time("When the hook started running in its pod."),
        "finishedAt": _time("When the hook finished."),
        "job": _str("Name of the Job that runs this firing."),
        "armed": _bool(
            "True when the firing's pod was armed (started ahead, waiting for the firing); "
            "false when its Job was created as it fired."
        ),
        "queuedSeconds": _num(
            "Seconds the firing waited for its Job (from the firing to the Job's creation), "
            "when a second or more: queued behind the operator's bound on hook Jobs in flight "
            "(KRALLY_MAX_HOOK_JOBS), or the operator was busy or down."
        ),
        "error": _ERROR,
        "output": _OUTPUT,
        "trimmed": _bool(
            "True when this result's output (and maybe its error details) was dropped to keep "
            "the status under the operator's byte budget (KRALLY_STATUS_MAX_BYTES), oldest "
            "results first; its status and times are kept."
        ),
    },
)

_HOOK = _obj(
    "Results of one spec.hooks entry (same index), Rally-shaped.",
    {
        "index": _int("Index of the hook in spec.hooks.", minimum=0),
        "name": _str("Hook (action) plugin name, e.g. sys_call."),
        "description": _str("The hook's description from the spec."),
        "trigger": _obj(
            "The hook's trigger, as in the spec.",
            {
                "name": _str("Trigger plugin name, e.g. event or periodic."),
                "args": _free("The trigger's config (free-form).", type_=None),
            },
        ),
        "summary": {
            "type": "object",
            "description": "Number of firings per status, only statuses that occurred "
            "(Rally's hook summary), e.g. {success: 4}.",
            "additionalProperties": _int("Number of firings with this status.", minimum=0),
        },
        "results": _list("One entry per firing, in firing order.", _HOOK_RESULT),
        "unreached": _list(
            "Trigger values the load ended before reaching (the hook never fired for them).",
            _trigger_point("A trigger value that was never reached."),
        ),
    },
)


def condition_schema(description: str, types: Sequence[str]) -> Schema:
    """A Kubernetes condition of one of ``types`` (BenchmarkTask's, BenchmarkSchedule's)."""
    listed = ", ".join(types[:-1]) + f" or {types[-1]}" if len(types) > 1 else types[0]
    return _obj(
        description,
        {
            "type": _str(f"Condition type: {listed}."),
            "status": _str("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": _str("Machine-readable CamelCase reason of the last transition."),
            "message": _str("Human-readable details of the last transition."),
            "lastTransitionTime": _time("When the status last changed."),
            "observedGeneration": _int("metadata.generation the condition was set for.", minimum=0),
        },
        required=["type", "status"],
    )


_CONDITION = condition_schema(
    "A condition (Kubernetes conventions): Accepted, Running, Complete, Failed or SLAPassed.",
    ("Accepted", "Running", "Complete", "Failed", "SLAPassed"),
)
# A map keyed by type: a condition type appears once, and server-side apply merges per type.
_CONDITION_LIST = _list(
    "Current conditions of the task; usable with `kubectl wait --for=condition=Complete`.",
    _CONDITION,
    **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
)

_PROGRESS = _obj(
    "Iterations of the load so far.",
    {
        "done": _int("Iterations started so far.", minimum=0),
        "total": _int(
            "Iterations the runner will run; absent when unknown (duration runners).", minimum=0
        ),
        "failures": _int("Iterations that failed so far.", minimum=0),
    },
)

_DURATIONS = _obj(
    "Iteration duration statistics in seconds.",
    {
        "min": _num("Shortest iteration, seconds."),
        "median": _num("Median iteration, seconds."),
        "p90": _num("90th percentile, seconds."),
        "p95": _num("95th percentile, seconds."),
        "max": _num("Longest iteration, seconds."),
        "avg": _num("Mean iteration, seconds."),
    },
)

_RESULT = _obj(
    "Bounded summary of the workload's result (never per-iteration data).",
    {
        "iterations": _int("Iterations run.", minimum=0),
        "failures": _int("Iterations that failed.", minimum=0),
        "loadDuration": _num("Seconds from the first iteration's start to the last one's end."),
        "fullDuration": _num("Seconds the whole workload took, contexts included."),
        "durations": _DURATIONS,
        "atomics": _list(
            "Per atomic action statistics (free-form, Rally-shaped).",
            _free("Statistics of one atomic action (free-form)."),
        ),
        "timeline": _list(
            "Per-second buckets of iterations, durations and failures (bounded; free-form).",
            _free("One bucket of the timeline (free-form)."),
        ),
    },
)


def _impact_window(description: str) -> Schema:
    return _obj(
        description,
        {
            "fromSeconds": _num("Start of the window, in seconds from the hook's start."),
            "toSeconds": _num("End of the window, in seconds from the hook's start."),
            "iterations": _int("Iterations that completed in the window.", minimum=0),
            "failures": _int("Of those, failed ones.", minimum=0),
            "errorRate": _num("failures / iterations (0 to 1)."),
            "p50": _num("Median iteration duration, seconds."),
            "p95": _num("95th percentile of the iteration durations, seconds."),
            "p99": _num("99th percentile of the iteration durations, seconds."),
            "throughput": _num("Iterations completed per second."),
        },
    )


_IMPACT = _list(
    "What each hook firing did to the load (spec.impact), written with the final summary: the "
    "iterations completed before, "
    "during and after it, and how long the load took to get back within the tolerances of the "
    "baseline. Analysed by the runner from its own iteration stream; bounded.",
    _obj(
        "One firing and its impact.",
        {
            "hook": _int("Index of the hook in spec.hooks.", minimum=0),
            "name": _str("The hook's plugin, e.g. kube.pod_kill."),
            "triggeredBy": _trigger_point("The trigger event that fired the hook."),
            "status": _str("The firing's hook status when it was analysed."),
            "startedAt": _time("When the hook started (the windows count from here)."),
            "finishedAt": _time("When the hook finished (absent: running when the load ended)."),
            "baseline": _impact_window("The window before the hook started."),
            "during": _impact_window("From the hook's start to its end (or the load's end)."),
            "after": _impact_window("The window after the hook ended."),
            "p95Ratio": _num("p95 during / p95 of the baseline."),
            "throughputRatio": _num("Throughput during / throughput of the baseline."),
            "degraded": _bool(
                "True when some bucket (resolutionSeconds) of the span was out of tolerance."
            ),
            "recovered": _bool("True when the load got back within the tolerances and stayed."),
            "recoverySeconds": _num(
                "Seconds from the hook's start to the end of the last out-of-tolerance bucket, "
                "each judged against what the baseline predicts for it (0: never degraded; "
                "absent: not recovered)."
            ),
            "tolerance": _obj(
                "The tolerances the verdict was judged by (spec.impact.tolerance).",
                {
                    "errorRate": _num("Largest error rate (0..1) within tolerance."),
                    "p95Ratio": _num("Largest p95 / the baseline's p95 within tolerance."),
                    "throughputRatio": _num("Smallest throughput / the baseline's within it."),
                },
            ),
            "notes": _list("Why a verdict is missing or partial.", _str("One note.")),
        },
    ),
)

_RUNNER_PROGRESS = _obj(
    "The runner's own progress counters.",
    {
        "done": _int("Iterations started.", minimum=0),
        "total": _int("Iterations planned; absent when unknown.", minimum=0),
        "failures": _int("Iterations that failed.", minimum=0),
        "elapsedSeconds": _num("Seconds since iteration 1 started."),
    },
)
_FIRINGS = _list(
    "Every trigger firing, in order: the operator creates one hook Job per entry.",
    _obj(
        "One trigger firing.",
        {
            "hook": _int("Index of the hook in spec.hooks.", minimum=0),
            "eventType": _str("Trigger unit: iteration or time."),
            "value": _num("Iteration number or seconds since the load started."),
            "firedAt": _time("When the trigger fired (runner clock)."),
        },
    ),
)
_DROPPED = _int(
    "Firings past the per-task limit (krally.api.wire.MAX_FIRINGS): not recorded "
    "and no hook Job created, so the status stays within etcd's object size.",
    minimum=0,
)

_RUNNER = _obj(
    "Written only by the runner pod (merge patches on status.runner): progress, the trigger "
    "firings and the final summary. The operator derives the rest of status from it.",
    {
        "startedAt": _time("When the runner started the load."),
        "updatedAt": _time("When the runner last wrote its status."),
        "finishedAt": _time("When the runner finished."),
        "state": _str(
            "Runner state: Running, Finished, Aborted or Error.",
            enum=list(RUNNER_STATES),
        ),
        "progress": _RUNNER_PROGRESS,
        "firings": _FIRINGS,
        "droppedFirings": _DROPPED,
        "startAt": _time(
            "runner.parallelism > 1: the instant every runner pod started the load (written by "
            "pod 0 once all were ready); time triggers count from it."
        ),
        "pods": {
            "type": "object",
            "description": "runner.parallelism > 1: each runner pod's own report, by its index "
            '("0", "1", ...); pod 0 merges them into the fields above when all are done.',
            "additionalProperties": _obj(
                "One runner pod's report.",
                {
                    "state": _str(
                        "Ready (at the start barrier), Running, Finished, Aborted or Error.",
                        enum=[READY, *RUNNER_STATES],
                    ),
                    "startedAt": _time("When this pod started the load (its own clock)."),
                    "startDelaySeconds": _num(
                        "How long after status.runner.startAt this pod started (its clock)."
                    ),
                    "updatedAt": _time("When this pod last wrote its report."),
                    "finishedAt": _time("When this pod finished."),
                    "progress": _RUNNER_PROGRESS,
                    "firings": _FIRINGS,
                    "droppedFirings": _DROPPED,
                    "error": _str("Why this pod failed, one line."),
                    "result": _free(
                        "This pod's mergeable result (sketches, SLA counters), until the merge."
                    ),
                },
            ),
        },
        "summary": _free(
            "Final Rally-shaped workload summary: SLA results, unreached trigger values, "
            "statistics, timeline (free-form)."
        ),
        "error": _str("Why the runner failed, one line."),
        "impact": _IMPACT,
        "signal": _str(
            "host:port where the runner pushes each firing to the armed hook pod waiting for "
            "it (pod network; the watch of this status is the fallback)."
        ),
    },
)

_ARMING = _obj(
    "Armed hooks (spec.arming): how the load waited for the first armed pods and how the "
    "firings were served.",
    {
        "startedAt": _time("When the first armed Jobs were created."),
        "loadReleasedAt": _time("When the runner Job was created (the load's wait ended)."),
        "waitedSeconds": _num("Seconds the load waited for the first armed pods."),
        "awaited": _int("Armed pods the load waited for.", minimum=0),
        "readyAtRelease": _int("Of those, ready when the load was released.", minimum=0),
        "timedOut": _bool("True when the load started after startTimeoutSeconds, not ready."),
        "armed": _int("Armed Jobs created so far.", minimum=0),
        "waiting": _int("Armed pods waiting for their firing now.", minimum=0),
        "onFire": _int(
            "Firings whose Job was created when they fired: not predictable ahead, or the "
            "trigger fired faster than pods could be armed.",
            minimum=0,
        ),
        "unreached": _int(
            "Armed Jobs ended because the load ended (or was aborted) before their firing.",
            minimum=0,
        ),
        "outrun": _int(
            "Armed firings that came before their pod had started (the trigger fires faster "
            "than pods start, or the pod was replaced): they ran as late as unarmed ones.",
            minimum=0,
        ),
        "message": _str("One line on how arming went, e.g. why firings fell back to on-fire."),
    },
)


STATUS_SCHEMA: Schema = _obj(
    "Observed state of the task, written by the operator (and status.runner by the runner pod).",
    {
        "observedGeneration": _int("metadata.generation the operator last acted on.", minimum=0),
        "phase": _str(
            "Lifecycle phase: Pending, Running, Finishing (load done, hooks still running), "
            "Succeeded, Failed or Aborted.",
            enum=list(PHASES),
        ),
        "conditions": _CONDITION_LIST,
        "message": _str("One line: why the phase is what it is."),
        "warnings": _list(
            "What the operator noticed when it accepted the spec but that does not refuse it, "
            "each naming its field (e.g. an OpenStack-only context, a trigger value the runner "
            "never reaches). Also posted as SpecWarning Events.",
            _str("One warning, naming its field."),
        ),
        "startedAt": _time("When the runner started."),
        "finishedAt": _time("When the task reached a final phase."),
        "runnerJob": _str("Name of the Job that runs the load."),
        "progress": _PROGRESS,
        "display": _obj(
            "Short strings for `kubectl get` columns (`-o wide` adds failures, p95 and the "
            "failed SLA criteria), computed once by the operator.",
            {
                "progress": _str("Iterations done/total, e.g. 750/1500."),
                "hooks": _str("Hook firings succeeded/fired, e.g. 3/4."),
                "sla": _str("SLA verdict: Passed, Failed or empty while unknown."),
                "recovery": _str(
                    "Slowest recovery after a hook firing, e.g. 2.4s; 'not recovered'; empty "
                    "without an impact analysis."
                ),
                "failures": _str(
                    "Failed iterations so far, with their share once any failed, e.g. "
                    "'32 (2.1%)'; empty before the load starts."
                ),
                "p95": _str(
                    "95th percentile of the iteration durations, e.g. 0.012s; empty until the "
                    "load's final summary."
                ),
                "failedSLA": _str(
                    "The failed SLA criteria, each with what was measured against its limit, "
                    "e.g. 'failure_rate 2.1% > 1%'; empty when every criterion passed or "
                    "before the verdict. Bounded: '+N more' names how many did not fit."
                ),
            },
        ),
        "arming": _ARMING,
        "hooks": _list("Per hook of spec.hooks, in the same order: its firings.", _HOOK),
        "sla": _list(
            "SLA criteria results (Rally's), in the order of spec.sla, then Rally's "
            "pseudo-criteria (aborted_on_sla, aborted_manually, something_went_wrong).",
            _obj(
                "One SLA criterion's result.",
                {
                    "criterion": _str("SLA plugin name, e.g. failure_rate."),
                    "success": _bool("Whether the criterion passed."),
                    "detail": _str(
                        "Rally's human-readable detail: the measured value against the limit, "
                        "e.g. 'Failure rate criteria 0.00% <= 2.10% <= 1.00% - Failed'."
                    ),
                    "short": _str(
                        "A failed criterion in a few words, from its plugin: what was measured "
                        "against which limit, e.g. 'failure_rate 2.1% > 1%'."
                    ),
                },
            ),
        ),
        "passSLA": _bool("True when every SLA criterion passed."),
        "result": _RESULT,
        "failedRunnerPods": _list(
            "runner.parallelism > 1: indexes of the runner pods the Job controller saw fail.",
            _int("A runner pod's index.", minimum=0),
        ),
        "runner": _RUNNER,
        # kopf keeps handler progress in annotations and may mirror it here; declaring it keeps
        # the API server from pruning it (and kopf from warning about it).
        "kopf": _free("Internal bookkeeping of the operator framework (kopf); do not edit."),
    },
)


def pruned_fields(value: Any, schema: Schema = STATUS_SCHEMA, path: str = "status") -> list[str]:
    """Paths in ``value`` the API server would silently drop (undeclared fields).

    For the status writers' unit tests: ``assert pruned_fields(derive_status(...)) == []``
    catches a field added in code but not here, which a merge patch would lose without error.
    """
    return [where for where, _, _ in pruned(schema, value, path)]
