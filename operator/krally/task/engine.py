"""Runs workloads: contexts, runner, statistics, SLA and hooks, in Rally's order.

For one workload (Rally's ``TaskEngine._run_workload`` + ``ResultConsumer``):

1. set up the contexts (ascending order);
2. ``runner.run``: iteration N starting → ``HookExecutor.on_event("iteration", N)`` at once
   (triggers are evaluated in this process, so a hook starts within a millisecond or two);
   each finished iteration → bounded statistics + SLA (and, if asked, abort on SLA failure);
3. the load has ended → ``HookExecutor.stop()``: time ticks stop, values never reached are
   recorded as unreached (Rally keeps ticking through cleanup; krally does not, see the reference);
4. clean up the contexts (reverse order) — ``full_duration`` ends here, as in Rally;
5. wait for every fired hook (honouring per-hook timeouts) and collect the results;
6. with hooks (and ``impact.enabled``): the disruption impact of every firing
   (:mod:`krally.task.impact`: the consumer feeds an ``ImpactRecorder``, each launch marks a
   firing). A launcher with ``settle(hooks, load_end) -> hooks`` (the runner pod's) first gives
   the real hook timings, used for the analysis only; criteria with ``add_impact`` get it before
   the SLA results are taken.

The result is Rally's workload dict (``rally task report --json``), minus the per-iteration
``data`` (never kept: memory stays flat however long the load), plus ``timeline`` (per-second
buckets), ``warnings`` and, with hooks, ``impact`` (one entry per firing).
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import krally
from krally.api.times import format_time
from krally.task import plugin
from krally.task.context import ContextManager
from krally.task.impact import ImpactRecorder
from krally.task.impact_config import ImpactConfig
from krally.task.shard import Shard
from krally.task.spec import HookSpec, TaskSpec, WorkloadSpec

FORMAT_VERSION = "1.2"
# Progress callbacks are rate limited to this period (≈10 per second).
PROGRESS_PERIOD = 0.1


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress bars and the runner pod's status writes."""

    done: int
    total: int | None
    failures: int
    hooks_fired: int
    hooks_finished: int
    elapsed: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[Progress], None]


def expected_iterations(workload: WorkloadSpec) -> int | None:
    """How many iterations the runner will run, as its plugin declares (None: unknown)."""
    from krally.errors import PluginNotFound
    from krally.task.runner import ScenarioRunner

    try:
        runner_cls = ScenarioRunner.get(workload.runner_type)
    except PluginNotFound:
        return None
    return runner_cls.expected_iterations(dict(workload.runner_args))


class _CountingLauncher:
    """Wraps the executor's launcher to count firings and notice finished hooks."""

    def __init__(self, inner: Any, recorder: ImpactRecorder | None = None):
        self.inner = inner
        self.recorder = recorder
        self._lock = threading.Lock()
        self.fired = 0
        self.finished = 0
        self._pending: list[Any] = []

    def launch(self, index: int, hook: HookSpec, hook_cls: type, triggered_by: dict) -> Any:
        if self.recorder is not None:  # the firing moment: its impact windows are kept
            key = (index, triggered_by.get("event_type"), triggered_by.get("value"))
            self.recorder.mark(time.time(), key)
        handle = self.inner.launch(index, hook, hook_cls, triggered_by)
        with self._lock:
            self.fired += 1
            self._pending.append(handle)
        return handle

    def poll(self) -> None:
        with self._lock:
            pending = list(self._pending)
        done = [h for h in pending if _finished(h)]
        if done:
            with self._lock:
                for handle in done:
                    self._pending.remove(handle)
                self.finished += len(done)

    def __getattr__(self, name: str) -> Any:
        # Anything else a launcher offers (e.g. close()) passes through.
        return getattr(self.inner, name)


def _finished(handle: Any) -> bool:
    try:
        return handle.result(timeout=0) is not None
    except Exception:  # a broken handle counts as finished rather than hanging the bar
        return True


