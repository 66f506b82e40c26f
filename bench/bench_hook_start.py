"""Iteration start → hook command started in its container, armed and unarmed, on the real node.

Starts the local control plane with the real node (tests/cluster), runs `krally operator` as a
subprocess and, per rate (1 and 5 firings/s), two tasks one after the other whose periodic
trigger fires a `sys_call` hook at that rate: one with armed hooks (spec.arming, the default:
each firing's pod started ahead and waiting), one with `arming.enabled: false` (the Job is
created when the runner records the firing). The hook's command is `date +%s.%N`, so its output
is the instant the command started inside its container. Per firing, from the runner's
`firedAt` (the iteration's start, runner clock; same machine):

1. → hook Job create sent (the operator's krally.dev/created-at annotation; armed: before);
2. → hook command started in its container (the command's own clock).

Beside them: the machine's CPU use while each task ran (from /proc/stat) and the CPU-seconds
spent per firing. Armed, maxArmed is the number of firings so that every pod waits before the
load starts (--max-armed lowers it: the later firings are then armed while the load runs, and
the pod starts compete with the firing pods for the 2 cores).

Prints figures and ratios against the targets (armed p99 ≤ 50 ms at 1/s, ≤ 100 ms at 5/s);
no pass/fail.

    python bench/bench_hook_start.py [--firings 50] [--rounds 3] [--max-armed N]
                                     [--rates 1,5] [--modes armed,unarmed]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_operator import (  # noqa: E402
    GROUP,
    PLURAL,
    VERSION,
    describe,
    epoch,
    operator_watching,
    pct,
    task_body,
    wait_done,
)
from tests.cluster import start  # noqa: E402


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def hook_processes_rss_mb() -> list[float]:
    """Resident memory of every `krally hook run` process on the machine (the pods' own)."""
    sizes = []
    for proc in Path("/proc").iterdir():
        try:
            if b"hook\0run" not in (proc / "cmdline").read_bytes():
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            continue
    return sizes


def rate_spec(rate: float, firings: int, armed: bool, max_armed: int) -> dict[str, Any]:
    # Iterations of 10 ms; a hook every `step` iterations gives `rate` firings per second.
    step = max(1, round(1 / (rate * 0.0102)))
    return {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
        "runner": {"type": "constant", "times": firings * step, "concurrency": 1},
        "hooks": [
            {
                "name": "sys_call",
                "args": "date +%s.%N",
                "trigger": {"name": "periodic", "args": {"unit": "iteration", "step": step}},
                "job": {"timeoutSeconds": 120},
            }
        ],
        "arming": {"enabled": armed, "maxArmed": max_armed, "startTimeoutSeconds": 300}
        if armed
        else {"enabled": False},
    }


def watch_firings(cluster: Any, ns: str, name: str, seen: dict[Any, float]) -> None:
    """Note when a watch on this machine (outside the node) first sees each firing: the
    runner → API server → watch part of the path, without the pods' network."""
    from krally.kube import client
    from krally.kube.pods import taskwatch

    url = urllib.parse.urlparse(cluster.server)
    token = Path(tempfile.mkdtemp()) / "token"
    token.write_text(cluster.admin_token)
    endpoint = client.ApiEndpoint(
        str(url.hostname), int(url.port or 443), str(token), str(cluster.certs.ca_cert)
    )
    with contextlib.suppress(Exception):
        for task in taskwatch.watch_task(ns, name, endpoint, patience=5):
            now = time.time()
            runner = (task.get("status") or {}).get("runner") or {}
            for firing in runner.get("firings") or []:
                seen.setdefault(firing["value"], now)
            if runner.get("state") in ("Finished", "Aborted", "Error"):
                return


def measure(
    cluster: Any,
    custom: Any,
    batch: Any,
    ns: str,
    name: str,
    rate: float,
    firings: int,
    **arming: Any,
) -> list[float]:
    """Run one task and print its figures; the firedAt → command lags (ms)."""
    busy0, total0 = cpu_times()
    started = time.time()
    custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, task_body(name, rate_spec(rate, firings, **arming))
    )
    seen: dict[Any, float] = {}
    threading.Thread(target=watch_firings, args=(cluster, ns, name, seen), daemon=True).start()
    rss: list[float] = []
    if arming.get("armed"):
        deadline = time.time() + 300
        while time.time() < deadline:  # the armed pods wait: how much memory does each take?
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
            if ((obj.get("status") or {}).get("arming") or {}).get("loadReleasedAt"):
                rss = hook_processes_rss_mb()
                break
            time.sleep(0.2)
    task = wait_done(custom, ns, name, timeout=600)
    busy1, total1 = cpu_times()
    elapsed = time.time() - started
    status = task["status"]
    fired = {f["value"]: epoch(f["firedAt"]) for f in status["runner"]["firings"]}
    jobs = {
        j.metadata.name: j
        for j in batch.list_namespaced_job(ns, label_selector="krally.dev/role=hook").items
    }
    created_ms, command_ms, started_ms, watched_ms = [], [], [], []
    for result in status["hooks"][0]["results"]:
        value = result["triggeredBy"]["value"]
        if value not in fired or result["status"] != "success":
            continue
        job = jobs.get(result.get("job") or "")
        created = ((job.metadata.annotations or {}) if job else {}).get("krally.dev/created-at")
        if created:
            created_ms.append((epoch(created) - fired[value]) * 1000)
        started_ms.append((epoch(result["startedAt"]) - fired[value]) * 1000)
        if value in seen:
            watched_ms.append((seen[value] - fired[value]) * 1000)
        stamp = re.search(r"\b1\d{9}\.\d+", json.dumps(result.get("output")))
        if stamp:  # the command's own `date +%s.%N`
            command_ms.append((float(stamp.group(0)) - fired[value]) * 1000)
    cores = os.cpu_count() or 1
    cpu_share = (busy1 - busy0) / max(total1 - total0, 1)
    cpu_seconds = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
    print(f"\n{name}: {rate:g} firing(s)/s, {len(fired)} firings, phase {status['phase']}")
    target = 50 if rate <= 1 else 100
    describe("  firedAt → hook Job create sent (armed: negative, made ahead)", created_ms)
    describe("  firedAt → a watch on this machine sees it (runner → API server)", watched_ms)
    describe("  firedAt → hook started in its pod (krally, ms clock)", started_ms)
    describe("  firedAt → hook command started in its container", command_ms, target)
    armed = sum(1 for r in status["hooks"][0]["results"] if r.get("armed"))
    waited = (status.get("arming") or {}).get("waitedSeconds")
    print(f"  armed firings: {armed}; the load waited {waited} s for the armed pods")
    if rss:
        print(
            f"  waiting armed pods at the load's start: {len(rss)}, "
            f"{statistics.fmean(rss):.1f} MB resident each (max {max(rss):.1f} MB)"
        )
    print(
        f"  machine CPU while it ran: {cpu_share * 100:.0f} % of {cores} cores"
        f" over {elapsed:.0f} s;"
        f" {cpu_seconds / max(len(fired), 1):.2f} CPU-s per firing (load and hooks together)"
    )
    return command_ms


