"""krally's result dicts ↔ the JSON document ``rally task import`` accepts (Rally 5.1.1).

Rally's import validates each task against a closed schema (``additionalProperties: false`` on
the task, subtask, workload, hook and hook-result objects) and then checks every per-iteration
record of ``data``. It reads nothing but the ``tasks`` list of the document, so krally's extras
go to a sibling top-level section, ``"krally"``, which Rally ignores::

    {"info": {...}, "tasks": [<Rally's task>], "krally": {
        "version": 1,
        "tasks":     {<task uuid>:     {"warnings": [...]}},
        "workloads": {<workload uuid>: {"warnings", "aborted", "timeline", "error", "impact",
                                        "hooks": [{"unreached", "unreached_count",
                                                   "trigger_error", "results": [{...}]}]}}}}

What changes inside Rally's part, and why:

* a hook result's ``error`` is Rally's import form ``[etype, msg, details]`` (the runtime form,
  a dict, is what Rally's own exports hold and its import rejects);
* a hook's ``config`` holds ``action`` and ``trigger`` as ``[name, config]`` pairs, the form
  Rally keeps in its database and which its HTML report, JSON export and ``task trends`` read
  after an import (``{name: config}`` imports, then breaks ``rally task report``);
* keys Rally does not know (a firing's Job name, ``firedAt``) move to the extras, per result.

``inline_extras`` reverses all of it for ``krally report`` (and also reads Rally's own JSON).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from krally.task.stats import WorkloadStats

SECTION = "krally"
SECTION_VERSION = 1

TASK_KEYS = (
    "uuid",
    "title",
    "description",
    "version",
    "status",
    "tags",
    "env_name",
    "env_uuid",
    "created_at",
    "updated_at",
    "pass_sla",
)
SUBTASK_KEYS = (
    "uuid",
    "task_uuid",
    "title",
    "description",
    "status",
    "pass_sla",
    "run_in_parallel",
    "created_at",
    "updated_at",
    "sla",
)
WORKLOAD_KEYS = (
    "uuid",
    "task_uuid",
    "subtask_uuid",
    "description",
    "scenario",
    "args",
    "runner",
    "runner_type",
    "hooks",
    "min_duration",
    "max_duration",
    "start_time",
    "load_duration",
    "full_duration",
    "statistics",
    "data",
    "failed_iteration_count",
    "total_iteration_count",
    "created_at",
    "updated_at",
    "contexts",
    "contexts_results",
    "position",
    "pass_sla",
    "sla_results",
    "sla",
)
HOOK_RESULT_KEYS = ("started_at", "finished_at", "triggered_by", "status", "error", "output")
# Workload keys krally adds that the extras keep (anything else unknown is dropped).
WORKLOAD_EXTRAS = (
    "warnings",
    "aborted",
    "timeline",
    "timeline_start",
    "histogram",
    "error",
    "impact",
    "parallelism",
)
HOOK_EXTRAS = ("unreached", "unreached_count", "trigger_error")


def finite(value: Any) -> Any:
    """A JSON-safe copy: NaN and infinities (invalid JSON) become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any, default: float | None = 0.0) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    value = float(value)
    return value if math.isfinite(value) else default


# -- hooks -------------------------------------------------------------------------------------


def rally_error(error: Any) -> list[str]:
    """Any error form (dict, list, string) → Rally's import form ``[etype, msg, details]``."""
    if isinstance(error, dict):
        return [_str(error.get("etype")), _str(error.get("msg")), _str(error.get("details"))]
    if isinstance(error, list | tuple):
        items = [_str(e) for e in error[:3]]
        return items + [""] * (3 - len(items))
    return ["Error", _str(error), ""]


def dict_error(error: Any) -> dict[str, str]:
    """Any error form → the runtime form ``{etype, msg, details}`` (krally's and Rally's)."""
    etype, msg, details = rally_error(error)
    return {"etype": etype, "msg": msg, "details": details}


def _output(output: Any) -> dict[str, list[Any]]:
    output = output if isinstance(output, dict) else {}
    return {
        kind: list(output.get(kind) or []) if isinstance(output.get(kind), list) else []
        for kind in ("additive", "complete")
    }


