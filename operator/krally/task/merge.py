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

from krally.task.hook_executor import MAX_UNREACHED_LISTED
from krally.task.result import assemble_result
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
