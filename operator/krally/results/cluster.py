"""A BenchmarkTask (``kubectl get bt NAME -o json``) → krally's report, then Rally's JSON.

What a cluster task's status holds is bounded (etcd objects stay small), so the export has
everything but the per-iteration records:

* kept: the spec (scenario, runner, contexts, SLA, hooks), every firing with its status,
  times, error, output and Job, unreached trigger values, the SLA results, the counts,
  ``load_duration``/``full_duration``, the duration statistics (min, median, 90/95 %ile, max,
  avg; a 1 %-accurate sketch, not exact order statistics), atomic-action statistics (at most
  50 nodes), the per-second timeline (at most its last buckets), warnings, aborted, run error;
* missing: ``data``, the per-iteration records (never written to the status: 1 000 000
  iterations would be ~350 MB). It is exported as ``[]``, and since ``rally task import``
  recomputes the iteration counts and duration tables from ``data``, Rally shows such a task
  with 0 iterations: its hooks, SLA and durations of the load are there, its charts per
  iteration are not. ``krally report`` reads the counts and statistics from the file itself;
* approximate: ``start_time`` is when the runner started (not iteration 1's timestamp), and
  times come from RFC 3339 strings with millisecond precision.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import krally
from krally.api.shards import runner_view
from krally.results import rally
from krally.task.result import FORMAT_VERSION

_DURATIONS = {"min": "min", "median": "median", "p90": "90%ile", "p95": "95%ile", "max": "max"}
_DURATIONS["avg"] = "avg"


def is_benchmark_task(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and document.get("kind") == "BenchmarkTask"
        and str(document.get("apiVersion", "")).startswith("krally.dev/")
    )


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _rally_time(value: Any) -> str:
    epoch = _epoch(value)
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _hook(spec_hook: dict[str, Any], status_hook: dict[str, Any]) -> dict[str, Any]:
    trigger = status_hook.get("trigger") or spec_hook.get("trigger") or {}
    results = []
    for item in status_hook.get("results") or []:
        by = item.get("triggeredBy") or {}
        result: dict[str, Any] = {
            "status": item.get("status") or "failed",
            "started_at": _epoch(item.get("startedAt")) or 0.0,
            "finished_at": _epoch(item.get("finishedAt")) or 0.0,
            "triggered_by": {"event_type": by.get("eventType"), "value": by.get("value")},
        }
        if item.get("error"):
            result["error"] = rally.dict_error(item["error"])
        if item.get("output"):
            result["output"] = item["output"]
        for key in ("job", "firedAt", "armed"):
            if item.get(key) is not None:
                result[key] = item[key]
        results.append(result)
    hook: dict[str, Any] = {
        "config": {
            "description": status_hook.get("description") or spec_hook.get("description") or "",
            "action": {status_hook.get("name") or spec_hook.get("name", ""): spec_hook.get("args")},
            "trigger": {trigger.get("name", ""): trigger.get("args")},
        },
        "results": results,
        "summary": dict(status_hook.get("summary") or {}),
    }
    unreached = [
        {"event_type": u.get("eventType"), "value": u.get("value")}
        for u in status_hook.get("unreached") or []
    ]
    if unreached:
        hook["unreached"] = unreached
        hook["unreached_count"] = len(unreached)
    return hook


def _statistics(result: dict[str, Any]) -> dict[str, Any]:
    durations = result.get("durations") or {}
    iterations = int(result.get("iterations") or 0)
    failures = int(result.get("failures") or 0)
    data: dict[str, Any] = {out: durations.get(key) for key, out in _DURATIONS.items()}
    data["iteration_count"] = iterations
    ok = 100.0 * (iterations - failures) / iterations if iterations else None
    data["success"] = f"{ok:.1f}%" if ok is not None else "n/a"
    total = {
        "name": "total",
        "display_name": "total",
        "count_per_iteration": 1,
        "data": data,
        "children": [],
    }
    return {"durations": {"total": total, "atomics": list(result.get("atomics") or [])}}


def report_from_task(obj: dict[str, Any]) -> dict[str, Any]:
    """krally's report shape (``run_task``'s) from a BenchmarkTask object, as far as it goes."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    uid = str(meta.get("uid") or uuid.uuid5(uuid.NAMESPACE_URL, str(meta.get("name"))))
    ns = uuid.UUID(uid) if _is_uuid(uid) else uuid.NAMESPACE_URL
    workload = _workload(obj, ns)
    task_status = {
        "Succeeded": "finished",
        "Failed": "crashed" if "error" in workload else "finished",
        "Aborted": "aborted",
    }.get(status.get("phase") or "Pending", "running")
    subtask = {
        "uuid": str(uuid.uuid5(ns, "subtask-0")),
        "title": workload["description"] or (spec.get("scenario") or {}).get("name", ""),
        "description": workload["description"],
        "status": task_status,
        "created_at": workload["created_at"],
        "updated_at": workload["updated_at"],
        "sla": {},
        "workloads": [workload],
    }
    name = meta.get("name", "")
    title = f"{meta['namespace']}/{name}" if meta.get("namespace") else name
    return {
        "info": {
            "rally_version": f"krally {krally.__version__}",
            "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "format_version": FORMAT_VERSION,
        },
        "tasks": [
            {
                "uuid": uid,
                "title": title,
                "description": spec.get("description") or "",
                "status": task_status,
                "tags": [],
                "env_uuid": "",
                "env_name": "kubernetes",
                "created_at": _rally_time(meta.get("creationTimestamp")),
                "updated_at": _rally_time(status.get("finishedAt")),
                "pass_sla": workload["pass_sla"],
                "subtasks": [subtask],
                "warnings": list(status.get("warnings") or []),
            }
        ],
    }


