"""The armed hook pod: waits for its firing in the task's states, then runs the hook at once."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.controlplane import free_port

from krally.api.times import rfc3339
from krally.kube.pods.hook import armed as armedpod
from krally.kube.pods.hook import pod as hookpod


def state(firings: list[dict[str, Any]] = (), runner_state: str = "Running", **spec: Any) -> dict:
    return {
        "metadata": {"name": "t"},
        "spec": spec,
        "status": {"runner": {"state": runner_state, "firings": list(firings)}},
    }


def firing(value: Any, hook: int = 0, unit: str = "iteration", at: float | None = None) -> dict:
    return {"hook": hook, "eventType": unit, "value": value, "firedAt": rfc3339(at or time.time())}


def payload(port: int, command: str = "echo armed", value: Any = 5) -> dict[str, Any]:
    return {
        "index": 0,
        "name": "sys_call",
        "args": command,
        "triggeredBy": {"event_type": "iteration", "value": value},
        "timeoutSeconds": 30,
        "armed": {"readyPort": port, "maxDelaySeconds": 60},
    }


def test_the_wait_ends_on_its_own_firing_only() -> None:
    states = [
        state(),
        state([firing(4), firing(5, hook=1), firing(5, unit="time")]),
        state([firing(4), firing(5)]),
    ]
    outcome = armedpod.wait_for_firing(iter(states), 0, "iteration", 5)
    assert outcome.firing is not None and outcome.firing["value"] == 5
    assert outcome.unreached == ""


@pytest.mark.parametrize(
    ("last", "why"),
    [
        (state(runner_state="Finished"), "the load ended (Finished)"),
        (state(runner_state="Aborted"), "the load ended (Aborted)"),
        (state(abort=True), "aborted"),
        ({"metadata": {"deletionTimestamp": "x"}}, "being deleted"),
    ],
)
def test_the_wait_ends_unreached_when_no_firing_can_come(last: dict, why: str) -> None:
    outcome = armedpod.wait_for_firing(iter([state(), last]), 0, "iteration", 5)
    assert outcome.firing is None and why in outcome.unreached


def test_a_firing_recorded_with_the_final_state_still_runs() -> None:
    # The runner writes every firing before (or with) its final state.
    final = state([firing(5)], runner_state="Finished")
    assert armedpod.wait_for_firing(iter([final]), 0, "iteration", 5).firing is not None


def run_armed(tmp_path: Path, payload_: dict[str, Any], states: Iterator[dict]) -> tuple[int, dict]:
    out = tmp_path / "termination-log"
    code = hookpod.main(str(out), payload_, states)
    return code, json.loads(out.read_text())


def test_the_armed_pod_is_ready_while_waiting_and_runs_the_hook_when_it_fires(
    tmp_path: Path,
) -> None:
    port = free_port()
    probes: list[bool] = []

    def states() -> Iterator[dict]:
        yield state()
        # The kubelet's tcpSocket probe: the port accepts while the pod waits.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            probes.append(True)
        yield state([firing(5)])

    fired_before = time.time()
    code, result = run_armed(tmp_path, payload(port, "echo armed"), states())
    assert probes == [True]
    assert code == 0 and result["status"] == "success", result
    assert result["triggered_by"] == {"event_type": "iteration", "value": 5}
    assert result["started_at"] >= fired_before
    assert "armed" in json.dumps(result["output"])
    with pytest.raises(OSError):  # not ready any more once it has run
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_an_armed_pod_whose_firing_never_comes_ends_cleanly(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    states = iter([state(), state(runner_state="Finished")])
    code, result = run_armed(tmp_path, payload(free_port(), f"touch {marker}"), states)
    assert code == 0 and result["status"] == "unreached"
    assert "load ended" in result["reason"]
    assert not marker.exists()


def test_a_firing_older_than_max_delay_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    old = firing(5, at=time.time() - 600)
    code, result = run_armed(
        tmp_path, payload(free_port(), f"touch {marker}"), iter([state([old])])
    )
    assert code == 1 and result["status"] == "failed"
    assert result["error"]["etype"] == "Late" and "maxDelaySeconds 60" in result["error"]["msg"]
    assert not marker.exists()


def test_an_invalid_hook_config_fails_before_any_wait(tmp_path: Path) -> None:
    bad = payload(free_port())
    bad["args"] = {"not": "a command"}

    def never() -> Iterator[dict]:
        raise AssertionError("a hook that cannot run must not wait for its firing")
        yield {}

    code, result = run_armed(tmp_path, bad, never())
    assert code == 1 and result["error"]["etype"] == "InvalidConfig"


def test_the_firing_filter_parses_only_events_that_may_matter() -> None:
    keep = armedpod.FiringFilter(0, 5, every=3600)
    # As the API server writes a task: sorted keys, no spaces.
    mine = json.dumps({"object": state([firing(4), firing(5)])}, sort_keys=True,
                      separators=(",", ":")).encode()  # fmt: skip
    other = json.dumps({"object": state([firing(4), firing(50)])}, sort_keys=True,
                       separators=(",", ":")).encode()  # fmt: skip
    assert keep(mine) and not keep(other)
    assert not keep(json.dumps({"object": state([firing(5, hook=1)])}, sort_keys=True,
                               separators=(",", ":")).encode())  # fmt: skip
    for end in (state(runner_state="Finished"), state(abort=True)):
        assert keep(json.dumps({"object": end}, sort_keys=True, separators=(",", ":")).encode())
    # Written some other way, an event is still parsed within `every` seconds.
    soon = armedpod.FiringFilter(0, 5, every=0.0)
    assert soon(json.dumps({"object": state([firing(5)])}, indent=1).encode())


class _Prepared:
    """Records when a hook prepared and when it ran (a test-only plugin below)."""

    events: list[str] = []


def _register_prepared_hook() -> None:
    from krally.task import hook

    if "krally_test_prepared" in hook.Hook.get_all():
        return

    @hook.configure(name="krally_test_prepared")
    class PreparedHook(hook.Hook):
        CONFIG_SCHEMA = {"type": "null"}

        def prepare(self) -> None:
            _Prepared.events.append("prepared")

        def run(self) -> None:
            _Prepared.events.append("ran")


def test_an_armed_pod_prepares_the_hook_before_it_waits(tmp_path: Path) -> None:
    _register_prepared_hook()
    _Prepared.events.clear()

    def states() -> Iterator[dict]:
        yield state()
        _Prepared.events.append("fired")  # the wait is open: the firing comes now
        yield state([firing(5)])

    body = {**payload(free_port()), "name": "krally_test_prepared", "args": None}
    code, result = run_armed(tmp_path, body, states())
    assert code == 0 and result["status"] == "success", result
    assert _Prepared.events == ["prepared", "fired", "ran"]


CHILD = """
import json, os, sys, time
from krally.kube.pods.hook import pod as hookpod
from tests.unit.test_armed_pod import firing, payload, state

real_exit = os._exit

def slow_exit(code):  # the timeout's thread ends the process a moment after its write
    time.sleep(0.5)
    real_exit(code)

hookpod.os._exit = slow_exit
body = {**payload(int(sys.argv[2]), "sleep 60"), "timeoutSeconds": 1}
sys.exit(hookpod.main(sys.argv[1], body, iter([state([firing(5)])])))
"""


def test_a_timed_out_armed_hook_is_recorded_as_timed_out_not_as_its_killed_run(
    tmp_path: Path,
) -> None:
    # The timeout kills `sleep 60`, so the hook's run() returns as if it had succeeded: the
    # main thread must leave the result to the timeout's thread, which writes it and exits.
    import subprocess
    import sys

    out = tmp_path / "termination-log"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(out.read_text())
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert result["status"] == "failed" and result["error"]["etype"] == "Timeout", result
