"""krally's report (``run_task``'s shape, or ``krally report``'s) as a JUnit XML document.

The common schema Jenkins, GitLab and GitHub test-report actions read::

    <testsuites name tests failures errors skipped time>
      <testsuite name="<task> / <scenario> (position N)" tests failures errors skipped time>
        <properties> task.uuid, workload.uuid, scenario, runner, iterations, failures, ...
        <testcase name="load">              the run itself; <error> when the workload crashed
        <testcase name="sla failure_rate">  one per SLA criterion; <failure> when it failed
        <testcase name="hook #1 sys_call @ iteration 5">   one per firing; <failure> (status
                                            failed) or <error> (any other status but success),
                                            the hook's output in <system-out>
        <testcase name="hook #2 sys_call @ iteration 50">  <skipped>: the value was never reached

Hooks are numbered from 1 as in the text report (``krally run``) and the impact table; the
order is the report's (tasks, workloads, criteria, hooks, firings), so the output is stable.
The document is built with ElementTree (escaping), and every text and attribute is first
cleared of the characters XML 1.0 cannot hold (control characters, lone surrogates): they are
written as ``\\xNN`` / ``\\uNNNN``, so a hook printing terminal escapes still gives well-formed XML.

The report readers below (``workloads``, ``hook_label``, ``firing_label``, ``error_text``,
``output_text``, ...) are shared with ``krally.results.markdown``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from krally.api.types import HOOK_FAILED, HOOK_FINAL, HOOK_SUCCESS
from krally.results import rally

# At most this many characters in an attribute (a failure's message) and in an element's text.
MESSAGE_LIMIT = 1024
TEXT_LIMIT = 65536

# Characters XML 1.0 allows (https://www.w3.org/TR/xml/#charsets); anything else is escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- report readers (shared with markdown.py) -------------------------------------------------


def workloads(report: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every ``(task, workload)`` of a report, in order."""
    for task in report.get("tasks") or []:
        if not isinstance(task, dict):
            continue
        for subtask in task.get("subtasks") or []:
            for workload in (subtask or {}).get("workloads") or []:
                if isinstance(workload, dict):
                    yield task, workload


def single(mapping: Any) -> tuple[str, Any]:
    """``{name: config}`` → ``(name, config)`` (``("?", None)`` for anything else)."""
    if isinstance(mapping, dict) and len(mapping) == 1:
        ((name, config),) = mapping.items()
        return str(name), config
    return "?", None


def scenario_name(workload: dict[str, Any]) -> str:
    return single(workload.get("scenario"))[0]


def runner_text(workload: dict[str, Any]) -> str:
    """``constant (times=10, concurrency=1)``, as the text report words it."""
    name, config = single(workload.get("runner"))
    args = ", ".join(f"{k}={v}" for k, v in config.items()) if isinstance(config, dict) else ""
    return f"{name} ({args})" if args else name


def hook_label(index: int, hook: dict[str, Any]) -> str:
    """``#1 sys_call``: the hook's number from 1, as in the text report, and its action."""
    action = single((hook.get("config") or {}).get("action"))[0]
    return f"#{index + 1} {action}"


def trigger_text(hook: dict[str, Any]) -> str:
    """The trigger as configured: ``event {"unit": "iteration", "at": [5, 50]}``."""
    name, config = single((hook.get("config") or {}).get("trigger"))
    return f"{name} {json.dumps(config, sort_keys=True)}" if config is not None else name


def firing_label(triggered_by: Any) -> str:
    """``iteration 5`` / ``time 10``: what made a hook fire."""
    by = triggered_by if isinstance(triggered_by, dict) else {}
    unit = by.get("event_type", by.get("eventType"))
    return f"{unit} {by.get('value')}" if unit else str(by.get("value"))


def finished(result: dict[str, Any]) -> bool:
    """False while a firing (on a cluster) is still pending or running."""
    return result.get("status") in HOOK_FINAL


def firing_failed(result: dict[str, Any]) -> bool:
    """A firing that ended other than in success (failed, validation_failed)."""
    return finished(result) and result.get("status") != HOOK_SUCCESS


def error_text(error: Any) -> str:
    """``etype: msg`` of any error form (dict, Rally's list, string)."""
    etype, msg, _ = rally.rally_error(error)
    return f"{etype}: {msg}" if etype and msg else etype or msg


