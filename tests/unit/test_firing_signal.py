"""The runner's direct signal to armed pods, over loopback: subscribe, push, fall back."""

from __future__ import annotations

import queue
import threading
from typing import Any

from krally.kube.pods.hook import armed as armedpod
from krally.kube.pods.hook import signal as firingsignal
from krally.kube.pods.runner.signal import SignalServer


def firing(value: Any, hook: int = 0) -> dict[str, Any]:
    return {
        "hook": hook,
        "eventType": "iteration",
        "value": value,
        "firedAt": "2026-01-01T00:00:00Z",
    }


def test_a_subscribed_pod_gets_its_own_firing_only() -> None:
    server = SignalServer(port=0, host="127.0.0.1")
    try:
        got: queue.Queue[dict[str, Any]] = queue.Queue()
        address = f"127.0.0.1:{server.port}"
        assert firingsignal.subscribe(address, 0, "iteration", 5, got.put) is not None
        assert firingsignal.subscribe(address, 1, "iteration", 5, got.put) is not None
        assert server.wait_for(2, timeout=5) == 2
        assert server.publish(firing(4)) == 0  # nobody waits for it
        assert server.publish(firing(5)) == 1
        assert got.get(timeout=5) == firing(5)
        assert got.empty()
        assert server.publish(firing(5)) == 0  # delivered once, then forgotten
    finally:
        server.close()


def test_no_runner_to_reach_leaves_the_watch() -> None:
    server = SignalServer(port=0, host="127.0.0.1")
    port = server.port
    server.close()
    assert firingsignal.subscribe(f"127.0.0.1:{port}", 0, "iteration", 5, print) is None


def test_the_armed_wait_takes_the_pushed_firing_before_the_watch_shows_it() -> None:
    server = SignalServer(port=0, host="127.0.0.1")
    shown = threading.Event()

    def states():
        yield {"status": {"runner": {"state": "Running", "signal": f"127.0.0.1:{server.port}"}}}
        shown.wait(10)  # the watch has nothing more until the test says so

    def push_when_subscribed() -> None:
        server.wait_for(1, timeout=5)
        server.publish(firing(7))

    threading.Thread(target=push_when_subscribed, daemon=True).start()

    def subscribe(address: str, on_firing: Any) -> None:
        firingsignal.subscribe(address, 0, "iteration", 7, on_firing)

    try:
        outcome = armedpod.wait_for_firing(states(), 0, "iteration", 7, subscribe)
        assert outcome.firing == firing(7)
        assert not shown.is_set()  # pushed: the watch never showed it
    finally:
        shown.set()
        server.close()
