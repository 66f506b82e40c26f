"""HTML report benchmark: its size and render time for a task of 1 000 000 iterations.

The report draws from the bounded results (a timeline of at most 300 points, a 40-bin
histogram, at most 100 impact entries) whatever the run's length; what grows is the hooks'
results and outputs, capped by krally.results.html.model. This feeds WorkloadStats (what the
engine feeds per iteration) one million records, adds HOOKS x FIRINGS hook results with an
output each, renders the HTML, JUnit and Markdown, and prints size and time against the
budget (5 MB for the HTML) and the chart library's share of it.

    python bench/bench_report.py               # ~15 s
    python bench/bench_report.py --firings 100  # fewer hook results
"""

from __future__ import annotations

import argparse
import random
import time

from krally.results.html import assets, render_html
from krally.results.junit import render_junit
from krally.results.markdown import render_markdown
from krally.task.stats import WorkloadStats

BUDGET = 5 * 1024 * 1024


def workload(iterations: int, hooks: int, firings: int, output_chars: int) -> dict:
    stats = WorkloadStats()
    rng = random.Random(7)
    t0 = 1_780_000_000.0
    for i in range(iterations):
        stats.add(
            {
                "timestamp": t0 + i / 280.0,
                "duration": rng.lognormvariate(-4, 0.6),
                "error": ["E", "m", ""] if rng.random() < 0.01 else None,
            }
        )
    output = {
        "complete": [{"title": "log", "chart_plugin": "TextArea", "data": ["x" * output_chars]}]
    }
    hook_list = []
    for h in range(hooks):
        results = [
            {
                "status": "success" if n % 10 else "failed",
                "started_at": t0 + n * 3,
                "finished_at": t0 + n * 3 + 1,
                "triggered_by": {"event_type": "iteration", "value": n * 1000 + h},
                "output": output,
            }
            for n in range(firings)
        ]
        hook_list.append({"config": {"action": {"sys_call": "echo"}}, "results": results})
    return {
        "position": 0,
        "scenario": {"Dummy.dummy": {}},
        "runner": {"constant": {"times": iterations}},
        "hooks": hook_list,
        "sla_results": {"sla": [{"criterion": "failure_rate", "success": True, "detail": "ok"}]},
        "timeline": stats.timeline(),
        "timeline_start": stats.timeline_start,
        "histogram": stats.durations.bins(),
        "statistics": {"durations": stats.statistics()},
        **stats.summary(),
        "total_iteration_count": stats.iterations,
        "failed_iteration_count": stats.failures,
        "pass_sla": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=1_000_000)
    parser.add_argument("--hooks", type=int, default=2)
    parser.add_argument("--firings", type=int, default=1000)
    parser.add_argument("--output-chars", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    w = workload(args.iterations, args.hooks, args.firings, args.output_chars)
    fed = time.perf_counter() - started
    report = {"tasks": [{"title": "bench", "subtasks": [{"workloads": [w]}]}]}
    library = len(assets.chart_library().script) + len(assets.chart_library().stylesheet)
    print(f"{args.iterations:,} iterations fed to WorkloadStats in {fed:.1f} s")
    print(f"{args.hooks} hooks x {args.firings} firings, {args.output_chars} chars of output each")
    for name, render in (
        ("html", render_html),
        ("junit", render_junit),
        ("markdown", render_markdown),
    ):
        t = time.perf_counter()
        text = render(report)
        took = time.perf_counter() - t
        size = len(text.encode())
        line = f"{name:9s} {size / 1024:9.1f} KiB  rendered in {took * 1000:7.1f} ms"
        if name == "html":
            line += f"  ({size / BUDGET:.2f} of the 5 MB budget; uPlot {library / 1024:.0f} KiB)"
        print(line)


if __name__ == "__main__":
    main()
