"""The BenchmarkTask resource's types: the vocabulary (phases, hook statuses, runner states,
condition types) and the shapes of spec, status, runner report, firing and hook result.

The shapes are ``TypedDict``s (the objects travel as plain JSON dicts through kopf, the official
client and the runner pod); the OpenAPI schemas in :mod:`krally.api.spec_schema` and
:mod:`krally.api.status_schema` are the runtime source of the CRD, and ``tests/unit/test_api.py``
fails when a ``TypedDict`` here and its schema disagree about a field.
"""

from __future__ import annotations

import time
from typing import Any, Final, Literal, NotRequired, TypedDict, get_args

# -- vocabulary --------------------------------------------------------------------------------

Phase = Literal["Pending", "Running", "Finishing", "Succeeded", "Failed", "Aborted"]
PHASES: Final[tuple[Phase, ...]] = get_args(Phase)
PENDING, RUNNING, FINISHING, SUCCEEDED, FAILED, ABORTED = PHASES
TERMINAL: Final[frozenset[str]] = frozenset({SUCCEEDED, FAILED, ABORTED})
ACTIVE: Final[frozenset[str]] = frozenset({RUNNING, FINISHING})

HookStatus = Literal["pending", "running", "success", "failed", "validation_failed"]
HOOK_STATUSES: Final[tuple[HookStatus, ...]] = get_args(HookStatus)
HOOK_PENDING, HOOK_RUNNING, HOOK_SUCCESS, HOOK_FAILED, HOOK_VALIDATION_FAILED = HOOK_STATUSES
HOOK_FINAL: Final[frozenset[str]] = frozenset({HOOK_SUCCESS, HOOK_FAILED, HOOK_VALIDATION_FAILED})
# etype of a pending result's error: why its pod has not started yet (not a failure).
NOT_STARTED: Final = "NotStarted"

RunnerState = Literal["Running", "Finished", "Aborted", "Error"]
RUNNER_STATES: Final[tuple[RunnerState, ...]] = get_args(RunnerState)

ConditionType = Literal["Accepted", "Running", "Complete", "Failed", "SLAPassed"]
CONDITION_TYPES: Final[tuple[ConditionType, ...]] = get_args(ConditionType)

# -- spec --------------------------------------------------------------------------------------


class PluginRef(TypedDict, total=False):
    name: str
    args: Any


class PodOptions(TypedDict, total=False):
    """Cluster-only settings of a runner or hook pod (absent: the operator's defaults)."""

    image: str
    resources: dict[str, Any]
    nodeSelector: dict[str, str]
    tolerations: list[dict[str, Any]]
    timeoutSeconds: int


class RunnerPod(PodOptions, total=False):
    imagePullPolicy: str
    env: list[dict[str, Any]]
    topologySpreadConstraints: list[dict[str, Any]]


class HookJob(PodOptions, total=False):
    serviceAccountName: str
    env: list[dict[str, Any]]


class HookSpec(TypedDict, total=False):
    name: str
    description: str
    args: Any
    trigger: PluginRef
    job: HookJob
    maxDelaySeconds: int


class Arming(TypedDict, total=False):
    enabled: bool
    maxArmed: int
    startTimeoutSeconds: int


class ImpactTolerance(TypedDict, total=False):
    errorRate: float
    p95Ratio: float
    throughputRatio: float


class Impact(TypedDict, total=False):
    """``spec.impact``: the disruption impact analysis (:mod:`krally.task.impact`)."""

    enabled: bool
    baselineSeconds: float
    afterSeconds: float
    windowSeconds: float
    resolutionSeconds: float
    maxSeconds: float
    tolerance: ImpactTolerance


class TaskSpec(TypedDict, total=False):
    description: str
    scenario: PluginRef
    runner: dict[str, Any]
    contexts: dict[str, Any]
    sla: dict[str, Any]
    abortOnSLAFailure: bool
    hooks: list[HookSpec]
    arming: Arming
    impact: Impact
    runnerPod: RunnerPod
    abort: bool


# -- status ------------------------------------------------------------------------------------


class TriggerPoint(TypedDict):
    eventType: str
    value: Any


class HookError(TypedDict):
    etype: str
    msg: str
    details: str


class HookResult(TypedDict, total=False):
    """One firing's result (Rally's HookResult; ``triggeredBy``/``firedAt``/``job`` in status)."""

    triggeredBy: TriggerPoint
    status: HookStatus
    firedAt: str
    startedAt: str
    finishedAt: str
    job: str
    armed: bool
    queuedSeconds: float
    error: HookError
    output: Any
    trimmed: bool


