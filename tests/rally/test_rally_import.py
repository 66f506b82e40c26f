"""Round trips through Rally 5.1.1: ``krally run --json`` → ``rally task import`` → Rally's
HTML and JSON reports (and back through ``krally report``).

Each test runs a task with krally, imports the file with Rally's own ``task import`` (which
validates it against Rally's schema and checks every per-iteration record), builds Rally's HTML
report of the imported task, and checks what Rally made of it.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import yaml
from tests.cli import krally as run_krally

ROOT = Path(__file__).resolve().parents[2]


def krally(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # Rally-sized runs take longer than the CLI's own tests.
    return run_krally(*args, timeout=timeout)


def run_json(tmp_path: Path, task: Any, *extra: str, name: str = "task.json") -> dict[str, Any]:
    path = tmp_path / name
    path.write_text(task if isinstance(task, str) else json.dumps(task), encoding="utf-8")
    out = tmp_path / "results.json"
    proc = krally("run", str(path), "--json", str(out), "--no-progress", *extra)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert out.exists(), proc.stderr
    return json.loads(out.read_text(encoding="utf-8"))


def workloads(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for t in document["tasks"] for s in t["subtasks"] for w in s["workloads"]]


def html_data(html: str) -> list[dict[str, Any]]:
    """The processed workloads Rally's HTML report embeds (``$scope.scenarios = [...];``)."""
    match = re.search(r"^\s*\$scope\.scenarios = (\[.*\]);\s*$", html, re.M)
    assert match, "no workload data found in Rally's HTML report"
    return json.loads(match.group(1))


def imported(rally: Any, path: Path) -> tuple[dict[str, Any], str]:
    uuid = rally.import_results(path)
    return rally.report_json(uuid), rally.report_html(uuid)


# -- Rally's hooks example ---------------------------------------------------------------------


def test_rally_hooks_example_imports_and_shows_hooks(rally: Any, tmp_path: Path) -> None:
    task = json.loads((ROOT / "examples" / "rally-hooks.json").read_text())
    task["Dummy.dummy"][0]["args"]["sleep"] = 0.001  # the example's load, shorter: ~2 s
    document = run_json(tmp_path, task)
    (workload,) = workloads(document)
    assert len(workload["data"]) == 1500

    exported, html = imported(rally, tmp_path / "results.json")
    (rally_workload,) = workloads(exported)
    assert rally_workload["total_iteration_count"] == 1500
    assert rally_workload["failed_iteration_count"] == 0
    assert rally_workload["pass_sla"] is True
    (hook,) = rally_workload["hooks"]
    assert hook["summary"] == {"success": 4}
    assert [r["triggered_by"]["value"] for r in hook["results"]] == [5, 50, 200, 1000]
    assert hook["config"]["action"] == {"sys_call": "/bin/echo 123"}

    (processed,) = html_data(html)
    assert processed["iterations_count"] == 1500
    (hook_view,) = processed["hooks"]
    assert hook_view["name"] == "sys_call"
    assert [c["triggered_by"] for c in hook_view["complete"]] == [
        f"iteration: {v}" for v in (5, 50, 200, 1000)
    ]
    assert all(c["status"] == "success" for c in hook_view["complete"])

    # Rally's report also reads the file as it is, without an import.
    direct = tmp_path / "direct.html"
    rally("task", "report", str(tmp_path / "results.json"), "--html", "--out", str(direct))
    (view,) = html_data(direct.read_text(encoding="utf-8"))
    assert [c["triggered_by"] for c in view["hooks"][0]["complete"]][-1] == "iteration: 1000"

    # Rally's own export of the imported task reads back through krally report.
    again = tmp_path / "exported.json"
    again.write_text(json.dumps(exported), encoding="utf-8")
    proc = krally("report", str(again))
    assert proc.returncode == 0, proc.stderr
    assert "iteration 1000: success" in proc.stdout


# -- failures, hooks of every status, extras ---------------------------------------------------

