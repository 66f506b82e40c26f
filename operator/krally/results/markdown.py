"""krally's report (``run_task``'s shape, or ``krally report``'s) as a pull-request comment.

GitHub-flavoured markdown, short: a headline verdict per task, then per workload its scenario,
runner, iterations and failures, the duration table (min / median / p90 / p95 / max), the SLA
criteria, the hooks (trigger, status counts, first error), the disruption impact per firing
and the warnings. Text from hooks and errors goes into code spans (no markdown, HTML or
mentions in it), the rest is escaped; every cell is one line, pipes escaped, cut at
``CELL_LIMIT`` characters; long lists are cut too, saying how much was left out. The whole
document stays within ``max_chars`` (GitHub refuses a comment over 65536 characters): past
it, whole lines are dropped from the end and a last line says so.
"""

from __future__ import annotations

import re
from typing import Any

from krally.results import impact_table
from krally.results.junit import (
    clip,
    error_text,
    firing_failed,
    firing_label,
    hook_label,
    scenario_name,
    single,
    trigger_text,
    workloads,
)

GITHUB_LIMIT = 65536  # characters in an issue or pull-request comment
# The default cap leaves room for what a bot adds around the report, and for characters
# outside the BMP, which count twice where the limit is in UTF-16 code units.
MAX_CHARS = 60000
CELL_LIMIT = 120
ARGS_LIMIT = 60
MAX_DURATION_ROWS = 20
MAX_IMPACT_ROWS = 30
MAX_NOTES = 10
MAX_WARNINGS = 10

PASS, FAIL, RUNNING, WARN = "✅", "❌", "⏳", "⚠️"
YES, NO = "✓", "✗"

# What could start markup inside a line (emphasis, links, HTML, entities, code, tables).
_SPECIAL = re.compile(r"([\\`*_\[\]<|~&])")
_SPACES = re.compile(r"\s+")
_FINISHED = ("finished", "crashed", "aborted")


def _one_line(value: Any, limit: int) -> str:
    return clip(_SPACES.sub(" ", str(value)).strip(), limit, "…")


def text(value: Any, limit: int = CELL_LIMIT) -> str:
    """Plain text as markdown: one line, cut, every markdown character escaped."""
    return _SPECIAL.sub(r"\\\1", _one_line(value, limit))


def code(value: Any, limit: int = CELL_LIMIT, cell: bool = True) -> str:
    """Untrusted text (an error, a hook's args) as a code span: nothing in it is rendered.
    In a table cell (``cell``) its pipes are escaped, as GitHub's tables need even there."""
    body = _one_line(value, limit)
    if not body:
        return ""
    fence = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    if cell:
        body = body.replace("|", "\\|")
    return f"{fence}{body}{fence}"