class Firing(TypedDict, total=False):
    """One entry of ``status.runner.firings``, written by the runner pod."""

    hook: int
    eventType: str
    value: Any
    firedAt: str


class Progress(TypedDict, total=False):
    done: int
    total: int
    failures: int
    elapsedSeconds: float


class RunnerReport(TypedDict, total=False):
    """``status.runner``: the runner pod's part of status (the operator only reads it)."""

    startedAt: str
    updatedAt: str
    finishedAt: str
    state: RunnerState
    progress: Progress
    firings: list[Firing]
    droppedFirings: int
    summary: dict[str, Any]
    impact: list[FiringImpact]
    error: str
    signal: str
    startAt: str  # runner.parallelism > 1 (krally.api.shards)
    pods: dict[str, dict[str, Any]]


class Condition(TypedDict, total=False):
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: int


class ArmingStatus(TypedDict, total=False):
    startedAt: str
    loadReleasedAt: str
    waitedSeconds: float
    awaited: int
    readyAtRelease: int
    timedOut: bool
    armed: int
    waiting: int
    onFire: int
    unreached: int
    outrun: int
    message: str


class ImpactWindow(TypedDict, total=False):
    fromSeconds: float
    toSeconds: float
    iterations: int
    failures: int
    errorRate: float
    p50: float
    p95: float
    p99: float
    throughput: float


class FiringImpact(TypedDict, total=False):
    hook: int
    name: str
    triggeredBy: TriggerPoint
    status: str
    startedAt: str
    finishedAt: str
    baseline: ImpactWindow
    during: ImpactWindow
    after: ImpactWindow
    p95Ratio: float
    throughputRatio: float
    degraded: bool
    recovered: bool
    recoverySeconds: float
    notes: list[str]


class Display(TypedDict, total=False):
    """``status.display``: short strings computed once by the operator for ``kubectl get``
    columns (and the Argo CD health check, whose Lua has no string library to format them)."""

    progress: str
    hooks: str
    sla: str
    recovery: str
    failures: str
    p95: str
    failedSLA: str


class SLAResult(TypedDict):
    """One SLA criterion's result, Rally's shape, and a failed one's short form."""

    criterion: str
    success: bool
    detail: str
    short: NotRequired[str]


class TaskStatus(TypedDict, total=False):
    observedGeneration: int
    phase: Phase
    conditions: list[Condition]
    message: str
    warnings: list[str]
    startedAt: str
    finishedAt: str
    runnerJob: str
    progress: Progress
    display: Display
    hooks: list[dict[str, Any]]
    arming: ArmingStatus
    sla: list[SLAResult]
    passSLA: bool
    result: dict[str, Any]
    failedRunnerPods: list[int]
    runner: RunnerReport
    kopf: dict[str, Any]


# -- builders: a hook result is made here only ---------------------------------------------------


def hook_error(etype: object, msg: object, details: object = "") -> HookError:
    """Rally's error triple, each part a string."""
    return {"etype": str(etype), "msg": str(msg), "details": str(details)}


def hook_result(
    status: HookStatus,
    *,
    started_at: str | None = None,
    finished_at: str | None = None,
    error: HookError | None = None,
    output: Any = None,
) -> HookResult:
    """A firing's result with only the members that are known (a CRD field refuses null)."""
    result: HookResult = {"status": status}
    if started_at:
        result["startedAt"] = started_at
    if finished_at:
        result["finishedAt"] = finished_at
    if error:
        result["error"] = error
    if output:
        result["output"] = output
    return result


def rally_result(
    status: str,
    *,
    started_at: float,
    finished_at: float,
    triggered_by: dict[str, Any] | None,
    error: HookError | None = None,
) -> dict[str, Any]:
    """Rally's HookResult as the engine and the hook pod report it (epoch seconds, snake_case);
    the operator turns it into a status :class:`HookResult`."""
    result: dict[str, Any] = {
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "triggered_by": dict(triggered_by) if triggered_by is not None else None,
    }
    if error is not None:
        result["error"] = error
    return result


def failed_now(triggered_by: dict[str, Any], error: HookError) -> dict[str, Any]:
    """A Rally result for a firing that failed before it ran (it starts and ends now)."""
    now = time.time()
    return rally_result(
        HOOK_FAILED, started_at=now, finished_at=now, triggered_by=triggered_by, error=error
    )