STATUS_PLUGIN = """
from krally import consts
from krally.task import hook


@hook.configure(name="roundtrip_validation_failed")
class ValidationFailed(hook.Hook):
    CONFIG_SCHEMA = {"type": "string"}

    def run(self):
        self.set_status(consts.HookStatus.VALIDATION_FAILED)
        self.add_output(complete={"title": "why", "chart_plugin": "TextArea",
                                  "data": [self.config]})
"""

CHARTS = json.dumps(
    {
        "additive": [{"title": "Stats", "chart_plugin": "StatsTable", "data": [["a", 1.5]]}],
        "complete": [
            {"title": "Lines", "chart_plugin": "Lines", "data": [["l", [[1, 2], [2, 3]]]]},
            {
                "title": "Table",
                "chart_plugin": "Table",
                "data": {"cols": ["x", "y"], "rows": [["a", 1]]},
            },
        ],
    }
)


def test_failures_and_hooks_of_every_status(rally: Any, tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "status.py").write_text(STATUS_PLUGIN)
    (tmp_path / "charts.json").write_text(CHARTS)

    def hook(name: str, args: str, at: list[int], **job: Any) -> dict[str, Any]:
        entry = {
            "name": name,
            "args": args,
            "description": f"{name} {args}"[:60],
            "trigger": {"name": "event", "args": {"unit": "iteration", "at": at}},
        }
        if job:
            entry["job"] = job
        return entry

    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "every-status"},
        "spec": {
            "scenario": {
                "name": "Dummy.failure",
                "args": {"sleep": 0.002, "from_iteration": 3, "to_iteration": 30, "each": 3},
            },
            "runner": {"type": "constant", "times": 60, "concurrency": 2},
            "sla": {"failure_rate": {"max": 50}},
            "hooks": [
                hook("sys_call", "/bin/echo hello", [1, 20]),
                hook("sys_call", "/bin/false", [2]),
                hook("sys_call", "/bin/sleep 30", [4], timeoutSeconds=1),
                hook("sys_call", f"/bin/cat {tmp_path / 'charts.json'}", [5, 6]),
                hook("roundtrip_validation_failed", "bad input", [7]),
                hook("sys_call", "/bin/echo never", [10, 100000]),
            ],
        },
    }
    document = run_json(
        tmp_path,
        yaml.safe_dump(task),
        "--plugin-path",
        str(tmp_path / "plugins"),
        name="task.yaml",
    )
    (workload,) = workloads(document)
    assert workload["failed_iteration_count"] == 10
    assert sum(1 for r in workload["data"] if r["error"]) == 10
    statuses = {r["status"] for h in workload["hooks"] for r in h["results"]}
    assert statuses == {"success", "failed", "validation_failed"}
    errors = [r["error"] for h in workload["hooks"] for r in h["results"] if "error" in r]
    assert all(isinstance(e, list) and len(e) == 3 for e in errors)
    assert any(e[0] == "Timeout" for e in errors)
    (extras,) = document["krally"]["workloads"].values()
    assert extras["hooks"][5]["unreached"] == [{"event_type": "iteration", "value": 100000}]

    exported, html = imported(rally, tmp_path / "results.json")
    (rally_workload,) = workloads(exported)
    assert rally_workload["total_iteration_count"] == 60
    assert rally_workload["failed_iteration_count"] == 10
    summaries = [h["summary"] for h in rally_workload["hooks"]]
    assert summaries == [
        {"success": 2},
        {"failed": 1},
        {"failed": 1},
        {"success": 2},
        {"validation_failed": 1},
        {"success": 1},
    ]

    (processed,) = html_data(html)
    assert len(processed["errors"]) == 10
    assert processed["errors"][0]["type"] == "DummyScenarioException"
    views = processed["hooks"]
    # Rally's report lists the hooks that have output: all but the timed-out one (killed).
    by_desc = {v["desc"]: v for v in views}
    assert sorted(by_desc) == sorted(
        h["config"]["description"] for h in workload["hooks"] if "sleep" not in str(h["config"])
    )
    assert by_desc["roundtrip_validation_failed bad input"]["name"] == (
        "roundtrip_validation_failed"
    )
    assert by_desc["sys_call /bin/false"]["complete"][0]["status"] == "failed"
    charts = by_desc[f"sys_call /bin/cat {tmp_path / 'charts.json'}"[:60]]
    assert len(charts["additive"]) == 1  # StatsTable aggregated over the 2 firings
    assert [c["triggered_by"] for c in charts["complete"]] == ["iteration: 5", "iteration: 6"]
    assert [len(c["charts"]) for c in charts["complete"]] == [2, 2]
    statuses_in_html = {c["status"] for v in views for c in v["complete"]}
    assert statuses_in_html == {"success", "failed", "validation_failed"}

    # krally report of the file: extras back in place.
    proc = krally("report", str(tmp_path / "results.json"))
    assert proc.returncode == 0, proc.stderr
    assert "not reached: iteration 100000" in proc.stdout
    assert "Timeout: hook 'sys_call' did not finish within 1 s" in proc.stdout


