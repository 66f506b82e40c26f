"""Rally JSON benchmark: what streaming per-iteration ``data`` costs ``krally run --json``.

Runs ``krally run`` (in a fresh process each time, Dummy.dummy with sleep 0: the fastest
scenario, so the worst case for a per-record cost) without and with ``--json``, and prints the
wall times, their ratio (target: ≤ 1.05), the peak RSS of each run (target: the same at
100 000 and 1 000 000 iterations) and the file's size. Prints figures; never passes or fails.

    python bench/bench_rally_json.py            # 1 000 000 iterations (~2-4 min on 2 cores)
    python bench/bench_rally_json.py --quick    # 100 000 iterations
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.05


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(times: int, concurrency: int, out: str | None) -> None:
    from krally import cli
    from krally.results.stream import RallyJSONWriter

    # The writer's own time inside the run (encoding and writing each batch): a share of the
    # wall time that the machine's other load distorts less than a ratio of two runs does.
    in_writer = [0.0]
    flush = RallyJSONWriter._flush

    def timed_flush(self: Any) -> None:
        started = time.perf_counter()
        flush(self)
        in_writer[0] += time.perf_counter() - started

    RallyJSONWriter._flush = timed_flush  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as tmp:
        task = Path(tmp) / "task.json"
        runner = {"type": "constant", "times": times, "concurrency": concurrency}
        task.write_text(json.dumps({"Dummy.dummy": [{"args": {"sleep": 0}, "runner": runner}]}))
        argv = ["run", str(task), "--no-progress"] + (["--json", out] if out else [])
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(argv)
        wall = time.perf_counter() - started
    size = os.path.getsize(out) if out else 0
    cpu = sum(
        r.ru_utime + r.ru_stime
        for r in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    print(
        json.dumps(
            {
                "code": code,
                "wall": wall,
                "cpu": cpu,
                "hwm_mb": vm_hwm_mb(),
                "bytes": size,
                "writer": in_writer[0],
            }
        )
    )


def measure(times: int, concurrency: int, with_json: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, __file__, "--child", str(times), str(concurrency)]
        if with_json:
            args += ["--out", str(Path(tmp) / "results.json")]
        proc = subprocess.run(args, check=True, capture_output=True, text=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])


def encode_cost(records: int = 200_000) -> float:
    """Microseconds per record of RallyJSONWriter.record (batching + encoding + writing)."""
    from krally.results.stream import RallyJSONWriter

    now = time.time()
    record = {
        "iteration": 1,
        "timestamp": now,
        "duration": 1.2e-05,
        "idle_duration": 0.0,
        "error": [],
        "output": {"additive": [], "complete": []},
        "atomic_actions": [
            {
                "name": "foo",
                "started_at": now,
                "finished_at": now + 1e-5,
                "children": [
                    {"name": "bar", "started_at": now, "finished_at": now + 1e-5, "children": []}
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        writer = RallyJSONWriter(Path(tmp) / "r.json")
        writer.begin_workload(0)
        started = time.perf_counter()
        for _ in range(records):
            writer.record(record)
        writer._flush()
        elapsed = time.perf_counter() - started
        writer.abort()
    return elapsed / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, type=int)
    parser.add_argument("--out")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.out)
        return

    print(f"RallyJSONWriter.record: {encode_cost():.3f} µs per record (batch, encode, write)")
    big = 100_000 if args.quick else 1_000_000
    sizes = [big] if args.quick else [100_000, big]
    print("krally run, Dummy.dummy sleep 0, constant runner; best of", args.repeat)
    for concurrency in (1, 4):
        peaks = {}
        for times in sizes:
            # Interleaved, best of each: the machine's other load varies over minutes.
            runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
            for _ in range(args.repeat):
                for with_json in (False, True):
                    runs[with_json].append(measure(times, concurrency, with_json))
            plain = min(runs[False], key=lambda r: r["wall"])
            streamed = min(runs[True], key=lambda r: r["wall"])
            ratio = streamed["wall"] / plain["wall"]
            cpu_plain = min(r["cpu"] for r in runs[False])
            cpu_ratio = min(r["cpu"] for r in runs[True]) / cpu_plain
            peaks[times] = streamed["hwm_mb"]
            print(
                f"  {times:>9,} iterations, concurrency {concurrency}: "
                f"without --json {plain['wall']:6.2f} s ({times / plain['wall']:,.0f} it/s), "
                f"with {streamed['wall']:6.2f} s = {ratio:5.3f} x (target ≤ {TARGET_RATIO}), "
                f"CPU {cpu_ratio:5.3f} x; in the writer "
                f"{100 * streamed['writer'] / streamed['wall']:4.1f} % of the run "
                f"({streamed['writer'] / times * 1e6:.2f} µs/iteration); "
                f"RSS {plain['hwm_mb']:5.1f} → {streamed['hwm_mb']:5.1f} MB; "
                f"file {streamed['bytes'] / 1e6:,.0f} MB"
            )
        if len(peaks) == 2:
            small, large = peaks[sizes[0]], peaks[sizes[1]]
            print(
                f"  RSS with --json, {sizes[1]:,} vs {sizes[0]:,} iterations: "
                f"{large:.1f} vs {small:.1f} MB = {large / small:.2f} x (flat: ~1.00)"
            )


if __name__ == "__main__":
    main()
