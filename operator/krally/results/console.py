"""Rally-like text tables of a report: per workload its durations (atomic actions nested), hook
firings with their output summary, impact, SLA and warnings."""

from __future__ import annotations

import json
from typing import Any

from krally.results import impact_table
from krally.results.text_table import ascii_table

# --- the text report ---------------------------------------------------------------------------

_COLUMNS: tuple[str, ...] = (
    "Action",
    "Min (sec)",
    "Median (sec)",
    "90%ile (sec)",
    "95%ile (sec)",
    "Max (sec)",
    "Avg (sec)",
    "Success",
    "Count",
)
_KEYS = ("min", "median", "90%ile", "95%ile", "max", "avg")


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _duration_rows(durations: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(node: dict[str, Any], depth: int) -> None:
        data = node.get("data", {})
        name = node.get("display_name") or node.get("name", "?")
        rows.append(
            [" " * depth + ("> " if depth else "") + str(name)]
            + [_num(data.get(k)) for k in _KEYS]
            + [str(data.get("success", "n/a")), str(data.get("iteration_count", 0))]
        )
        for child in node.get("children", []) or []:
            add(child, depth + 1)

    for node in durations.get("atomics", []) or []:
        add(node, 0)
    if durations.get("total"):
        total = dict(durations["total"])
        total["children"] = []
        total["display_name"] = "total"
        add(total, 0)
    return rows


def _hook_line(result: dict[str, Any]) -> str:
    by = result.get("triggered_by", {})
    took = (result.get("finished_at") or 0) - (result.get("started_at") or 0)
    line = f"    {by.get('event_type')} {by.get('value')}: {result.get('status')}, {took:.3f} s"
    if result.get("error"):
        error = result["error"]
        line += f", {error.get('etype')}: {error.get('msg')}"
    summary = _output_summary(result.get("output"))
    if summary:
        line += f", {summary}"
    return line


def _output_summary(output: dict[str, Any] | None) -> str:
    if not output:
        return ""
    for item in output.get("complete", []):
        if item.get("chart_plugin") == "TextArea":
            text = " ".join(
                str(d).strip() for d in item.get("data", []) if not str(d).startswith("RetCode")
            )
            return text if len(text) <= 80 else text[:77] + "..."
    n = len(output.get("additive", [])) + len(output.get("complete", []))
    return f"{n} chart(s)"


def render_workload(w: dict[str, Any], show_warnings: bool = True) -> str:

    out: list[str] = []
    ((scenario, _),) = w["scenario"].items()
    ((runner, runner_cfg),) = w["runner"].items()
    cfg = ", ".join(f"{k}={v}" for k, v in runner_cfg.items())
    pods = f", parallelism={w['parallelism']}" if w.get("parallelism") else ""
    out.append(f"\nTask {scenario} (runner {runner}{': ' + cfg if cfg else ''}{pods})\n")
    for warning in w.get("warnings", []) if show_warnings else []:
        out.append(f"warning: {warning}\n")
    if w.get("error"):
        out.append(f"RUN ERROR: {w['error'][0]}: {w['error'][1]}\n")
    out.append("\nResponse Times (sec):\n")
    rows = _duration_rows(w.get("statistics", {}).get("durations", {}))
    out.append(ascii_table(_COLUMNS, rows) if rows else "  (no iterations)\n")
    total, failed = w.get("total_iteration_count", 0), w.get("failed_iteration_count", 0)
    out.append(f"Iterations: {total}, failed: {failed}\n")
    out.append(f"Load duration: {w.get('load_duration', 0.0):.3f} s\n")
    out.append(f"Full duration: {w.get('full_duration', 0.0):.3f} s\n")
    if w.get("hooks"):
        out.append("\nHooks:\n")
        for index, hook in enumerate(w["hooks"]):
            config = hook["config"]
            ((action, action_cfg),) = config["action"].items()
            ((trigger, trigger_cfg),) = config["trigger"].items()
            summary = ", ".join(f"{k} {v}" for k, v in hook.get("summary", {}).items())
            desc = f" ({config['description']})" if config.get("description") else ""
            out.append(
                f"  #{index + 1} {action} {json.dumps(action_cfg)}{desc}; trigger {trigger} "
                f"{json.dumps(trigger_cfg)}: {summary or 'never fired'}\n"
            )
            out.extend(_hook_line(r) + "\n" for r in hook.get("results", []))
            unreached = hook.get("unreached") or []
            if unreached:
                values = ", ".join(f"{u['event_type']} {u['value']}" for u in unreached)
                count = hook.get("unreached_count", len(unreached))
                more = f" (and {count - len(unreached)} more)" if count > len(unreached) else ""
                out.append(f"    not reached: {values}{more}\n")
            if hook.get("trigger_error"):
                out.append(f"    trigger error: {hook['trigger_error']}\n")
    verdict = "PASSED" if w.get("pass_sla") else "FAILED"
    out.append(f"\nSLA: {verdict}\n")
    for item in w.get("sla_results", {}).get("sla", []):
        state = "passed" if item.get("success") else "FAILED"
        out.append(f"  {item.get('criterion')}: {state} - {item.get('detail', '')}\n")
    out.append(impact_table.render(w.get("impact")))
    return "".join(out)


def render_report(report: dict[str, Any], show_warnings: bool = True) -> str:
    """Rally-like text for a JSON report (``krally run`` and ``krally report``)."""
    out: list[str] = []
    for task in report["tasks"]:
        out.extend(
            render_workload(w, show_warnings)
            for s in task.get("subtasks", [])
            for w in s.get("workloads", [])
        )
        verdict = "PASSED" if task.get("pass_sla") else "FAILED"
        out.append(f"\nTask {task.get('title', '')!r}: {task.get('status')}, SLA {verdict}\n")
    return "".join(out)