def table(headers: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A GFM table's lines; ``align`` is one of ``l``, ``r``, ``c`` per column (default l)."""
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    spec = [marks[align[i] if i < len(align) else "l"] for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(spec) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _seconds(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def _more(count: int, what: str) -> list[str]:
    return [f"_… and {count} more {what}_"] if count > 0 else []


# --- a workload's sections --------------------------------------------------------------------

_DURATION_KEYS = ("min", "median", "90%ile", "95%ile", "max")


def _duration_rows(durations: dict[str, Any]) -> list[list[str]]:
    """The atomic actions (nested ones marked ↳) and the total, like the text report's table."""
    rows: list[list[str]] = []

    def add(node: dict[str, Any], depth: int) -> None:
        data = node.get("data") or {}
        name = node.get("display_name") or node.get("name") or "?"
        rows.append(
            ["↳" * depth + (" " if depth else "") + text(name)]
            + [_seconds(data.get(key)) for key in _DURATION_KEYS]
            + [text(data.get("success", "n/a")), str(data.get("iteration_count", 0))]
        )
        for child in node.get("children") or []:
            add(child, depth + 1)

    for node in durations.get("atomics") or []:
        add(node, 0)
    if durations.get("total"):
        add({**durations["total"], "children": [], "display_name": "total"}, 0)
    return rows


def _durations(workload: dict[str, Any]) -> list[str]:
    rows = _duration_rows((workload.get("statistics") or {}).get("durations") or {})
    if not rows or not workload.get("total_iteration_count"):
        return ["_No iterations._"]
    headers = ["Action", "Min (s)", "Median (s)", "p90 (s)", "p95 (s)", "Max (s)"]
    out = table([*headers, "Success", "Count"], rows[:MAX_DURATION_ROWS], "lrrrrrrr")
    return out + _more(len(rows) - MAX_DURATION_ROWS, "actions")


def _sla(workload: dict[str, Any]) -> list[str]:
    items = (workload.get("sla_results") or {}).get("sla") or []
    if not items:
        return []
    rows = [
        [
            code(item.get("criterion")),
            YES if item.get("success") else NO,
            text(item.get("detail", "")),
        ]
        for item in items
    ]
    verdict = PASS if workload.get("pass_sla") else FAIL
    return [f"**SLA** {verdict}", "", *table(["Criterion", "", "Detail"], rows, "lcl")]


def _status_counts(hook: dict[str, Any]) -> str:
    summary = hook.get("summary")
    if not isinstance(summary, dict) or not summary:
        summary = {}
        for result in hook.get("results") or []:
            status = str(result.get("status"))
            summary[status] = summary.get(status, 0) + 1
    parts = [f"{count} {text(status)}" for status, count in summary.items()]
    unreached = int(hook.get("unreached_count") or len(hook.get("unreached") or []))
    if unreached:
        parts.append(f"{unreached} not reached")
    if hook.get("trigger_error"):
        parts.append("trigger error")
    return ", ".join(parts) or "never fired"


def _first_error(hook: dict[str, Any]) -> str:
    for result in hook.get("results") or []:
        if firing_failed(result):
            error = result.get("error") or f"status {result.get('status')}"
            return f"{text(firing_label(result.get('triggered_by')))}: {code(error_text(error))}"
    if hook.get("trigger_error"):
        return f"trigger: {code(hook['trigger_error'])}"
    return ""


def _hooks(workload: dict[str, Any]) -> list[str]:
    hooks = [h for h in workload.get("hooks") or [] if isinstance(h, dict)]
    if not hooks:
        return []
    rows = []
    for index, hook in enumerate(hooks):
        _, args = single((hook.get("config") or {}).get("action"))
        label = text(hook_label(index, hook))
        if args is not None:
            label += " " + code(args if isinstance(args, str) else repr(args), ARGS_LIMIT)
        rows.append([label, code(trigger_text(hook)), _status_counts(hook), _first_error(hook)])
    return ["**Hooks**", "", *table(["Hook", "Trigger", "Results", "First error"], rows)]


def _impact(workload: dict[str, Any]) -> list[str]:
    impact = [e for e in workload.get("impact") or [] if isinstance(e, dict)]
    if not impact:
        return []
    rows: list[list[str]] = []
    notes: list[str] = []
    for entry in impact:
        hook = f"#{int(entry.get('hook') or 0) + 1} {entry.get('name') or ''}".rstrip()
        trigger = impact_table.trigger_label(entry)
        ratio = entry.get("throughputRatio")
        rows.append(
            [
                text(hook),
                text(trigger),
                *(
                    text(impact_table.window_text(entry.get(w)))
                    for w in ("baseline", "during", "after")
                ),
                f"{ratio:.2f}" if isinstance(ratio, int | float) else "n/a",
                text(impact_table.recovery_text(entry)),
            ]
        )
        notes.extend(
            f"- {text(hook)} {text(trigger)}: {text(n, 300)}" for n in entry.get("notes") or []
        )
    out = ["**Disruption impact** (error rate / p95 in s, per window)", ""]
    out += table([*impact_table.HEADERS, *impact_table.TAIL], rows[:MAX_IMPACT_ROWS], "lllllrl")
    out += _more(len(rows) - MAX_IMPACT_ROWS, "firings")
    if notes:
        out += ["", *notes[:MAX_NOTES], *_more(len(notes) - MAX_NOTES, "notes")]
    return out


def _warnings(warnings: list[Any]) -> list[str]:
    if not warnings:
        return []
    lines = [f"- {WARN} {text(w, 300)}" for w in warnings[:MAX_WARNINGS]]
    return ["**Warnings**", "", *lines, *_more(len(warnings) - MAX_WARNINGS, "warnings")]


def _workload_ok(workload: dict[str, Any]) -> bool:
    return bool(workload.get("pass_sla")) and not workload.get("error")


def _workload(workload: dict[str, Any], level: str, numbered: bool) -> list[str]:
    verdict = PASS if _workload_ok(workload) else FAIL
    head = f"{level} {verdict} {code(scenario_name(workload), cell=False)}"
    if numbered:
        head += f" (position {workload.get('position', 0)})"
    if workload.get("description"):
        head += f": {text(workload['description'], 200)}"
    out = [head, ""]
    total = int(workload.get("total_iteration_count") or 0)
    failed = int(workload.get("failed_iteration_count") or 0)
    rate = f" ({100.0 * failed / total:.1f}%)" if total and failed else ""
    runner_name, runner_args = single(workload.get("runner"))
    runner = code(runner_name, cell=False)
    if isinstance(runner_args, dict) and runner_args:
        runner += " (" + text(", ".join(f"{k}={v}" for k, v in runner_args.items()), 200) + ")"
    facts = [
        f"runner {runner}",
        f"{total} iterations, {failed} failed{rate}",
        f"load {_seconds(workload.get('load_duration'))} s",
    ]
    if workload.get("aborted"):
        facts.append("**aborted**")
    out += [" · ".join(facts), ""]
    if workload.get("error"):
        out += [f"**Run error:** {code(error_text(workload['error']), 300, cell=False)}", ""]
    for section in (_durations, _sla, _hooks, _impact):
        lines = section(workload)
        if lines:
            out += [*lines, ""]
    out += _warnings(list(workload.get("warnings") or []))
    return out


# --- the document -----------------------------------------------------------------------------


def _firings(task_workloads: list[dict[str, Any]]) -> tuple[int, int]:
    results = [
        r for w in task_workloads for h in w.get("hooks") or [] for r in h.get("results") or []
    ]
    return sum(1 for r in results if firing_failed(r)), len(results)


def _headline(task: dict[str, Any], task_workloads: list[dict[str, Any]], level: str) -> str:
    title = code(task.get("title") or "task", cell=False)
    status = str(task.get("status") or "")
    if status and status not in _FINISHED:
        head = f"{RUNNING} {title}: not finished ({text(status)})"
    elif task.get("pass_sla") and all(_workload_ok(w) for w in task_workloads):
        head = f"{PASS} {title}: SLA passed"
    else:
        crashed = status == "crashed" or any(w.get("error") for w in task_workloads)
        head = f"{FAIL} {title}: {'crashed' if crashed else 'SLA failed'}"
    failed, fired = _firings(task_workloads)
    if failed:
        head += f" · {WARN} {failed} of {fired} hook firings failed"
    return f"{level} {head}"


def _render(report: dict[str, Any]) -> list[str]:
    tasks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for task, workload in workloads(report):
        if not tasks or tasks[-1][0] is not task:
            tasks.append((task, []))
        tasks[-1][1].append(workload)
    if not tasks:
        return ["## krally: no workloads in this report"]
    out: list[str] = []
    levels = ("##", "###")
    if len(tasks) > 1:
        failed = sum(1 for task, _ in tasks if not task.get("pass_sla"))
        verdict = PASS if not failed else FAIL
        summary = "every task passed its SLA" if not failed else f"{failed} of {len(tasks)} failed"
        out += [f"## {verdict} krally: {len(tasks)} tasks, {summary}", ""]
        levels = ("###", "####")
    for task, task_workloads in tasks:
        out += [_headline(task, task_workloads, levels[0]), ""]
        for workload in task_workloads:
            out += [*_workload(workload, levels[1], len(task_workloads) > 1), ""]
        out += _warnings(list(task.get("warnings") or []))
    return out


def render_markdown(report: dict[str, Any], max_chars: int = MAX_CHARS) -> str:
    """The comment's markdown, at most ``max_chars`` characters (``GITHUB_LIMIT`` at most)."""
    limit = min(max_chars, GITHUB_LIMIT)
    document = "\n".join(_render(report)).rstrip() + "\n"
    if len(document) <= limit:
        return document
    note = (
        f"\n\n> {WARN} Truncated: the report is {len(document)} characters, over the "
        f"{limit}-character cap of a comment; `krally report` prints all of it.\n"
    )
    kept = document[: max(limit - len(note), 0)]
    kept = kept[: kept.rfind("\n") + 1] if "\n" in kept else ""
    return (kept.rstrip() + note)[:limit]
