"""Runner benchmark: iterations/s of Dummy.dummy (sleep 0) and the runner's peak RSS.

Prints figures and their ratio to the targets; never passes or fails.

    python bench/bench_runner.py            # everything (~1-2 min)
    python bench/bench_runner.py --quick    # skip the 1 000 000-iteration RSS run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from typing import Any

TARGET_RATE = {1: 7_000, 4: 15_000}
TARGET_RSS_MB = 80.0


def run_load(times: int, concurrency: int, consume: bool) -> float:
    """Run the constant runner; return iterations per second (wall clock of ``run``)."""
    from krally.task.runner import ScenarioRunner
    from krally.task.sla import SLAChecker
    from krally.task.stats import WorkloadStats

    stats = WorkloadStats()
    sla = SLAChecker({"failure_rate": {"max": 0}})
    counted = [0]

    def on_result(record: dict[str, Any]) -> None:
        counted[0] += 1
        if consume:  # what the engine does with every record
            stats.add(record)
            sla.add_iteration(record)

    runner = ScenarioRunner.get("constant")({"times": times, "concurrency": concurrency})
    started = time.perf_counter()
    runner.run(
        "Dummy.dummy",
        {"sleep": 0},
        {},
        on_iteration_start=lambda n: None,
        on_result=on_result,
        abort=threading.Event(),
    )
    elapsed = time.perf_counter() - started
    assert counted[0] == times, counted[0]
    return times / elapsed


def vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(times: int, concurrency: int) -> None:
    rate = run_load(times, concurrency, consume=True)
    print(
        json.dumps(
            {
                "rate": rate,
                "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "hwm_mb": vm_hwm_mb(),
            }
        )
    )


def measure_rss(times: int, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(times), str(concurrency)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, type=int)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    print("Dummy.dummy sleep 0, constant runner, 20 000 iterations")
    for concurrency in (1, 4):
        for consume in (False, True):
            best = max(run_load(20_000, concurrency, consume) for _ in range(3))
            label = "runner + stats + SLA" if consume else "runner only"
            target = TARGET_RATE[concurrency]
            print(
                f"  concurrency {concurrency} ({label:>20}): {best:>9,.0f} it/s"
                f"  = {best / target:5.2f} x target {target:,}"
            )

    print("Peak RSS (runner process; worker processes separately), stats + SLA consuming")
    sizes = [20_000] if args.quick else [20_000, 1_000_000]
    for times in sizes:
        for concurrency in (1, 4):
            result = measure_rss(times, concurrency)
            peak = result["hwm_mb"] or result["self_mb"]
            workers = result["children_mb"]
            workers_text = f", largest worker {workers:5.1f} MB" if concurrency > 1 else ""
            print(
                f"  {times:>9,} iterations, concurrency {concurrency}: runner {peak:5.1f} MB"
                f" = {peak / TARGET_RSS_MB:4.2f} x target {TARGET_RSS_MB:.0f} MB{workers_text}"
                f" ({result['rate']:,.0f} it/s)"
            )


if __name__ == "__main__":
    main()
