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
import statistics
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

    from krally.kube.pods.runner.metrics import DURATION_BUCKETS

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


def engine_ratios(times: int, concurrency: int, rounds: int = 6) -> tuple[float, list[float]]:
    """The engine's iterations/s (Dummy.dummy sleep 0, constant runner) without metrics (the
    median over rounds), and each round's with/without ratio. Each round runs the two
    back to back, so a shared machine's drift hits a pair alike; the spread of the ratios over
    rounds says how much of any difference is the machine."""
    from krally.kube.pods.runner.metrics import RunnerMetrics
    from krally.task.engine import run_workload
    from krally.task.loader import workload_from_spec

    spec = {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
        "runner": {"type": "constant", "times": times, "concurrency": concurrency},
    }
    run_workload(workload_from_spec({**spec, "runner": {"type": "constant", "times": 2000}}))
    bare_rates, ratios = [], []
    for round_ in range(rounds):
        rate = {}
        # Alternate which goes first: neither side always runs on a warmer machine.
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for with_metrics in order:
            metrics = RunnerMetrics("bench") if with_metrics else None
            started = time.perf_counter()
            run_workload(
                workload_from_spec(spec),
                abort=threading.Event(),
                on_record=metrics.record if metrics is not None else None,
            )
            rate[with_metrics] = times / (time.perf_counter() - started)
            if metrics is not None:
                assert metrics.iterations == times, metrics.iterations
        bare_rates.append(rate[False])
        ratios.append(rate[True] / rate[False])
    return statistics.median(bare_rates), ratios


def main() -> None:
    from krally.kube.pods.runner.metrics import RunnerMetrics

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
    rounds = 2 if args.quick else 6
    print(
        f"Engine, Dummy.dummy sleep 0, constant runner, {times:,} iterations, "
        f"{rounds} paired rounds"
    )
    for concurrency in (1, 4):
        without, ratios = engine_ratios(times, concurrency, rounds)
        # What the per-record cost alone predicts at this rate (the records are fed in the
        # engine's process, one at a time).
        predicted = 1 / (1 + (ours - bare) * 1e-9 * without)
        spread = max(ratios) - min(ratios)
        print(
            f"  concurrency {concurrency}: {without:9,.0f} it/s without metrics (median); "
            f"with/without median {statistics.median(ratios):4.2f} x, rounds "
            f"{min(ratios):4.2f}..{max(ratios):4.2f}; the per-record cost predicts "
            f"{predicted:4.2f} x"
        )
        if spread > abs(1 - predicted):
            print(
                "    identical rounds spread more than the predicted effect: the end-to-end "
                "ratio measures the machine here; the verdict is the per-record cost above"
            )


if __name__ == "__main__":
    main()