def took(result: dict[str, Any]) -> float:
    """A firing's duration in seconds (0 when either time is missing)."""
    started, finished = result.get("started_at"), result.get("finished_at")
    if not isinstance(started, int | float) or not isinstance(finished, int | float):
        return 0.0
    if not started or not finished:
        return 0.0
    return max(float(finished) - float(started), 0.0)


def _chart_lines(item: dict[str, Any]) -> list[str]:
    data = item.get("data")
    plugin = item.get("chart_plugin")
    if plugin == "TextArea" and isinstance(data, list):
        return [str(line).rstrip("\n") for line in data]
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        cols = data.get("cols") or []
        lines = ["\t".join(str(c) for c in cols)] if cols else []
        for row in data["rows"]:
            lines.append("\t".join(str(c) for c in row) if isinstance(row, list) else str(row))
        return lines
    return [json.dumps(data, sort_keys=True, default=str)]


def output_text(output: Any) -> str:
    """A hook's (or iteration's) Rally output as text: every chart, its title, its data."""
    if not isinstance(output, dict):
        return ""
    blocks: list[str] = []
    for kind in ("complete", "additive"):
        for item in output.get(kind) or []:
            if not isinstance(item, dict):
                continue
            head = f"[{kind}] {item.get('title', '')} ({item.get('chart_plugin', '?')})"
            if item.get("description"):
                head += f": {item['description']}"
            blocks.append("\n".join([head, *_chart_lines(item)]))
    return "\n".join(blocks)


def clip(text: str, limit: int, marker: str | None = None) -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``marker`` (by default one
    saying how many characters were cut)."""
    if len(text) <= limit:
        return text
    if marker is None:
        marker = f"... ({len(text) - limit} more characters)"
    return text[: max(limit - len(marker), 0)] + marker[:limit]


# --- XML --------------------------------------------------------------------------------------


def _xml_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_safe(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as text XML 1.0 can hold (ElementTree escapes ``<&>"``, not these)."""
    return clip(_NOT_XML.sub(_xml_char, str(value)), limit)


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: Any) -> ET.Element:
    element = ET.SubElement(
        parent, tag, {k: xml_safe(v, MESSAGE_LIMIT) for k, v in attrs.items() if v is not None}
    )
    if text:
        element.text = xml_safe(text)
    return element


def _seconds(value: Any) -> str:
    number = rally.finite(value) if isinstance(value, int | float) else None
    return f"{max(float(number), 0.0):.3f}" if isinstance(number, int | float) else "0.000"


_COUNTED = {"failure": "failures", "error": "errors", "skipped": "skipped"}


class _Suite:
    """One workload's testsuite, counting what its testcases hold."""

    def __init__(self, parent: ET.Element, name: str, attrs: dict[str, Any]) -> None:
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        # The counts and time are set by close(); here only to come first, as usual.
        placeholders = {key: 0 for key in (*self.counts, "time")}
        self.element = _sub(parent, "testsuite", name=name, **placeholders, **attrs)
        self.name = name
        self.properties = _sub(self.element, "properties")

    def prop(self, name: str, value: Any) -> None:
        _sub(self.properties, "property", name=name, value=value)

    def case(
        self,
        name: str,
        time: Any = 0.0,
        outcome: str | None = None,
        message: str = "",
        kind: str = "",
        text: str = "",
        out: str = "",
    ) -> ET.Element:
        """A testcase; ``outcome`` is ``failure``, ``error``, ``skipped`` or None (passed)."""
        self.counts["tests"] += 1
        case = _sub(self.element, "testcase", classname=self.name, name=name, time=_seconds(time))
        if outcome is not None:
            self.counts[_COUNTED[outcome]] += 1
            _sub(case, outcome, text, message=message, type=kind or None)
        if out:
            _sub(case, "system-out", out)
        return case

    def close(self, time: Any) -> None:
        # Properties first, as the schema wants; an empty <properties> is dropped.
        if not len(self.properties):
            self.element.remove(self.properties)
        for key, count in self.counts.items():
            self.element.set(key, str(count))
        self.element.set("time", _seconds(time))


