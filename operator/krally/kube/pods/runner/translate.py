"""Result translation between the engine and the task's status: the engine's Rally-shaped
workload result into ``status.runner.summary`` and ``status.runner.impact`` (bounded, JSON-safe,
camelCase), and the hook results the operator recorded in ``status.hooks`` back into the
engine's shape."""

from __future__ import annotations

import math
from typing import Any

from krally.api.times import parse_time, rfc3339
from krally.api.types import HOOK_FINAL
from krally.api.wire import firing_key

MAX_TIMELINE = 600
# Firings whose impact status.runner.impact lists (the rest stay in the runner's log and results).
MAX_IMPACT = 50
DURATION_KEYS = {
    "min": "min",
    "median": "median",
    "90%ile": "p90",
    "95%ile": "p95",
    "p90": "p90",
    "p95": "p95",
    "max": "max",
    "avg": "avg",
}
WINDOW_KEYS = ("iterations", "failures", "errorRate", "p50", "p95", "p99", "throughput")
IMPACT_KEYS = ("p95Ratio", "throughputRatio", "degraded", "recovered", "recoverySeconds")


def clean_json(value: Any) -> Any:
    """JSON-safe copy: NaN/inf (invalid JSON, refused by the API server) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def error_text(error: Any) -> str:
    """The engine's error ([etype, msg, traceback] or text) as one line: ``etype: msg``."""
    return ": ".join(str(e) for e in error[:2]) if isinstance(error, list) else str(error)


# -- summary -----------------------------------------------------------------------------------


def _durations(stats: Any) -> dict[str, Any]:
    """Rally's durations table (or krally's compact one) → {min, median, p90, p95, max, avg}."""
    if not isinstance(stats, dict):
        return {}
    data = stats
    for key in ("total", "data"):
        if isinstance(data.get(key), dict):
            data = data[key]
    if isinstance(data.get("data"), dict):
        data = data["data"]
    return {out: data[key] for key, out in DURATION_KEYS.items() if key in data}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The engine's Rally-shaped workload result → ``status.runner.summary`` (bounded)."""
    stats = (result.get("statistics") or {}).get("durations") or {}
    summary: dict[str, Any] = {
        "iterations": result.get("total_iteration_count", 0),
        "failures": result.get("failed_iteration_count", 0),
        "loadDuration": result.get("load_duration"),
        "fullDuration": result.get("full_duration"),
        "durations": _durations(stats),
        "sla": [_sla_item(item) for item in (result.get("sla_results") or {}).get("sla") or []],
        "passSLA": bool(result.get("pass_sla")),
        "aborted": bool(result.get("aborted")),
    }
    atomics = stats.get("atomics") if isinstance(stats, dict) else None
    if isinstance(atomics, list):
        summary["atomics"] = atomics[:50]
    summary.update(_charts(result))
    unreached = [
        {"hook": index, "eventType": item.get("event_type"), "value": item.get("value")}
        for index, hook in enumerate(result.get("hooks") or [])
        for item in hook.get("unreached") or []
    ]
    if unreached:
        summary["unreached"] = unreached
    if result.get("warnings"):
        summary["warnings"] = [str(w) for w in result["warnings"]][:20]
    if result.get("error"):
        summary["error"] = error_text(result["error"])
    value: dict[str, Any] = clean_json(summary)
    return value


def _charts(result: dict[str, Any]) -> dict[str, Any]:
    """The HTML report's histogram (at most 60 bins), the timeline and its origin (epoch)."""
    charts: dict[str, Any] = {}
    if isinstance(result.get("histogram"), list):
        charts["histogram"] = [
            [float(f"{b[0]:.4g}"), float(f"{b[1]:.4g}"), b[2]]
            for b in result["histogram"][:60]
            if isinstance(b, list | tuple) and len(b) == 3
        ]  # 4 digits: ~25 bytes a bin in the status, not ~45
    if isinstance(result.get("timeline_start"), int | float):
        charts["timelineStart"] = result["timeline_start"]
    timeline = result.get("timeline")
    if isinstance(timeline, list):
        charts["timeline"] = timeline[-MAX_TIMELINE:]
    elif timeline is not None:
        charts["timeline"] = timeline
    return charts


# -- impact ------------------------------------------------------------------------------------


