"""krally.results: Rally's import document, streamed, its extras, and BenchmarkTask exports.

(The real check is Rally's own ``task import``: tests/rally. These pin the shape without it.)
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from krally import cli
from krally.results import cluster, rally, stream
from krally.results.console import render_report
from krally.task import plugin
from krally.task.loader import load_task
from krally.task.task_run import run_task


def _record(n: int, error: bool = False) -> dict[str, Any]:
    return {
        "iteration": n,
        "timestamp": 1000.0 + n,
        "duration": 0.5,
        "idle_duration": 0.0,
        "error": ["E", "boom", "tb"] if error else [],
        "output": {"additive": [], "complete": []},
        "atomic_actions": [
            {"name": "a", "started_at": 1.0, "finished_at": 2.0, "children": []},
        ],
    }


HOOK = {
    "config": {
        "description": "d",
        "action": {"sys_call": "/bin/false"},
        "trigger": {"event": {"unit": "iteration", "at": [1, 9]}},
    },
    "results": [
        {
            "status": "failed",
            "started_at": 1.0,
            "finished_at": 2.0,
            "triggered_by": {"event_type": "iteration", "value": 1},
            "error": {"etype": "n/a", "msg": "Subprocess returned 1", "details": "stdout: "},
            "job": "t-h0-iteration-1",
        }
    ],
    "summary": {"failed": 1},
    "unreached": [{"event_type": "iteration", "value": 9}],
    "unreached_count": 1,
}


def _workload(uuid: str = "w1", **extra: Any) -> dict[str, Any]:
    workload = {
        "uuid": uuid,
        "description": "",
        "position": 0,
        "scenario": {"Dummy.dummy": {}},
        "runner": {"serial": {"times": 3}},
        "contexts": {},
        "hooks": [json.loads(json.dumps(HOOK))],
        "sla": {},
        "sla_results": {"sla": [{"criterion": "failure_rate", "success": True, "detail": ""}]},
        "pass_sla": True,
        "created_at": "2026-01-01T00:00:00",
        "updated_at": "2026-01-01T00:00:01",
        "full_duration": 1.0,
        "contexts_results": [],
        "warnings": ["w"],
        "aborted": False,
        "timeline": [{"offset": 0.0, "count": 3}],
        "statistics": {"durations": {"total": {}, "atomics": []}},
        "total_iteration_count": 3,
        "failed_iteration_count": 1,
        "min_duration": 0.5,
        "max_duration": float("nan"),
        "start_time": 1001.0,
        "load_duration": 2.5,
    }
    workload.update(extra)
    return workload


def _report(*workloads: dict[str, Any]) -> dict[str, Any]:
    return {
        "info": {"format_version": "1.2"},
        "tasks": [
            {
                "uuid": "t1",
                "title": "T",
                "description": "",
                "status": "finished",
                "pass_sla": True,
                "warnings": ["task warning"],
                "subtasks": [
                    {"uuid": f"s{i}", "title": "S", "status": "finished", "workloads": [w]}
                    for i, w in enumerate(workloads)
                ],
            }
        ],
    }


def test_rally_hook_error_pairs_and_extras() -> None:
    out, extras = rally.rally_hook(HOOK)
    assert out["config"]["action"] == ["sys_call", "/bin/false"]
    assert out["config"]["trigger"] == ["event", {"unit": "iteration", "at": [1, 9]}]
    (result,) = out["results"]
    assert result["error"] == ["n/a", "Subprocess returned 1", "stdout: "]
    assert set(result) <= set(rally.HOOK_RESULT_KEYS)
    assert extras["unreached"] == [{"event_type": "iteration", "value": 9}]
    assert extras["results"] == [{"job": "t-h0-iteration-1"}]


def test_workload_keeps_only_rally_keys_and_finite_numbers() -> None:
    out, extras = rally.rally_workload(_workload(error=["ContextError", "x", "tb"]))
    assert set(out) <= set(rally.WORKLOAD_KEYS)
    assert out["max_duration"] is None  # NaN is not JSON
    assert extras["warnings"] == ["w"] and extras["error"] == ["ContextError", "x", "tb"]
    assert extras["timeline"] and extras["aborted"] is False


def test_stream_writes_one_valid_document(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    writer = stream.RallyJSONWriter(path)
    report = _report(_workload("w1"), _workload("w2"))
    counts = [stream.BATCH + 5, 0]
    for position, subtask in enumerate(report["tasks"][0]["subtasks"]):
        writer.begin_workload(position)
        for n in range(1, counts[position] + 1):
            writer.record(_record(n, error=n == 2))
        writer.end_workload(subtask["workloads"][0], subtask)
    assert not path.exists() and writer.part.exists()
    writer.close(report)
    assert path.exists() and not writer.part.exists()
    document = json.loads(path.read_text())
    (task,) = document["tasks"]
    assert set(task) <= {*rally.TASK_KEYS, "subtasks"}
    first, second = (s["workloads"][0] for s in task["subtasks"])
    assert [r["iteration"] for r in first["data"]] == list(range(1, stream.BATCH + 6))
    assert second["data"] == []
    assert document["krally"]["tasks"] == {"t1": {"warnings": ["task warning"]}}
    assert set(document["krally"]["workloads"]) == {"w1", "w2"}
    # The same document as the in-memory conversion, but for the data.
    expected = rally.to_rally(report)
    for workload in (first, second):
        workload["data"] = []
    assert document["tasks"] == expected["tasks"]
    assert document["krally"] == expected["krally"]


def test_stream_abort_leaves_nothing(tmp_path: Path) -> None:
    writer = stream.RallyJSONWriter(tmp_path / "r.json")
    writer.begin_workload(0)
    writer.record(_record(1))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_stream_memory_is_flat(tmp_path: Path) -> None:
    writer = stream.RallyJSONWriter(tmp_path / "r.json")
    writer.begin_workload(0)
    record = _record(1)
    tracemalloc.start()
    for _ in range(50_000):
        writer.record(record)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    writer.abort()
    # One batch and its encoding: far below the ~20 MB the records take on disk.
    assert peak < 3 * stream.BATCH * 600


def test_inline_extras_round_trip_for_krally_report() -> None:
    report = _report(_workload("w1", error=["ContextError", "no", "tb"]))
    document = rally.to_rally(report)
    back = rally.inline_extras(document)
    workload = back["tasks"][0]["subtasks"][0]["workloads"][0]
    assert back["tasks"][0]["warnings"] == ["task warning"]
    assert workload["warnings"] == ["w"] and workload["error"][0] == "ContextError"
    (hook,) = workload["hooks"]
    assert hook["config"]["action"] == {"sys_call": "/bin/false"}
    assert hook["results"][0]["error"]["etype"] == "n/a"
    assert hook["results"][0]["job"] == "t-h0-iteration-1"
    assert hook["unreached"] == [{"event_type": "iteration", "value": 9}]
    text = render_report(back)
    assert "RUN ERROR: ContextError" in text and "not reached: iteration 9" in text
    assert "n/a: Subprocess returned 1" in text


def test_inline_extras_reads_rally_db_forms() -> None:
    workload = _workload("w1")
    workload.pop("scenario")
    workload.update(name="Dummy.dummy", args={}, runner_type="serial", runner={"times": 3})
    workload["hooks"][0]["results"][0]["error"] = ["n/a", "m", "d"]
    back = rally.inline_extras({"tasks": [{"subtasks": [{"workloads": [workload]}]}]})
    out = back["tasks"][0]["subtasks"][0]["workloads"][0]
    assert out["scenario"] == {"Dummy.dummy": {}} and out["runner"] == {"serial": {"times": 3}}
    assert out["hooks"][0]["results"][0]["error"] == {"etype": "n/a", "msg": "m", "details": "d"}
    assert "Dummy.dummy" in render_report(back)


def test_run_task_streams_every_record(tmp_path: Path) -> None:
    plugin.load_builtin_plugins()
    source = tmp_path / "t.json"
    source.write_text(
        json.dumps(
            {
                "Dummy.dummy": [{"runner": {"type": "serial", "times": 7}}],
                "Dummy.failure": [
                    {
                        "args": {"sleep": 0, "from_iteration": 1, "to_iteration": 2},
                        "runner": {"type": "constant", "times": 4, "concurrency": 2},
                    }
                ],
            }
        )
    )
    writer = stream.RallyJSONWriter(tmp_path / "out.json")
    report = run_task(load_task(str(source)), results=writer)
    writer.close(report)
    document = json.loads((tmp_path / "out.json").read_text())
    data = [w["data"] for t in document["tasks"] for s in t["subtasks"] for w in s["workloads"]]
    assert [len(d) for d in data] == [7, 4]
    assert sum(1 for r in data[1] if r["error"]) == 2
    for records in data:
        for record in records:
            assert isinstance(record["duration"], float) and isinstance(record["error"], list)
            assert {"additive", "complete"} <= set(record["output"])


def test_cluster_export_of_a_pending_task() -> None:
    obj = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "t", "uid": "0b7ad7b4-5a4f-4f57-9a3e-7f1f2f5d3c11"},
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "runner": {"type": "constant", "times": 2},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "true",
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1]}},
                }
            ],
        },
    }
    assert cluster.is_benchmark_task(obj)
    document = cluster.rally_from_task(obj)
    (workload,) = document["tasks"][0]["subtasks"][0]["workloads"]
    assert workload["data"] == [] and workload["total_iteration_count"] == 0
    assert workload["hooks"][0]["config"]["action"] == ["sys_call", "true"]
    assert document["tasks"][0]["status"] == "running"
    assert set(workload) <= set(rally.WORKLOAD_KEYS)


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_report_command_reads_a_benchmarktask(
    tmp_path: Path, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    obj = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "t"},
        "spec": {"scenario": {"name": "Dummy.dummy"}, "runner": {"type": "serial", "times": 1}},
        "status": {"phase": "Succeeded", "passSLA": True, "result": {"iterations": 1}},
    }
    source = tmp_path / f"bt.{form}"
    source.write_text(json.dumps(obj) if form == "json" else yaml.safe_dump(obj))
    out = tmp_path / "rally.json"
    assert cli.main(["report", str(source), "--json", str(out)]) == 0
    assert "Iterations: 1, failed: 0" in capsys.readouterr().out
    assert json.loads(out.read_text())["tasks"][0]["pass_sla"] is True


def test_report_still_reads_the_old_inline_format() -> None:
    """Files written before the Rally import format (extras inline, config as mappings)."""
    report = _report(_workload("w1"))
    report["tasks"][0]["subtasks"][0]["workloads"][0]["hooks"][0]["results"][0]["error"] = {
        "etype": "n/a",
        "msg": "Subprocess returned 1",
        "details": "",
    }
    back = rally.inline_extras(report)
    text = render_report(back)
    assert "warning: w" in text and "not reached: iteration 9" in text
    assert 'sys_call "/bin/false"' in text
