"""Throughput of one load spread over N runner pods (spec.runner.parallelism), on the real node.

Starts the local control plane with the real node (tests/cluster), installs the CRD, runs
`krally operator` as a subprocess and, per round, one task for each N (1, 2, 4, interleaved so
that a slow spell of the machine lands on every N): a CPU-bound load, `Dummy.dummy` with
`sleep: 0` (no dummy burns CPU on purpose; with no sleep an iteration is nothing but the
runner's own Python work, so the load is bound by the CPU), runner `constant` with `times` T,
`concurrency: N` (one worker per pod) and `parallelism: N` (an Indexed Job of N pods), arming
off, no hooks, `sla: {}`. Per task, once its phase is final:

1. iterations/s = status.runner.summary.iterations / summary.loadDuration (the merged result:
   the first iteration's start to the last one's end over every pod), and its ratio against
   N = 1 of the same round. The ideal is N, but the pods share this machine's cores (2 here):
   the ideal on this machine is min(N, cores), printed beside it;
2. N > 1: the start skew between the pods, max - min of status.runner.pods[i].startDelaySeconds
   (how late each pod started its load after status.runner.startAt, the common start pod 0
   set, by its own clock: one machine, one clock), and the lateness, their max, against 20 ms.

Beside them: the machine's CPU use from the task's create to its final phase (/proc/stat; pod
start-up included, so it is mostly not the load's). Prints figures and ratios; no pass/fail.

    python bench/bench_parallelism.py [--pods 1,2,4] [--rounds 3] [--times 300000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_hook_start import cpu_times  # noqa: E402
from bench.bench_operator import (  # noqa: E402
    GROUP,
    PLURAL,
    VERSION,
    operator_watching,
    task_body,
    wait_done,
)
from tests.cluster import start  # noqa: E402

TARGET_MS = 20.0


def load_spec(pods: int, times: int) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
        "runner": {
            "type": "constant",
            "times": times,
            "concurrency": pods,  # one worker per pod
            "parallelism": pods,
        },
        "sla": {},
        "arming": {"enabled": False},
    }


def short_runner(runner: dict[str, Any]) -> str:
    """status.runner without the bulky parts (histogram, timeline, the pods' results)."""
    out = json.loads(json.dumps(runner))
    for key in ("histogram", "timeline", "atomics"):
        (out.get("summary") or {}).pop(key, None)
    for pod in (out.get("pods") or {}).values():
        if isinstance(pod, dict) and isinstance(pod.get("result"), dict):
            pod["result"] = "(dropped here)"
    return json.dumps(out, indent=1, sort_keys=True)


def measure(custom: Any, ns: str, name: str, pods: int, times: int) -> dict[str, Any]:
    """Run one task and print its figures; {"rate", "skew", "late"} (NaN when unknown)."""
    cores = os.cpu_count() or 1
    busy0, total0 = cpu_times()
    sent = time.time()
    custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, task_body(name, load_spec(pods, times))
    )
    task = wait_done(custom, ns, name, timeout=900)
    elapsed = time.time() - sent
    busy1, total1 = cpu_times()
    status = task.get("status") or {}
    runner = status.get("runner") or {}
    summary = runner.get("summary") or {}
    result = status.get("result") or {}
    phase = status.get("phase")
    out = {"rate": float("nan"), "skew": float("nan"), "late": float("nan")}
    print(f"\n{name}: {pods} pod(s), times {times}, phase {phase}, {elapsed:.1f} s apply → phase")
    if phase != "Succeeded":
        print(f"  message: {status.get('message')}")
        print("  status.runner:\n" + short_runner(runner))
    iterations = summary.get("iterations") or result.get("iterations") or 0
    load = summary.get("loadDuration") or result.get("loadDuration")
    if iterations and load:
        out["rate"] = iterations / load
        durations = summary.get("durations") or result.get("durations") or {}
        median = durations.get("median")
        print(
            f"  {iterations} iterations ({summary.get('failures', 0)} failed) in {load:.3f} s: "
            f"{out['rate']:.0f} iterations/s"
            + (f"; iteration median {median * 1e6:.0f} µs" if median is not None else "")
        )
        if iterations != times:
            print(f"  (iterations {iterations} != times {times})")
    else:
        print(f"  no iterations/loadDuration in the summary: {summary or result}")
    reports = runner.get("pods") or {}
    if pods > 1:
        # Each pod's own measure of how late it started after startAt (one machine, one clock;
        # microseconds, where the RFC 3339 stamps have milliseconds).
        delays = {
            k: float(p["startDelaySeconds"]) * 1000
            for k, p in reports.items()
            if isinstance(p.get("startDelaySeconds"), int | float)
        }
        if len(delays) == pods:
            out["skew"] = max(delays.values()) - min(delays.values())
            out["late"] = max(delays.values())
            each = ", ".join(f"{k}: {delays[k]:+.2f}" for k in sorted(delays, key=int))
            print(
                f"  start skew between pods {out['skew']:.2f} ms (/ target {TARGET_MS:g} ms = "
                f"{out['skew'] / TARGET_MS:.3f}); lateness after startAt "
                f"{out['late']:.2f} ms (/ target = {out['late'] / TARGET_MS:.3f})"
            )
            print(f"  each pod's start after startAt, ms: {each}")
        else:
            print(
                f"  start skew: unknown (startAt {runner.get('startAt')}, "
                f"{len(delays)} of {pods} pods with startDelaySeconds)"
            )
        done = ", ".join(
            f"{k}: {(p.get('progress') or {}).get('done')}"
            for k, p in sorted(reports.items(), key=lambda kv: int(kv[0]))
        )
        print(f"  iterations per pod: {done}")
    cpu_share = (busy1 - busy0) / max(total1 - total0, 1)
    print(f"  machine CPU from apply to phase: {cpu_share * 100:.0f} % of {cores} cores")
    return out


