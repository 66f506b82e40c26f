"""krally.results.markdown: the pull-request comment of reports the engine made, and of a
BenchmarkTask; parsed back with markdown-it (rich's own markdown parser) as GitHub would."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any, ClassVar

import pytest
from markdown_it import MarkdownIt
from tests.reports import event_hook, run_report

from krally.results import cluster
from krally.results.markdown import CELL_LIMIT, GITHUB_LIMIT, MAX_CHARS, render_markdown
from krally.task import hook
from krally.task.spec import WorkloadSpec

# Markup, HTML, a mention, pipes, backticks and newlines, in a long message.
LOUD = "boom | *bold* <script>alert(1)</script> @octocat ``tick`` [x](http://e)\nline two " * 50


@hook.configure(name="test_report_markdown_loud")
class LoudHook(hook.Hook):
    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "string"}

    def run(self) -> None:
        self.set_error(exception_name="LoudError", description=self.config, details="")


def _run(*workloads: WorkloadSpec, title: str = "md-demo") -> dict[str, Any]:
    return run_report(*workloads, title=title)


@pytest.fixture(scope="module")
def failed() -> dict[str, Any]:
    # 10 iterations, the 3rd and 4th fail: failure_rate fails; a hook succeeds, one fails.
    return _run(
        WorkloadSpec(
            scenario_name="Dummy.failure",
            scenario_args={"sleep": 0.001, "from_iteration": 3, "to_iteration": 4},
            runner_type="constant",
            runner_args={"times": 10, "concurrency": 1},
            sla={"failure_rate": {"max": 0}, "max_seconds_per_iteration": 10},
            hooks=(
                event_hook("sys_call", "/bin/echo 'a|b'", [2]),
                event_hook("sys_call", "/bin/false", [5, 50]),
                event_hook("test_report_markdown_loud", LOUD, [6]),
            ),
        )
    )


MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _tables(document: str) -> list[list[list[str]]]:
    """Every table as rows of cell texts (header first), as a GFM renderer reads them."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    row: list[str] | None = None
    for token in MD.parse(document):
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type == "tr_close" and row is not None:
            rows.append(row)
            row = None
        elif token.type == "table_close":
            tables.append(rows)
    return tables


def _table(document: str, *headers: str) -> list[list[str]]:
    """The one table whose header starts with ``headers``."""
    (found,) = [t for t in _tables(document) if t[0][: len(headers)] == list(headers)]
    for row in found:
        assert len(row) == len(found[0]), row  # no stray pipe split a cell
    return found


def escaped(name: str) -> str:
    return name.replace("_", "\\_")


def _html(document: str) -> str:
    return MD.render(document)


def test_headline_and_workload_facts(failed: dict[str, Any]) -> None:
    text = render_markdown(failed)
    first = text.splitlines()[0]
    assert first == "## ❌ `md-demo`: SLA failed · ⚠️ 2 of 3 hook firings failed"
    assert "### ❌ `Dummy.failure`" in text
    assert "runner `constant` (times=10, concurrency=1) · 10 iterations, 2 failed (20.0%)" in text


def test_duration_sla_and_hook_tables(failed: dict[str, Any]) -> None:
    text = render_markdown(failed)
    durations = _table(text, "Action")
    assert durations[0] == [
        *("Action", "Min (s)", "Median (s)", "p90 (s)", "p95 (s)", "Max (s)"),
        *("Success", "Count"),
    ]
    assert durations[-1][0] == "total" and durations[-1][-2:] == ["80.0%", "10"]
    workload = failed["tasks"][0]["subtasks"][0]["workloads"][0]
    total = workload["statistics"]["durations"]["total"]["data"]
    assert durations[-1][1] == f"{total['min']:.3f}" and durations[-1][5] == f"{total['max']:.3f}"

    sla = _table(text, "Criterion")
    assert [row[:2] for row in sla[1:]] == [
        ["`failure_rate`", "✗"],
        ["`max_seconds_per_iteration`", "✓"],
    ]
    (detail,) = [s["detail"] for s in workload["sla_results"]["sla"] if not s["success"]]
    assert "<td" in _html(text) and detail.replace("<", "&lt;") in _html(text)

    hooks = _table(text, "Hook", "Trigger", "Results")
    assert hooks[0] == ["Hook", "Trigger", "Results", "First error"]
    echo, false, loud = hooks[1:]
    # The cell's pipe is escaped (one cell, read back as "a|b"), in the code span too.
    assert "| #1 sys\\_call `/bin/echo 'a\\|b'` |" in text
    assert echo[0] == "#1 sys\\_call `/bin/echo 'a|b'`" and echo[2:] == ["1 success", ""]
    assert false[2] == "1 failed, 1 not reached"
    assert false[3] == "iteration 5: `n/a: Subprocess returned 1`"
    assert false[1] == '`event {"at": [5, 50], "unit": "iteration"}`'
    # Its message holds `` : a longer fence.
    assert loud[3].startswith("iteration 6: ```LoudError: boom | *bold* <script>")


def test_untrusted_text_is_inert_and_cut(failed: dict[str, Any]) -> None:
    text = render_markdown(failed)
    html = _html(text)
    assert "<script>" not in html and "<em>bold</em>" not in html and "<a href" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, inside <code>
    (span,) = [html_lib.unescape(c) for c in re.findall("<code>(.*?)</code>", html) if "Loud" in c]
    assert span.startswith("LoudError: boom | *bold* <script>")
    assert len(span) == CELL_LIMIT and span.endswith("…")  # one line, cut
    assert "line two boom" in span


