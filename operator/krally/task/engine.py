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
from typing import Any

from krally.task import plugin
from krally.task.context import ContextManager
from krally.task.hook_executor import HookExecutor, LocalLauncher
from krally.task.impact import ImpactRecorder
from krally.task.impact_config import ImpactConfig
from krally.task.result import Progress, ProgressCallback, assemble_result, iso_time
from krally.task.runner import ScenarioRunner, expected_iterations
from krally.task.shard import Shard
from krally.task.sla import SLAChecker
from krally.task.spec import HookSpec, WorkloadSpec
from krally.task.stats import WorkloadStats

# Progress callbacks are rate limited to this period (≈10 per second).
PROGRESS_PERIOD = 0.1


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
    plugin.load_builtin_plugins()
    run = WorkloadRun(
        workload,
        launcher=launcher,
        abort=abort,
        abort_on_sla_failure=abort_on_sla_failure or workload.abort_on_sla_failure,
        task=task,
        on_record=on_record,
        shard=shard or Shard(),
        origin=origin,
    )
    run.run(on_progress)
    return run.finish(position)


class WorkloadRun:
    """One workload's run, in Rally's order: :meth:`__init__` sets up the statistics, SLA,
    impact recorder and hook executor; :meth:`run` runs the contexts and the load; :meth:`finish`
    collects the hooks, analyses the impact and assembles the result."""

    def __init__(
        self,
        workload: WorkloadSpec,
        *,
        launcher: Any,
        abort: threading.Event | None,
        abort_on_sla_failure: bool,
        task: Any,
        on_record: Callable[[dict[str, Any]], None] | None,
        shard: Shard,
        origin: float | None,
    ) -> None:
        self.workload = workload
        self.task = task
        self.abort = abort
        self.shard = shard
        self.warnings: list[str] = []
        self.stop_load = threading.Event()
        self.recorder = self._recorder()
        self.consumer = _Consumer(
            workload, self.stop_load, abort_on_sla_failure, on_record, self.recorder, origin
        )
        self.counting = _CountingLauncher(
            launcher if launcher is not None else LocalLauncher(task), self.recorder
        )
        self.executor = (
            HookExecutor(workload.hooks, task=task, launcher=self.counting, shard=shard)
            if workload.hooks
            else None
        )
        total = expected_iterations(workload)
        self.total = shard.share(total) if total is not None and not shard.whole else total
        self.created_at = iso_time(time.time())
        self.context: dict[str, Any] = {
            "task": task,
            "owner_id": str(uuid.uuid4()),
            "config": dict(workload.contexts),
        }
        self.contexts = ContextManager(self.context, self.warnings)
        self.full_start = time.time()
        self.error: list[Any] | None = None
        self.load_end = self.full_start
        self.full_duration = 0.0
        self.aborted_manually = False
        self.hooks: list[dict[str, Any]] = []

    def _recorder(self) -> ImpactRecorder | None:
        config = ImpactConfig.from_spec(self.workload.impact)
        if not (self.workload.hooks and config.enabled):
            return None
        if not self.shard.whole:
            # A firing's windows need every iteration around it, and those are spread over pods.
            self.warnings.append(
                f"impact: not analysed with runner.parallelism {self.shard.count} "
                "(the disruption impact analysis needs the whole load in one runner pod)"
            )
            return None
        return ImpactRecorder(config)

    def on_iteration_start(self, n: int) -> None:
        consumer = self.consumer
        if consumer.first_start is None:
            consumer.first_start = time.time()
        consumer.started = max(consumer.started, n)
        if self.executor is not None:
            self.executor.on_event("iteration", n)

    def snapshot(self) -> Progress:
        self.counting.poll()
        return Progress(
            done=self.consumer.done,
            total=self.total,
            failures=self.consumer.failures,
            hooks_fired=self.counting.fired,
            hooks_finished=self.counting.finished,
            elapsed=time.time() - self.full_start,
        )

    def _monitor(self, done: threading.Event, on_progress: ProgressCallback | None) -> None:
        # One thread for both jobs: forward an external abort to the runner, report progress.
        last: Progress | None = None
        while not done.wait(PROGRESS_PERIOD):
            if self.abort is not None and self.abort.is_set():
                self.stop_load.set()
            if on_progress is not None:
                current = self.snapshot()
                if last is None or _changed(last, current):
                    _safe_progress(on_progress, current)
                    last = current

    def run(self, on_progress: ProgressCallback | None) -> None:
        """Contexts up, the load, time ticks stopped, contexts down; progress throughout."""
        done = threading.Event()
        monitor = threading.Thread(
            target=self._monitor, args=(done, on_progress), name="krally-progress", daemon=True
        )
        monitor.start()
        try:
            self._load()
            self.full_duration = time.time() - self.full_start
            # Waits for every fired hook; the monitor still reports them finishing meanwhile.
            self.hooks = self.executor.results() if self.executor is not None else []
        finally:
            done.set()
            monitor.join()
        if on_progress is not None:
            _safe_progress(on_progress, self.snapshot())

    def _load(self) -> None:
        workload, consumer = self.workload, self.consumer
        try:
            self.contexts.setup()
            runner = ScenarioRunner.get(workload.runner_type)(
                dict(workload.runner_args), self.shard
            )
            if self.abort is not None and self.abort.is_set():
                self.stop_load.set()
            runner.run(
                workload.scenario_name,
                dict(workload.scenario_args),
                self.context,
                on_iteration_start=self.on_iteration_start,
                on_result=consumer.on_result,
                abort=self.stop_load,
            )
        except Exception as exc:
            self.error = [type(exc).__name__, str(exc), traceback.format_exc()]
            consumer.sla.set_unexpected_failure(exc)
        finally:
            self.load_end = time.time()
            load_aborted = self.stop_load.is_set()
            # The load is over: time ticks stop before cleanup (unlike Rally, which keeps ticking).
            if self.executor is not None:
                self.executor.stop()
            self.contexts.cleanup()
        externally = self.abort is not None and self.abort.is_set()
        if load_aborted and externally and not consumer.aborted_on_sla:
            self.aborted_manually = True
            _set_aborted_manually(consumer.sla)
        if self.contexts.cleanup_error and self.error is None:
            self.warnings.append(f"context cleanup failed: {self.contexts.cleanup_error}")

    def finish(self, position: int) -> dict[str, Any]:
        """The impact of every firing, then Rally's workload result."""
        consumer = self.consumer
        impact = _impact(
            self.recorder, self.counting, self.hooks, consumer, self.load_end, self.warnings
        )
        consumer.sla.add_impact(impact or [])
        result = assemble_result(
            self.workload,
            consumer.stats,
            consumer.sla,
            self.hooks,
            position=position,
            created_at=self.created_at,
            full_duration=self.full_duration,
            contexts_results=self.contexts.results(),
            warnings=self.warnings,
            aborted=self.aborted_manually or consumer.aborted_on_sla,
            impact=impact,
            error=self.error,
        )
        if not self.shard.whole:
            result["shard"] = {
                "index": self.shard.index,
                "count": self.shard.count,
                "stats": consumer.stats.to_state(),
                "sla": consumer.sla.to_state(),
            }
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