class _Consumer:
    """Receives runner callbacks: statistics, SLA, counters. Called from the runner's threads."""

    def __init__(
        self,
        workload: WorkloadSpec,
        stop_load: threading.Event,
        abort_on_sla: bool,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        impact: ImpactRecorder | None = None,
        origin: float | None = None,
    ):
        from krally.task.sla import SLAChecker
        from krally.task.stats import WorkloadStats

        self.stats = WorkloadStats(origin=origin)
        self.sla = SLAChecker(dict(workload.sla))
        self.stop_load = stop_load
        self.abort_on_sla = abort_on_sla
        self.aborted_on_sla = False
        self.done = 0
        self.failures = 0
        self.started = 0
        self.first_start: float | None = None
        self.on_record = on_record  # e.g. krally.results.stream: every record, streamed
        self.impact = impact
        self._impact_add = impact.add if impact is not None else None
        self._lock = threading.Lock()

    def on_result(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.stats.add(record)
            if self._impact_add is not None:
                self._impact_add(record)
            if self.on_record is not None:
                self.on_record(record)
            self.done += 1
            if record.get("error"):
                self.failures += 1
            passed = self.sla.add_iteration(record)
            if not passed and self.abort_on_sla and not self.aborted_on_sla:
                self.aborted_on_sla = True
                self.sla.set_aborted_on_sla()
                self.stop_load.set()


def run_workload(
    workload: WorkloadSpec,
    *,
    launcher: Any = None,
    on_progress: ProgressCallback | None = None,
    abort: threading.Event | None = None,
    abort_on_sla_failure: bool = False,
    task: Any = None,
    position: int = 0,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    shard: Shard | None = None,
    origin: float | None = None,
) -> dict[str, Any]:
    """Run one workload and return Rally's workload result (plus ``timeline``, ``warnings``).

    ``shard``: run only that part of a distributed load (:mod:`krally.task.shard`); the result
    then also has ``shard``, the mergeable state :func:`krally.task.merge.merge_shards` combines
    (``origin``, the shards' shared start, epoch, aligns their timelines).

    ``abort`` (set from any thread) stops the load: iterations in flight finish, no new ones
    start, and the SLA gets ``aborted_manually``. A crash (context setup, runner) is recorded as
    ``error`` and fails the SLA with ``something_went_wrong`` instead of raising.
    ``on_record`` receives every per-iteration record as it finishes (one call at a time).
    """
    from krally.task.hook_executor import HookExecutor, LocalLauncher
    from krally.task.runner import ScenarioRunner

    plugin.load_builtin_plugins()
    warnings: list[str] = []
    stop_load = threading.Event()
    abort_on_sla_failure = abort_on_sla_failure or workload.abort_on_sla_failure
    shard = shard or Shard()
    impact_config = ImpactConfig.from_spec(workload.impact)
    analyse = bool(workload.hooks) and impact_config.enabled
    if analyse and not shard.whole:
        # A firing's windows need every iteration around it, and those are spread over pods.
        analyse = False
        warnings.append(
            f"impact: not analysed with runner.parallelism {shard.count} "
            "(the disruption impact analysis needs the whole load in one runner pod)"
        )
    recorder = ImpactRecorder(impact_config) if analyse else None
    consumer = _Consumer(workload, stop_load, abort_on_sla_failure, on_record, recorder, origin)
    counting = _CountingLauncher(
        launcher if launcher is not None else LocalLauncher(task), recorder
    )
    executor = (
        HookExecutor(workload.hooks, task=task, launcher=counting, shard=shard)
        if workload.hooks
        else None
    )
    total = expected_iterations(workload)
    if total is not None and not shard.whole:
        total = shard.share(total)
    created_at = _iso(time.time())

    def on_iteration_start(n: int) -> None:
        if consumer.first_start is None:
            consumer.first_start = time.time()
        consumer.started = max(consumer.started, n)
        if executor is not None:
            executor.on_event("iteration", n)

    context: dict[str, Any] = {
        "task": task,
        "owner_id": str(uuid.uuid4()),
        "config": dict(workload.contexts),
    }
    contexts = ContextManager(context, warnings)
    monitor_done = threading.Event()
    full_start = time.time()
    aborted_manually = False

    def snapshot() -> Progress:
        counting.poll()
        return Progress(
            done=consumer.done,
            total=total,
            failures=consumer.failures,
            hooks_fired=counting.fired,
            hooks_finished=counting.finished,
            elapsed=time.time() - full_start,
        )

    def monitor() -> None:
        # One thread for both jobs: forward an external abort to the runner, report progress.
        last: Progress | None = None
        while not monitor_done.wait(PROGRESS_PERIOD):
            if abort is not None and abort.is_set():
                stop_load.set()
            if on_progress is not None:
                current = snapshot()
                if last is None or _changed(last, current):
                    _safe_progress(on_progress, current)
                    last = current

    monitor_thread = threading.Thread(target=monitor, name="krally-progress", daemon=True)
    monitor_thread.start()
    error: list[Any] | None = None
    try:
        contexts.setup()
        runner = ScenarioRunner.get(workload.runner_type)(dict(workload.runner_args), shard)
        if abort is not None and abort.is_set():
            stop_load.set()
        runner.run(
            workload.scenario_name,
            dict(workload.scenario_args),
            context,
            on_iteration_start=on_iteration_start,
            on_result=consumer.on_result,
            abort=stop_load,
        )
    except Exception as exc:
        error = [type(exc).__name__, str(exc), traceback.format_exc()]
        consumer.sla.set_unexpected_failure(exc)
    finally:
        load_end = time.time()
        load_aborted = stop_load.is_set()
        # The load is over: time ticks stop before cleanup (unlike Rally, which keeps ticking).
        if executor is not None:
            executor.stop()
        contexts.cleanup()
    full_duration = time.time() - full_start
    if load_aborted and abort is not None and abort.is_set() and not consumer.aborted_on_sla:
        aborted_manually = True
        _set_aborted_manually(consumer.sla)
    if contexts.cleanup_error and error is None:
        warnings.append(f"context cleanup failed: {contexts.cleanup_error}")
    hooks = executor.results() if executor is not None else []
    monitor_done.set()
    monitor_thread.join()
    if on_progress is not None:
        _safe_progress(on_progress, snapshot())

    impact = _impact(recorder, counting, hooks, consumer, load_end, warnings)
    consumer.sla.add_impact(impact or [])
    result = assemble_result(
        workload,
        consumer.stats,
        consumer.sla,
        hooks,
        position=position,
        created_at=created_at,
        full_duration=full_duration,
        contexts_results=contexts.results(),
        warnings=warnings,
        aborted=aborted_manually or consumer.aborted_on_sla,
        impact=impact,
        error=error,
    )
    if not shard.whole:
        result["shard"] = {
            "index": shard.index,
            "count": shard.count,
            "stats": consumer.stats.to_state(),
            "sla": consumer.sla.to_state(),
        }
    return result


def assemble_result(
    workload: WorkloadSpec,
    stats: Any,
    sla: Any,
    hooks: list[dict[str, Any]],
    *,
    position: int,
    created_at: str,
    full_duration: float,
    contexts_results: list[Any],
    warnings: list[str],
    aborted: bool,
    impact: list[dict[str, Any]] | None = None,
    error: list[Any] | None = None,
) -> dict[str, Any]:
    """Rally's workload result from the statistics (a WorkloadStats) and the SLA verdict (an
    SLAChecker): one run's, or a distributed load's merged ones."""
    sla_results = sla.results()
    result: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "description": workload.description or "",
        "position": position,
        "scenario": {workload.scenario_name: workload.scenario_args},
        "runner": {workload.runner_type: workload.runner_args},
        "contexts": dict(workload.contexts),
        "hooks": hooks,
        "sla": dict(workload.sla),
        "sla_results": {"sla": sla_results},
        "pass_sla": all(item.get("success") for item in sla_results),
        "created_at": created_at,
        "updated_at": _iso(time.time()),
        "full_duration": full_duration,
        "contexts_results": contexts_results,
        "warnings": warnings,
        "aborted": aborted,
        "timeline": stats.timeline(),
        "timeline_start": stats.timeline_start,
        "histogram": stats.durations.bins(),
    }
    result.update(_durations(stats))
    if impact is not None:
        result["impact"] = impact
    if error is not None:
        result["error"] = error
    return result