def test_impact_per_firing(failed: dict[str, Any]) -> None:
    text = render_markdown(failed)
    assert "**Disruption impact** (error rate / p95 in s, per window)" in text
    rows = _table(text, "Hook", "Trigger", "Baseline err / p95")
    workload = failed["tasks"][0]["subtasks"][0]["workloads"][0]
    assert len(workload["impact"]) == 3
    assert [r[:2] for r in rows[1:]] == [
        [f"#{e['hook'] + 1} {escaped(e['name'])}", f"iteration {e['triggeredBy']['value']}"]
        for e in workload["impact"]
    ]
    # Iterations 3 and 4 fail while the first hook runs (how many others finish in its window
    # depends on the machine's load): some during window has errors.
    assert any(row[3] != "-" and float(row[3].split("%")[0]) > 0 for row in rows[1:]), rows


def test_a_passing_task_and_warnings() -> None:
    report = _run(
        WorkloadSpec(
            scenario_name="Dummy.dummy",
            runner_type="serial",
            runner_args={"times": 3},
            sla={"failure_rate": {"max": 0}},
        ),
        title="ok-task",
    )
    report["tasks"][0]["subtasks"][0]["workloads"][0]["warnings"] = ["context x | y failed"]
    text = render_markdown(report)
    assert text.startswith("## ✅ `ok-task`: SLA passed\n")
    assert "hook firings" not in text and "**Hooks**" not in text
    assert "- ⚠️ context x \\| y failed" in text
    assert len(_table(text, "Criterion")) == 2


def test_a_crashed_workload() -> None:
    report = _run(WorkloadSpec(scenario_name="Dummy.dummy", runner_type="no_such_runner"))
    text = render_markdown(report)
    assert text.startswith("## ❌ `md-demo`: crashed\n")
    assert "**Run error:** `PluginNotFound: unknown runner plugin 'no_such_runner';" in text
    assert "_No iterations._" in text


def test_several_tasks_get_one_verdict(failed: dict[str, Any]) -> None:
    passing = _run(WorkloadSpec(scenario_name="Dummy.dummy", runner_args={"times": 1}), title="b")
    both = {"tasks": failed["tasks"] + passing["tasks"]}
    text = render_markdown(both)
    assert text.startswith("## ❌ krally: 2 tasks, 1 of 2 failed\n")
    assert "\n### ❌ `md-demo`: SLA failed" in text and "\n### ✅ `b`: SLA passed" in text
    assert "\n#### ❌ `Dummy.failure`" in text


def test_capped_under_the_comment_limit(failed: dict[str, Any]) -> None:
    big = {"tasks": failed["tasks"] * 400}
    text = render_markdown(big)
    assert len(text) <= MAX_CHARS
    assert text.rstrip().endswith("`krally report` prints all of it.")
    (size,) = re.findall(r"Truncated: the report is (\d+) characters, over the 60000-", text)
    assert int(size) > 400 * 2000
    assert len(render_markdown(big, max_chars=10**9)) <= GITHUB_LIMIT  # never over GitHub's
    small = render_markdown(failed, max_chars=1500)
    assert len(small) <= 1500 and small.startswith("## ❌ `md-demo`")
    # Cut between lines: the last table row kept is whole.
    kept = small.split("\n\n> ")[0].splitlines()
    assert all(line.count("`") % 2 == 0 for line in kept)
    assert render_markdown(failed) == render_markdown(failed)  # stable


def test_from_a_benchmark_task() -> None:
    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "bt", "namespace": "ns"},
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "runner": {"type": "constant", "times": 100, "concurrency": 2},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "kubectl delete pod db-0",
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [10, 20]}},
                }
            ],
        },
        "status": {
            "phase": "Running",
            "passSLA": False,
            "hooks": [
                {
                    "name": "sys_call",
                    "summary": {"success": 1, "pending": 1},
                    "results": [
                        {
                            "triggeredBy": {"eventType": "iteration", "value": 10},
                            "status": "success",
                            "startedAt": "2025-01-01T00:00:01Z",
                            "finishedAt": "2025-01-01T00:00:02Z",
                        },
                        {
                            "triggeredBy": {"eventType": "iteration", "value": 20},
                            "status": "pending",
                            "error": {"etype": "NotStarted", "msg": "Unschedulable"},
                        },
                    ],
                }
            ],
            "result": {
                "iterations": 40,
                "failures": 0,
                "durations": {"min": 0.01, "median": 0.02, "p90": 0.03, "p95": 0.04, "max": 0.5},
            },
        },
    }
    text = render_markdown(cluster.report_from_task(task))
    assert text.startswith("## ⏳ `ns/bt`: not finished (running)\n")  # no failed firing yet
    assert "runner `constant` (times=100, concurrency=2) · 40 iterations, 0 failed" in text
    total = _table(text, "Action")[-1]
    assert total == ["total", "0.010", "0.020", "0.030", "0.040", "0.500", "100.0%", "40"]
    (row,) = _table(text, "Hook")[1:]
    assert row == [
        "#1 sys\\_call `kubectl delete pod db-0`",
        '`event {"at": [10, 20], "unit": "iteration"}`',
        "1 success, 1 pending",
        "",
    ]
