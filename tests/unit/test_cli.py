"""The ``krally`` CLI, run as a subprocess (``python -m krally``) like a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cli import krally

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_help_documents_exit_codes() -> None:
    proc = krally("--help")
    assert proc.returncode == 0
    for line in ("0 ", "1 ", "2 ", "3 "):
        assert f"\n  {line}" in proc.stdout
    assert "SLA failed" in proc.stdout and "invalid task" in proc.stdout
    for command in ("run", "validate", "convert", "report"):
        assert command in proc.stdout


@pytest.mark.parametrize("name", ["rally-hooks.json", "dummy-hooks.yaml", "rally-hooks-v2.yaml"])
def test_validate_examples(name: str) -> None:
    proc = krally("validate", f"examples/{name}")
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout
    assert "warning: " in proc.stderr and "needs OpenStack" in proc.stderr


def _write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _hooked(trigger_args: Any, hook: str = "sys_call") -> dict[str, Any]:
    return {
        "Dummy.dummy": [
            {
                "runner": {"type": "constant", "times": 10},
                "hooks": [
                    {
                        "name": hook,
                        "args": "true",
                        "trigger": {"name": "event", "args": trigger_args},
                    }
                ],
            }
        ]
    }


BAD = [
    ("unknown-plugin", _hooked({"unit": "iteration", "at": [1]}, hook="sys_cal"), "hooks[0].name"),
    ("wrong-type", {"Dummy.dummy": [{"runner": {"type": "constant", "times": "x"}}]}, "times"),
    ("at-empty", _hooked({"unit": "iteration", "at": []}), "trigger.args.at"),
    ("at-duplicate", _hooked({"unit": "iteration", "at": [2, 2]}), "trigger.args"),
    ("at-below-minimum", _hooked({"unit": "iteration", "at": [0]}), "trigger.args"),
    ("unknown-runner", {"Dummy.dummy": [{"runner": {"type": "fast"}}]}, "runner.type"),
    ("negative-times", {"Dummy.dummy": [{"runner": {"type": "serial", "times": -3}}]}, "times"),
    ("malformed-json", '{"Dummy.dummy": [\n  {"args": }\n]}', ":2:"),
    ("malformed-yaml", "Dummy.dummy:\n  - args: [\n", ":3:"),
]


@pytest.mark.parametrize("command", ["validate", "run", "convert"])
@pytest.mark.parametrize(("case", "content", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, command: str, case: str, content: Any, field: str
) -> None:
    suffix = ".yaml" if case == "malformed-yaml" else ".json"
    path = _write(tmp_path, f"task{suffix}", content)
    proc = krally(command, str(path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}"), lines
    assert field in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_missing_file_and_bad_plugin_path(tmp_path: Path) -> None:
    proc = krally("run", str(tmp_path / "nope.json"))
    assert proc.returncode == 2 and "nope.json" in proc.stderr and "Traceback" not in proc.stderr
    proc = krally("validate", "examples/rally-hooks.json", "--plugin-path", str(tmp_path / "x"))
    assert proc.returncode == 2 and "--plugin-path" in proc.stderr


def test_convert_gives_benchmarktask_yaml(tmp_path: Path) -> None:
    proc = krally("convert", "examples/rally-hooks.json")
    assert proc.returncode == 0, proc.stderr
    (doc,) = list(yaml.safe_load_all(proc.stdout))
    twin = yaml.safe_load((EXAMPLES / "dummy-hooks.yaml").read_text())
    assert doc["kind"] == "BenchmarkTask"
    assert doc["spec"] == twin["spec"]


def test_run_sla_failure_exit_1_and_report(tmp_path: Path) -> None:
    task = {
        "Dummy.dummy_exception": [
            {"args": {"sleep": 0}, "runner": {"type": "serial", "times": 3}},
        ]
    }
    path = _write(tmp_path, "fail.json", task)
    out = tmp_path / "out.json"
    proc = krally("run", str(path), "--json", str(out), "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "SLA: FAILED" in proc.stdout
    assert proc.stderr == ""
    report = json.loads(out.read_text())
    assert report["tasks"][0]["pass_sla"] is False
    again = krally("report", str(out))
    assert again.returncode == 1
    assert "SLA: FAILED" in again.stdout and "Response Times (sec)" in again.stdout


def test_run_abort_on_sla_failure(tmp_path: Path) -> None:
    task = {
        "Dummy.dummy_exception": [
            {"args": {"sleep": 0.001}, "runner": {"type": "constant", "times": 5000}},
        ]
    }
    path = _write(tmp_path, "fail.json", task)
    out = tmp_path / "out.json"
    proc = krally("run", str(path), "--json", str(out), "--abort-on-sla-failure")
    assert proc.returncode == 1, proc.stderr
    workload = json.loads(out.read_text())["tasks"][0]["subtasks"][0]["workloads"][0]
    assert workload["total_iteration_count"] < 5000
    assert "aborted_on_sla" in proc.stdout


def test_run_error_exit_3(tmp_path: Path) -> None:
    task = {"Dummy.dummy": [{"context": {"dummy_context": {"fail_setup": True}}}]}
    proc = krally("run", str(_write(tmp_path, "t.json", task)), "--no-progress")
    assert proc.returncode == 3, proc.stderr
    assert "RUN ERROR: ContextError" in proc.stdout


def test_report_bad_file(tmp_path: Path) -> None:
    proc = krally("report", str(_write(tmp_path, "r.json", "{nope")))
    assert proc.returncode == 2 and "r.json:1:" in proc.stderr


def test_run_rally_hooks_example(tmp_path: Path) -> None:
    """The seed example: 4 successful hooks fired at iterations 5, 50, 200, 1000 (~15 s)."""
    out = tmp_path / "out.json"
    proc = krally("run", "examples/rally-hooks.json", "--json", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning: " in proc.stderr and "'users' needs OpenStack" in proc.stderr
    assert "Load duration" in proc.stdout and "Full duration" in proc.stdout
    assert "SLA: PASSED" in proc.stdout
    report = json.loads(out.read_text())
    (workload,) = report["tasks"][0]["subtasks"][0]["workloads"]
    assert workload["total_iteration_count"] == 1500
    (hook,) = workload["hooks"]
    assert hook["summary"] == {"success": 4}
    assert [r["triggered_by"] for r in hook["results"]] == [
        {"event_type": "iteration", "value": v} for v in (5, 50, 200, 1000)
    ]
    assert all(r["status"] == "success" for r in hook["results"])
    # Rally's stored form ([name, config] pairs): what its HTML report reads after an import.
    assert hook["config"] == {
        "description": "",
        "action": ["sys_call", "/bin/echo 123"],
        "trigger": ["event", {"unit": "iteration", "at": [5, 50, 200, 1000]}],
    }
    assert len(workload["data"]) == 1500
    assert sorted(r["iteration"] for r in workload["data"]) == list(range(1, 1501))
    assert "warnings" not in report["tasks"][0] and "timeline" not in workload
    (extras,) = report["krally"]["workloads"].values()
    assert extras["aborted"] is False and extras["timeline"]


PLUGIN = """
from krally import consts
from krally.task import hook


@hook.configure(name="cli_test_marker")
class MarkerHook(hook.Hook):
    CONFIG_SCHEMA = {"$schema": consts.JSON_SCHEMA, "type": "string"}

    def run(self):
        with open(self.config, "a") as f:
            f.write("%s\\n" % self.triggered_by["value"])
"""


def test_run_with_plugin_path(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "marker.py").write_text(PLUGIN)
    marker = tmp_path / "marker.txt"
    task = {
        "Dummy.dummy": [
            {
                "runner": {"type": "serial", "times": 3},
                "hooks": [
                    {
                        "name": "cli_test_marker",
                        "args": str(marker),
                        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1, 3]}},
                    }
                ],
            }
        ]
    }
    path = _write(tmp_path, "t.json", task)
    proc = krally("validate", str(path))
    assert proc.returncode == 2 and "cli_test_marker" in proc.stderr
    proc = krally("run", str(path), "--plugin-path", str(plugins), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert sorted(marker.read_text().split()) == ["1", "3"]
