"""A distributed load's result: the shards' results (one per runner pod) merged exactly.

Each shard's result carries ``shard`` (see :func:`krally.task.engine.run_workload`): its
statistics as mergeable sketches and its SLA criteria's counters. Merging adds the sketches
bucket by bucket (so every percentile is the one a single pod fed every iteration would give,
within the sketch's relative error, never an average of percentiles), sums the per-second
timelines on the shared start, merges atomic actions by name, and judges the SLA on the merged
load with each criterion's Rally ``merge``. Hook firings and unreached values are the union
(each shard reports only what it owns).
"""

from __future__ import annotations

import json
from typing import Any

from krally.task.engine import Progress, assemble_result
from krally.task.hook_executor import MAX_UNREACHED_LISTED
from krally.task.sla import SLAChecker
from krally.task.spec import WorkloadSpec
from krally.task.stats import WorkloadStats

# The parts of a shard's result the merge reads (what a runner pod keeps in the task's status).
SHARD_KEYS = (
    "shard",
    "hooks",
    "warnings",
    "error",
    "aborted",
    "full_duration",
    "created_at",
    "contexts_results",
)


# All the pods' parts together stay within this (JSON): they sit in the task's status until pod 0
# has merged them, beside everything else (the operator's status budget is 256 KiB).
PARTS_MAX_BYTES = 128 * 1024


def shard_part(result: dict[str, Any]) -> dict[str, Any]:
    """What of a shard's result the merge needs (the rest is derived again), within its share
    of PARTS_MAX_BYTES: a long load's timeline is made coarser (points merged pairwise, exact)
    until it fits; every other figure stays exact."""
    if "shard" not in result:
        raise ValueError("not a shard's result (it was not run as one shard of a load)")
    part = {key: result[key] for key in SHARD_KEYS if key in result}
    shard = dict(part["shard"])
    budget = max(16 * 1024, PARTS_MAX_BYTES // max(1, int(shard.get("count") or 1)))
    state = shard["stats"]
    while len(json.dumps(state, default=str)) > budget and len(state.get("points") or []) > 1:
        stats = WorkloadStats.from_state(state)
        stats.coarsen_to(len(state["points"]) // 2)
        state = stats.to_state()
    shard["stats"] = state
    part["shard"] = shard
    return part


def merge_shards(
    workload: WorkloadSpec, parts: dict[int, dict[str, Any]], count: int, position: int = 0
) -> dict[str, Any]:
    """The load's Rally workload result from the parts (shard index → :func:`shard_part`) of
    ``count`` shards. A shard without a part (its pod died before reporting) is named in the
    warnings; its iterations are not counted. ValueError: a part is not one."""
    if not parts:
        raise ValueError("no runner pod reported its results")
    indexes = sorted(parts)
    stats = WorkloadStats()
    states = []
    for index in indexes:
        shard = parts[index].get("shard") or {}
        if shard.get("count") != count or shard.get("index") != index:
            raise ValueError(f"the result of runner pod {index} is not shard {index} of {count}")
        stats.merge(WorkloadStats.from_state(shard["stats"]))
        states.append(shard["sla"])
    sla = SLAChecker.merged(dict(workload.sla), states)
    warnings: list[str] = []
    for index in indexes:
        for warning in parts[index].get("warnings") or []:
            if warning not in warnings:
                warnings.append(warning)
    missing = [i for i in range(count) if i not in parts]
    if missing:
        warnings.append(
            f"runner pod(s) {', '.join(map(str, missing))} of {count} did not report results: "
            "their iterations are not counted"
        )
    errors = [(i, parts[i]["error"]) for i in indexes if parts[i].get("error")]
    error = None
    if errors:
        index, first = errors[0]
        error = [first[0], f"runner pod {index}: {first[1]}", *first[2:]]
    result = assemble_result(
        workload,
        stats,
        sla,
        merge_hooks([parts[i].get("hooks") or [] for i in indexes]),
        position=position,
        created_at=min(str(parts[i].get("created_at") or "") for i in indexes),
        full_duration=max(float(parts[i].get("full_duration") or 0.0) for i in indexes),
        contexts_results=list(parts[indexes[0]].get("contexts_results") or []),
        warnings=warnings,
        aborted=any(parts[i].get("aborted") for i in indexes),
        error=error,
    )
    result["parallelism"] = count  # krally's: the runner pods the load was spread over
    return result


def merge_hooks(per_shard: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per hook (in the task's order): every shard's firings in start order, the summaries
    added, the unreached values united (each shard lists only values it owns)."""
    merged: list[dict[str, Any]] = []
    for hooks in per_shard:
        for position, hook in enumerate(hooks):
            if position == len(merged):
                merged.append({"config": hook.get("config"), "results": [], "summary": {}})
            into = merged[position]
            into["results"].extend(hook.get("results") or [])
            for status, n in (hook.get("summary") or {}).items():
                into["summary"][status] = into["summary"].get(status, 0) + n
            if hook.get("unreached"):
                into.setdefault("unreached", []).extend(hook["unreached"])
                into["unreached_count"] = into.get("unreached_count", 0) + int(
                    hook.get("unreached_count") or len(hook["unreached"])
                )
            if hook.get("trigger_error") and not into.get("trigger_error"):
                into["trigger_error"] = hook["trigger_error"]
    for hook in merged:
        hook["results"].sort(key=lambda r: r.get("started_at") or 0.0)
        if "unreached" in hook:
            hook["unreached"].sort(key=lambda u: (str(u.get("event_type")), u.get("value") or 0))
            del hook["unreached"][MAX_UNREACHED_LISTED:]
    return merged


def run_spread(workload: WorkloadSpec, **kwargs: Any) -> dict[str, Any]:
    """``krally run`` of a load with ``runner.parallelism`` N on one machine: the N shards side
    by side in threads (each forks its own worker processes), started at one instant, then
    merged exactly as the runner pods' results are. ``kwargs``: :func:`run_workload`'s."""
    import threading
    import time

    from krally.task.engine import run_workload
    from krally.task.shard import Shard

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
