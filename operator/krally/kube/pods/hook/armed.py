"""The armed hook pod's wait: from the task's successive states to "fire now" or "never".

The operator creates an armed hook Job before its firing (payload ``armed``); its pod prepares
the hook, watches its own task (:mod:`krally.kube.pods.taskwatch`), says it is ready by listening on
``readyPort`` (the pod's tcpSocket startup probe, which the operator waits for before it
releases the load) and runs the hook as soon as the runner records the firing in
``status.runner.firings``. The decisions are pure functions of the task objects, so unit tests
drive them with plain dicts.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from krally.api.shards import runner_view
from krally.api.times import parse_time
from krally.api.wire import RUNNER_DONE


@dataclass(frozen=True)
class Outcome:
    """What the wait ended with: ``firing`` (run it) or ``unreached`` (why it never comes)."""

    firing: dict[str, Any] | None = None
    unreached: str = ""


def find_firing(task: dict[str, Any], index: int, unit: str, value: Any) -> dict[str, Any] | None:
    """The runner's record of this firing in ``status.runner.firings``, if there."""
    runner = runner_view((task.get("status") or {}).get("runner") or {})
    for firing in runner.get("firings") or []:
        if (
            firing.get("hook") == index
            and str(firing.get("eventType", "")) == unit
            and firing.get("value") == value
        ):
            return dict(firing)
    return None


def never_reached(task: dict[str, Any]) -> str:
    """Why no firing will be recorded any more ('' while one still may be): the runner wrote
    its final state (it records every firing before that), or the task was aborted or is being
    deleted."""
    meta = task.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return "the task is being deleted"
    if (task.get("spec") or {}).get("abort"):
        return "the task was aborted (spec.abort) before the firing"
    runner = runner_view((task.get("status") or {}).get("runner") or {})
    state = runner.get("state")
    if state in RUNNER_DONE:
        return f"the load ended ({state}) before the firing"
    return ""


def wait_for_firing(
    states: Iterable[dict[str, Any]],
    index: int,
    unit: str,
    value: Any,
    subscribe: Callable[[str, Callable[[dict[str, Any]], None]], Any] | None = None,
) -> Outcome:
    """Consume task states until this firing is recorded or can no longer come. With
    ``subscribe(address, on_firing)``, once a state names the runner's signal address
    (``status.runner.signal``) the firing may also come straight from the runner (pushed over
    the pod network, :mod:`krally.kube.pods.hook.signal`): whichever comes first wins."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def watch() -> None:
        try:
            for task in states:
                events.put(("state", task))
        except BaseException as exc:  # handed to the waiting thread
            events.put(("error", exc))
        events.put(("end", None))

    threading.Thread(target=watch, name="krally-watch", daemon=True).start()
    subscribed = False
    while True:
        kind, item = events.get()
        if kind == "firing":
            return Outcome(firing=item)
        if kind == "error":
            raise item
        if kind == "end":
            return Outcome(unreached="the watch ended")
        firing = find_firing(item, index, unit, value)
        if firing is not None:
            return Outcome(firing=firing)
        why = never_reached(item)
        if why:
            return Outcome(unreached=why)
        address = ((item.get("status") or {}).get("runner") or {}).get("signal")
        if subscribe is not None and not subscribed and isinstance(address, str) and address:
            subscribed = True
            subscribe(address, lambda pushed: events.put(("firing", pushed)))


def delay(firing: dict[str, Any], now: float) -> float | None:
    """Seconds since the firing was recorded (None: no readable time)."""
    fired = parse_time(firing.get("firedAt"))
    return None if fired is None else now - fired


class FiringFilter:
    """Which raw watch events an armed pod parses: those that may hold its own firing (the
    API server writes an object's JSON with sorted keys and no spaces, so a firing reads
    ``..."hook":0,"value":5}``), those that may end the wait, and, should the server write
    differently, any event at least every ``every`` seconds (never a missed firing, only a
    slower one)."""

    MARKERS = (
        b'"deletionTimestamp"',
        b'"abort":true',
        b'"state":"Finished"',
        b'"state":"Aborted"',
        b'"state":"Error"',
    )

    def __init__(self, index: int, value: Any, every: float = 2.0) -> None:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
        self.needle = f'"hook":{index},"value":{text}}}'.encode()
        self.every = every
        self._last = time.monotonic()

    def __call__(self, line: bytes) -> bool:
        now = time.monotonic()
        if (
            self.needle in line
            or any(m in line for m in self.MARKERS)
            or (now - self._last >= self.every)
        ):
            self._last = now
            return True
        return False


class ReadyPort:
    """Listens on ``port`` once the pod is ready to fire, for the kubelet's tcpSocket startup
    probe (the pod is Ready from its first success on, and the kubelet stops probing);
    connections are accepted and closed at once."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._sock: socket.socket | None = None

    def open(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # All addresses of the pod: the kubelet probes the pod IP.
        sock.bind(("0.0.0.0", self.port))
        sock.listen(16)
        self._sock = sock
        threading.Thread(target=self._serve, args=(sock,), name="krally-ready", daemon=True).start()

    @staticmethod
    def _serve(sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        """Not ready any more (it fired): a blocked accept() holds the socket open until the
        socket is shut down, so shut it down first."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