def _pair(value: Any) -> list[Any]:
    """``{name: cfg}`` or ``[name, cfg]`` → ``[name, cfg]``."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, cfg),) = value.items()
        return [name, cfg]
    if isinstance(value, list | tuple) and len(value) == 2:
        return [value[0], value[1]]
    return [_str(value), None]


def _mapping(value: Any) -> dict[str, Any]:
    """``[name, cfg]`` or ``{name: cfg}`` → ``{name: cfg}``."""
    if isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], str):
        return {value[0]: value[1]}
    return value if isinstance(value, dict) else {}


def rally_hook_result(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One firing → (Rally's HookResult, the keys Rally does not know)."""
    by = result.get("triggered_by") or {}
    started = _float(result.get("started_at"))
    out: dict[str, Any] = {
        "status": _str(result.get("status") or "failed"),
        # Rally's report formats both times; a firing that never started reads 0 like Rally's.
        "started_at": started,
        "finished_at": _float(result.get("finished_at"), started),
        "triggered_by": {"event_type": _str(by.get("event_type")), "value": by.get("value")},
    }
    if result.get("error"):
        out["error"] = rally_error(result["error"])
    if result.get("output"):
        out["output"] = _output(result["output"])
    extras = {k: v for k, v in result.items() if k not in HOOK_RESULT_KEYS}
    return out, extras


def rally_hook(hook: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One hook's results → (Rally's hook entry, its extras; empty when there are none)."""
    config = hook.get("config") or {}
    results, result_extras = [], []
    for result in hook.get("results") or []:
        item, extra = rally_hook_result(result)
        results.append(item)
        result_extras.append(extra)
    out = {
        "config": {
            "description": config.get("description") or "",
            "action": _pair(config.get("action")),
            "trigger": _pair(config.get("trigger")),
        },
        "results": results,
        "summary": {str(k): v for k, v in (hook.get("summary") or {}).items()},
    }
    extras = {k: hook[k] for k in HOOK_EXTRAS if hook.get(k)}
    if any(result_extras):
        extras["results"] = result_extras
    return out, extras


# -- workloads, subtasks, tasks ----------------------------------------------------------------


def rally_workload(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """krally's workload result → (Rally's workload without ``data``, krally's extras)."""
    out = {k: result[k] for k in WORKLOAD_KEYS if k in result and k != "data"}
    out["description"] = _str(result.get("description"))
    out.setdefault("position", 0)
    out.setdefault("contexts", {})
    out.setdefault("contexts_results", [])
    out.setdefault("sla", {})
    # Rally's criterion results are {criterion, success, detail}; krally's short form stays out.
    sla_items = (result.get("sla_results") or {}).get("sla") or []
    out["sla_results"] = {
        "sla": [{k: v for k, v in item.items() if k != "short"} for item in sla_items]
    }
    out.setdefault("statistics", {"durations": {}})
    out.setdefault("total_iteration_count", 0)
    out.setdefault("failed_iteration_count", 0)
    out["pass_sla"] = bool(result.get("pass_sla"))
    out["load_duration"] = _float(result.get("load_duration"))
    out["full_duration"] = _float(result.get("full_duration"))
    for key in ("min_duration", "max_duration", "start_time"):
        out[key] = _float(result.get(key), None)
    hooks, hook_extras = [], []
    for hook in result.get("hooks") or []:
        item, extra = rally_hook(hook)
        hooks.append(item)
        hook_extras.append(extra)
    out["hooks"] = hooks
    extras = {k: result[k] for k in WORKLOAD_EXTRAS if k in result}
    if any(hook_extras):
        extras["hooks"] = hook_extras
    return finite(out), finite(extras)


def rally_subtask(subtask: dict[str, Any]) -> dict[str, Any]:
    """A subtask's own fields (no ``workloads``)."""
    out = {k: subtask[k] for k in SUBTASK_KEYS if k in subtask}
    out["title"] = _str(subtask.get("title"))
    out["description"] = _str(subtask.get("description"))
    return finite(out)


