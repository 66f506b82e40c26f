"""The operator's reaction times and status write rate, on the real test control plane.

Starts the local control plane + real node (tests/cluster), installs the CRD, runs
`krally operator -n NS --standalone` as a subprocess and measures:

1. firing → hook Job: per firing, the runner's clock when the iteration started (``firedAt`` in
   status.runner.firings, ms precision) to
   a) the operator's clock when it sent the Job create (annotation krally.dev/created-at), and
   b) this process's clock when the Job's ADDED event arrived on a watch (an upper bound: it
      adds the create round trip and the watch delivery).
   All clocks are this machine's. Target: p99 ≤ 100 ms over ≥ 50 firings.
2. `kubectl apply` → runner Job: the create request of the task (sent from here) to the runner
   Job's ADDED event on a watch.
3. status writes per second per running task: every MODIFIED event of the task on a watch is one
   write (resourceVersion changes); counted while the task runs, split by writer (a change of
   status.runner is the runner's, anything else the operator's). Target ≤ 1.5/s.

Prints figures and ratios only; no pass/fail.

    python bench/bench_operator.py [--firings 60] [--applies 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster import images, start  # noqa: E402

from krally.kube.operator import builders as kjobs  # noqa: E402

GROUP, VERSION, PLURAL = "krally.dev", "v1alpha1", "benchmarktasks"


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe(label: str, values_ms: list[float], target: float | None = None) -> None:
    if not values_ms:
        print(f"{label}: no samples")
        return
    p50, p99 = pct(values_ms, 50), pct(values_ms, 99)
    line = (
        f"{label}: n={len(values_ms)} p50={p50:.1f} ms p99={p99:.1f} ms "
        f"max={max(values_ms):.1f} ms mean={statistics.fmean(values_ms):.1f} ms"
    )
    if target:
        line += f"  (p99 / target {target:g} ms = {p99 / target:.2f})"
    print(line)


class Watcher:
    """Records (receive time, event) of every watch event on jobs and tasks of a namespace."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.jobs: dict[str, tuple[float, dict[str, Any]]] = {}
        self.task_events: list[tuple[float, str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch_jobs, daemon=True),
            threading.Thread(target=self._watch_tasks, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        time.sleep(0.5)

    def _forever(self, list_fn: Any, *args: Any, on_event: Any) -> None:
        # The API server's watch cache may refuse a young resourceVersion (504): start over.
        from kubernetes import watch

        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(list_fn, *args, timeout_seconds=0):
                    on_event(time.time(), event)
                    if self._stop.is_set():
                        return
            except Exception:
                time.sleep(0.1)

    def _watch_jobs(self) -> None:
        def on_event(now: float, event: dict[str, Any]) -> None:
            job = event["object"]
            if event["type"] == "ADDED" and job.metadata.name not in self.jobs:
                self.jobs[job.metadata.name] = (now, job.to_dict())

        self._forever(self.batch.list_namespaced_job, self.namespace, on_event=on_event)

    def _watch_tasks(self) -> None:
        seen: set[str] = set()

        def on_event(now: float, event: dict[str, Any]) -> None:
            obj = event["object"]
            rv = obj["metadata"]["resourceVersion"]
            if rv not in seen:  # a restarted watch replays objects: count each write once
                seen.add(rv)
                self.task_events.append((now, event["type"], obj))

        self._forever(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            on_event=on_event,
        )


@contextlib.contextmanager
def operator_watching(cluster: Any, namespace: str, work: Path) -> Iterator[str]:
    """The BenchmarkTask CRD installed, ``namespace`` created and `krally operator` watching it
    (a subprocess, its log in ``work``, started up); yields the namespace."""
    # apply_crd asks `kubectl wait` again while the new CRD has no conditions yet.
    crd = (ROOT / "crds" / "benchmarktasks.krally.dev.yaml").read_text()
    cluster.apply_crd(crd, "benchmarktasks.krally.dev")
    ns = cluster.create_namespace(namespace)
    with (work / "operator.log").open("wb") as log:
        operator = subprocess.Popen(
            [sys.executable, "-m", "krally", "operator", "-n", ns, "--standalone"],
            env={
                **os.environ,
                "KUBECONFIG": str(cluster.kubeconfig),
                "KRALLY_IMAGE": images.KRALLY_REF,
                "KRALLY_IMAGE_PULL_POLICY": "Never",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(5)  # operator start-up, watch caches warm
            print(f"operator log: {work / 'operator.log'}")
            yield ns
        finally:
            operator.terminate()
            operator.wait(15)


def task_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BenchmarkTask",
        "metadata": {"name": name},
        "spec": spec,
    }


def wait_done(custom: Any, ns: str, name: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Aborted"):
            return obj
        time.sleep(0.5)
    raise TimeoutError(f"bt/{name} did not finish in {timeout} s")


def write_rates(watcher: Watcher, name: str) -> tuple[float, float, float, float]:
    """(total/s, runner/s, operator/s, seconds) of status writes while the task ran."""
    events = [(t, o) for t, kind, o in watcher.task_events if o["metadata"]["name"] == name]
    runner_start = runner_end = None
    previous: dict[str, Any] | None = None
    writes: list[tuple[float, str]] = []
    for t, obj in events:
        status = obj.get("status") or {}
        runner = status.get("runner") or {}
        if runner_start is None and runner.get("startedAt"):
            runner_start = epoch(runner["startedAt"])
        if runner_end is None and status.get("phase") in ("Succeeded", "Failed", "Aborted"):
            runner_end = t
        if previous is not None:
            before = previous.get("status") or {}
            who = "runner" if before.get("runner") != runner else "operator"
            writes.append((t, who))
        previous = obj
    if runner_start is None or runner_end is None:
        return float("nan"), float("nan"), float("nan"), 0.0
    span = max(runner_end - runner_start, 1e-6)
    inside = [(t, w) for t, w in writes if runner_start <= t <= runner_end + 0.05]
    runner_writes = sum(1 for _, w in inside if w == "runner")
    return len(inside) / span, runner_writes / span, (len(inside) - runner_writes) / span, span


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firings", type=int, default=60, help="hook firings for the lag")
    parser.add_argument("--applies", type=int, default=10, help="tasks for apply → runner Job")
    args = parser.parse_args()

    from kubernetes import client

    work = Path(tempfile.mkdtemp(prefix="krally-bench-"))
    with start() as cluster, operator_watching(cluster, "bench-operator", work) as ns:
        api_client = cluster.api_client()
        custom = client.CustomObjectsApi(api_client)
        watcher = Watcher(api_client, ns)
        watcher.start()
        # 2. apply → runner Job
        apply_ms = []
        for i in range(args.applies):
            name = f"apply-{i}"
            spec = {
                "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
                "runner": {"type": "constant", "times": 1},
            }
            sent = time.time()
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, task_body(name, spec)
            )
            job = kjobs.runner_name(name)
            deadline = time.time() + 30
            while job not in watcher.jobs and time.time() < deadline:
                time.sleep(0.002)
            if job in watcher.jobs:
                apply_ms.append((watcher.jobs[job][0] - sent) * 1000)
            time.sleep(0.3)

        # 1 + 3. firing → hook Job, and status writes of a hook-heavy task
        step = 20
        lag_spec = {
            "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
            "runner": {"type": "constant", "times": args.firings * step, "concurrency": 1},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "/bin/true",
                    "trigger": {
                        "name": "periodic",
                        "args": {"unit": "iteration", "step": step},
                    },
                }
            ],
        }
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, task_body("lag", lag_spec)
        )
        lag_task = wait_done(custom, ns, "lag")
        # The Rally example: the typical task for the write rate.
        example = json.loads(
            json.dumps(
                __import__("yaml").safe_load(
                    (ROOT / "manifests" / "examples" / "rally-hooks.yaml").read_text()
                )
            )
        )
        example["metadata"] = {"name": "rally-hooks"}
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, example)
        example_task = wait_done(custom, ns, "rally-hooks")
        time.sleep(1)

        firings = lag_task["status"]["runner"]["firings"]
        sent_ms, seen_ms = [], []
        for firing in firings:
            job_name = f"lag-h0-i{firing['value']}"
            fired = epoch(firing["firedAt"])
            if job_name not in watcher.jobs:
                continue
            seen_at, job = watcher.jobs[job_name]
            created = (job["metadata"].get("annotations") or {}).get("krally.dev/created-at")
            if created:
                sent_ms.append((epoch(created) - fired) * 1000)
            seen_ms.append((seen_at - fired) * 1000)
        print(f"phase of the lag task: {lag_task['status']['phase']}, firings: {len(firings)}")
        print(f"firing rate: one per {step} iterations of 10 ms (~{1000 / (step * 10.5):.1f}/s)")
        describe("firedAt → hook Job create sent (operator clock)", sent_ms, 100)
        describe("firedAt → hook Job ADDED seen on a watch", seen_ms, 100)
        describe("apply (create sent) → runner Job ADDED seen", apply_ms)
        for label, task in (("lag (5 firings/s)", lag_task), ("rally-hooks example", example_task)):
            name = task["metadata"]["name"]
            total, runner, operator_rate, span = write_rates(watcher, name)
            print(
                f"status writes while running, {label}: {total:.2f}/s over {span:.1f} s "
                f"(runner {runner:.2f}/s, operator {operator_rate:.2f}/s; "
                f"total / target 1.5 = {total / 1.5:.2f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
