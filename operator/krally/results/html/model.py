"""krally's report dict → the bounded, JSON-safe data the HTML report draws.

Everything time-based is in seconds from the load's start (the timeline's origin), so that the
charts, the firing markers and the impact windows share one axis. Sizes are capped (hook
results, outputs, chart points) so that a report stays small however long the run: the
timeline and histogram are bounded already (300 points, 40 bins).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from krally.results import impact_table, rally

MAX_RESULTS_PER_HOOK = 500  # rows in a hook's table; the rest are counted
MAX_OUTPUT_CHARS = 20_000  # text of one hook result's output
MAX_CHART_POINTS = 2_000  # points per series of a hook's chart
MAX_IMPACT = 100
MAX_GAPS = 1_000  # timeline points in all, gaps filled (the timeline itself has 300 at most)
# Hook outputs are the only unbounded part (1 000 firings with 20 KB each would be 20 MB):
# past this many characters of outputs in a report, later outputs are left out (and said so).
MAX_OUTPUTS_CHARS = 2_000_000

_DURATION_KEYS = (
    ("min", "min"),
    ("median", "median"),
    ("p90", "90%ile"),
    ("p95", "95%ile"),
    ("max", "max"),
    ("avg", "avg"),
)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def epoch(value: Any) -> float | None:
    """An epoch number or an RFC 3339 string → epoch seconds (None if neither)."""
    number = _num(value)
    if number is not None:
        return number
    if isinstance(value, str) and value:
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def clock(value: Any) -> str:
    seconds = epoch(value)
    if seconds is None or seconds <= 0:
        return ""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def trigger_text(by: Any) -> str:
    """``iteration 1500`` / ``12 s``: what fired a hook result."""
    if not isinstance(by, dict):
        return ""
    kind = by.get("event_type", by.get("eventType"))
    value = by.get("value")
    if kind == "time":
        return f"{value} s"
    return f"{kind} {value}" if kind else str(value)


def action_name(config: dict[str, Any]) -> str:
    action = config.get("action") or {}
    return next(iter(action), "") if isinstance(action, dict) else str(action)


def _trigger_config(config: dict[str, Any]) -> str:
    trigger = config.get("trigger") or {}
    if not isinstance(trigger, dict) or not trigger:
        return ""
    name, args = next(iter(trigger.items()))
    if isinstance(args, dict):
        at = args.get("at")
        unit = args.get("unit", "")
        if at is not None:
            values = at if isinstance(at, list) else [at]
            shown = ", ".join(str(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
            return f"{name}: {unit} {shown}".replace("  ", " ")
        parts = ", ".join(f"{k}={v}" for k, v in args.items())
        return f"{name}: {parts}"
    return str(name)


def _durations(data: Any) -> dict[str, float | None]:
    data = data if isinstance(data, dict) else {}
    return {out: _num(data.get(key, data.get(out))) for out, key in _DURATION_KEYS}


def _timeline(points: Any) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        "offset": [],
        "end": [],
        "rate": [],
        "failureRate": [],
        "count": [],
        "failures": [],
        "median": [],
        "p95": [],
    }
    end: float | None = None
    for point in points if isinstance(points, list) else []:
        if not isinstance(point, dict):
            continue
        offset, width = _num(point.get("offset")), _num(point.get("width")) or 1.0
        if offset is None:
            continue
        # Intervals where no iteration started have no point: they are drawn as zero, not
        # as the step before them held on.
        while end is not None and offset - end > 1e-9 and len(columns["offset"]) < MAX_GAPS:
            _gap(columns, end, width)
            end += width
        end = offset + width
        columns["end"].append(end)
        count = int(_num(point.get("count")) or 0)
        failures = int(_num(point.get("failures")) or 0)
        durations = _durations(point.get("durations"))
        columns["offset"].append(offset)
        columns["count"].append(count)
        columns["failures"].append(failures)
        columns["rate"].append(count / width)
        columns["failureRate"].append(failures / width)
        columns["median"].append(durations["median"])
        columns["p95"].append(durations["p95"])
    return columns


def _gap(columns: dict[str, list[Any]], at: float, width: float) -> None:
    columns["offset"].append(at)
    columns["end"].append(at + width)
    for key in ("rate", "failureRate", "count", "failures"):
        columns[key].append(0)
    columns["median"].append(None)
    columns["p95"].append(None)


def _atomics(nodes: Any, depth: int = 0, out: list[dict[str, Any]] | None = None) -> list[Any]:
    rows = [] if out is None else out
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        data: dict[str, Any] = node["data"] if isinstance(node.get("data"), dict) else {}
        row: dict[str, Any] = {
            "name": str(node.get("display_name") or node.get("name")),
            "depth": depth,
        }
        row.update(_durations(data))
        row["count"] = data.get("iteration_count")
        row["success"] = data.get("success")
        rows.append(row)
        _atomics(node.get("children"), depth + 1, rows)
    return rows


def _text(value: Any, limit: int = MAX_OUTPUT_CHARS) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more chars)"


def _error_text(error: Any) -> str:
    if not error:
        return ""
    err = rally.dict_error(error)
    head = ": ".join(p for p in (err.get("etype"), err.get("msg")) if p)
    return _text(head or str(error), 2_000)


def _chart(chart: Any) -> dict[str, Any] | None:
    """One of Rally's output charts, bounded (plugins: Lines, StackedArea, Pie, Table,
    StatsTable, TextArea)."""
    if not isinstance(chart, dict):
        return None
    data = chart.get("data")
    plugin = str(chart.get("chart_plugin") or "")
    if plugin in ("Lines", "StackedArea") and isinstance(data, list):
        series = []
        for item in data[:20]:
            if isinstance(item, list | tuple) and len(item) == 2:
                name, points = item
                if isinstance(points, list):
                    points = [p for p in points if isinstance(p, list | tuple) and len(p) == 2]
                    points = points[:MAX_CHART_POINTS]
                series.append([str(name), points])
        data = series
    elif plugin == "TextArea":
        lines = data if isinstance(data, list) else [data]
        data = _text("\n".join(str(line) for line in lines)).split("\n")
    elif plugin in ("Table", "StatsTable") and isinstance(data, dict):
        rows: list[Any] = data["rows"] if isinstance(data.get("rows"), list) else []
        data = {"cols": list(data.get("cols") or [])[:30], "rows": rows[:MAX_CHART_POINTS]}
    elif isinstance(data, list):
        data = data[:MAX_CHART_POINTS]
    return {
        "title": str(chart.get("title") or ""),
        "description": str(chart.get("description") or ""),
        "plugin": plugin,
        "data": rally.finite(data),
        "label": str(chart.get("label") or ""),
        "axisLabel": str(chart.get("axis_label") or ""),
    }


def _output(output: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"additive": [], "complete": []}
    if not isinstance(output, dict):
        return out
    for kind in out:
        for chart in output.get(kind) or []:
            item = _chart(chart)
            if item is not None:
                out[kind].append(item)
    return out


def _bounded_output(output: Any, budget: list[int]) -> dict[str, Any]:
    """The output's charts, or an empty one marked ``omitted`` once ``budget`` is spent."""
    charts = _output(output)
    size = len(json.dumps(charts, default=str))
    if size > budget[0]:
        return {"additive": [], "complete": [], "omitted": True}
    budget[0] -= size
    return charts


