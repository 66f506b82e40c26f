"""The HTML report: from a real engine run, from a BenchmarkTask, bounded, escaped, and the
bad inputs of ``krally report`` (one line, exit 2)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from tests.cli import krally

from krally.results import cluster, html
from krally.results.html import assets, model, render_html
from krally.task.loader import load_task
from krally.task.stats import WorkloadStats
from krally.task.task_run import run_task

TASK = """
version: 2
title: html report
subtasks:
  - title: dummy with hooks
    scenario:
      Dummy.dummy_random_fail_in_atomic: {exception_probability: 0.1}
    runner:
      constant: {times: 1500, concurrency: 2}
    hooks:
      - description: prints a chart and a script-ending string
        action:
          sys_call: "echo '</script><script>alert(1)</script>'"
        trigger:
          event: {unit: iteration, at: [300, 900]}
      - description: fails
        action:
          sys_call: "false"
        trigger:
          event: {unit: iteration, at: [600, 99999]}
    sla:
      failure_rate: {max: 0}
"""


def _island(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="krally-data">(.*?)</script>', page)
    assert match, "no data island"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def engine_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("task") / "task.yaml"
    path.write_text(TASK)
    return run_task(load_task(path))


def test_report_from_an_engine_run(engine_report: dict[str, Any]) -> None:
    page = render_html(engine_report)
    data = _island(page)
    assert data["verdict"] == "failed"  # failure_rate max 0 with 10 % failures
    (w,) = data["tasks"][0]["workloads"]
    assert w["iterations"] == 1500 and 0 < w["failures"] < 1500
    assert sum(w["timeline"]["count"]) == 1500
    assert sum(b[2] for b in w["histogram"]) == 1500
    assert [h["counts"] for h in w["hooks"]] == [{"success": 2}, {"failed": 1}]
    assert w["hooks"][1]["unreached"] == ["iteration 99999"]
    # One marker per firing, at its time on the load's axis (within the load).
    assert sorted((f["hook"], f["label"].split("@ ")[1]) for f in w["firings"]) == [
        (0, "iteration 300"),
        (0, "iteration 900"),
        (1, "iteration 600"),
    ]
    assert all(0 <= f["offset"] <= w["loadDuration"] + 1 for f in w["firings"])
    assert [s["criterion"] for s in w["sla"]] == ["failure_rate"]
    # The tables are in the HTML itself, the uPlot library is embedded, nothing is fetched.
    assert "failure_rate" in page and "Hook #2: sys_call" in page
    assert "uPlot" in page and assets.chart_library().script in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_strings_cannot_end_the_script_or_inject_markup(engine_report: dict[str, Any]) -> None:
    page = render_html(engine_report)
    # The hook's output "</script><script>alert(1)</script>" is in the data and the table only
    # escaped: exactly three script elements end in the page (data, uPlot, report.js).
    assert page.count("</script>") == 3
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    # The text outputs are in the tables only (the data island keeps what report.js draws).
    hooks = _island(page)["tasks"][0]["workloads"][0]["hooks"]
    assert [r["output"] for r in hooks[0]["results"]] == [{"complete": [None]}] * 2


def test_impact_windows_from_a_cluster_task_share_the_load_axis() -> None:
    start = 1_780_000_000.0

    def rfc(t: float) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        return f"{stamp}.{round((t % 1) * 1000):03d}Z"

    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "0b3c1f1e-0000-4000-8000-000000000001",
        },
        "spec": {
            "scenario": {"name": "HttpRequests.check_request", "args": {}},
            "runner": {"type": "constant", "times": 100},
            "hooks": [{"name": "kube.pod_kill", "trigger": {"name": "event", "args": {}}}],
        },
        "status": {
            "phase": "Succeeded",
            "passSLA": True,
            "result": {"iterations": 100, "failures": 2, "loadDuration": 20.0},
            "hooks": [
                {
                    "name": "kube.pod_kill",
                    "results": [
                        {
                            "status": "success",
                            "startedAt": rfc(start + 10.0),
                            "finishedAt": rfc(start + 12.5),
                            "firedAt": rfc(start + 9.9),
                            "triggeredBy": {"eventType": "iteration", "value": 50},
                        }
                    ],
                }
            ],
            "runner": {
                "startedAt": rfc(start - 3),
                "summary": {"timelineStart": start, "histogram": [[0.01, 0.02, 98]]},
                "impact": [
                    {
                        "hook": 0,
                        "name": "kube.pod_kill",
                        "startedAt": rfc(start + 10.0),
                        "finishedAt": rfc(start + 12.5),
                        "triggeredBy": {"eventType": "iteration", "value": 50},
                        "baseline": {"fromSeconds": -5, "toSeconds": 0, "errorRate": 0.0},
                        "during": {"fromSeconds": 0, "toSeconds": 2.5, "errorRate": 0.1},
                        "after": {"fromSeconds": 2.5, "toSeconds": 7.5, "errorRate": 0.0},
                        "degraded": True,
                        "recovered": True,
                        "recoverySeconds": 1.25,
                    }
                ],
            },
        },
    }
    data = _island(render_html(cluster.report_from_task(task)))
    (w,) = data["tasks"][0]["workloads"]
    # The timeline's origin is the first iteration (timelineStart), not the runner's start.
    (firing,) = w["firings"]
    assert firing["offset"] == pytest.approx(9.9, abs=0.002)
    (entry,) = w["impact"]
    assert entry["offset"] == pytest.approx(10.0, abs=0.002)
    spans = [entry[n][k] for n in ("baseline", "during", "after") for k in ("from", "to")]
    assert spans == pytest.approx([5.0, 10.0, 10.0, 12.5, 12.5, 17.5], abs=0.002)
    assert entry["recoverySeconds"] == 1.25
    assert w["histogram"] == [[0.01, 0.02, 98]]


def test_a_million_iterations_and_a_thousand_big_outputs_stay_under_5_mb() -> None:
    stats = WorkloadStats()
    t0 = 1_780_000_000.0
    add = stats.add
    for i in range(1_000_000):  # an hour at ~280 it/s, ~2 % failures
        add({"timestamp": t0 + i * 0.0036, "duration": 0.01 + (i % 97) * 1e-4,
             "error": ["E", "m", ""] if i % 50 == 0 else None})  # fmt: skip
    output = {"complete": [{"title": "log", "chart_plugin": "TextArea", "data": ["x" * 30_000]}]}
    results = [
        {
            "status": "success",
            "started_at": t0 + n,
            "finished_at": t0 + n + 1,
            "triggered_by": {"event_type": "iteration", "value": n * 1000},
            "output": output,
        }
        for n in range(1000)
    ]
    workload = {
        "position": 0,
        "scenario": {"Dummy.dummy": {}},
        "runner": {"constant": {"times": 1_000_000}},
        "hooks": [{"config": {"action": {"sys_call": "x"}}, "results": results}],
        "sla_results": {"sla": []},
        "timeline": stats.timeline(),
        "timeline_start": stats.timeline_start,
        "histogram": stats.durations.bins(),
        "statistics": {"durations": stats.statistics()},
        **stats.summary(),
        "total_iteration_count": stats.iterations,
        "failed_iteration_count": stats.failures,
    }
    report = {"tasks": [{"title": "big", "subtasks": [{"workloads": [workload]}]}]}
    page = render_html(report)
    assert len(page.encode()) <= 5 * 1024 * 1024
    data = _island(page)["tasks"][0]["workloads"][0]
    assert data["iterations"] == 1_000_000 and len(data["timeline"]["offset"]) <= 300
    assert len(data["firings"]) == 1000  # every firing marked, even where its row is not shown
    assert len(data["hooks"][0]["results"]) == model.MAX_RESULTS_PER_HOOK
    assert data["hooks"][0]["hidden"] == 500
    assert "output left out" in page


def test_without_the_chart_library_the_error_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine_report: dict[str, Any]
) -> None:
    monkeypatch.setattr(assets, "VENDOR_DIR", tmp_path / "vendor")
    monkeypatch.delenv(assets.ENV_DIR, raising=False)
    with pytest.raises(assets.ChartLibraryMissing, match=r"uPlot 1\.6\.32.*fetch-chart-lib"):
        render_html(engine_report)
    for name in assets.FILES:
        (tmp_path / name).write_text(f"/* {name} */")
    monkeypatch.setenv(assets.ENV_DIR, str(tmp_path))
    assert "/* uPlot.iife.min.js */" in render_html(engine_report)


def test_run_writes_html_junit_and_markdown_and_report_reads_the_json(tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(TASK)
    out = {k: tmp_path / f"r.{k}" for k in ("html", "xml", "md", "json")}
    done = krally(
        "run", str(task), "--no-progress", "--json", str(out["json"]), "--html", str(out["html"]),
        "--junit", str(out["xml"]), "--markdown", str(out["md"]),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the SLA fails
    assert f"HTML report written to {out['html']}" in done.stdout
    assert _island(out["html"].read_text())["verdict"] == "failed"
    assert "<testsuites" in out["xml"].read_text()
    assert "failure_rate" in out["md"].read_text()
    again = tmp_path / "again.html"
    done = krally("report", str(out["json"]), "--html", str(again), "--markdown", "-")
    assert done.returncode == 1, done.stderr
    assert "failure_rate" in done.stdout and "+---" not in done.stdout  # markdown, no tables
    first, second = _island(out["html"].read_text()), _island(again.read_text())
    for data in (first, second):
        data.pop("generatedAt")
        data.pop("source")
    assert first == second  # the same report from the run and from its JSON


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"tasks": [{"subtasks": [{"workloads": [', "malformed JSON (truncated?)"),
        ('{"hello": 1}', "not a krally/Rally JSON report"),
        ("just words", "malformed JSON"),
        ('{"tasks": [{"subtasks": [{"workloads": [7]}]}]}', "not a readable krally/Rally"),
        (
            '{"apiVersion": "krally.dev/v1alpha1", "kind": "BenchmarkTask", '
            '"metadata": {"name": "t"}, "spec": {}}',
            "the task has not started (phase Pending)",
        ),
    ],
)
def test_bad_results_are_one_line_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(content)
    done = krally("report", str(path), "--html", str(tmp_path / "r.html"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_binary_file_and_a_missing_output_folder(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    done = krally("report", str(path))
    assert done.returncode == 2 and "not text" in done.stderr, done.stderr
    task = tmp_path / "task.yaml"
    task.write_text(TASK)
    done = krally("run", str(task), "--html", str(tmp_path / "no" / "r.html"))
    assert done.returncode == 2 and "does not exist" in done.stderr, done.stderr
    assert "Task" not in done.stdout  # refused before the run, not after


def test_the_dockerfile_pins_the_same_chart_library() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert f"ARG UPLOT_VERSION={assets.UPLOT_VERSION}\n" in dockerfile
    assert f"ARG UPLOT_INTEGRITY={assets.UPLOT_INTEGRITY}\n" in dockerfile


def test_rallys_own_json_gets_its_charts_from_the_iterations(tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(TASK)
    results = tmp_path / "results.json"
    assert krally("run", str(task), "--no-progress", "--json", str(results)).returncode == 1
    document = json.loads(results.read_text())
    document.pop("krally")  # what Rally itself writes: tasks and per-iteration data only
    results.write_text(json.dumps(document))
    html = tmp_path / "r.html"
    assert krally("report", str(results), "--html", str(html)).returncode == 1
    (w,) = _island(html.read_text())["tasks"][0]["workloads"]
    assert sum(w["timeline"]["count"]) == 1500 == sum(b[2] for b in w["histogram"])


def test_timeline_points_are_intervals_and_gaps_are_zero() -> None:
    def point(offset: float, count: int) -> dict[str, Any]:
        return {"offset": offset, "width": 1.0, "count": count, "failures": 1,
                "durations": {"median": 0.01, "95%ile": 0.02}}  # fmt: skip

    # No iteration started in [2, 4): those seconds are zero, not the step before held on.
    columns = model._timeline([point(0, 10), point(1, 12), point(4, 9)])
    assert columns["offset"] == [0, 1, 2, 3, 4]
    assert columns["end"] == [1, 2, 3, 4, 5]
    assert columns["rate"] == [10, 12, 0, 0, 9]
    assert columns["p95"] == [0.02, 0.02, None, None, 0.02]


def test_the_recovery_cell_never_says_no_impact_below_the_throughput_tolerance() -> None:
    def entry(after: float, tolerance: dict[str, Any] | None = None) -> dict[str, Any]:
        window = {"start": 0.0, "end": 1.0, "throughput": 100.0, "errorRate": 0.0, "p95": 0.01}
        item: dict[str, Any] = {
            "hook": 0, "name": "sys_call", "startedAt": 10.0, "triggeredBy": {},
            "baseline": window, "during": window, "after": {**window, "throughput": after},
            "degraded": False, "recovered": True, "recoverySeconds": 0.0,
        }  # fmt: skip
        if tolerance is not None:
            item["tolerance"] = tolerance
        return item

    def cell(item: dict[str, Any]) -> str:
        workload = {"impact": model._impact([item], 0.0)}
        row = html._impact_table(workload).split("<tr>")[-1]
        return row

    assert "no impact" in cell(entry(95.0))
    low = cell(entry(40.0))  # an older verdict: degraded false, yet the rate fell to 0.4
    assert "no impact" not in low and "throughput 0.40 x baseline (tolerance 0.8)" in low
    assert "no impact" in cell(entry(40.0, {"throughputRatio": 0.3}))