def rally_task(task: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task's own fields (no ``subtasks``) and its extras."""
    out = {k: task[k] for k in TASK_KEYS if k in task}
    out["title"] = _str(task.get("title"))
    out["description"] = _str(task.get("description"))
    extras = {"warnings": list(task["warnings"])} if task.get("warnings") else {}
    return finite(out), extras


def empty_section() -> dict[str, Any]:
    return {"version": SECTION_VERSION, "tasks": {}, "workloads": {}}


def to_rally(report: dict[str, Any], data: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """A whole krally report (``run_task``'s dict) → the import document, in memory.

    ``data`` maps a workload uuid to its per-iteration records; a workload without any gets
    ``"data": []`` (Rally then counts 0 iterations: its import recomputes the counts and the
    statistics from ``data``). ``krally run --json`` streams instead (``krally.results.stream``).
    """
    section = empty_section()
    tasks = []
    for task in report.get("tasks") or []:
        task_out, task_extras = rally_task(task)
        subtasks = []
        for subtask in task.get("subtasks") or []:
            workloads = []
            for workload in subtask.get("workloads") or []:
                item, extras = rally_workload(workload)
                item["data"] = list((data or {}).get(workload.get("uuid"), []))
                workloads.append(item)
                if extras:
                    section["workloads"][str(workload.get("uuid"))] = extras
            subtask_out = rally_subtask(subtask)
            subtask_out["workloads"] = workloads
            subtasks.append(subtask_out)
        task_out["subtasks"] = subtasks
        tasks.append(task_out)
        if task_extras:
            section["tasks"][str(task.get("uuid"))] = task_extras
    return {"info": dict(report.get("info") or {}), "tasks": tasks, SECTION: section}


# -- back: for krally report -------------------------------------------------------------------


def inline_extras(document: dict[str, Any]) -> dict[str, Any]:
    """A results document (krally's, old or new, or Rally's own) → krally's report shape.

    Extras from the ``"krally"`` section go back onto their task, workload and hooks; Rally's
    forms are normalised to the runtime ones the text report reads (hook errors as dicts, hook
    ``action``/``trigger`` as ``{name: cfg}``). ``data`` is dropped (the report never needs it).
    """
    report = copy.deepcopy({k: v for k, v in document.items() if k != SECTION})
    found = document.get(SECTION)
    section: dict[str, Any] = found if isinstance(found, dict) else {}
    task_extras = section.get("tasks") or {}
    workload_extras = section.get("workloads") or {}
    for task in report.get("tasks") or []:
        if not isinstance(task, dict):
            continue
        task.update(task_extras.get(str(task.get("uuid")), {}))
        for subtask in task.get("subtasks") or []:
            for workload in subtask.get("workloads") or []:
                data = workload.pop("data", None)
                extras = dict(workload_extras.get(str(workload.get("uuid")), {}))
                hook_extras = extras.pop("hooks", [])
                workload.update(extras)
                if "timeline" not in workload and isinstance(data, list) and data:
                    workload.update(_charts_from_data(data))  # Rally's own JSON
                if "scenario" not in workload and "name" in workload:
                    workload["scenario"] = {workload["name"]: workload.get("args") or {}}
                runner, runner_type = workload.get("runner"), workload.get("runner_type")
                if runner_type and not (isinstance(runner, dict) and list(runner) == [runner_type]):
                    workload["runner"] = {runner_type: runner or {}}
                for index, hook in enumerate(workload.get("hooks") or []):
                    _inline_hook(hook, hook_extras[index] if index < len(hook_extras) else {})
    return report


def _charts_from_data(data: list[Any]) -> dict[str, Any]:
    """The timeline and histogram krally keeps, from Rally's per-iteration records."""

    stats = WorkloadStats()
    for record in data:
        if isinstance(record, dict) and isinstance(record.get("timestamp"), int | float):
            stats.add({**record, "duration": _float(record.get("duration"))})
    return {
        "timeline": stats.timeline(),
        "timeline_start": stats.timeline_start,
        "histogram": stats.durations.bins(),
    }


def _inline_hook(hook: dict[str, Any], extras: dict[str, Any]) -> None:
    config = hook.setdefault("config", {})
    config["action"] = _mapping(config.get("action"))
    config["trigger"] = _mapping(config.get("trigger"))
    result_extras = extras.get("results") or []
    hook.update({k: v for k, v in extras.items() if k != "results"})
    for index, result in enumerate(hook.get("results") or []):
        if result.get("error"):
            result["error"] = dict_error(result["error"])
        if index < len(result_extras) and result_extras[index]:
            result.update(result_extras[index])
