"""The runner pod (``krally runner``): runs the task's workload and reports into
``status.runner``.

It evaluates the triggers in-process (the engine's HookExecutor) but runs no hook: each firing
is recorded in ``status.runner.firings`` at once (:mod:`.recorder`), and the operator, watching
the task, creates the hook Job. The pod's service account may only get/patch its own task's
status. A load of one pod runs in :mod:`.single`, one of several pods in :mod:`.shards`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from krally.api.wire import SWITCH_INTERVAL
from krally.kube import metrics as kmetrics
from krally.kube.pods import podsignals
from krally.kube.pods.runner import taskapi
from krally.kube.pods.runner.recorder import ReadTask
from krally.kube.pods.runner.settings import RunnerSettings
from krally.kube.pods.runner.shards import ShardRun
from krally.kube.pods.runner.signal import SignalServer
from krally.kube.pods.runner.single import SingleRun
from krally.kube.pods.runner.writer import Patch, StatusWriter, pod_patcher
from krally.task.shard import Shard

if TYPE_CHECKING:  # prometheus_client, which a task's own runner image may lack
    from krally.kube.pods.runner.metrics import RunnerMetrics

log = logging.getLogger("krally.runner")


def main(
    settings: RunnerSettings | None = None,
    *,
    patch_fn: Patch | None = None,
    read_task: ReadTask | None = None,
    metrics: RunnerMetrics | None = None,
) -> int:
    """Run the task's workload; returns the exit code (0 finished, 1 aborted/error, 2 the final
    status could not be written). ``settings`` default: from the environment.
    ``patch_fn`` and ``read_task`` default to the task's API (given a ``patch_fn``, the hook
    results are read only through ``read_task``). ``metrics`` default: served on the pod's
    metrics port in a pod, none elsewhere."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = settings if settings is not None else RunnerSettings.load(os.environ)
    # A firing's push and write start every hook's lag (wire.SWITCH_INTERVAL).
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    if patch_fn is None:
        patch_fn = taskapi.patcher_with_retry(settings.namespace, settings.name, settings.in_pod)
        read_task = read_task or taskapi.make_reader(
            settings.namespace, settings.name, settings.in_pod
        )
    abort = threading.Event()
    stop_reason: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        # Pod deletion, eviction or spec.abort (the operator deletes the Job): stop the load,
        # keep what was recorded.
        stop_reason.append(signal.Signals(signum).name)
        abort.set()

    if metrics is None:
        metrics = metrics_server(settings.name, settings.pod_ip)
    try:
        with podsignals.handling(on_signal, signal.SIGTERM, signal.SIGINT):
            if settings.parallelism > 1:
                # One shard of a distributed load: this pod's report is status.runner.pods[i].
                shard = Shard(settings.shard_index, settings.parallelism)
                writer = StatusWriter(pod_patcher(patch_fn, shard.index), settings.progress_period)
                run = ShardRun(
                    settings.spec, shard, writer, patch_fn, read_task, abort, stop_reason
                )
                return run(metrics)
            writer = StatusWriter(patch_fn, settings.progress_period)
            signals = signal_server(settings.pod_ip)
            return SingleRun(settings, writer, abort, stop_reason, read_task, signals)(metrics)
    finally:
        sys.setswitchinterval(previous_interval)


def signal_server(pod_ip: str) -> SignalServer | None:
    """The direct line to armed hook pods, when the pod knows its address (KRALLY_POD_IP, from
    the downward API); None elsewhere or when the port cannot be had (the watch suffices)."""
    if not pod_ip:
        return None
    try:
        return SignalServer()
    except OSError as exc:
        log.warning("no signal server for armed hook pods: %s", exc)
        return None


def metrics_server(task: str, pod_ip: str) -> RunnerMetrics | None:
    """The load's live metrics, served on RUNNER_PORT in a pod (``pod_ip`` set, as for the
    signal); None elsewhere or when the port cannot be had: the load matters more than its
    metrics, and its results are in the status either way."""
    if not pod_ip:
        return None
    try:
        # prometheus_client: a task's own runner image may lack it.
        from krally.kube.pods.runner.metrics import RunnerMetrics  # noqa: PLC0415 (lazy)

        metrics = RunnerMetrics(task)
        kmetrics.serve(metrics.registry, kmetrics.RUNNER_PORT)
    except (ImportError, kmetrics.MetricsPortError) as exc:
        log.warning("no metrics: %s", exc)
        return None
    log.info("metrics at :%d%s", kmetrics.RUNNER_PORT, kmetrics.PATH)
    return metrics