def _hooks(hooks: Any, origin: float | None) -> tuple[list[Any], list[Any]]:
    """(the hooks table's data, the firing markers)."""
    table, firings = [], []
    budget = [MAX_OUTPUTS_CHARS]
    for index, hook in enumerate(hooks if isinstance(hooks, list) else []):
        config = hook.get("config") or {}
        results = [r for r in hook.get("results") or [] if isinstance(r, dict)]
        rows = []
        for number, result in enumerate(results):
            started, finished = epoch(result.get("started_at")), epoch(result.get("finished_at"))
            fired = epoch(result.get("firedAt")) or started
            by = trigger_text(result.get("triggered_by"))
            offset = fired - origin if fired is not None and origin is not None else None
            if offset is not None:
                label = f"#{index + 1} {action_name(config)} @ {by}"
                firings.append(
                    {
                        "hook": index,
                        "label": label,
                        "offset": offset,
                        "status": result.get("status"),
                    }
                )
            if number >= MAX_RESULTS_PER_HOOK:
                continue
            rows.append(
                {
                    "status": str(result.get("status") or ""),
                    "triggeredBy": by,
                    "offset": offset,
                    "startedAt": clock(started),
                    "seconds": (finished - started)
                    if started and finished and finished >= started
                    else None,
                    "error": _error_text(result.get("error")),
                    "output": _bounded_output(result.get("output"), budget),
                    "job": str(result.get("job") or ""),
                }
            )
        unreached = [trigger_text(u) for u in hook.get("unreached") or []]
        table.append(
            {
                "index": index,
                "name": action_name(config),
                "description": str(config.get("description") or ""),
                "trigger": _trigger_config(config),
                "results": rows,
                "hidden": max(0, len(results) - MAX_RESULTS_PER_HOOK),
                "counts": _status_counts(results),
                "unreached": unreached[:50],
                "unreachedCount": len(unreached),
            }
        )
    return table, firings


