"""The runner pod (``krally runner``): runs the workload and reports into ``status.runner``.

It evaluates the triggers in-process (the engine's HookExecutor) but runs no hook: each firing
is recorded in ``status.runner.firings`` at once, and the operator, watching the task, creates
the hook Job. The pod's service account may only get/patch its own task's status.

Writes are merge patches of ``status.runner`` alone (the operator owns the rest of status):
a firing is written immediately; progress at most once per ``PROGRESS_PERIOD``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from krally.api import names
from krally.api.shards import READY
from krally.api.times import rfc3339
from krally.api.types import hook_error, rally_result
from krally.kube import podsignals
from krally.kube.throttle import write_delay

if TYPE_CHECKING:
    from krally.kube.runnermetrics import RunnerMetrics

log = logging.getLogger("krally.runner")

# "About once a second": 1.5 s keeps runner + operator writes of a running task near the
# 1.5 writes/s budget (firings are written at once regardless).
# KRALLY_PROGRESS_PERIOD overrides it (read by main(), not at import).
PROGRESS_PERIOD = 1.5
MAX_TIMELINE = 600
# Each firing becomes a hook Job and a result in the task's status; past this many, firings are
# counted in status.runner.droppedFirings instead, so the object stays far below etcd's limit.
MAX_FIRINGS = 500
# Firings whose impact status.runner.impact lists (the rest stay in the runner's log and results).
MAX_IMPACT = 50
# How long the final status write is retried when the task sets no runnerPod.timeoutSeconds (an
# API outage as the load ends); with one, until that deadline.
FINAL_WRITE_PATIENCE = 600.0
# Each status write gives up after this many seconds (then it is retried): a hung connection
# during an API outage must not stall the writer.
REQUEST_TIMEOUT = 15.0
# How long the load waits for the armed pods to subscribe to the runner's signal.
SUBSCRIBE_PATIENCE = 3.0
# After the load, how long the runner waits for the operator to record the hook results: their
# real start and end times bound each firing's impact windows (and its SLA). A hook still not
# finished then counts as running when the load ended (its window ends with the load).
SETTLE_PATIENCE = 15.0
SETTLE_POLL = 0.5
DURATION_KEYS = {
    "min": "min",
    "median": "median",
    "90%ile": "p90",
    "95%ile": "p95",
    "p90": "p90",
    "p95": "p95",
    "max": "max",
    "avg": "avg",
}


class StatusWriter:
    """Owns ``status.runner``; one background thread sends merge patches.

    A firing wakes the thread at once (the lag to the hook Job starts here); progress alone is
    sent at most once per ``period``, and every write carries the latest of everything.
    """

    def __init__(self, patch_fn: Any, period: float = PROGRESS_PERIOD) -> None:
        self._patch_fn = patch_fn  # callable(runner_dict) -> None
        self._period = period
        self._cond = threading.Condition()
        self._state: dict[str, Any] = {"firings": []}
        self._dirty = False
        self._urgent = False
        self._stopping = False
        self._last_write = 0.0
        self.writes = 0
        self.last_error_permanent = False
        self._thread = threading.Thread(target=self._loop, name="krally-status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def update(self, urgent: bool = False, **fields: Any) -> None:
        with self._cond:
            self._state.update(fields)
            self._dirty = True
            if urgent:
                self._urgent = True
            # Always wake the writer: it may be waiting with nothing to write (no deadline).
            self._cond.notify()

    def add_firing(self, firing: dict[str, Any]) -> bool:
        """Record a firing; False when the per-task limit is reached (then only counted)."""
        with self._cond:
            if len(self._state["firings"]) >= MAX_FIRINGS:
                dropped = self._state.get("droppedFirings", 0) + 1
                self._state["droppedFirings"] = dropped
                self._dirty = True
                if dropped == 1:
                    log.warning("more than %d firings: further ones are not fired", MAX_FIRINGS)
                return False
            self._state["firings"] = [*self._state["firings"], firing]
            self._dirty = True
            self._urgent = True
            self._cond.notify()
            return True

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return json.loads(json.dumps(self._state))

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    if self._urgent:
                        break
                    wait = write_delay(self._last_write, self._period, time.monotonic(), False)
                    if self._dirty and wait <= 0:
                        break
                    self._cond.wait(wait if self._dirty else None)
                state = json.loads(json.dumps(self._state))
                self._dirty = self._urgent = False
            self._send(state)

    def _send(self, state: dict[str, Any]) -> bool:
        state["updatedAt"] = rfc3339(time.time())
        try:
            self._patch_fn(state)
        except Exception as exc:  # keep running the load; the next write carries everything
            log.warning("status write failed: %s", exc)
            status = getattr(exc, "status", None)
            # 404: the task is gone; 403: no right to write it; 422: refused as is.
            self.last_error_permanent = status in (400, 403, 404, 422)
            with self._cond:
                self._dirty = True
            return False
        finally:
            self._last_write = time.monotonic()
        self.writes += 1
        return True

    def close(self, deadline: float | None = None, **final: Any) -> bool:
        """Stop the thread and write the final state synchronously, retried (capped back-off)
        until it is written, the API refuses it for good (the task is gone) or ``deadline``
        (monotonic; default FINAL_WRITE_PATIENCE from now) passes: an API outage as the load
        ends must not lose the results."""
        with self._cond:
            self._state.update(final)
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=10)
        if deadline is None:
            deadline = time.monotonic() + FINAL_WRITE_PATIENCE
        return self.write(self.snapshot(), deadline)

    def write(self, state: dict[str, Any], deadline: float) -> bool:
        """Write ``state`` now, retried (capped back-off) until it is written, the API refuses
        it for good or ``deadline`` (monotonic) passes."""
        attempt = 0
        while True:
            if self._send(json.loads(json.dumps(state))):
                return True
            attempt += 1
            wait = min(0.5 * 2 ** min(attempt - 1, 10), 5.0)
            if self.last_error_permanent or time.monotonic() + wait > deadline:
                return False
            time.sleep(wait)


class RecordingLauncher:
    """The engine's HookLauncher in the runner pod: records the firing, runs nothing; with a
    signal server, also pushes it to the armed pod waiting for it. ``read_task`` (a GET of the
    task) lets :meth:`settle` learn the hook results the operator recorded."""

    def __init__(
        self,
        writer: StatusWriter,
        signal: Any = None,
        read_task: Any = None,
        patience: float = SETTLE_PATIENCE,
        abort: threading.Event | None = None,
    ) -> None:
        self.writer = writer
        self.signal = signal
        self.read_task = read_task
        self.patience = patience
        self.abort = abort  # a stopped runner takes what is recorded, without waiting

    def settle(self, hooks: list[dict[str, Any]], load_end: float) -> list[dict[str, Any]]:
        """The engine's hook results with each firing's real status and times, read from the
        task's status; polled until every firing has finished or ``patience`` runs out."""
        if self.read_task is None or not any(h.get("results") for h in hooks):
            return hooks
        deadline = time.monotonic() + self.patience
        while True:
            try:
                status = (self.read_task() or {}).get("status") or {}
            except Exception as exc:  # the analysis then sees the firings as still running
                log.warning("cannot read the hook results: %s", exc)
                status = {}
            settled, unfinished = settled_results(hooks, status)
            stopping = self.abort is not None and self.abort.is_set()
            if not unfinished or stopping or time.monotonic() + SETTLE_POLL > deadline:
                if unfinished:
                    log.info("%d hook firings had not finished when results were taken", unfinished)
                return settled
            time.sleep(SETTLE_POLL)

    def launch(
        self, index: int, hook: Any, hook_cls: Any, triggered_by: dict[str, Any]
    ) -> _Recorded:
        now = time.time()
        firing = {
            "hook": index,
            "eventType": triggered_by.get("event_type"),
            "value": triggered_by.get("value"),
            "firedAt": rfc3339(now),
        }
        recorded = self.writer.add_firing(firing)
        if recorded and self.signal is not None:
            self.signal.publish(firing)
        return _Recorded(triggered_by, now, recorded)


