"""The firing recorder: the engine's HookLauncher in the runner pod.

The engine evaluates the triggers in-process but the runner runs no hook: each firing is
recorded in ``status.runner.firings`` at once (the operator, or the armed pod waiting for it,
runs the hook Job) and pushed to the armed pod over the firing signal. After the load,
:meth:`RecordingLauncher.settle` reads back the hook results the operator recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from krally.api.times import rfc3339
from krally.api.types import hook_error, rally_result
from krally.kube.pods.runner.signal import SignalServer
from krally.kube.pods.runner.translate import settled_results
from krally.kube.pods.runner.writer import StatusWriter

log = logging.getLogger("krally.runner")

# After the load, how long the runner waits for the operator to record the hook results: their
# real start and end times bound each firing's impact windows (and its SLA). A hook still not
# finished then counts as running when the load ended (its window ends with the load).
SETTLE_PATIENCE = 15.0
SETTLE_POLL = 0.5

ReadTask = Callable[[], dict[str, Any]]


class RecordingLauncher:
    """The engine's HookLauncher in the runner pod: records the firing, runs nothing; with a
    signal server, also pushes it to the armed pod waiting for it. ``read_task`` (a GET of the
    task) lets :meth:`settle` learn the hook results the operator recorded."""

    def __init__(
        self,
        writer: StatusWriter,
        signal: SignalServer | None = None,
        read_task: ReadTask | None = None,
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
    ) -> RecordedFiring:
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
        limit = None if recorded else self.writer.max_firings
        return RecordedFiring(triggered_by, now, limit)


class RecordedFiring:
    """Handle of a recorded firing: the result lives in the hook Job, not in this process.
    ``limit``: the firing was not recorded, the task having fired that many hooks already."""

    def __init__(self, triggered_by: dict[str, Any], fired_at: float, limit: int | None) -> None:
        error = (
            None
            if limit is None
            else hook_error("FiringLimit", f"not fired: the task already fired {limit} hooks")
        )
        self._result = rally_result(
            "launched" if limit is None else "failed",
            started_at=fired_at,
            finished_at=fired_at,
            triggered_by=triggered_by,
            error=error,
        )

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        return dict(self._result)
