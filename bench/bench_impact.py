"""Impact analysis benchmark: what the ImpactRecorder costs the runner, and its memory.

1. Runner throughput of Dummy.dummy (sleep 0: the fastest scenario, the worst case for a
   per-record cost) with the impact analysis on and off (``spec.impact.enabled``), the same
   hook in both (fired at iteration 100 with the default maxSeconds 300, so the recorder keeps
   every bucket of the load: the expensive case). ``constant`` runs as fast as it can (above
   20 000 it/s on most machines: the overhead there is larger than at 20 000 it/s); ``rps``
   aims at 20 000 it/s (a thread per iteration: below it on a small machine). Interleaved
   rounds; the throughput overhead per round and pooled, and the CPU time an iteration costs
   this process on and off (steadier than the wall clock when the machine is shared): the
   extra CPU per iteration x 20 000 it/s is the overhead at 20 000 it/s. Target: <= 2 %.
2. The recorder's own cost per record (ns) and what it comes to at 20 000 it/s: the verdict.
   ``ImpactRecorder.add`` is the only work the analysis adds to each iteration (a ``mark`` per
   firing aside), and timed alone on a fixed stream it is steady; the end-to-end figures of 1
   swing by tens of per cent between identical rounds on a shared machine, and say so.
3. The recorder's memory over a long synthetic stream with many firings: buckets held (the
   cap is ``MAX_BUCKETS``) and bytes (tracemalloc), and the time ``analyze`` takes.

Prints figures and ratios against the targets; never passes or fails.

    python bench/bench_impact.py            # ~2 min on 2 cores
    python bench/bench_impact.py --quick    # fewer iterations, 1 round
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from typing import Any

TARGET_RATE = 20_000
TARGET_OVERHEAD = 2.0  # percent of the throughput


def run_load(runner: str, times: int, impact: bool) -> tuple[float, float]:
    """One workload through the engine: (iterations per second over the load, CPU seconds of
    this process per iteration). The CPU figure is steadier on a shared machine."""
    from krally.task.engine import run_workload
    from krally.task.spec import HookSpec, WorkloadSpec

    args: dict[str, Any] = {"times": times}
    args.update({"concurrency": 1} if runner == "constant" else {"rps": TARGET_RATE})
    workload = WorkloadSpec(
        scenario_name="Dummy.dummy",
        scenario_args={"sleep": 0},
        runner_type=runner,
        runner_args=args,
        sla={"failure_rate": {"max": 0}},
        hooks=(
            HookSpec(
                action_name="sys_call",
                action_args="true",
                trigger_name="event",
                trigger_args={"unit": "iteration", "at": [100]},
            ),
        ),
        impact={"enabled": impact},
    )
    gc.collect()
    cpu = time.process_time()
    result = run_workload(workload)
    cpu = time.process_time() - cpu
    assert result["total_iteration_count"] == times
    assert ("impact" in result) == impact
    return times / result["load_duration"], cpu / times


def throughput(rounds: int, times: dict[str, int]) -> None:
    print("1. Runner throughput, Dummy.dummy sleep 0, a hook at iteration 100 (impact on/off)")
    for runner, count in times.items():
        per_round: list[float] = []
        wall = {True: 0.0, False: 0.0}  # seconds over every round
        cpu: dict[bool, list[float]] = {True: [], False: []}  # seconds per iteration
        for round_ in range(rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            got = {}
            for impact in order:
                rate, per_it = run_load(runner, count, impact)
                got[impact] = rate
                wall[impact] += count / rate
                cpu[impact].append(per_it)
            overhead = (1 - got[True] / got[False]) * 100
            per_round.append(overhead)
            print(
                f"  {runner:>8} round {round_ + 1}: off {got[False]:>9,.0f} it/s, "
                f"on {got[True]:>9,.0f} it/s, overhead {overhead:+6.2f} %; CPU "
                f"{cpu[False][-1] * 1e6:5.2f} / {cpu[True][-1] * 1e6:5.2f} us an iteration"
            )
        pooled = (1 - wall[False] / wall[True]) * 100
        off, on = rounds * count / wall[False], rounds * count / wall[True]
        spread = max(per_round) - min(per_round)
        print(
            f"  {runner:>8} pooled ({rounds} x {count:,}): off {off:,.0f} it/s, on {on:,.0f} it/s;"
            f" overhead {pooled:+.2f} % (rounds {min(per_round):+.2f} to {max(per_round):+.2f} %,"
            f" median {statistics.median(per_round):+.2f} %)"
        )
        if spread > 2 * TARGET_OVERHEAD:
            # Identical rounds differing by more than the effect measure the machine: the
            # wall clock says nothing here; the CPU figures below (least of many short rounds)
            # are the verdict.
            print(
                f"  {runner:>8} the rounds spread {spread:.1f} points, more than the"
                f" {TARGET_OVERHEAD:g} % looked for: the wall-clock figures measure the machine"
            )
        # The machine's other load inflates some rounds: the least CPU of each is the cost;
        # the median of each round's (on - off) pair is the other robust view.
        least = min(cpu[True]) - min(cpu[False])
        paired = statistics.median(on - off for on, off in zip(cpu[True], cpu[False], strict=True))
        if abs(least - paired) * TARGET_RATE * 100 > TARGET_OVERHEAD:
            print(
                f"  {runner:>8} the two CPU views below disagree by more than the"
                f" {TARGET_OVERHEAD:g} % looked for: they measure the machine too; the verdict is"
                " part 2, the recorder's own cost (the only per-iteration work the analysis adds)"
            )
        for label, added in (("least of the rounds", least), ("median of the pairs", paired)):
            at_target = added * TARGET_RATE * 100
            print(
                f"  {runner:>8} CPU ({label}): off {min(cpu[False]) * 1e6:.2f} us, on"
                f" {min(cpu[True]) * 1e6:.2f} us an iteration; added {added * 1e9:+.0f} ns ="
                f" {at_target:+.2f} % of the throughput at {TARGET_RATE:,} it/s"
                f" = {max(at_target, 0) / TARGET_OVERHEAD:4.2f} x the {TARGET_OVERHEAD:g} % budget"
            )


def synthetic(
    seconds: float, rate: int, t0: float, durations: list[float]
) -> Any:  # a generator of Rally records, completion order
    pool = len(durations)
    step = 1.0 / rate
    for n in range(int(seconds * rate)):
        duration = durations[n % pool]
        end = t0 + n * step
        yield {
            "timestamp": end - duration,
            "duration": duration,
            "idle_duration": 0.0,
            "error": [] if n % 211 else ["E", "x", ""],
            "atomic_actions": [],
        }


def per_record_cost(rounds: int) -> None:
    from krally.task.impact import ImpactRecorder

    print("2. ImpactRecorder.add per record (retaining: a firing covers the stream)")
    rng = random.Random(1)
    durations = [rng.lognormvariate(-4, 0.8) for _ in range(4096)]
    t0 = time.time()
    records = list(synthetic(20, 10_000, t0, durations))
    costs = []
    for _ in range(rounds):
        recorder = ImpactRecorder()
        recorder.mark(t0, (0, "time", 0))
        add = recorder.add
        started = time.perf_counter()
        for record in records:
            add(record)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        for _record in records:
            pass
        loop = time.perf_counter() - started
        costs.append((elapsed - loop) / len(records) * 1e9)
    best = min(costs)
    share = best * 1e-9 * TARGET_RATE * 100
    print(
        f"  {best:.0f} ns a record (rounds: {', '.join(f'{c:.0f}' for c in costs)} ns) ="
        f" {share:.2f} % of a second at {TARGET_RATE:,} it/s"
        f" = {share / TARGET_OVERHEAD:4.2f} x the {TARGET_OVERHEAD:g} % budget"
    )


def memory(hours: float, rate: int, every: float) -> None:
    from krally.task import impact, impact_analysis
    from krally.task.impact import ImpactRecorder

    print(
        f"3. Memory: {hours:g} h at {rate:,} it/s, a firing every {every:g} s "
        f"(lognormal durations, 0.5 % failures), default config"
    )
    rng = random.Random(2)
    durations = [rng.lognormvariate(-4, 0.8) for _ in range(4096)]
    t0 = 1_700_000_000.0
    gc.collect()
    tracemalloc.start()
    recorder = ImpactRecorder()
    peak_buckets = 0
    next_firing, n = t0 + 15, 0
    marks: list[tuple[float, int]] = []
    started = time.perf_counter()
    for index, record in enumerate(synthetic(hours * 3600, rate, t0, durations)):
        end = record["timestamp"] + record["duration"]
        if end >= next_firing:
            n += 1
            recorder.mark(next_firing, (0, "time", n))
            marks.append((next_firing, n))
            next_firing += every
        recorder.add(record)
        if index % 1000 == 0:
            peak_buckets = max(peak_buckets, recorder.bucket_count)
    fed = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hooks = [
        {
            "config": {"action": {"sys_call": "true"}},
            "results": [
                {
                    "status": "success",
                    "started_at": at,
                    "finished_at": at + 1.0,
                    "triggered_by": {"event_type": "time", "value": value},
                }
                for at, value in marks
            ],
        }
    ]
    started = time.perf_counter()
    entries = recorder.analyze(hooks, load_start=t0, load_end=t0 + hours * 3600)
    analysis = time.perf_counter() - started
    analysed = sum(1 for e in entries if impact_analysis.analysed(e))
    buckets = recorder.bucket_count
    print(
        f"  {n} firings: {analysed} analysed, {n - analysed} not (limits:"
        f" {impact.MAX_FIRINGS} firings, {impact.MAX_BUCKETS:,} buckets)"
    )
    print(
        f"  buckets held: {buckets:,} at the end, peak {peak_buckets:,}"
        f" = {peak_buckets / impact.MAX_BUCKETS:4.2f} x the cap;"
        f" memory {current / 1e6:.1f} MB now, peak {peak / 1e6:.1f} MB"
        f" ({current / max(buckets, 1):,.0f} B a bucket)"
    )
    print(f"  fed in {fed:.1f} s (with tracemalloc); analyze: {analysis:.2f} s for {n} firings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    # Many short interleaved rounds: the least CPU per iteration of each case is its cost, and
    # the more rounds, the likelier one of them ran undisturbed on a shared machine.
    parser.add_argument("--rounds", type=int, default=15, help="runs of each case, interleaved")
    args = parser.parse_args()
    from krally.task import plugin

    plugin.load_builtin_plugins()
    rounds = 1 if args.quick else args.rounds
    throughput(rounds, {"constant": 50_000, "rps": 10_000})
    per_record_cost(rounds)
    memory(0.25 if args.quick else 1.0, 1_000, 30)


if __name__ == "__main__":
    main()