class _Recorded:
    """Handle of a recorded firing: the result lives in the hook Job, not in this process."""

    def __init__(self, triggered_by: dict[str, Any], fired_at: float, recorded: bool) -> None:
        error = (
            None
            if recorded
            else hook_error("FiringLimit", f"not fired: the task already fired {MAX_FIRINGS} hooks")
        )
        self._result = rally_result(
            "launched" if recorded else "failed",
            started_at=fired_at,
            finished_at=fired_at,
            triggered_by=triggered_by,
            error=error,
        )

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        return dict(self._result)


def settled_results(
    hooks: list[dict[str, Any]], status: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """(``hooks`` with each recorded firing's result from ``status.hooks`` in the engine's
    shape, how many have not finished). A firing without a recorded result stays as it was
    (pending, no times); one still running has ``finished_at`` None."""
    from krally.api.times import parse_time
    from krally.api.types import HOOK_FINAL
    from krally.kube.firingsignal import firing_key

    recorded = {
        firing_key(entry.get("index", -1), by.get("eventType"), by.get("value")): item
        for entry in status.get("hooks") or []
        for item in entry.get("results") or []
        for by in [item.get("triggeredBy") or {}]
    }
    unfinished = 0
    settled = []
    for index, hook in enumerate(hooks):
        results = []
        for result in hook.get("results") or []:
            by = result.get("triggered_by") or {}
            item = recorded.get(firing_key(index, by.get("event_type"), by.get("value")))
            if result.get("status") != "launched":
                results.append(result)  # not fired (e.g. the firing limit): nothing to learn
                continue
            if item is None:
                unfinished += 1
                results.append({**result, "status": "pending", "started_at": None})
                continue
            final = item.get("status") in HOOK_FINAL
            unfinished += 0 if final else 1
            settled_result = {
                "status": item.get("status"),
                "triggered_by": by,
                "started_at": parse_time(item.get("startedAt")),
                "finished_at": parse_time(item.get("finishedAt")) if final else None,
            }
            if item.get("error"):
                settled_result["error"] = item["error"]
            results.append(settled_result)
        settled.append({**hook, "results": results})
    return settled, unfinished


# -- summary -----------------------------------------------------------------------------------


def _durations(stats: Any) -> dict[str, Any]:
    """Rally's durations table (or krally's compact one) → {min, median, p90, p95, max, avg}."""
    if not isinstance(stats, dict):
        return {}
    data = stats
    for key in ("total", "data"):
        if isinstance(data.get(key), dict):
            data = data[key]
    if isinstance(data.get("data"), dict):
        data = data["data"]
    return {out: data[key] for key, out in DURATION_KEYS.items() if key in data}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The engine's Rally-shaped workload result → ``status.runner.summary`` (bounded)."""
    stats = (result.get("statistics") or {}).get("durations") or {}
    summary: dict[str, Any] = {
        "iterations": result.get("total_iteration_count", 0),
        "failures": result.get("failed_iteration_count", 0),
        "loadDuration": result.get("load_duration"),
        "fullDuration": result.get("full_duration"),
        "durations": _durations(stats),
        "sla": [
            {
                "criterion": str(item.get("criterion")),
                "success": bool(item.get("success")),
                "detail": str(item.get("detail", "")),
            }
            for item in (result.get("sla_results") or {}).get("sla") or []
        ],
        "passSLA": bool(result.get("pass_sla")),
        "aborted": bool(result.get("aborted")),
    }
    atomics = stats.get("atomics") if isinstance(stats, dict) else None
    if isinstance(atomics, list):
        summary["atomics"] = atomics[:50]
    # The HTML report's histogram (at most 40 bins) and the timeline's origin (epoch).
    if isinstance(result.get("histogram"), list):
        summary["histogram"] = [
            [float(f"{b[0]:.4g}"), float(f"{b[1]:.4g}"), b[2]]
            for b in result["histogram"][:60]
            if isinstance(b, list | tuple) and len(b) == 3
        ]  # 4 digits: ~25 bytes a bin in the status, not ~45
    if isinstance(result.get("timeline_start"), int | float):
        summary["timelineStart"] = result["timeline_start"]
    timeline = result.get("timeline")
    if isinstance(timeline, list):
        summary["timeline"] = timeline[-MAX_TIMELINE:]
    elif timeline is not None:
        summary["timeline"] = timeline
    unreached = []
    for index, hook in enumerate(result.get("hooks") or []):
        for item in hook.get("unreached") or []:
            unreached.append(
                {"hook": index, "eventType": item.get("event_type"), "value": item.get("value")}
            )
    if unreached:
        summary["unreached"] = unreached
    if result.get("warnings"):
        summary["warnings"] = [str(w) for w in result["warnings"]][:20]
    if result.get("error"):
        error = result["error"]
        summary["error"] = (
            ": ".join(str(e) for e in error[:2]) if isinstance(error, list) else str(error)
        )
    return clean_json(summary)


WINDOW_KEYS = ("iterations", "failures", "errorRate", "p50", "p95", "p99", "throughput")
IMPACT_KEYS = ("p95Ratio", "throughputRatio", "degraded", "recovered", "recoverySeconds")


def status_impact(impact: Any) -> list[dict[str, Any]]:
    """The engine's per-firing impact (epoch times) → ``status.runner.impact``: RFC 3339 times,
    windows in seconds from the hook's start, rounded, at most MAX_IMPACT entries."""
    if not isinstance(impact, list):
        return []
    out = []
    for entry in impact[:MAX_IMPACT]:
        if not isinstance(entry, dict):
            continue
        started = entry.get("startedAt")
        item: dict[str, Any] = {
            "hook": entry.get("hook"),
            "name": entry.get("name"),
            "status": entry.get("status"),
            "startedAt": rfc3339(started) if isinstance(started, int | float) else None,
        }
        by = entry.get("triggeredBy") or {}
        item["triggeredBy"] = {
            "eventType": by.get("eventType", by.get("event_type")),
            "value": by.get("value"),
        }
        finished = entry.get("finishedAt")
        if isinstance(finished, int | float):
            item["finishedAt"] = rfc3339(finished)
        for name in ("baseline", "during", "after"):
            window = entry.get(name)
            if isinstance(window, dict):
                item[name] = _status_window(window, started)
        for key in IMPACT_KEYS:
            value = entry.get(key)
            item[key] = round(value, 4) if isinstance(value, float) else value
        notes = entry.get("notes", entry.get("note"))
        if isinstance(notes, str):
            notes = [notes]
        if notes:
            item["notes"] = [str(n) for n in notes][:5]
        out.append({k: v for k, v in clean_json(item).items() if v is not None})
    return out


def _status_window(window: dict[str, Any], origin: Any) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if isinstance(origin, int | float):
        for key, out in (("start", "fromSeconds"), ("end", "toSeconds")):
            if isinstance(window.get(key), int | float):
                item[out] = round(window[key] - origin, 3)
    for key in WINDOW_KEYS:
        value = window.get(key)
        if isinstance(value, float) and math.isfinite(value):
            item[key] = round(value, 6)
        elif isinstance(value, int):
            item[key] = value
    return item


def clean_json(value: Any) -> Any:
    """JSON-safe copy: NaN/inf (invalid JSON, refused by the API server) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


# -- API ---------------------------------------------------------------------------------------


def make_patcher(namespace: str, name: str) -> Any:
    """A callable sending ``{"status": {"runner": state}}`` as a merge patch to /status: in a
    pod, a lean kept-alive connection (:class:`~krally.kube.taskwatch.StatusPatcher`); outside
    one (a kubeconfig), the kubernetes package."""
    from krally.kube import taskwatch

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        patcher = taskwatch.StatusPatcher(
            taskwatch.ApiEndpoint.in_cluster(), namespace, name, REQUEST_TIMEOUT
        )
        return lambda state: patcher({"status": {"runner": state}})

    from kubernetes import client, config

    config.load_config()
    api = client.CustomObjectsApi()

    def patch(state: dict[str, Any]) -> None:
        api.patch_namespaced_custom_object_status(
            names.GROUP,
            names.VERSION,
            namespace,
            names.PLURAL,
            name,
            {"status": {"runner": state}},
            _request_timeout=REQUEST_TIMEOUT,
        )

    return patch


def make_reader(namespace: str, name: str) -> Any:
    """A callable returning the task (one GET): in a pod through the lean stdlib client, outside
    one through the kubernetes package."""
    from krally.kube import taskwatch

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        endpoint = taskwatch.ApiEndpoint.in_cluster()
        return lambda: taskwatch.get_task(endpoint, namespace, name)

    from kubernetes import client, config

    config.load_config()
    api = client.CustomObjectsApi()
    return lambda: api.get_namespaced_custom_object(
        names.GROUP, names.VERSION, namespace, names.PLURAL, name, _request_timeout=REQUEST_TIMEOUT
    )


def _patcher_with_retry(namespace: str, name: str, attempts: int = 20) -> Any:
    # A pod may start a moment before its credentials are usable: retry, then fail loudly.
    for attempt in range(attempts):
        try:
            return make_patcher(namespace, name)
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            log.warning("kubernetes client not ready (%s); retrying", exc)
            time.sleep(0.5)
    raise AssertionError("unreachable")


def main(
    spec: dict[str, Any] | None = None,
    namespace: str | None = None,
    name: str | None = None,
    patch_fn: Any = None,
    period: float | None = None,
    read_task: Any = None,
    metrics: RunnerMetrics | None = None,
) -> int:
    """Run the task's workload; returns the exit code (0 finished, 1 aborted/error).
    ``patch_fn`` and ``read_task`` default to the task's API (given a ``patch_fn``, the hook
    results are read only through ``read_task``). ``metrics`` default: served on the pod's
    metrics port in a pod, none elsewhere."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spec = spec if spec is not None else json.loads(os.environ["KRALLY_SPEC"])
    namespace = namespace or os.environ["KRALLY_TASK_NAMESPACE"]
    name = name or os.environ["KRALLY_TASK_NAME"]
    if period is None:
        period = float(os.environ.get("KRALLY_PROGRESS_PERIOD") or PROGRESS_PERIOD)
    # A firing's push and write start every hook's lag (firingsignal.SWITCH_INTERVAL).
    from krally.kube.firingsignal import SWITCH_INTERVAL

    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    if patch_fn is None:
        patch_fn = _patcher_with_retry(namespace, name)
        read_task = read_task or make_reader(namespace, name)
    writer = StatusWriter(patch_fn, period)
    abort = threading.Event()
    stop_reason: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        # Pod deletion, eviction or spec.abort (the operator deletes the Job): stop the load,
        # keep what was recorded.
        stop_reason.append(signal.Signals(signum).name)
        abort.set()

    if metrics is None:
        metrics = _metrics_server(name)
    count = int(os.environ.get("KRALLY_PARALLELISM") or 1)
    try:
        with podsignals.handling(on_signal, signal.SIGTERM, signal.SIGINT):
            if count > 1:
                # One shard of a distributed load: this pod's report is status.runner.pods[i].
                from krally.task.shard import Shard

                shard = Shard(int(os.environ.get("JOB_COMPLETION_INDEX") or 0), count)
                pod_writer = StatusWriter(_pod_patcher(patch_fn, shard.index), period)
                return ShardRun(spec, shard, pod_writer, patch_fn, read_task, abort, stop_reason)(
                    metrics
                )
            return _run(spec, writer, abort, stop_reason, read_task, metrics)
    finally:
        sys.setswitchinterval(previous_interval)


