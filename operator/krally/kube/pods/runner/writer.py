"""The runner pod's one writer of ``status.runner``: merge patches from a background thread.

Writes are merge patches of ``status.runner`` alone (the operator owns the rest of status): a
firing is written at once; progress at most once per ``period``; the final state is written
synchronously and retried through an API outage.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from krally.api import wire
from krally.api.times import rfc3339
from krally.kube.throttle import write_delay

log = logging.getLogger("krally.runner")

# "About once a second": 1.5 s keeps runner + operator writes of a running task near the
# 1.5 writes/s budget (firings are written at once regardless).
PROGRESS_PERIOD = 1.5
# How long the final status write is retried when the task sets no runnerPod.timeoutSeconds (an
# API outage as the load ends); with one, until that deadline.
FINAL_WRITE_PATIENCE = 600.0
# 404: the task is gone; 403: no right to write it; 422: refused as is.
PERMANENT_REFUSALS = (400, 403, 404, 422)

Patch = Callable[[dict[str, Any]], Any]


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


def pod_patcher(patch_fn: Patch, index: int) -> Patch:
    """A patch function writing ``status.runner.pods[index]`` instead of ``status.runner``."""
    return lambda state: patch_fn({"pods": {str(index): state}})


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(json.dumps(state))
    return value


class StatusWriter:
    """Owns ``status.runner``; one background thread sends merge patches.

    A firing wakes the thread at once (the lag to the hook Job starts here); progress alone is
    sent at most once per ``period``, and every write carries the latest of everything.
    """

    def __init__(self, patch_fn: Patch, period: float = PROGRESS_PERIOD) -> None:
        self._patch_fn = patch_fn  # callable(runner_dict) -> None
        self._period = period
        self.max_firings = wire.MAX_FIRINGS
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
            if len(self._state["firings"]) >= self.max_firings:
                dropped = self._state.get("droppedFirings", 0) + 1
                self._state["droppedFirings"] = dropped
                self._dirty = True
                if dropped == 1:
                    log.warning(
                        "more than %d firings: further ones are not fired", self.max_firings
                    )
                return False
            self._state["firings"] = [*self._state["firings"], firing]
            self._dirty = True
            self._urgent = True
            self._cond.notify()
            return True

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return _copy(self._state)

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
                state = _copy(self._state)
                self._dirty = self._urgent = False
            self._send(state)

    def _send(self, state: dict[str, Any]) -> bool:
        state["updatedAt"] = rfc3339(time.time())
        try:
            self._patch_fn(state)
        except Exception as exc:  # keep running the load; the next write carries everything
            log.warning("status write failed: %s", exc)
            self.last_error_permanent = getattr(exc, "status", None) in PERMANENT_REFUSALS
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
            if self._send(_copy(state)):
                return True
            attempt += 1
            wait = min(0.5 * 2 ** min(attempt - 1, 10), 5.0)
            if self.last_error_permanent or time.monotonic() + wait > deadline:
                return False
            time.sleep(wait)