def _status_counts(results: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        status = str(result.get("status") or "unknown")
        counts[status] = counts.get(status, 0) + 1
    return counts


def _window(window: Any, origin: float | None) -> dict[str, Any] | None:
    if not isinstance(window, dict) or origin is None:
        return None
    start, end = _num(window.get("start")), _num(window.get("end"))
    out = {k: _num(window.get(k)) for k in ("errorRate", "p50", "p95", "p99", "throughput")}
    out["iterations"] = window.get("iterations")
    out["failures"] = window.get("failures")
    out["from"] = start - origin if start is not None else None
    out["to"] = end - origin if end is not None else None
    return out


def _impact(impact: Any, origin: float | None) -> list[dict[str, Any]]:
    out = []
    for entry in (impact if isinstance(impact, list) else [])[:MAX_IMPACT]:
        if not isinstance(entry, dict):
            continue
        started = epoch(entry.get("startedAt"))
        item: dict[str, Any] = {
            "hook": entry.get("hook"),
            "label": f"#{int(entry.get('hook') or 0) + 1} {entry.get('name') or ''} @ "
            + trigger_text(entry.get("triggeredBy")),
            "offset": started - origin if started is not None and origin is not None else None,
            "status": entry.get("status"),
            "notes": [str(n) for n in entry.get("notes") or []][:10],
        }
        for name in ("baseline", "during", "after"):
            item[name] = _window(entry.get(name), origin)
        for key in ("p95Ratio", "throughputRatio", "recoverySeconds"):
            item[key] = _num(entry.get(key))
        for key in ("degraded", "recovered"):
            item[key] = entry.get(key) if isinstance(entry.get(key), bool) else None
        item["lowestThroughputRatio"] = impact_table.lowest_throughput_ratio(entry)
        item["toleratedThroughputRatio"] = impact_table.tolerated_throughput_ratio(entry)
        out.append(item)
    return out


def workload_model(workload: dict[str, Any]) -> dict[str, Any]:
    stats = (workload.get("statistics") or {}).get("durations") or {}
    total = (stats.get("total") or {}).get("data") or {}
    origin = epoch(workload.get("timeline_start")) or epoch(workload.get("start_time"))
    hooks, firings = _hooks(workload.get("hooks"), origin)
    iterations = int(_num(workload.get("total_iteration_count")) or 0)
    failures = int(_num(workload.get("failed_iteration_count")) or 0)
    load = _num(workload.get("load_duration")) or 0.0
    scenario = workload.get("scenario") or {}
    runner = workload.get("runner") or {}
    runner_type = next(iter(runner), "") if isinstance(runner, dict) else ""
    error = workload.get("error")
    return {
        "position": workload.get("position", 0),
        "scenario": next(iter(scenario), "") if isinstance(scenario, dict) else str(scenario),
        "description": str(workload.get("description") or ""),
        "runner": runner_type,
        "runnerArgs": runner.get(runner_type) if runner_type else {},
        "iterations": iterations,
        "failures": failures,
        "loadDuration": load,
        "fullDuration": _num(workload.get("full_duration")),
        "throughput": iterations / load if load > 0 else None,
        "startedAt": clock(workload.get("start_time")),
        "passSLA": bool(workload.get("pass_sla")),
        "aborted": bool(workload.get("aborted")),
        "error": ": ".join(str(e) for e in error[:2]) if isinstance(error, list) else error,
        # Rally's table counts successful iterations; the sketch over all of them if that is
        # all there is (a cluster task).
        "durations": _durations(total),
        "timeline": _timeline(workload.get("timeline")),
        "histogram": [
            [_num(b[0]), _num(b[1]), int(b[2])]
            for b in workload.get("histogram") or []
            if isinstance(b, list | tuple) and len(b) == 3
        ],
        "atomics": _atomics(stats.get("atomics")),
        "hooks": hooks,
        "firings": firings,
        "impact": _impact(workload.get("impact"), origin),
        "sla": [
            {
                "criterion": str(item.get("criterion")),
                "success": bool(item.get("success")),
                "detail": str(item.get("detail") or ""),
            }
            for item in (workload.get("sla_results") or {}).get("sla") or []
            if isinstance(item, dict)
        ],
        "warnings": [str(w) for w in workload.get("warnings") or []][:50],
    }


def verdict(workloads: list[dict[str, Any]]) -> str:
    """``error`` (a run error), ``failed`` (an SLA criterion), ``passed``; ``empty``."""
    if not workloads:
        return "empty"
    if any(w["error"] for w in workloads):
        return "error"
    return "passed" if all(w["passSLA"] for w in workloads) else "failed"


def report_model(report: dict[str, Any]) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for task in report.get("tasks") or []:
        workloads = [
            workload_model(w)
            for sub in task.get("subtasks") or []
            for w in sub.get("workloads") or []
        ]
        tasks.append(
            {
                "title": str(task.get("title") or ""),
                "uuid": str(task.get("uuid") or ""),
                "status": str(task.get("status") or ""),
                "verdict": verdict(workloads),
                "workloads": workloads,
                "warnings": [str(w) for w in task.get("warnings") or []][:50],
            }
        )
    info = report.get("info") or {}
    every: list[dict[str, Any]] = [w for t in tasks for w in t["workloads"]]
    return {
        "generatedAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "source": str(info.get("rally_version") or ""),
        "verdict": verdict(every),
        "tasks": tasks,
    }