# -- nested atomic actions, several workloads --------------------------------------------------


def test_nested_atomics_and_several_workloads(rally: Any, tmp_path: Path) -> None:
    task = textwrap.dedent(
        """
        version: 2
        title: several workloads
        subtasks:
          - title: nested
            workloads:
              - scenario: {Dummy.dummy: {sleep: 0}}
                runner: {constant: {times: 40, concurrency: 4}}
              - scenario: {Dummy.dummy_random_fail_in_atomic: {exception_probability: 0.3}}
                runner: {serial: {times: 30}}
                sla: {failure_rate: {max: 100}}
          - title: timed
            scenario:
              Dummy.dummy_timed_atomic_actions: {number_of_actions: 3, sleep_factor: 0.001}
            runner: {constant: {times: 5}}
            hooks:
              - description: every 2nd iteration
                action: {sys_call: /bin/echo periodic}
                trigger: {periodic: {unit: iteration, step: 2}}
        """
    )
    document = run_json(tmp_path, task, name="task.yaml")
    assert [len(w["data"]) for w in workloads(document)] == [40, 30, 5]
    first = workloads(document)[0]["data"][0]["atomic_actions"]
    assert first[0]["name"] == "foo" and first[0]["children"][0]["name"] == "bar"

    exported, html = imported(rally, tmp_path / "results.json")
    assert [w["total_iteration_count"] for w in workloads(exported)] == [40, 30, 5]
    atomics = workloads(exported)[0]["statistics"]["durations"]["atomics"]
    assert atomics[0]["name"] == "foo" and atomics[0]["children"][0]["name"] == "bar"
    processed = html_data(html)
    assert sorted(p["met"] for p in processed) == [
        "dummy",
        "dummy_random_fail_in_atomic",
        "dummy_timed_atomic_actions",
    ]
    timed = next(p for p in processed if p["met"] == "dummy_timed_atomic_actions")
    assert [c["triggered_by"] for c in timed["hooks"][0]["complete"]] == [
        "iteration: 1",
        "iteration: 3",
        "iteration: 5",
    ]
    table_names = {row[0] for row in timed["table"]["rows"]}
    assert {"action_0", "action_1", "action_2"} <= {n.strip("-> ").strip() for n in table_names}


# -- SLA abort ---------------------------------------------------------------------------------


def test_sla_abort(rally: Any, tmp_path: Path) -> None:
    task = {
        "Dummy.dummy_exception": [
            {"args": {"sleep": 0.001}, "runner": {"type": "constant", "times": 5000}}
        ],
        "Dummy.dummy": [{"runner": {"type": "serial", "times": 5}}],
    }
    document = run_json(tmp_path, task, "--abort-on-sla-failure")
    (workload,) = workloads(document)  # the second workload is skipped, as in Rally
    assert 0 < len(workload["data"]) < 5000
    assert document["tasks"][0]["status"] == "aborted"
    (extras,) = document["krally"]["workloads"].values()
    assert extras["aborted"] is True

    exported, html = imported(rally, tmp_path / "results.json")
    (rally_workload,) = workloads(exported)
    assert rally_workload["pass_sla"] is False
    assert rally_workload["total_iteration_count"] == len(workload["data"])
    criteria = {s["criterion"]: s["success"] for s in rally_workload["sla_results"]["sla"]}
    assert criteria["aborted_on_sla"] is False
    (processed,) = html_data(html)
    assert processed["sla_success"] is False