def _workload(obj: dict[str, Any], ns: uuid.UUID) -> dict[str, Any]:
    """The task's one workload in the engine's result shape, from its spec and status."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    runner_status = runner_view(status.get("runner") or {})
    summary = runner_status.get("summary") or {}
    result = status.get("result") or {}
    scenario = spec.get("scenario") or {}
    runner = dict(spec.get("runner") or {})
    runner_type = runner.pop("type", "constant")
    spec_hooks = spec.get("hooks") or []
    status_hooks = status.get("hooks") or []
    hooks = [
        _hook(spec_hook, status_hooks[i] if i < len(status_hooks) else {})
        for i, spec_hook in enumerate(spec_hooks)
    ]
    phase = status.get("phase") or "Pending"
    aborted = phase == "Aborted" or bool(summary.get("aborted"))
    durations = result.get("durations") or {}
    workload: dict[str, Any] = {
        "uuid": str(uuid.uuid5(ns, "workload-0")),
        "description": spec.get("description") or "",
        "position": 0,
        "scenario": {scenario.get("name", ""): dict(scenario.get("args") or {})},
        "runner": {runner_type: runner},
        "contexts": dict(spec.get("contexts") or {}),
        "hooks": hooks,
        "sla": dict(spec.get("sla") or {}),
        "sla_results": {"sla": list(status.get("sla") or summary.get("sla") or [])},
        "pass_sla": bool(status.get("passSLA", summary.get("passSLA", False))),
        "created_at": _rally_time(status.get("startedAt") or meta.get("creationTimestamp")),
        "updated_at": _rally_time(status.get("finishedAt") or runner_status.get("updatedAt")),
        "full_duration": result.get("fullDuration") or summary.get("fullDuration") or 0.0,
        "load_duration": result.get("loadDuration") or summary.get("loadDuration") or 0.0,
        "contexts_results": [],
        "statistics": _statistics(result or summary),
        "total_iteration_count": int(result.get("iterations") or 0),
        "failed_iteration_count": int(result.get("failures") or 0),
        "min_duration": durations.get("min"),
        "max_duration": durations.get("max"),
        "start_time": _epoch(runner_status.get("startedAt") or status.get("startedAt")),
        "warnings": list(summary.get("warnings") or []),
        "aborted": aborted,
        "timeline": list(result.get("timeline") or summary.get("timeline") or []),
        "timeline_start": _epoch(summary.get("timelineStart")),
        "histogram": list(summary.get("histogram") or []),
    }
    impact = _impact(runner_status.get("impact"))
    if impact is not None:
        workload["impact"] = impact
    if runner_status.get("error") and runner_status.get("state") == "Error":
        workload["error"] = ["RunnerError", str(runner_status["error"]), ""]
    return workload


def _impact(entries: Any) -> list[dict[str, Any]] | None:
    """``status.runner.impact`` (RFC 3339, windows in seconds from the hook's start) → the
    engine's shape (epoch times, windows with ``start``/``end``)."""
    if not isinstance(entries, list):
        return None
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        item = dict(entry)
        started = _epoch(entry.get("startedAt"))
        item["startedAt"] = started
        item["finishedAt"] = _epoch(entry.get("finishedAt"))
        for name in ("baseline", "during", "after"):
            window = entry.get(name)
            if not isinstance(window, dict):
                continue
            window = dict(window)
            if started is not None:
                for key, out_key in (("fromSeconds", "start"), ("toSeconds", "end")):
                    if isinstance(window.get(key), int | float):
                        window[out_key] = started + window.pop(key)
            item[name] = window
        out.append(item)
    return out


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def rally_from_task(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``rally task import`` document for a BenchmarkTask (``data`` empty: see above)."""
    return rally.to_rally(report_from_task(obj))
