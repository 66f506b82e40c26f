"""``status.runner`` of a distributed load (``spec.runner.parallelism`` N > 1), and one view of it.

Each runner pod ``i`` owns ``status.runner.pods["i"]`` (a map, so that the pods' merge patches
never overwrite each other): its state (``Ready`` at the barrier, then Running, Finished,
Aborted or Error), progress, firings and, at the end, ``result`` (its shard's mergeable part).
Pod 0 also writes ``status.runner.startAt`` (the instant every pod starts the load) and, once
every pod has reported, the merged result at the top of ``status.runner`` (state, summary,
progress), as one runner pod would; it then drops the pods' ``result``.

:func:`runner_view` is what every reader uses (the operator, the armed pods, reports): the top
level as written, with the pods' firings, their summed progress and, until the merge, a state
from theirs.
"""

from __future__ import annotations

from typing import Any

FINAL_STATES = ("Finished", "Aborted", "Error")
READY = "Ready"


def pod_reports(runner: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Pod index → its report (empty for a load in one pod)."""
    pods = runner.get("pods")
    if not isinstance(pods, dict):
        return {}
    return {
        int(key): value
        for key, value in pods.items()
        if isinstance(key, str) and key.isdigit() and isinstance(value, dict)
    }


def runner_view(runner: dict[str, Any]) -> dict[str, Any]:
    """``status.runner`` read as one runner's report (unchanged for a load in one pod)."""
    pods = pod_reports(runner)
    if not pods:
        return runner
    view = dict(runner)
    ordered = [pods[i] for i in sorted(pods)]
    view["firings"] = [
        *(runner.get("firings") or []),
        *(f for pod in ordered for f in pod.get("firings") or []),
    ]
    dropped = sum(int(pod.get("droppedFirings") or 0) for pod in ordered)
    if dropped:
        view["droppedFirings"] = dropped
    if runner.get("state") not in FINAL_STATES:  # not merged yet
        view["progress"] = summed_progress(ordered)
        if any(pod.get("state") for pod in ordered):
            view["state"] = "Running"
        errors = [
            f"runner pod {i}: {pods[i]['error']}" for i in sorted(pods) if pods[i].get("error")
        ]
        if errors and not view.get("error"):
            view["error"] = errors[0]
    if not view.get("startedAt"):
        view["startedAt"] = runner.get("startAt") or min(
            (str(p["startedAt"]) for p in ordered if p.get("startedAt")), default=None
        )
    return view


def summed_progress(pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The load's progress from its pods': done and failures added, the total when every pod
    knows its own, the longest elapsed time."""
    progress = [pod.get("progress") or {} for pod in pods]
    out: dict[str, Any] = {
        "done": sum(int(p.get("done") or 0) for p in progress),
        "failures": sum(int(p.get("failures") or 0) for p in progress),
    }
    totals = [p.get("total") for p in progress]
    if totals and all(isinstance(t, int) for t in totals):
        out["total"] = sum(totals)
    elapsed = [
        p["elapsedSeconds"] for p in progress if isinstance(p.get("elapsedSeconds"), int | float)
    ]
    if elapsed:
        out["elapsedSeconds"] = max(elapsed)
    return out


def failed_indexes(text: Any) -> list[int]:
    """A Job's ``status.failedIndexes`` ("1,3-5") as a list (empty when absent or malformed)."""
    out: list[int] = []
    for part in str(text or "").split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        out.extend(range(int(low), int(high or low) + 1))
    return out
