"""A controlled outage, for the test suite and bench/bench_outage.py.

HTTP load (``HttpRequests.check_request``, request timeout 0.5 s) through krally's engine on a
local server (``server.py``: the demo server on 127.0.0.1); a ``sys_call`` hook (``freeze.py``)
stops the server with SIGSTOP for F seconds, then SIGCONT, and records both instants. Nothing
can complete while the server is frozen, so the truth is known: the load is back when the
server resumes, ``cont - startedAt`` after the hook started. :func:`run` returns the engine's
impact entry next to that truth; a no-op hook (``true``) gives an undisturbed run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krally.task import plugin
from krally.task.engine import run_workload
from krally.task.spec import HookSpec, WorkloadSpec

HERE = Path(__file__).resolve().parent
TIMEOUT = 0.5  # each request's
BEFORE = 4  # seconds of load before the hook (the baseline needs 3; whole: the time trigger)
# Seconds of load after the freeze: the analysed span ends 3 s after it, well before the load
# winds down (each worker process stops on its own clock).
AFTER = 5.0
# windowSeconds 2 and resolutionSeconds 0.25 as by default. The throughput and p95 tolerances
# are wider than the defaults (0.8, 1.5): this load is CPU-bound on a shared 2-core machine
# whose other tenants move its rate by 10-30 % and its p95 by up to 1.7 x within seconds
# (measured on undisturbed runs at a load average of 8); a freeze is a gap, found whatever
# these ratios.
IMPACT = {
    "baselineSeconds": 3,
    "afterSeconds": 3,
    "tolerance": {"throughputRatio": 0.5, "p95Ratio": 2.0},
}


@dataclass
class Outcome:
    entry: dict[str, Any]  # the engine's impact entry of the hook
    stop: float | None  # epoch: the server stopped (None: a no-op hook)
    cont: float | None  # epoch: the server resumed
    iterations: int
    failures: int

    @property
    def frozen(self) -> float | None:
        """How long the server was stopped, as the hook measured it."""
        return None if self.stop is None or self.cont is None else self.cont - self.stop

    @property
    def truth(self) -> float | None:
        """The true recovery: from the hook's start to the server's resumption."""
        return None if self.cont is None else self.cont - self.entry["startedAt"]

    @property
    def error(self) -> float | None:
        seconds, truth = self.entry.get("recoverySeconds"), self.truth
        return None if seconds is None or truth is None else seconds - truth

    def rate(self, window: str) -> float:
        return float((self.entry.get(window) or {}).get("throughput") or 0.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(delay: float, after_delay: float) -> Iterator[tuple[int, int]]:
    """(port, pid) of a fresh server, killed afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), str(port), str(delay), str(after_delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the outage server did not start (exit {proc.poll()})")
        yield port, proc.pid
    finally:
        proc.kill()
        proc.wait()


def run(
    freeze: float | None,
    concurrency: int,
    *,
    delay: float = 0.002,
    after_delay: float | None = None,
) -> Outcome:
    """One load with one firing at BEFORE seconds: a freeze of ``freeze`` seconds (None: the
    no-op hook); ``after_delay``: the server's delay once it resumes (default: ``delay``)."""
    plugin.load_builtin_plugins()
    after = after_delay or delay
    with tempfile.TemporaryDirectory() as folder, server(delay, after) as (port, pid):
        record = Path(folder) / "freeze.json"
        if freeze is None:
            command = "true"
        else:
            usr1 = " --usr1" if after_delay is not None else ""
            command = f"{sys.executable} -S {HERE / 'freeze.py'} {pid} {freeze} {record}{usr1}"
        workload = WorkloadSpec(
            scenario_name="HttpRequests.check_request",
            scenario_args={
                "url": f"http://127.0.0.1:{port}/",
                "method": "GET",
                "status_code": 200,
                "timeout": TIMEOUT,
            },
            runner_type="constant_for_duration",
            runner_args={"duration": BEFORE + (freeze or 0.0) + AFTER, "concurrency": concurrency},
            sla={},
            hooks=(
                HookSpec(
                    action_name="sys_call",
                    action_args=command,
                    trigger_name="event",
                    trigger_args={"unit": "time", "at": [BEFORE]},
                ),
            ),
            impact=IMPACT,
        )
        result = run_workload(workload)
        (entry,) = result["impact"]
        truth = json.loads(record.read_text()) if record.exists() else {}
    stop, cont = truth.get("stop"), truth.get("cont")
    return Outcome(
        entry=entry,
        # The server stops once SIGSTOP is sent and resumes once SIGCONT is: the instants
        # around each kill() are microseconds apart; their middle is the truth.
        stop=sum(stop) / 2 if stop else None,
        cont=sum(cont) / 2 if cont else None,
        iterations=result["total_iteration_count"],
        failures=result["failed_iteration_count"],
    )
