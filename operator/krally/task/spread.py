"""``krally run`` of a distributed load (``runner.parallelism`` N) on one machine: the N shards
side by side, merged exactly as the runner pods' results are."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from krally.task.engine import run_workload
from krally.task.merge import merge_shards, shard_part
from krally.task.result import Progress
from krally.task.shard import Shard
from krally.task.spec import WorkloadSpec


def run_spread(workload: WorkloadSpec, **kwargs: Any) -> dict[str, Any]:
    """``krally run`` of a load with ``runner.parallelism`` N on one machine: the N shards side
    by side in threads (each forks its own worker processes), started at one instant, then
    merged exactly as the runner pods' results are. ``kwargs``: :func:`run_workload`'s."""
    count = workload.parallelism
    start_at = time.time() + 0.2  # the shared start: every shard is ready by then
    parts: dict[int, dict[str, Any]] = {}
    failures: list[BaseException] = []
    on_record = kwargs.pop("on_record", None)
    on_progress = kwargs.pop("on_progress", None)
    lock = threading.Lock()
    latest: dict[int, Progress] = {}

    def record(item: dict[str, Any]) -> None:
        with lock:  # one call at a time, as run_workload promises
            on_record(item)

    def progress_of(index: int) -> Any:
        def report(progress: Progress) -> None:
            with lock:
                latest[index] = progress
                parts_now = list(latest.values())
            totals = [p.total for p in parts_now if p.total is not None]
            on_progress(
                Progress(
                    done=sum(p.done for p in parts_now),
                    total=sum(totals) if len(totals) == count else None,
                    failures=sum(p.failures for p in parts_now),
                    hooks_fired=sum(p.hooks_fired for p in parts_now),
                    hooks_finished=sum(p.hooks_finished for p in parts_now),
                    elapsed=max(p.elapsed for p in parts_now),
                )
            )

        return report

    def shard(index: int) -> None:
        try:
            time.sleep(max(0.0, start_at - time.time()))
            result = run_workload(
                workload,
                shard=Shard(index, count),
                origin=start_at,
                on_record=record if on_record is not None else None,
                on_progress=progress_of(index) if on_progress is not None else None,
                **kwargs,
            )
            # Through JSON, as between pods: the local run checks the same path.
            parts[index] = json.loads(json.dumps(shard_part(result), default=str))
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=shard, args=(i,), name=f"krally-shard-{i}") for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return merge_shards(workload, parts, count, kwargs.get("position", 0))
