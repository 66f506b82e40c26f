"""Lag from an iteration's start to its hook's subprocess start (target: p99 <= 2 ms).

What is measured, per fired hook (all on CLOCK_MONOTONIC, in this process):
  t0   just before ``HookExecutor.on_event("iteration", n)`` (the runner's call at iteration start)
  exec ``Popen()`` has returned: CPython returns only once the child has exec'd the command
       (it waits on the exec error pipe), so this is the subprocess start. sys_call starts the
       process inside ``run_async()``, i.e. in the thread that called ``on_event``.
  run  the hook thread enters ``SysCallHook.run()`` (which then waits for the process).
The headline figure is t0 -> exec. Phases: "baseline" (a bare Popen() of the command, the
floor this machine allows), "idle" (one event every 20 ms, each fires), "paced" (20 000
events/s in 1 ms batches from a thread that sleeps in between, like a runner's consumer thread
blocking on its queue) and "loaded" (on_event called as fast as one thread can, never releasing
the GIL: the worst case; see --switch-interval). In paced/loaded a periodic trigger fires every
200 iterations. Also prints the per-call cost of on_event.
Prints figures and ratios only; no pass/fail.

    python bench/bench_hook_lag.py [--fires 300] [--command /bin/true]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from krally.task import hook
from krally.task.hook_executor import HookExecutor
from krally.task.spec import HookSpec

TARGET_P99_MS = 2.0
STAMPS: dict[int, dict[str, float]] = {}

SysCallHook: Any = hook.Hook.get("sys_call")


@hook.configure(name="bench_sys_call")
class TimedSysCallHook(SysCallHook):  # type: ignore[misc, valid-type]
    """sys_call that stamps when run() starts and when Popen() returns."""

    def run(self) -> None:
        STAMPS.setdefault(self.triggered_by["value"], {})["run"] = time.monotonic()
        super().run()

    def popen(self, args: Any, **kwargs: Any) -> Any:
        proc = super().popen(args, **kwargs)
        STAMPS.setdefault(self.triggered_by["value"], {})["exec"] = time.monotonic()
        return proc


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(title: str, t0: dict[int, float]) -> None:
    print(f"\n{title}: {len(t0)} hooks fired")
    for stage in ("exec", "run"):
        lags = [(STAMPS[n][stage] - t0[n]) * 1000 for n in t0 if stage in STAMPS.get(n, {})]
        if not lags:
            continue
        p50, p90, p99 = (_quantile(lags, q) for q in (0.5, 0.9, 0.99))
        label = "iteration start -> run()" if stage == "run" else "iteration start -> exec'd"
        print(
            f"  {label:28s} p50 {p50:6.3f} ms  p90 {p90:6.3f} ms  p99 {p99:6.3f} ms  "
            f"max {max(lags):6.3f} ms  mean {statistics.fmean(lags):6.3f} ms"
        )
        if stage == "exec":
            print(f"  p99 / target ({TARGET_P99_MS} ms) = {p99 / TARGET_P99_MS:.2f}")


def baseline(fires: int, command: str) -> None:
    """The floor: a bare ``subprocess.Popen`` of the same command, same pacing as "idle"."""
    import shlex
    import subprocess

    lags = []
    for _ in range(fires):
        began = time.monotonic()
        proc = subprocess.Popen(
            shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        lags.append((time.monotonic() - began) * 1000)
        proc.communicate()
        time.sleep(0.02)
    p50, p99 = _quantile(lags, 0.5), _quantile(lags, 0.99)
    print(f"\nbaseline: bare Popen() of {command!r}, one every 20 ms")
    label = "Popen() call -> returned"
    print(f"  {label:28s} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  max {max(lags):6.3f} ms")


def idle(fires: int, command: str) -> None:
    STAMPS.clear()
    spec = HookSpec("bench_sys_call", command, "periodic", {"unit": "iteration", "step": 1})
    executor = HookExecutor([spec])
    t0: dict[int, float] = {}
    for n in range(1, fires + 1):
        t0[n] = time.monotonic()
        executor.on_event("iteration", n)
        time.sleep(0.02)
    executor.results()
    _report("idle (one event every 20 ms, each fires)", t0)


def loaded(fires: int, command: str, step: int = 200) -> None:
    STAMPS.clear()
    spec = HookSpec("bench_sys_call", command, "periodic", {"unit": "iteration", "step": step})
    executor = HookExecutor([spec])
    t0: dict[int, float] = {}
    total = fires * step
    began = time.monotonic()
    for n in range(1, total + 1):
        if n % step == 1:
            t0[n] = time.monotonic()
        executor.on_event("iteration", n)
    elapsed = time.monotonic() - began
    executor.results()
    _report(
        f"loaded ({total} events at {total / elapsed:,.0f}/s from one thread, fire every {step})",
        t0,
    )


def paced(fires: int, command: str, rate: int = 20_000, step: int = 200) -> None:
    """Like a runner at ``rate`` iterations/s whose consumer thread blocks between batches
    (releasing the GIL), as it does while waiting on its queue: 1 ms batches, then sleep."""
    STAMPS.clear()
    spec = HookSpec("bench_sys_call", command, "periodic", {"unit": "iteration", "step": step})
    executor = HookExecutor([spec])
    t0: dict[int, float] = {}
    total = fires * step
    per_ms = max(1, rate // 1000)
    began = time.monotonic()
    n = 0
    while n < total:
        for _ in range(per_ms):
            n += 1
            if n % step == 1:
                t0[n] = time.monotonic()
            executor.on_event("iteration", n)
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - began
    executor.results()
    _report(f"paced ({total} events at {total / elapsed:,.0f}/s, fire every {step})", t0)


def hot_path_cost(calls: int = 200_000) -> None:
    print("\non_event cost per call:")
    cases = {
        "no trigger listens (time hooks only, ticker off)": HookSpec(
            "bench_sys_call", "true", "event", {"unit": "time", "at": [10**6]}
        ),
        "event trigger listens, value not in at": HookSpec(
            "bench_sys_call", "true", "event", {"unit": "iteration", "at": [10**9]}
        ),
        "periodic trigger listens, no fire": HookSpec(
            "bench_sys_call",
            "true",
            "periodic",
            {"unit": "iteration", "step": 10**9, "start": 10**9},
        ),
    }
    for label, spec in cases.items():
        executor = HookExecutor([spec])
        executor.on_event("iteration", 2)  # not 1: keep the ticker off
        began = time.perf_counter()
        for n in range(2, calls + 2):
            executor.on_event("iteration", n)
        per_call = (time.perf_counter() - began) / calls * 1e9
        executor.results()
        print(f"  {label:50s} {per_call:7.0f} ns  ({1e9 / per_call:,.0f} calls/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fires", type=int, default=300)
    parser.add_argument("--command", default="/bin/true")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval() in seconds (CPython default 0.005) for the GIL-bound phase",
    )
    args = parser.parse_args()
    print(f"command: {args.command!r}; target p99 iteration start -> exec'd <= {TARGET_P99_MS} ms")
    baseline(args.fires, args.command)
    idle(args.fires, args.command)
    paced(args.fires, args.command)
    default_interval = sys.getswitchinterval()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    print(f"\n[GIL switch interval for the next phase: {sys.getswitchinterval() * 1000:g} ms]")
    loaded(args.fires, args.command)
    sys.setswitchinterval(default_interval)
    hot_path_cost()


if __name__ == "__main__":
    main()