def _signal_server() -> Any:
    """The direct line to armed hook pods, when the pod knows its address (KRALLY_POD_IP, from
    the downward API); None elsewhere or when the port cannot be had (the watch suffices)."""
    if not os.environ.get("KRALLY_POD_IP"):
        return None
    from krally.kube.firingsignal import SignalServer

    try:
        return SignalServer()
    except OSError as exc:
        log.warning("no signal server for armed hook pods: %s", exc)
        return None


def _metrics_server(task: str) -> RunnerMetrics | None:
    """The load's live metrics, served on RUNNER_PORT in a pod (KRALLY_POD_IP set, as for the
    signal); None elsewhere or when the port cannot be had: the load matters more than its
    metrics, and its results are in the status either way."""
    if not os.environ.get("KRALLY_POD_IP"):
        return None
    from krally.kube import metrics as kmetrics

    try:
        # prometheus_client: a task's own runner image may lack it.
        from krally.kube.runnermetrics import RunnerMetrics

        metrics = RunnerMetrics(task)
        kmetrics.serve(metrics.registry, kmetrics.RUNNER_PORT)
    except (ImportError, kmetrics.MetricsPortError) as exc:
        log.warning("no metrics: %s", exc)
        return None
    log.info("metrics at :%d%s", kmetrics.RUNNER_PORT, kmetrics.PATH)
    return metrics


