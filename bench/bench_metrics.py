"""Runner metrics benchmark: what feeding the live metrics costs per iteration record.

Prints ns/record of ``RunnerMetrics.record`` (what the runner pod calls for every finished
iteration) against a bare loop calling a no-op, prometheus_client's own Counter + Histogram
doing the same for comparison, and the engine's iterations/s with and without the metrics.
Prints figures and ratios; never passes or fails.

    python bench/bench_metrics.py            # ~30 s
    python bench/bench_metrics.py --quick
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable
from typing import Any


def make_records(n: int) -> list[dict[str, Any]]:
    """Engine-shaped records: durations spread over the buckets, 10% failed."""
    rng = random.Random(1)
    return [
        {
            "duration": rng.lognormvariate(-6, 2),
            "idle_duration": 0.0,
            "timestamp": 1.0 + i,
            "error": ["E", "boom", ""] if rng.random() < 0.1 else [],
            "atomic_actions": [],
            "output": {"additive": [], "complete": []},
        }
        for i in range(n)
    ]


def per_record(feed: Callable[[dict[str, Any]], None], records: list[dict[str, Any]]) -> float:
    """Best of 5: ns per record of ``feed`` called in a plain loop."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for record in records:
            feed(record)
        best = min(best, (time.perf_counter_ns() - started) / len(records))
    return best


def prometheus_client_feed() -> Callable[[dict[str, Any]], None]:
    """The same counts with prometheus_client's own objects (a lock per update)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from krally.kube.runnermetrics import DURATION_BUCKETS

    registry = CollectorRegistry()
    iterations = Counter("i", "", ["task"], registry=registry).labels("t")
    failures = Counter("f", "", ["task"], registry=registry).labels("t")
    duration = Histogram("d", "", ["task"], buckets=DURATION_BUCKETS, registry=registry).labels("t")

    def feed(record: dict[str, Any]) -> None:
        iterations.inc()
        duration.observe(record.get("duration") or 0.0)
        if record.get("error"):
            failures.inc()

    return feed


def engine_rates(times: int, concurrency: int, rounds: int = 4) -> tuple[float, float]:
    """Iterations/s of the engine (Dummy.dummy sleep 0, constant runner) without and with the
    metrics fed, best of ``rounds`` each, runs interleaved (a busy machine's drift hits both)."""
    from krally.kube.runnermetrics import RunnerMetrics
    from krally.task.engine import run_workload
    from krally.task.loader import workload_from_spec

    spec = {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
        "runner": {"type": "constant", "times": times, "concurrency": concurrency},
    }
    best = {False: 0.0, True: 0.0}
    run_workload(workload_from_spec({**spec, "runner": {"type": "constant", "times": 2000}}))
    for _ in range(rounds):
        for with_metrics in (False, True):
            metrics = RunnerMetrics("bench") if with_metrics else None
            started = time.perf_counter()
            run_workload(
                workload_from_spec(spec),
                abort=threading.Event(),
                on_record=metrics.record if metrics is not None else None,
            )
            rate = times / (time.perf_counter() - started)
            best[with_metrics] = max(best[with_metrics], rate)
            if metrics is not None:
                assert metrics.iterations == times, metrics.iterations
    return best[False], best[True]


def main() -> None:
    from krally.kube.runnermetrics import RunnerMetrics

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 100_000 if args.quick else 500_000
    records = make_records(n)

    def noop(record: dict[str, Any]) -> None:
        pass

    bare = per_record(noop, records)
    ours = per_record(RunnerMetrics("bench").record, records)
    library = per_record(prometheus_client_feed(), records)
    print(f"Feeding {n:,} iteration records (10% failed), ns per record, best of 5")
    print(f"  bare loop (no-op callback)             {bare:7.0f} ns")
    print(
        f"  RunnerMetrics.record                   {ours:7.0f} ns"
        f"  = {ours / bare:4.2f} x bare, +{ours - bare:.0f} ns"
    )
    print(
        f"  prometheus_client Counter + Histogram  {library:7.0f} ns"
        f"  = {library / bare:4.2f} x bare, {library / ours:4.2f} x RunnerMetrics"
    )

    metrics = RunnerMetrics("bench")
    for record in records[:10_000]:
        metrics.record(record)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(100):
            list(metrics.collect())
        best = min(best, (time.perf_counter_ns() - started) / 100)
    print(f"  one scrape's collect()                 {best / 1000:7.0f} us")

    times = 20_000 if args.quick else 50_000
    print(f"Engine, Dummy.dummy sleep 0, constant runner, {times:,} iterations, best of 4")
    for concurrency in (1, 4):
        without, with_metrics = engine_rates(times, concurrency)
        print(
            f"  concurrency {concurrency}: {without:9,.0f} it/s without metrics, "
            f"{with_metrics:9,.0f} it/s with = {with_metrics / without:4.2f} x"
        )


if __name__ == "__main__":
    main()