# -- a cluster task's status -------------------------------------------------------------------


def test_benchmarktask_status_export(rally: Any, tmp_path: Path) -> None:
    obj = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {
            "name": "rally-hooks",
            "namespace": "bench",
            "uid": "0b7ad7b4-5a4f-4f57-9a3e-7f1f2f5d3c11",
            "creationTimestamp": "2026-12-01T10:00:00Z",
        },
        "spec": {
            "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
            "runner": {"type": "constant", "times": 1500, "concurrency": 1},
            "sla": {"failure_rate": {"max": 0}},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "/bin/echo 123",
                    "trigger": {
                        "name": "event",
                        "args": {"unit": "iteration", "at": [5, 50, 200, 1000, 2000]},
                    },
                }
            ],
        },
        "status": {
            "phase": "Succeeded",
            "startedAt": "2026-12-01T10:00:02.000Z",
            "finishedAt": "2026-12-01T10:00:20.000Z",
            "warnings": ["spec.hooks[0].trigger.args.at: [2000] beyond the runner's times"],
            "hooks": [
                {
                    "index": 0,
                    "name": "sys_call",
                    "description": "",
                    "trigger": {
                        "name": "event",
                        "args": {"unit": "iteration", "at": [5, 50, 200, 1000, 2000]},
                    },
                    "summary": {"success": 3, "failed": 1},
                    "results": [
                        {
                            "triggeredBy": {"eventType": "iteration", "value": v},
                            "status": "failed" if v == 1000 else "success",
                            "firedAt": "2026-12-01T10:00:03.000Z",
                            "startedAt": "2026-12-01T10:00:04.125Z",
                            "finishedAt": "2026-12-01T10:00:05.250Z",
                            "job": f"rally-hooks-h0-iteration-{v}",
                            **(
                                {"error": {"etype": "n/a", "msg": "exit 1", "details": ""}}
                                if v == 1000
                                else {}
                            ),
                            "output": {
                                "additive": [],
                                "complete": [
                                    {
                                        "title": "System call",
                                        "chart_plugin": "TextArea",
                                        "data": ["RetCode: 0", "StdOut: 123\n"],
                                    }
                                ],
                            },
                        }
                        for v in (5, 50, 200, 1000)
                    ],
                    "unreached": [{"eventType": "iteration", "value": 2000}],
                }
            ],
            "sla": [{"criterion": "failure_rate", "success": True, "detail": "0.00% - Passed"}],
            "passSLA": True,
            "result": {
                "iterations": 1500,
                "failures": 0,
                "loadDuration": 16.2,
                "fullDuration": 16.4,
                "durations": {
                    "min": 0.0101,
                    "median": 0.0105,
                    "p90": 0.011,
                    "p95": 0.0112,
                    "max": 0.02,
                    "avg": 0.0106,
                },
                "timeline": [{"offset": 0, "width": 1, "count": 95, "failures": 0}],
            },
            "runner": {
                "state": "Finished",
                "startedAt": "2026-12-01T10:00:02.000Z",
                "summary": {"aborted": False},
            },
        },
    }
    source = tmp_path / "bt.yaml"
    source.write_text(yaml.safe_dump(obj), encoding="utf-8")
    out = tmp_path / "bt-rally.json"
    proc = krally("report", str(source), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "iteration 1000: failed" in proc.stdout and "not reached: iteration 2000" in proc.stdout
    document = json.loads(out.read_text())
    (workload,) = workloads(document)
    assert workload["data"] == [] and workload["total_iteration_count"] == 1500

    exported, html = imported(rally, out)
    (rally_workload,) = workloads(exported)
    # Rally recounts from data, which a cluster status never holds (see krally.results.cluster).
    assert rally_workload["total_iteration_count"] == 0
    assert rally_workload["load_duration"] == 16.2
    assert rally_workload["hooks"][0]["summary"] == {"success": 3, "failed": 1}
    (processed,) = html_data(html)
    assert [c["triggered_by"] for c in processed["hooks"][0]["complete"]] == [
        f"iteration: {v}" for v in (5, 50, 200, 1000)
    ]
