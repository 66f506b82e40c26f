"""An armed hook pod's side of the runner's firing signal
(:mod:`krally.kube.pods.runner.signal`): it connects to the address the runner wrote to
``status.runner.signal``, names the firing it waits for and gets it the moment the runner records
it. A refused or broken connection (a NetworkPolicy, the runner gone) only leaves the watch; a
firing is accepted only for the key asked for.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from krally.api.wire import SIGNAL_MAX_LINE, firing_key

log = logging.getLogger("krally.signal")


def subscribe(
    address: str, hook: int, unit: str, value: Any, on_firing: Callable[[dict[str, Any]], None]
) -> threading.Thread | None:
    """The pod side: connect to the runner at ``address`` (host:port), ask for this firing and
    call ``on_firing(firing)`` from a thread when it comes. None when it cannot connect."""
    host, _, port = address.rpartition(":")
    try:
        conn = socket.create_connection((host.strip("[]"), int(port)), timeout=2.0)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wanted = {"hook": hook, "eventType": unit, "value": value}
        conn.sendall((json.dumps(wanted) + "\n").encode())
        conn.settimeout(None)
    except (OSError, ValueError) as exc:
        log.info("no direct signal from the runner at %s (%s): the watch alone", address, exc)
        return None
    key = firing_key(hook, unit, value)

    def read() -> None:
        with conn, conn.makefile("rb") as stream:
            try:
                line = stream.readline(SIGNAL_MAX_LINE)
                firing = json.loads(line) if line else None
            except (OSError, ValueError):
                return
        if (
            isinstance(firing, dict)
            and firing_key(firing.get("hook", -1), firing.get("eventType", ""), firing.get("value"))
            == key
        ):
            on_firing(firing)

    thread = threading.Thread(target=read, name="krally-signal", daemon=True)
    thread.start()
    return thread
