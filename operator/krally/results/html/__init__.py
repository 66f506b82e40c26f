"""One self-contained HTML file for a report (``krally run --html``, ``krally report --html``).

The tables are plain HTML written here (readable with scripts off, and searchable); the charts
are drawn by uPlot (embedded, see :mod:`.assets`) from the data island ``#krally-data``,
which :mod:`.model` bounds. ``report.js`` draws them and marks each hook firing (a line and a
``.krally-firing`` element on the duration chart) and shades each firing's impact windows.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

from krally.results.html.assets import chart_library
from krally.results.html.model import report_model

__all__ = ["render_html"]

_VERDICTS = {
    "passed": ("PASSED", "every SLA criterion passed"),
    "failed": ("FAILED", "an SLA criterion failed"),
    "error": ("ERROR", "the run failed"),
    "empty": ("EMPTY", "no workload"),
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _seconds(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def _percent(value: Any) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, int | float) else "n/a"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _ok(success: bool) -> str:
    return '<span class="ok">✓</span>' if success else '<span class="bad">✗</span>'


def _overview(w: dict[str, Any]) -> str:
    rate = (w["iterations"] - w["failures"]) / w["iterations"] if w["iterations"] else None
    items = [
        ("Runner", f"{w['runner']} {json.dumps(w['runnerArgs'], sort_keys=True)}"),
        ("Started", w["startedAt"] or "n/a"),
        ("Iterations", f"{w['iterations']:,}"),
        ("Failures", f"{w['failures']:,}"),
        ("Success", _percent(rate)),
        ("Load duration", f"{_seconds(w['loadDuration'], 2)} s"),
        ("Full duration", f"{_seconds(w['fullDuration'], 2)} s"),
        ("Throughput", f"{_seconds(w['throughput'], 1)} it/s"),
        ("SLA", "passed" if w["passSLA"] else "failed"),
    ]
    if w["aborted"]:
        items.append(("Aborted", "yes"))
    cells = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items)
    return f'<dl class="overview">{cells}</dl>'


def _durations_table(w: dict[str, Any]) -> str:
    d = w["durations"]
    keys = ("min", "median", "p90", "p95", "max", "avg")
    rows = [["total", *(_seconds(d[k]) for k in keys)]]
    rows += [
        [
            "&nbsp;" * 4 * a["depth"] + _e(a["name"]),
            *(_seconds(a[k]) for k in keys),
        ]
        for a in w["atomics"]
    ]
    headers = ["Action", "Min (s)", "Median (s)", "90%ile (s)", "95%ile (s)", "Max (s)", "Avg (s)"]
    return _table(headers, rows, "durations")


def _sla_table(w: dict[str, Any]) -> str:
    if not w["sla"]:
        return '<p class="muted">No SLA criteria.</p>'
    rows = [[_e(s["criterion"]), _ok(s["success"]), _e(s["detail"])] for s in w["sla"]]
    return _table(["Criterion", "Passed", "Detail"], rows, "sla")


def _output_html(output: dict[str, list[Any]], chart_id: str) -> str:
    """Text and tables here; line charts are left to report.js (``data-hook-chart``)."""
    parts = []
    for kind in ("complete", "additive"):
        for n, chart in enumerate(output[kind]):
            title = f"<h5>{_e(chart['title'])} <small>{_e(kind)}</small></h5>"
            desc = (
                f'<p class="muted">{_e(chart["description"])}</p>' if chart["description"] else ""
            )
            plugin, data = chart["plugin"], chart["data"]
            if plugin == "TextArea":
                body = f"<pre>{_e(chr(10).join(str(x) for x in data))}</pre>"
            elif plugin in ("Table", "StatsTable") and isinstance(data, dict):
                body = _table(
                    [_e(c) for c in data["cols"]],
                    ([_e(c) for c in row] for row in data["rows"] if isinstance(row, list)),
                )
            elif plugin in ("Lines", "StackedArea") and kind == "complete":
                body = f'<div class="chart small" data-hook-chart="{chart_id}:{kind}:{n}"></div>'
            else:  # Pie, and the additive points of Lines/StackedArea: name → value
                pairs = [p for p in data if isinstance(p, list | tuple) and len(p) == 2]
                body = _table(["Name", "Value"], ([_e(a), _e(b)] for a, b in pairs))
            parts.append(f'<div class="output">{title}{desc}{body}</div>')
    return "".join(parts)


def _hooks_table(w: dict[str, Any], prefix: str) -> str:
    if not w["hooks"]:
        return '<p class="muted">No hooks.</p>'
    out = []
    for hook in w["hooks"]:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(hook["counts"].items())) or "no firing"
        head = (
            f"<h4>Hook #{hook['index'] + 1}: {_e(hook['name'])} "
            f"<small>{_e(hook['trigger'])} · {_e(counts)}</small></h4>"
        )
        if hook["description"]:
            head += f'<p class="muted">{_e(hook["description"])}</p>'
        rows = []
        for n, r in enumerate(hook["results"]):
            chart_id = f"{prefix}-h{hook['index']}-r{n}"
            output = _output_html(r["output"], chart_id)
            details = f"<details><summary>output</summary>{output}</details>" if output else ""
            if r["output"].get("omitted"):
                details = '<p class="muted">output left out (the report\'s size budget)</p>'

            status_cls = "ok" if r["status"] == "success" else "bad"
            rows.append(
                [
                    _e(r["triggeredBy"]),
                    f'<span class="{status_cls}">{_e(r["status"])}</span>',
                    _e(r["startedAt"]),
                    f"{_seconds(r['offset'], 2)} s",
                    f"{_seconds(r['seconds'])} s",
                    _e(r["job"]),
                    f'<span class="error">{_e(r["error"])}</span>{details}',
                ]
            )
        table = _table(
            ["Triggered by", "Status", "Started", "Into load", "Took", "Job", "Error / output"],
            rows,
            "hooks",
        )
        more = ""
        if hook["hidden"]:
            more = f'<p class="muted">... and {hook["hidden"]} more results (not shown).</p>'
        if hook["unreachedCount"]:
            shown = ", ".join(hook["unreached"])
            more += f'<p class="muted">Never reached ({hook["unreachedCount"]}): {_e(shown)}</p>'
        out.append(f'<div class="hook">{head}{table}{more}</div>')
    return "".join(out)


def _window_text(window: dict[str, Any] | None) -> str:
    if not window:
        return "-"
    return (
        f"{_percent(window['errorRate'])} err, p95 {_seconds(window['p95'])} s, "
        f"{_seconds(window['throughput'], 1)} it/s"
    )


def _undegraded(entry: dict[str, Any]) -> str:
    """Never "no impact" where the throughput fell below the tolerance (a verdict from an older
    analysis that looked at sliding windows only could say so)."""
    low, tolerated = entry["lowestThroughputRatio"], entry["toleratedThroughputRatio"]
    if low is not None and low < tolerated:
        return f'<span class="bad">throughput {low:.2f} x baseline (tolerance {tolerated:g})</span>'
    return '<span class="ok">no impact</span>'


def _impact_table(w: dict[str, Any]) -> str:
    if not w["impact"]:
        return ""
    rows = []
    for entry in w["impact"]:
        if entry["recovered"] is None:
            recovery = "n/a"
        elif entry["recovered"] is False:
            recovery = '<span class="bad">not recovered</span>'
        elif entry["degraded"]:
            recovery = f"{_seconds(entry['recoverySeconds'], 2)} s"
        else:
            recovery = _undegraded(entry)
        rows.append(
            [
                _e(entry["label"]),
                _e(_window_text(entry["baseline"])),
                _e(_window_text(entry["during"])),
                _e(_window_text(entry["after"])),
                _seconds(entry["p95Ratio"], 2),
                _seconds(entry["throughputRatio"], 2),
                recovery,
                _e("; ".join(entry["notes"])),
            ]
        )
    headers = [
        "Firing",
        "Baseline",
        "During",
        "After",
        "p95 ratio",
        "Thr ratio",
        "Recovery",
        "Notes",
    ]
    return "<h3>Disruption impact</h3>" + _table(headers, rows, "impact")


_IMPACT_CAPTION = (
    "; impact windows shaded (baseline grey, during red, after green), each with its p95 as a "
    "bold step"
)


def _workload(w: dict[str, Any], prefix: str) -> str:
    title = f"#{w['position'] + 1 if isinstance(w['position'], int) else ''} {w['scenario']}"
    description = f"<p>{_e(w['description'])}</p>" if w["description"] else ""
    error = f'<p class="error banner">Run error: {_e(w["error"])}</p>' if w["error"] else ""
    warnings = "".join(f"<li>{_e(x)}</li>" for x in w["warnings"])
    warnings = f'<h3>Warnings</h3><ul class="warnings">{warnings}</ul>' if warnings else ""
    charts = (
        '<div class="charts">'
        f"<figure><figcaption>Load profile: iterations/s and failures/s</figcaption>"
        f'<div class="chart" data-chart="load" data-workload="{prefix}"></div></figure>'
        f"<figure><figcaption>Duration over time (median, p95); hook firings marked"
        f"{_IMPACT_CAPTION if w['impact'] else ''}</figcaption>"
        f'<div class="chart" data-chart="duration" data-workload="{prefix}"></div></figure>'
        f"<figure><figcaption>Duration histogram</figcaption>"
        f'<div class="chart" data-chart="histogram" data-workload="{prefix}"></div></figure>'
        "</div>"
    )
    return (
        f'<section class="workload" id="{prefix}"><h2>{_e(title)}</h2>'
        f"{description}"
        f"{error}{_overview(w)}{charts}"
        f"<h3>Durations and atomic actions</h3>{_durations_table(w)}"
        f"<h3>SLA</h3>{_sla_table(w)}"
        f"{_impact_table(w)}"
        f"<h3>Hooks</h3>{_hooks_table(w, prefix)}{warnings}</section>"
    )


def _for_script(model: dict[str, Any]) -> dict[str, Any]:
    """The model without what the tables already show: of the hook outputs, only the charts
    report.js draws (``complete`` Lines / StackedArea; the others null, keeping indices)."""
    drawn = ("Lines", "StackedArea")
    tasks = []
    for task in model["tasks"]:
        workloads = []
        for w in task["workloads"]:
            hooks = []
            for hook in w["hooks"]:
                results = []
                for r in hook["results"]:
                    complete = [
                        c if c["plugin"] in drawn else None for c in r["output"]["complete"]
                    ]
                    results.append({**r, "output": {"complete": complete}})
                hooks.append({**hook, "results": results})
            workloads.append({**w, "hooks": hooks})
        tasks.append({**task, "workloads": workloads})
    return {**model, "tasks": tasks}


def _data_island(model: dict[str, Any]) -> str:
    # `<`, `>` and `&` escaped so that no string in the data can end the script element.
    text = json.dumps(_for_script(model), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML document (no network needed to open it)."""
    model = report_model(report)
    library = chart_library()
    folder = resources.files("krally.results.html")
    script = folder.joinpath("report.js").read_text("utf-8")
    style = folder.joinpath("report.css").read_text("utf-8")
    label, meaning = _VERDICTS[model["verdict"]]
    sections = []
    for t, task in enumerate(model["tasks"]):
        task_label = _VERDICTS[task["verdict"]][0]
        sections.append(
            f'<h1>{_e(task["title"] or "task")} <span class="verdict {task["verdict"]}">'
            f"{task_label}</span></h1>"
            f'<p class="muted">Task {_e(task["uuid"])} · {_e(task["status"])}</p>'
        )
        sections.extend(_workload(w, f"t{t}-w{n}") for n, w in enumerate(task["workloads"]))
    title = " · ".join(t["title"] for t in model["tasks"] if t["title"]) or "krally report"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>krally: {_e(title)} ({label})</title>"
        f"<style>{library.stylesheet}\n{style}</style></head>"
        f'<body><header><span class="brand">krally</span> '
        f'<span class="verdict {model["verdict"]}" id="verdict" title="{_e(meaning)}">'
        f"{label}</span> "
        f'<span class="muted">{_e(model["source"])} · generated {_e(model["generatedAt"])}'
        "</span></header>"
        f"<main>{''.join(sections)}</main>"
        '<footer class="muted">Charts by uPlot (MIT licence, embedded).</footer>'
        f'<script type="application/json" id="krally-data">{_data_island(model)}</script>'
        f"<script>/* uPlot, MIT licence:\n{library.licence.replace('*/', '* /')}*/\n"
        f"{library.script}</script>"
        f"<script>{script}</script></body></html>\n"
    )