def _impact(
    recorder: ImpactRecorder | None,
    launcher: Any,
    hooks: list[dict[str, Any]],
    consumer: _Consumer,
    load_end: float,
    warnings: list[str],
) -> list[dict[str, Any]] | None:
    """Every firing's impact (None: no analysis). The launcher's ``settle`` (if any) gives the
    hook timings; ``hooks`` itself stays as the executor gave it."""
    if recorder is None:
        return None
    timings = hooks
    settle = getattr(launcher, "settle", None)
    if settle is not None:
        try:
            timings = settle(hooks, load_end)
        except Exception as exc:  # the analysis then uses the executor's results
            warnings.append(f"impact: the hook results could not be settled: {exc}")
    try:
        return recorder.analyze(timings, load_start=consumer.stats.start_time, load_end=load_end)
    except Exception as exc:  # never lose the benchmark over its analysis
        traceback.print_exc()
        warnings.append(f"impact analysis failed: {type(exc).__name__}: {exc}")
        return []


def _durations(stats: Any) -> dict[str, Any]:
    """The Rally duration fields, from the bounded statistics (H3's WorkloadStats)."""
    every = stats.durations.summary()  # failed iterations included, like Rally's min/max
    return {
        "statistics": {"durations": stats.statistics()},
        "total_iteration_count": stats.iterations,
        "failed_iteration_count": stats.failures,
        "min_duration": every.get("min"),
        "max_duration": every.get("max"),
        "start_time": stats.start_time,
        "load_duration": stats.load_duration,
    }


