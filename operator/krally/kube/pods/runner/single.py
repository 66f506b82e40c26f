"""A load in one runner pod: announce it (state Running, the signal's address), give the armed
hook pods a moment to subscribe, run it, and write its final report."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from krally.api.times import rfc3339
from krally.api.wire import EXIT_FAILED, EXIT_INCOMPLETE
from krally.kube.pods.runner import report
from krally.kube.pods.runner.launcher import launch
from krally.kube.pods.runner.recorder import ReadTask, RecordingLauncher
from krally.kube.pods.runner.settings import RunnerSettings
from krally.kube.pods.runner.signal import SignalServer
from krally.kube.pods.runner.translate import status_impact, summarize
from krally.kube.pods.runner.writer import StatusWriter, final_write_deadline
from krally.task.loader import workload_from_spec

if TYPE_CHECKING:  # prometheus_client, which a task's own runner image may lack
    from krally.kube.pods.runner.metrics import RunnerMetrics

log = logging.getLogger("krally.runner")

# How long the load waits for the armed pods to subscribe to the runner's signal.
SUBSCRIBE_PATIENCE = 3.0


class SingleRun:
    """The whole load in this pod, reported at the top of ``status.runner``."""

    def __init__(
        self,
        settings: RunnerSettings,
        writer: StatusWriter,
        abort: threading.Event,
        stop_reason: list[str],
        read_task: ReadTask | None = None,
        signal: SignalServer | None = None,
    ) -> None:
        self.settings, self.spec, self.writer = settings, settings.spec, writer
        self.abort, self.stop_reason = abort, stop_reason
        self.read_task, self.signal = read_task, signal
        self.started_mono = time.monotonic()
        self.started = time.time()

    def __call__(self, metrics: RunnerMetrics | None = None) -> int:
        self._announce()
        recorder = RecordingLauncher(self.writer, self.signal, self.read_task, abort=self.abort)
        try:
            workload = workload_from_spec(self.spec)
            result = launch(self.spec, workload, recorder, self.abort, metrics)
        except Exception as exc:
            log.exception("runner failed")
            self._close_signal()
            self.writer.close(
                self._deadline(), **report.ended(report.ERROR, report.exception_text(exc))
            )
            return EXIT_FAILED
        self._close_signal()  # no firing after this: the pods learn the end from the final write
        return self._finish(result)

    def _deadline(self) -> float:
        return final_write_deadline(self.spec, self.started_mono)

    def _announce(self) -> None:
        """Running, and where armed pods get their firings; then a moment for them to come."""
        first: dict[str, Any] = {"startedAt": rfc3339(self.started), "state": "Running"}
        if self.signal is not None:
            first["signal"] = f"{self.settings.pod_ip}:{self.signal.port}"
        self.writer.update(progress={"done": 0}, **first)
        self.writer.start()
        self.writer.update(urgent=True)
        armed = self.settings.armed_pods
        if self.signal is not None and armed:
            # The armed pods learn the address from that write: a moment for them to subscribe.
            subscribed = self.signal.wait_for(armed, SUBSCRIBE_PATIENCE)
            log.info(
                "%d of %d armed hook pods subscribed to the runner's signal", subscribed, armed
            )

    def _close_signal(self) -> None:
        if self.signal is not None:
            self.signal.close()

    def _finish(self, result: dict[str, Any]) -> int:
        """The final report: state, summary, impact and progress; its exit code."""
        summary = summarize(result)
        state, error = report.final_state(self.stop_reason, result)
        progress = self.writer.snapshot().get("progress") or {}
        progress["done"] = summary["iterations"]
        progress["failures"] = summary["failures"]
        progress["elapsedSeconds"] = round(time.time() - self.started, 3)
        fields: dict[str, Any] = {"summary": summary, "progress": progress}
        impact = status_impact(result.get("impact"))
        if impact:
            fields["impact"] = impact
        ok = self.writer.close(self._deadline(), **report.ended(state, error, **fields))
        log.info(
            "runner %s: %s iterations, %s status writes",
            state,
            summary["iterations"],
            self.writer.writes,
        )
        if not ok:
            print("krally runner: could not write the final status", file=sys.stderr)
            return EXIT_INCOMPLETE
        return report.exit_code(state)