def status_impact(impact: Any) -> list[dict[str, Any]]:
    """The engine's per-firing impact (epoch times) → ``status.runner.impact``: RFC 3339 times,
    windows in seconds from the hook's start, rounded, at most MAX_IMPACT entries."""
    if not isinstance(impact, list):
        return []
    return [_impact_entry(entry) for entry in impact[:MAX_IMPACT] if isinstance(entry, dict)]


def _impact_entry(entry: dict[str, Any]) -> dict[str, Any]:
    started = entry.get("startedAt")
    item: dict[str, Any] = {
        "hook": entry.get("hook"),
        "name": entry.get("name"),
        "status": entry.get("status"),
        "startedAt": rfc3339(started) if isinstance(started, int | float) else None,
    }
    by = entry.get("triggeredBy") or {}
    item["triggeredBy"] = {
        "eventType": by.get("eventType", by.get("event_type")),
        "value": by.get("value"),
    }
    finished = entry.get("finishedAt")
    if isinstance(finished, int | float):
        item["finishedAt"] = rfc3339(finished)
    for name in ("baseline", "during", "after"):
        window = entry.get(name)
        if isinstance(window, dict):
            item[name] = _status_window(window, started)
    for key in IMPACT_KEYS:
        value = entry.get(key)
        item[key] = round(value, 4) if isinstance(value, float) else value
    tolerance = entry.get("tolerance")
    if isinstance(tolerance, dict):
        item["tolerance"] = {
            k: v for k, v in tolerance.items() if isinstance(v, int | float) and math.isfinite(v)
        }
    notes = entry.get("notes", entry.get("note"))
    if isinstance(notes, str):
        notes = [notes]
    if notes:
        item["notes"] = [str(n) for n in notes][:5]
    return {k: v for k, v in clean_json(item).items() if v is not None}


def _status_window(window: dict[str, Any], origin: Any) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if isinstance(origin, int | float):
        for key, out in (("start", "fromSeconds"), ("end", "toSeconds")):
            if isinstance(window.get(key), int | float):
                item[out] = round(window[key] - origin, 3)
    for key in WINDOW_KEYS:
        value = window.get(key)
        if isinstance(value, float) and math.isfinite(value):
            item[key] = round(value, 6)
        elif isinstance(value, int):
            item[key] = value
    return item


# -- hook results, back from the status --------------------------------------------------------


def settled_results(
    hooks: list[dict[str, Any]], status: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """(``hooks`` with each recorded firing's result from ``status.hooks`` in the engine's
    shape, how many have not finished). A firing without a recorded result stays as it was
    (pending, no times); one still running has ``finished_at`` None."""
    recorded = {
        firing_key(entry.get("index", -1), by.get("eventType"), by.get("value")): item
        for entry in status.get("hooks") or []
        for item in entry.get("results") or []
        for by in [item.get("triggeredBy") or {}]
    }
    unfinished = 0
    settled = []
    for index, hook in enumerate(hooks):
        results = []
        for result in hook.get("results") or []:
            by = result.get("triggered_by") or {}
            if result.get("status") != "launched":
                results.append(result)  # not fired (e.g. the firing limit): nothing to learn
                continue
            item = recorded.get(firing_key(index, by.get("event_type"), by.get("value")))
            settled_result, finished = _settled(result, item)
            unfinished += 0 if finished else 1
            results.append(settled_result)
        settled.append({**hook, "results": results})
    return settled, unfinished


def _settled(result: dict[str, Any], item: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """(one launched firing's result in the engine's shape from its recorded ``item``, whether
    it has finished)."""
    if item is None:
        return {**result, "status": "pending", "started_at": None}, False
    final = item.get("status") in HOOK_FINAL
    settled: dict[str, Any] = {
        "status": item.get("status"),
        "triggered_by": result.get("triggered_by") or {},
        "started_at": parse_time(item.get("startedAt")),
        "finished_at": parse_time(item.get("finishedAt")) if final else None,
    }
    if item.get("error"):
        settled["error"] = item["error"]
    return settled, final


def _sla_item(item: dict[str, Any]) -> dict[str, Any]:
    """One criterion's result as the status holds it: Rally's three fields, and the short form
    its plugin gave a failed one (the operator's display shows it)."""
    entry: dict[str, Any] = {
        "criterion": str(item.get("criterion")),
        "success": bool(item.get("success")),
        "detail": str(item.get("detail", "")),
    }
    if item.get("short"):
        entry["short"] = str(item["short"])
    return entry