def _workload_suite(root: ET.Element, task: dict[str, Any], workload: dict[str, Any]) -> _Suite:
    scenario = scenario_name(workload)
    name = f"{task.get('title') or 'task'} / {scenario} (position {workload.get('position', 0)})"
    stamp = workload.get("created_at") or None
    suite = _Suite(root, name, {"timestamp": stamp})
    for key, value in (
        ("task.uuid", task.get("uuid")),
        ("workload.uuid", workload.get("uuid")),
        ("scenario", scenario),
        ("runner", runner_text(workload)),
        ("iterations", workload.get("total_iteration_count", 0)),
        ("failures", workload.get("failed_iteration_count", 0)),
        ("load_duration", _seconds(workload.get("load_duration"))),
        ("full_duration", _seconds(workload.get("full_duration"))),
        ("pass_sla", str(bool(workload.get("pass_sla"))).lower()),
        ("aborted", str(bool(workload.get("aborted"))).lower()),
    ):
        if value is not None:
            suite.prop(key, value)

    total = int(workload.get("total_iteration_count") or 0)
    failed = int(workload.get("failed_iteration_count") or 0)
    load = _seconds(workload.get("load_duration"))
    summary = f"{total} iterations, {failed} failed, load {load} s"
    if workload.get("aborted"):
        summary += ", aborted"
    warnings = [f"warning: {w}" for w in workload.get("warnings") or []]
    out = "\n".join([summary, *warnings])
    if workload.get("error"):
        etype, _, details = rally.rally_error(workload["error"])
        message = error_text(workload["error"])
        text = "\n".join(t for t in (message, details) if t)
        suite.case("load", workload.get("load_duration"), "error", message, etype, text, out)
    else:
        suite.case("load", workload.get("load_duration"), out=out)

    for item in (workload.get("sla_results") or {}).get("sla") or []:
        detail = str(item.get("detail", ""))
        if item.get("success"):
            suite.case(f"sla {item.get('criterion')}", out=detail)
        else:
            suite.case(f"sla {item.get('criterion')}", 0.0, "failure", detail, "SLA", detail)

    for index, hook in enumerate(workload.get("hooks") or []):
        _hook_cases(suite, index, hook)
    suite.close(workload.get("full_duration") or workload.get("load_duration"))
    return suite


def _hook_cases(suite: _Suite, index: int, hook: dict[str, Any]) -> None:
    label = f"hook {hook_label(index, hook)}"
    results = [r for r in hook.get("results") or [] if isinstance(r, dict)]
    for result in results:
        name = f"{label} @ {firing_label(result.get('triggered_by'))}"
        status = result.get("status")
        out = output_text(result.get("output"))
        if status == HOOK_SUCCESS:
            suite.case(name, took(result), out=out)
            continue
        error = result.get("error") or ["", f"hook status {status}", ""]
        etype, _, details = rally.rally_error(error)
        message = error_text(error)
        if not finished(result):  # a cluster task's firing, still on its way
            why = f": {message}" if result.get("error") else ""
            suite.case(name, 0.0, "skipped", f"not finished: {status}{why}", out=out)
            continue
        outcome = "failure" if status == HOOK_FAILED else "error"
        text = "\n".join(t for t in (message, details) if t)
        suite.case(name, took(result), outcome, message, etype or str(status), text, out)
    unreached = [u for u in hook.get("unreached") or [] if isinstance(u, dict)]
    for item in unreached:
        name = f"{label} @ {firing_label(item)}"
        suite.case(name, 0.0, "skipped", "not reached: the load ended before this trigger value")
    more = int(hook.get("unreached_count") or len(unreached)) - len(unreached)
    if more > 0:
        suite.case(f"{label}: {more} more values", 0.0, "skipped", f"{more} more not reached")
    if hook.get("trigger_error"):
        error = str(hook["trigger_error"])
        suite.case(f"{label} trigger", 0.0, "error", error, "TriggerError", error)
    elif not results and not unreached and more <= 0:
        suite.case(label, 0.0, "skipped", f"never fired (trigger {trigger_text(hook)})")


def render_junit(report: dict[str, Any]) -> str:
    """The JUnit XML document (a string with its XML declaration; write it as UTF-8)."""
    tasks = [t for t in report.get("tasks") or [] if isinstance(t, dict)]
    name = str(tasks[0].get("title") or "krally") if len(tasks) == 1 else "krally"
    root = ET.Element("testsuites", {"name": xml_safe(name, MESSAGE_LIMIT)})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for task, workload in workloads(report):
        suite = _workload_suite(root, task, workload)
        for key, count in suite.counts.items():
            totals[key] += count
        seconds += float(suite.element.get("time") or 0.0)
    for key, count in totals.items():
        root.set(key, str(count))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