def mean(values: list[float]) -> float:
    known = [v for v in values if v == v]  # NaN: unknown
    return statistics.fmean(known) if known else float("nan")


def top(values: list[float]) -> float:
    known = [v for v in values if v == v]
    return max(known) if known else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default="1,2,4", help="parallelism values, comma list")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each N, interleaved")
    parser.add_argument("--times", type=int, default=300000, help="iterations per task")
    args = parser.parse_args()
    counts = [int(p) for p in args.pods.split(",")]
    cores = os.cpu_count() or 1

    from kubernetes import client

    work = Path(tempfile.mkdtemp(prefix="krally-bench-"))
    with start(node="real") as cluster, operator_watching(cluster, "bench-parallelism", work) as ns:
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in cluster.timings.items())
        print(f"real node ready: {timings}")
        custom = client.CustomObjectsApi(cluster.api_client())
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
        print(f"this machine: {cores} cores; the ideal ratio against N=1 is min(N, {cores})")
        for round_ in range(args.rounds):
            base = float("nan")
            for n in counts:
                run = measure(custom, ns, f"p{n}-r{round_}", n, args.times)
                runs[n].append(run)
                if n == 1:
                    base = run["rate"]
                elif base == base:
                    print(
                        f"  ratio against N=1 of this round: {run['rate'] / base:.2f} "
                        f"(ideal {n}, on this machine {min(n, cores)})"
                    )
                time.sleep(5)  # let the task's pods go

    base = mean([r["rate"] for r in runs.get(1, [])])
    print(f"\n{args.rounds} round(s) of {args.times} iterations, {cores} cores:")
    for n in counts:
        rates = [r["rate"] for r in runs[n]]
        line = (
            f"  N={n}: {mean(rates):.0f} iterations/s (rounds: "
            + ", ".join(f"{r:.0f}" for r in rates)
            + ")"
        )
        if n != 1 and base == base:
            ratio = mean(rates) / base
            ideal = min(n, cores)
            line += (
                f", ratio against N=1 {ratio:.2f} (ideal {n}; on this machine {ideal}: "
                f"{ratio / ideal:.2f} of it)"
            )
        if n > 1:
            skews = [r["skew"] for r in runs[n]]
            lates = [r["late"] for r in runs[n]]
            line += (
                f"; start skew mean {mean(skews):.2f} ms max {top(skews):.2f} ms, "
                f"lateness mean {mean(lates):.2f} ms max {top(lates):.2f} ms "
                f"(target {TARGET_MS:g} ms)"
            )
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
