"""Rally's hooks example (examples/rally-hooks.json) through the engine: how close to ideal?

1500 iterations of Dummy.dummy sleep 0.01 at concurrency 1 ideally take 15 s of load. Prints the
load duration, its ratio to the ideal (target ≤ 1.01), the full duration and the hook results.
Figures only, no pass/fail: ``python bench/bench_example.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

from krally.task.engine import run_workload
from krally.task.loader import load_task

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rally-hooks.json"
IDEAL_SECONDS = 1500 * 0.01


def main() -> None:
    task = load_task(EXAMPLE)
    (workload,) = task.workloads
    started = time.monotonic()
    result = run_workload(workload)
    wall = time.monotonic() - started
    load = result["load_duration"]
    print(f"example:        {EXAMPLE.name}")
    print(
        f"iterations:     {result['total_iteration_count']} "
        f"({result['failed_iteration_count']} failed)"
    )
    print(
        f"load duration:  {load:.3f} s  (ideal {IDEAL_SECONDS:.1f} s, "
        f"ratio {load / IDEAL_SECONDS:.4f}, target <= 1.01)"
    )
    print(f"full duration:  {result['full_duration']:.3f} s")
    print(f"wall (incl. hook wait): {wall:.3f} s")
    total = result["statistics"]["durations"]["total"]["data"]
    print(
        f"iteration duration: median {total['median']:.5f} s, p95 {total['95%ile']:.5f} s, "
        f"max {total['max']:.5f} s"
    )
    for hook in result["hooks"]:
        fired = [r["triggered_by"]["value"] for r in hook["results"]]
        print(f"hook summary:   {hook['summary']}, fired at {fired}")


if __name__ == "__main__":
    main()