def _set_aborted_manually(sla: Any) -> None:
    setter = getattr(sla, "set_aborted_manually", None)
    if setter is not None:
        setter()


def _changed(a: Progress, b: Progress) -> bool:
    return (a.done, a.failures, a.hooks_fired, a.hooks_finished) != (
        b.done,
        b.failures,
        b.hooks_fired,
        b.hooks_finished,
    ) or int(a.elapsed) != int(b.elapsed)


def _safe_progress(callback: ProgressCallback, progress: Progress) -> None:
    # A broken progress display must not break the benchmark.
    try:
        callback(progress)
    except Exception:
        traceback.print_exc()


def _iso(epoch: float) -> str:
    return format_time(epoch, digits=0, zone=False)


def run_task(
    task: TaskSpec,
    *,
    launcher: Any = None,
    on_progress: ProgressCallback | None = None,
    on_workload: Callable[[int, WorkloadSpec], None] | None = None,
    abort: threading.Event | None = None,
    abort_on_sla_failure: bool = False,
    results: Any = None,
) -> dict[str, Any]:
    """Run every workload in order and return Rally's JSON report (format_version 1.2).

    Each workload is its own subtask (Rally's v1 groups a scenario's workloads; the numbers are
    the same). With ``abort_on_sla_failure`` an SLA failure also skips the remaining workloads,
    as Rally does. ``results`` (e.g. ``krally.results.stream.RallyJSONWriter``) gets
    ``begin_workload(position, workload)``, every ``record`` and ``end_workload(result,
    subtask)``.
    """
    created_at = _iso(time.time())
    subtasks = []
    stopped = False
    for position, workload in enumerate(task.workloads):
        if stopped or (abort is not None and abort.is_set()):
            break
        if on_workload is not None:
            on_workload(position, workload)
        if results is not None:
            results.begin_workload(position, workload)
        run = run_workload
        if workload.parallelism > 1:
            from krally.task.merge import run_spread as run
        result = run(
            workload,
            launcher=launcher,
            on_progress=on_progress,
            abort=abort,
            abort_on_sla_failure=abort_on_sla_failure,
            task=task,
            position=position,
            on_record=results.record if results is not None else None,
        )
        stopped = abort_on_sla_failure and not result["pass_sla"]
        status = (
            "crashed" if "error" in result else ("aborted" if result["aborted"] else "finished")
        )
        subtasks.append(
            {
                "uuid": str(uuid.uuid4()),
                "title": workload.description or workload.scenario_name,
                "description": workload.description or "",
                "status": status,
                "created_at": result["created_at"],
                "updated_at": result["updated_at"],
                "sla": {},
                "workloads": [result],
            }
        )
        if results is not None:
            results.end_workload(result, subtasks[-1])
    statuses = {s["status"] for s in subtasks}
    status = next((s for s in ("crashed", "aborted") if s in statuses), "finished")
    return {
        "info": {
            "rally_version": f"krally {krally.__version__}",
            "generated_at": _iso(time.time()),
            "format_version": FORMAT_VERSION,
        },
        "tasks": [
            {
                "uuid": str(uuid.uuid4()),
                "title": task.title,
                "description": task.description or "",
                "status": status,
                "tags": [],
                "env_uuid": "",
                "env_name": "local",
                "created_at": created_at,
                "updated_at": _iso(time.time()),
                "pass_sla": all(w["pass_sla"] for s in subtasks for w in s["workloads"]),
                "subtasks": subtasks,
                "warnings": list(task.warnings),
            }
        ],
    }