def summarize_rounds(name: str, rounds: list[list[float]], target: float) -> None:
    """One case over its rounds: a single run's p99 of 50 samples is its largest sample and
    swings with what else the 2-core machine does at that moment, so the spread across rounds
    is printed beside the pooled figures (the pooled p99 is a real 99th percentile from 100
    samples up)."""
    pooled = [v for r in rounds for v in r]
    if not pooled:
        return
    p50s = [pct(r, 50) for r in rounds if r]
    p99s = [pct(r, 99) for r in rounds if r]
    print(
        f"\n{name}, {len(rounds)} rounds: per-round p50 {min(p50s):.1f} to {max(p50s):.1f} ms, "
        f"per-round p99 {min(p99s):.1f} to {max(p99s):.1f} ms"
    )
    describe("  pooled firedAt → command", pooled, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firings", type=int, default=50, help="per task (≥ 50 for a p99)")
    parser.add_argument("--max-armed", type=int, default=0, help="default: --firings")
    parser.add_argument("--rates", default="1,5", help="firings per second, comma list")
    parser.add_argument("--modes", default="armed,unarmed", help="armed, unarmed or both")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case, interleaved")
    args = parser.parse_args()

    from kubernetes import client

    work = Path(tempfile.mkdtemp(prefix="krally-bench-"))
    with start(node="real") as cluster, operator_watching(cluster, "bench-hook-start", work) as ns:
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in cluster.timings.items())
        print(f"real node ready: {timings}")
        api_client = cluster.api_client()
        custom, batch = client.CustomObjectsApi(api_client), client.BatchV1Api(api_client)
        max_armed = min(100, args.max_armed or args.firings)
        lags: dict[str, list[list[float]]] = {}
        for round_ in range(args.rounds):
            # Interleaved (armed, unarmed, armed, ...): a slow spell of the machine lands
            # on both, not on one case's every round.
            for rate in (float(r) for r in args.rates.split(",")):
                for armed in (m == "armed" for m in args.modes.split(",")):
                    case = f"{'armed' if armed else 'unarmed'}-{rate:g}-per-second"
                    lags.setdefault(case, []).append(
                        measure(cluster, custom, batch, ns, f"{case}-r{round_}", rate,
                                args.firings, armed=armed, max_armed=max_armed)
                    )  # fmt: skip
                    time.sleep(5)  # let the task's pods go
        for case, rounds in lags.items():
            summarize_rounds(case, rounds, 50 if case.endswith("-1-per-second") else 100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
