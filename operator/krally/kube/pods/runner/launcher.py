"""The launcher: one call of the engine's ``run_workload`` for the runner pod, wired to the
status writer (progress), the live metrics (every finished iteration) and the stop event;
the same for a whole load (:mod:`.single`) and for one shard of it (:mod:`.shards`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from krally.kube.pods.runner.recorder import RecordingLauncher
from krally.kube.pods.runner.writer import StatusWriter
from krally.task.engine import run_workload
from krally.task.spec import WorkloadSpec

if TYPE_CHECKING:  # prometheus_client, which a task's own runner image may lack
    from krally.kube.pods.runner.metrics import RunnerMetrics


def progress_writer(writer: StatusWriter, metrics: RunnerMetrics | None) -> Callable[[Any], None]:
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


def launch(
    spec: dict[str, Any],
    workload: WorkloadSpec,
    launcher: RecordingLauncher,
    abort: threading.Event,
    metrics: RunnerMetrics | None,
    **placement: Any,
) -> dict[str, Any]:
    """Run the load (``placement``: a shard's ``shard`` and ``origin``); the engine's result."""
    return run_workload(
        workload,
        launcher=launcher,
        on_progress=progress_writer(launcher.writer, metrics),
        abort=abort,
        abort_on_sla_failure=bool(spec.get("abortOnSLAFailure")),
        # Every finished iteration, one call at a time: the live metrics' only feed.
        on_record=metrics.record if metrics is not None else None,
        **placement,
    )