def progress_writer(writer: StatusWriter, metrics: RunnerMetrics | None) -> Any:
    """The engine's progress callback: into the status (throttled by the writer) and metrics."""

    def on_progress(progress: Any) -> None:
        value = {
            "done": progress.done,
            "failures": progress.failures,
            "elapsedSeconds": round(progress.elapsed, 3),
        }
        if progress.total is not None:
            value["total"] = progress.total
        writer.update(progress=value)
        if metrics is not None:
            metrics.tick()

    return on_progress


def final_write_deadline(
    spec: dict[str, Any], started: float, patience: float = FINAL_WRITE_PATIENCE
) -> float:
    """Monotonic time until which the final status write is retried (or the pods of a
    distributed load wait for each other): the runner Job's own deadline
    (spec.runnerPod.timeoutSeconds, counted from ``started``, monotonic), else ``patience``
    from now."""
    timeout = (spec.get("runnerPod") or {}).get("timeoutSeconds")
    if isinstance(timeout, int | float) and timeout > 0:
        return started + timeout
    return time.monotonic() + patience


def _run(
    spec: dict[str, Any],
    writer: StatusWriter,
    abort: threading.Event,
    stop_reason: list[str],
    read_task: Any = None,
    metrics: RunnerMetrics | None = None,
) -> int:
    """The load and its status writes, under main()'s signal handlers."""
    started_mono = time.monotonic()
    from krally.task.engine import run_workload
    from krally.task.loader import workload_from_spec

    started = time.time()
    signal = _signal_server()
    first: dict[str, Any] = {"startedAt": rfc3339(started), "state": "Running"}
    if signal is not None:
        first["signal"] = f"{os.environ['KRALLY_POD_IP']}:{signal.port}"
    writer.update(progress={"done": 0}, **first)
    writer.start()
    writer.update(urgent=True)
    armed = int(os.environ.get("KRALLY_ARMED_PODS") or 0)
    if signal is not None and armed:
        # The armed pods learn the address from that write: a moment for them to subscribe.
        subscribed = signal.wait_for(armed, SUBSCRIBE_PATIENCE)
        log.info("%d of %d armed hook pods subscribed to the runner's signal", subscribed, armed)

    on_progress = progress_writer(writer, metrics)
    try:
        workload = workload_from_spec(spec)
        result = run_workload(
            workload,
            launcher=RecordingLauncher(writer, signal, read_task, abort=abort),
            on_progress=on_progress,
            abort=abort,
            abort_on_sla_failure=bool(spec.get("abortOnSLAFailure")),
            # Every finished iteration, one call at a time: the live metrics' only feed.
            on_record=metrics.record if metrics is not None else None,
        )
    except Exception as exc:
        log.exception("runner failed")
        if signal is not None:
            signal.close()
        writer.close(
            final_write_deadline(spec, started_mono),
            state="Error",
            error=f"{type(exc).__name__}: {exc}",
            finishedAt=rfc3339(time.time()),
        )
        return 1
    if signal is not None:
        signal.close()  # no firing after this: the pods learn the end from the final write
    summary = summarize(result)
    if stop_reason:
        state, error = "Aborted", f"stopped by {stop_reason[0]}"
    elif result.get("error"):
        state, error = "Error", summary.get("error", "the load crashed")
    else:
        state, error = "Finished", None
    final: dict[str, Any] = {
        "state": state,
        "summary": summary,
        "finishedAt": rfc3339(time.time()),
    }
    impact = status_impact(result.get("impact"))
    if impact:
        final["impact"] = impact
    if error:
        final["error"] = error
    progress = writer.snapshot().get("progress") or {}
    progress["done"] = summary["iterations"]
    progress["failures"] = summary["failures"]
    progress["elapsedSeconds"] = round(time.time() - started, 3)
    final["progress"] = progress
    ok = writer.close(final_write_deadline(spec, started_mono), **final)
    log.info(
        "runner %s: %s iterations, %s status writes", state, summary["iterations"], writer.writes
    )
    if not ok:
        print("krally runner: could not write the final status", file=sys.stderr)
        return 2
    return 0 if state == "Finished" else 1


