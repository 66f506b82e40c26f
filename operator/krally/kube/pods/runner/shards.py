"""A distributed load (``spec.runner.parallelism`` > 1): one runner pod of N.

Every pod reports ``Ready`` and waits; pod 0, once all N are ready, writes ``startAt``
(START_LEAD ahead); every pod sleeps until that instant and runs its shard (time triggers, in
pod 0, count from it). At the end each pod writes its mergeable result; pod 0 waits for every
pod's (or for the Job controller to report it failed, status.failedRunnerPods), merges them
exactly (krally.task.merge) and writes the load's result at the top of status.runner, as one
runner would.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from krally.api.shards import FINAL_STATES, READY, pod_reports, summed_progress
from krally.api.times import parse_time, rfc3339
from krally.api.wire import EXIT_FAILED, EXIT_INCOMPLETE
from krally.kube.pods.runner import report
from krally.kube.pods.runner.launcher import launch
from krally.kube.pods.runner.recorder import ReadTask, RecordingLauncher
from krally.kube.pods.runner.translate import clean_json, summarize
from krally.kube.pods.runner.writer import Patch, StatusWriter, final_write_deadline
from krally.task.loader import workload_from_spec
from krally.task.merge import merge_shards, shard_part
from krally.task.shard import Shard
from krally.task.spec import WorkloadSpec

if TYPE_CHECKING:  # prometheus_client, which a task's own runner image may lack
    from krally.kube.pods.runner.metrics import RunnerMetrics

log = logging.getLogger("krally.runner")

# Pod 0 sets the common start this far ahead once every pod is ready: enough for each pod's
# next poll (BARRIER_POLL) and its read to see it, so that all of them sleep until it.
START_LEAD = 1.0
BARRIER_POLL = 0.1
# How long the pods wait for each other when the task sets no runnerPod.timeoutSeconds.
BARRIER_PATIENCE = 600.0
MERGE_POLL = 0.5
# A stopped pod 0 waits this long for the others' last reports (the pod's grace period is 30 s).
STOP_PATIENCE = 10.0


class ShardRun:
    """One runner pod of N: the start barrier, its shard of the load, and (pod 0) the merge.
    ``writer`` writes this pod's report (``status.runner.pods[i]``), ``patch_top`` writes
    ``status.runner`` itself."""

    def __init__(
        self,
        spec: dict[str, Any],
        shard: Shard,
        writer: StatusWriter,
        patch_top: Patch,
        read_task: ReadTask | None,
        abort: threading.Event,
        stop_reason: list[str],
    ) -> None:
        self.spec, self.shard, self.writer = spec, shard, writer
        self.patch_top, self.read_task = patch_top, read_task
        self.abort, self.stop_reason = abort, stop_reason
        self.started_mono = time.monotonic()
        # How long the pods wait for each other at the start.
        self.deadline = final_write_deadline(spec, self.started_mono, BARRIER_PATIENCE)

    def _runner_status(self) -> dict[str, Any]:
        if self.read_task is None:  # the pods meet only through the task's status
            raise RuntimeError("a runner pod of a distributed load cannot read its task")
        task = self.read_task() or {}
        status: dict[str, Any] = task.get("status") or {}
        return status

    def __call__(self, metrics: RunnerMetrics | None = None) -> int:
        self.writer.update(state=READY, progress={"done": 0})
        self.writer.start()
        self.writer.update(urgent=True)
        try:
            workload = workload_from_spec(self.spec)
            start_at = self.barrier()
        except Exception as exc:
            log.exception("runner pod %d could not start", self.shard.index)
            return self._fail(report.exception_text(exc))
        if start_at is None:
            if self.stop_reason:
                why = f"stopped by {self.stop_reason[0]} before the start"
                return self._fail(why, report.ABORTED)
            return self._fail(
                f"not every one of the {self.shard.count} runner pods was ready in time"
            )
        self._start_at(start_at)
        try:
            recorder = RecordingLauncher(self.writer, abort=self.abort)
            placement = {"shard": self.shard, "origin": start_at}
            result = launch(self.spec, workload, recorder, self.abort, metrics, **placement)
        except Exception as exc:
            log.exception("runner pod %d failed", self.shard.index)
            return self._fail(report.exception_text(exc))
        return self._report(workload, result)

    def _start_at(self, start_at: float) -> None:
        """Sleep until the common start; say how late this pod started after it."""
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        started = time.time()
        log.info(
            "runner pod %d of %d started %.1f ms after the common start",
            self.shard.index,
            self.shard.count,
            (started - start_at) * 1000,
        )
        self.writer.update(
            state="Running",
            startedAt=rfc3339(started),
            # Sub-millisecond: how late this pod started after the common instant.
            startDelaySeconds=round(started - start_at, 6),
        )

    def _report(self, workload: WorkloadSpec, result: dict[str, Any]) -> int:
        """This pod's final report with its mergeable result; pod 0 then merges them all."""
        state, error = report.final_state(self.stop_reason, result)
        progress = self.writer.snapshot().get("progress") or {}
        progress.update(done=result.get("total_iteration_count", 0))
        progress["failures"] = result.get("failed_iteration_count", 0)
        final = report.ended(state, error, progress=progress, result=clean_json(shard_part(result)))
        if not self.writer.close(final_write_deadline(self.spec, self.started_mono), **final):
            print("krally runner: could not write this pod's result", file=sys.stderr)
            return EXIT_INCOMPLETE
        code = report.exit_code(state)
        if self.shard.index == 0:
            code = self.merge(workload) or code
        return code

    def barrier(self) -> float | None:
        """The common start (epoch), once every pod is ready; None: aborted or out of time."""
        while not self.abort.is_set() and time.monotonic() < self.deadline:
            try:
                status = self._runner_status()
            except Exception as exc:  # an API hiccup: ask again
                log.warning("cannot read the task at the start barrier: %s", exc)
                status = {}
            runner = status.get("runner") or {}
            start_at = parse_time(runner.get("startAt"))
            if start_at is not None:
                return start_at
            # Ready, or failed for good (Continue: the others start without it).
            ready = {i for i, pod in pod_reports(runner).items() if pod.get("state")}
            ready |= set(status.get("failedRunnerPods") or [])
            everyone = len(ready & set(range(self.shard.count))) >= self.shard.count
            if self.shard.index == 0 and everyone:
                start_at = parse_time(rfc3339(time.time() + START_LEAD))
                try:
                    self.patch_top({"startAt": rfc3339(start_at)})
                except Exception as exc:
                    log.warning("cannot write the common start: %s", exc)
                    continue
                log.info("all %d runner pods ready; the load starts at %s", len(ready), start_at)
                return start_at
            self.abort.wait(BARRIER_POLL)
        return None

    def merge(self, workload: WorkloadSpec) -> int:
        """Pod 0: wait for every pod's result (or its failure), merge, write the load's result."""
        status, pods = self._await_reports()
        count = self.shard.count
        parts = {i: pod["result"] for i, pod in pods.items() if isinstance(pod.get("result"), dict)}
        try:
            merged = merge_shards(workload, parts, count)
        except Exception as exc:
            log.exception("the pods' results could not be merged")
            failed = {"state": report.ERROR, "error": f"merge failed: {exc}"}
            return EXIT_FAILED if self._write_top(failed) else EXIT_INCOMPLETE
        summary = summarize(merged)
        problems = [
            f"runner pod {i}: {pod.get('error') or pod.get('state') or 'no report'}"
            for i in range(1, count)
            if (pod := pods.get(i) or {}).get("state") != report.FINISHED
        ]
        tolerate = (self.spec.get("runner") or {}).get("podFailurePolicy") == "Continue"
        state, error = report.final_state(self.stop_reason, merged, problems, tolerate)
        if problems and state == report.FINISHED:
            summary.setdefault("warnings", []).extend(problems)
        final = report.ended(
            state,
            error,
            summary=summary,
            progress=summed_progress([pods[i] for i in sorted(pods)]),
            startedAt=(status.get("runner") or {}).get("startAt"),
            # The pods' mergeable results are in the summary now: keep the object small.
            pods={str(i): {"result": None} for i in parts},
        )
        log.info("merged %d of %d runner pods: %s", len(parts), count, state)
        written = self._write_top(final)
        return report.exit_code(state) if written else EXIT_FAILED

    def _await_reports(self) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        """(the task's status, the pods' reports) once every pod reported or failed, the
        deadline passed, or (stopped) STOP_PATIENCE passed."""
        count = self.shard.count
        deadline = final_write_deadline(self.spec, self.started_mono)
        stopped: float | None = None
        while True:
            try:
                status = self._runner_status()
            except Exception as exc:
                log.warning("cannot read the other pods' results: %s", exc)
                status = {}
            pods = pod_reports(status.get("runner") or {})
            failed = set(status.get("failedRunnerPods") or [])
            done = {i for i, pod in pods.items() if pod.get("state") in FINAL_STATES} | failed
            if len(done & set(range(count))) >= count:
                return status, pods
            if self.abort.is_set():
                # Stopped (FailTask: the Job stops every pod at once): the others are writing
                # what they ran too; wait for them a little, within the pod's grace period.
                deadline = min(deadline, (stopped := stopped or time.monotonic()) + STOP_PATIENCE)
            if time.monotonic() + MERGE_POLL > deadline:
                late = sorted(set(range(count)) - done)
                log.warning("runner pods %s did not report in time", late)
                return status, pods
            time.sleep(MERGE_POLL)

    def _write_top(self, state: dict[str, Any]) -> bool:
        """``state`` into status.runner itself (not this pod's report), retried."""
        writer = StatusWriter(self.patch_top)
        return writer.write(state, final_write_deadline(self.spec, self.started_mono))

    def _fail(self, error: str, state: str = report.ERROR) -> int:
        self.writer.close(
            final_write_deadline(self.spec, self.started_mono), **report.ended(state, error)
        )
        return EXIT_FAILED
