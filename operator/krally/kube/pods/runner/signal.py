"""The runner's direct line to its armed hook pods: firings pushed over the pod network
(the server side; the pods' side is :mod:`krally.kube.pods.hook.signal`).

The API server stays the record (every firing is written to ``status.runner.firings``) and the
armed pod's fallback, but its path (the runner's patch, etcd, the watch) costs tens of
milliseconds on a busy node. So the runner also listens on ``SIGNAL_PORT`` and writes its
address to ``status.runner.signal``; an armed pod that sees it connects, says which firing it
waits for (one JSON line: hook, eventType, value) and gets that firing as one JSON line the
moment the runner records it. Whichever of the two arrives first fires the hook; a refused or
broken connection (a NetworkPolicy, the runner gone) only leaves the watch.

Nothing here trusts the line more than the watch: a pod only accepts a firing for the key it
asked for, and the address comes from the task's status, which only the runner (and the
operator) may write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from typing import Any

from krally.api.wire import SIGNAL_MAX_LINE, SIGNAL_PORT, Key, firing_key

log = logging.getLogger("krally.signal")


class SignalServer:
    """The runner side: accepts subscriptions, pushes each firing to its subscribers."""

    def __init__(self, port: int = SIGNAL_PORT, host: str = "0.0.0.0") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self._lock = threading.Condition()
        self._subscribers: dict[Key, list[socket.socket]] = {}
        self._count = 0
        self._closed = False
        threading.Thread(target=self._accept, name="krally-signal", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._subscribe, args=(conn,), daemon=True).start()

    def _subscribe(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        try:
            line = conn.makefile("rb").readline(SIGNAL_MAX_LINE)
            wanted = json.loads(line)
            key = firing_key(wanted["hook"], wanted["eventType"], wanted.get("value"))
        except (OSError, ValueError, KeyError, TypeError):
            conn.close()
            return
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._closed:
                conn.close()
                return
            self._subscribers.setdefault(key, []).append(conn)
            self._count += 1
            self._lock.notify_all()

    def wait_for(self, subscribers: int, timeout: float) -> int:
        """Wait until ``subscribers`` pods subscribed or ``timeout``; how many did."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._count < subscribers:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return self._count

    def publish(self, firing: dict[str, Any]) -> int:
        """Send ``firing`` to the pods waiting for it (and forget them); how many got it."""
        key = firing_key(firing.get("hook", -1), firing.get("eventType", ""), firing.get("value"))
        with self._lock:
            conns = self._subscribers.pop(key, [])
        data = (json.dumps(firing, separators=(",", ":")) + "\n").encode()
        sent = 0
        for conn in conns:
            try:
                conn.sendall(data)
                sent += 1
            except OSError as exc:
                log.debug("signal to a hook pod failed: %s", exc)
            finally:
                with contextlib.suppress(OSError):
                    conn.close()
        return sent

    def close(self) -> None:
        """The load is over: no more firings; the pods learn the rest from the watch."""
        with self._lock:
            self._closed = True
            conns = [c for group in self._subscribers.values() for c in group]
            self._subscribers.clear()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