# -- a distributed load (spec.runner.parallelism > 1) ------------------------------------------

# Pod 0 sets the common start this far ahead once every pod is ready: enough for each pod's
# next poll (BARRIER_POLL) and its read to see it, so that all of them sleep until it.
START_LEAD = 1.0
BARRIER_POLL = 0.1
# How long the pods wait for each other when the task sets no runnerPod.timeoutSeconds.
BARRIER_PATIENCE = 600.0
MERGE_POLL = 0.5
# A stopped pod 0 waits this long for the others' last reports (the pod's grace period is 30 s).
STOP_PATIENCE = 10.0


def _pod_patcher(patch_fn: Any, index: int) -> Any:
    """A patch function writing ``status.runner.pods[index]`` instead of ``status.runner``."""
    return lambda state: patch_fn({"pods": {str(index): state}})


class ShardRun:
    """One runner pod of N: the start barrier, its shard of the load, and (pod 0) the merge.

    Every pod reports ``Ready`` and waits; pod 0, once all N are ready, writes ``startAt``
    (START_LEAD ahead); every pod sleeps until that instant and runs its shard (time triggers,
    in pod 0, count from it). At the end each pod writes its mergeable result; pod 0 waits for
    every pod's (or for the Job controller to report it failed, status.failedRunnerPods),
    merges them exactly (krally.task.merge) and writes the load's result at the top of
    status.runner, as one runner would. ``patch_top`` writes ``status.runner`` itself."""

    def __init__(
        self,
        spec: dict[str, Any],
        shard: Any,
        writer: StatusWriter,
        patch_top: Any,
        read_task: Any,
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
        task = self.read_task() or {}
        return task.get("status") or {}

    def __call__(self, metrics: RunnerMetrics | None = None) -> int:
        from krally.task.engine import run_workload
        from krally.task.loader import workload_from_spec
        from krally.task.merge import shard_part

        writer = self.writer
        writer.update(state=READY, progress={"done": 0})
        writer.start()
        writer.update(urgent=True)
        try:
            workload = workload_from_spec(self.spec)
            start_at = self.barrier()
        except Exception as exc:
            log.exception("runner pod %d could not start", self.shard.index)
            return self._fail(f"{type(exc).__name__}: {exc}")
        if start_at is None:
            if self.stop_reason:
                return self._fail(f"stopped by {self.stop_reason[0]} before the start", "Aborted")
            return self._fail(
                f"not every one of the {self.shard.count} runner pods was ready in time"
            )
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
        writer.update(
            state="Running",
            startedAt=rfc3339(started),
            # Sub-millisecond: how late this pod started after the common instant.
            startDelaySeconds=round(started - start_at, 6),
        )

        try:
            result = run_workload(
                workload,
                launcher=RecordingLauncher(writer, abort=self.abort),
                on_progress=progress_writer(writer, metrics),
                abort=self.abort,
                abort_on_sla_failure=bool(self.spec.get("abortOnSLAFailure")),
                on_record=metrics.record if metrics is not None else None,
                shard=self.shard,
                origin=start_at,
            )
        except Exception as exc:
            log.exception("runner pod %d failed", self.shard.index)
            return self._fail(f"{type(exc).__name__}: {exc}")
        if self.stop_reason:
            state, error = "Aborted", f"stopped by {self.stop_reason[0]}"
        elif result.get("error"):
            state, error = "Error", ": ".join(str(e) for e in result["error"][:2])
        else:
            state, error = "Finished", None
        progress = writer.snapshot().get("progress") or {}
        progress.update(done=result.get("total_iteration_count", 0))
        progress["failures"] = result.get("failed_iteration_count", 0)
        final: dict[str, Any] = {
            "state": state,
            "finishedAt": rfc3339(time.time()),
            "progress": progress,
            "result": clean_json(shard_part(result)),
        }
        if error:
            final["error"] = error
        if not writer.close(final_write_deadline(self.spec, self.started_mono), **final):
            print("krally runner: could not write this pod's result", file=sys.stderr)
            return 2
        code = 0 if state == "Finished" else 1
        if self.shard.index == 0:
            code = self.merge(workload) or code
        return code

    def barrier(self) -> float | None:
        """The common start (epoch), once every pod is ready; None: aborted or out of time."""
        from krally.api.shards import pod_reports
        from krally.api.times import parse_time

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
            if (
                self.shard.index == 0
                and len(ready & set(range(self.shard.count))) >= self.shard.count
            ):
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

    def merge(self, workload: Any) -> int:
        """Pod 0: wait for every pod's result (or its failure), merge, write the load's result."""
        from krally.api.shards import FINAL_STATES, pod_reports, summed_progress
        from krally.task.merge import merge_shards

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
                break
            if self.abort.is_set():
                # Stopped (FailTask: the Job stops every pod at once): the others are writing
                # what they ran too; wait for them a little, within the pod's grace period.
                deadline = min(deadline, (stopped := stopped or time.monotonic()) + STOP_PATIENCE)
            if time.monotonic() + MERGE_POLL > deadline:
                log.warning(
                    "runner pods %s did not report in time", sorted(set(range(count)) - done)
                )
                break
            time.sleep(MERGE_POLL)
        parts = {i: pod["result"] for i, pod in pods.items() if isinstance(pod.get("result"), dict)}
        try:
            merged = merge_shards(workload, parts, count)
        except Exception as exc:
            log.exception("the pods' results could not be merged")
            return 1 if self._write_top({"state": "Error", "error": f"merge failed: {exc}"}) else 2
        summary = summarize(merged)
        ordered = [pods[i] for i in sorted(pods)]
        problems = [
            f"runner pod {i}: {pod.get('error') or pod.get('state') or 'no report'}"
            for i in range(1, count)
            if (pod := pods.get(i) or {}).get("state") != "Finished"
        ]
        state, error = "Finished", None
        if self.stop_reason:
            state, error = "Aborted", f"stopped by {self.stop_reason[0]}"
        elif merged.get("error"):
            state, error = "Error", summary.get("error")
        elif problems and (self.spec.get("runner") or {}).get("podFailurePolicy") != "Continue":
            state, error = "Error", "; ".join(problems)
        elif problems:
            summary.setdefault("warnings", []).extend(problems)
        final: dict[str, Any] = {
            "state": state,
            "summary": summary,
            "progress": summed_progress(ordered),
            "startedAt": (status.get("runner") or {}).get("startAt"),
            "finishedAt": rfc3339(time.time()),
            # The pods' mergeable results are in the summary now: keep the object small.
            "pods": {str(i): {"result": None} for i in parts},
        }
        if error:
            final["error"] = error
        log.info("merged %d of %d runner pods: %s", len(parts), count, state)
        return 0 if self._write_top(final) and state == "Finished" else 1

    def _write_top(self, state: dict[str, Any]) -> bool:
        """``state`` into status.runner itself (not this pod's report), retried."""
        writer = StatusWriter(self.patch_top)
        return writer.write(state, final_write_deadline(self.spec, self.started_mono))

    def _fail(self, error: str, state: str = "Error") -> int:
        self.writer.close(
            final_write_deadline(self.spec, self.started_mono),
            state=state,
            error=error,
            finishedAt=rfc3339(time.time()),
        )
        return 1
