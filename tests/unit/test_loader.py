"""Task files: Rally v1/v2 (JSON and YAML) and BenchmarkTask → TaskSpec, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from krally.errors import TaskFileError
from krally.task.loader import (
    TaskInvalid,
    benchmark_tasks,
    load_task,
    spec_from_workload,
    workload_from_spec,
)
from krally.task.spec import HookSpec, TaskSpec, WorkloadSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

RALLY_HOOK = HookSpec(
    action_name="sys_call",
    action_args="/bin/echo 123",
    trigger_name="event",
    trigger_args={"unit": "iteration", "at": [5, 50, 200, 1000]},
)


def _same_workload(w: WorkloadSpec) -> None:
    assert w.scenario_name == "Dummy.dummy"
    assert w.scenario_args == {"sleep": 0.01}
    assert w.runner_type == "constant"
    assert w.runner_args == {"times": 1500, "concurrency": 1}
    assert w.contexts == {"users": {"tenants": 1, "users_per_tenant": 1}}
    assert w.sla == {"failure_rate": {"max": 0}}
    assert w.hooks[0].action_name == "sys_call"
    assert w.hooks[0] == RALLY_HOOK or w.hooks[0].description


def test_rally_v1_example() -> None:
    task = load_task(EXAMPLES / "rally-hooks.json")
    assert task.title == "Task (adopted from task format v1)"
    (w,) = task.workloads
    _same_workload(w)
    assert w.hooks == (RALLY_HOOK,)
    assert w.path == "Dummy.dummy[0]"
    assert task.warnings == (
        "Dummy.dummy[0].context.users: context 'users' needs OpenStack; "
        "ignored when running locally",
    )


def test_benchmarktask_twin_matches_the_rally_example() -> None:
    rally = load_task(EXAMPLES / "rally-hooks.json").workloads[0]
    twin = load_task(EXAMPLES / "dummy-hooks.yaml")
    assert twin.title == "dummy-with-hooks"
    (w,) = twin.workloads
    _same_workload(w)
    assert w.hooks == rally.hooks
    assert w.path == "spec"
    assert any("spec.contexts.users" in warning for warning in twin.warnings)


def test_rally_v2_example() -> None:
    task = load_task(EXAMPLES / "rally-hooks-v2.yaml")
    assert task.title == "Dummy load with scheduled hooks"
    (w,) = task.workloads
    _same_workload(w)
    assert [h.trigger_name for h in w.hooks] == ["event", "event", "periodic"]
    assert w.hooks[1].trigger_args == {"unit": "time", "at": [2, 5]}
    assert w.hooks[0].description == "echo at iterations 5, 50, 200 and 1000"


def test_rally_v1_yaml_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("Dummy.dummy:\n  - args: {sleep: 0}\n  - {}\n")
    task = load_task(path)
    assert [w.path for w in task.workloads] == ["Dummy.dummy[0]", "Dummy.dummy[1]"]
    # Rally's defaults: serial runner, failure_rate max 0.
    assert task.workloads[1].runner_type == "serial"
    assert task.workloads[1].sla == {"failure_rate": {"max": 0}}


def test_rally_v2_complex_subtask(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "version": 2,
                "title": "t",
                "subtasks": [
                    {
                        "title": "s",
                        "workloads": [
                            {"scenario": {"Dummy.dummy": {}}, "runner": {"serial": {"times": 2}}},
                            {
                                "scenario": {"Dummy.dummy": {"sleep": 0}},
                                "sla": {},
                                "hooks": [
                                    {
                                        "action": {"sys_call": "true"},
                                        "trigger": {"event": {"unit": "iteration", "at": [1]}},
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        )
    )
    task = load_task(path)
    assert [w.path for w in task.workloads] == [
        "subtasks[0].workloads[0]",
        "subtasks[0].workloads[1]",
    ]
    assert task.workloads[0].runner_args == {"times": 2}
    assert task.workloads[1].sla == {}
    assert task.workloads[1].hooks[0].description is None


BT = """
apiVersion: krally.dev/v1alpha1
kind: BenchmarkTask
metadata: {{name: {name}}}
spec:
  scenario: {{name: Dummy.dummy}}
  runner: {{type: serial, times: {times}}}
"""


def test_multi_document_and_list(tmp_path: Path) -> None:
    multi = tmp_path / "multi.yaml"
    multi.write_text(BT.format(name="a", times=1) + "---" + BT.format(name="b", times=2))
    task = load_task(multi)
    assert task.title == "a, b"
    assert [w.path for w in task.workloads] == ["documents[0].spec", "documents[1].spec"]
    listing = tmp_path / "list.yaml"
    items = [yaml.safe_load(BT.format(name=n, times=3)) for n in ("x", "y")]
    listing.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    task = load_task(listing)
    assert [w.path for w in task.workloads] == ["items[0].spec", "items[1].spec"]
    assert task.workloads[1].runner_args == {"times": 3}


def test_spec_round_trip() -> None:
    spec = {
        "description": "d",
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.1}},
        "runner": {"type": "constant", "times": 10, "concurrency": 2},
        "contexts": {"dummy_context": {}},
        "sla": {"failure_rate": {"max": 5}},
        "abortOnSLAFailure": True,
        "hooks": [
            {
                "name": "sys_call",
                "args": "/bin/true",
                "description": "h",
                "trigger": {"name": "periodic", "args": {"unit": "time", "step": 2}},
                "job": {"timeoutSeconds": 30},
            }
        ],
    }
    w = workload_from_spec(spec)
    assert w.abort_on_sla_failure is True
    assert w.hooks[0].timeout_seconds == 30.0
    assert w.runner_args == {"times": 10, "concurrency": 2}
    assert spec_from_workload(w) == spec
    # Absent sla → Rally's default, which convert writes out explicitly.
    w2 = workload_from_spec({"scenario": {"name": "Dummy.dummy"}})
    assert w2.sla == {"failure_rate": {"max": 0}} and w2.runner_type == "serial"


def test_convert_rally_to_benchmarktask(tmp_path: Path) -> None:
    task = load_task(EXAMPLES / "rally-hooks.json")
    (doc,) = benchmark_tasks(task)
    assert doc["apiVersion"] == "krally.dev/v1alpha1" and doc["kind"] == "BenchmarkTask"
    assert doc["metadata"]["name"] == "dummy-dummy"
    out = tmp_path / "converted.yaml"
    out.write_text(yaml.safe_dump_all([doc]))
    again = load_task(out)
    assert again.workloads[0].hooks == task.workloads[0].hooks


# --- bad input -----------------------------------------------------------------------------------


def v1(workload: dict[str, Any], scenario: str = "Dummy.dummy") -> dict[str, Any]:
    return {scenario: [workload]}


def hooked(trigger_args: Any, name: str = "sys_call", trigger: str = "event") -> dict[str, Any]:
    return {
        "args": {"sleep": 0},
        "runner": {"type": "constant", "times": 10},
        "hooks": [
            {"name": name, "args": "/bin/true", "trigger": {"name": trigger, "args": trigger_args}}
        ],
    }


AT = {"unit": "iteration", "at": [1]}
TRIG = "Dummy.dummy[0].hooks[0].trigger"

BAD_INPUTS: list[tuple[str, Any, str, list[str]]] = [
    ("unknown-hook", v1(hooked(AT, name="sys_cal")), "Dummy.dummy[0].hooks[0].name", ["sys_call"]),
    ("unknown-trigger", v1(hooked(AT, trigger="evnt")), f"{TRIG}.name", ["event", "periodic"]),
    ("at-empty", v1(hooked({"unit": "iteration", "at": []})), f"{TRIG}.args", ["[]"]),
    ("at-duplicate", v1(hooked({"unit": "iteration", "at": [5, 5]})), f"{TRIG}.args", ["[5, 5]"]),
    ("at-below-minimum", v1(hooked({"unit": "iteration", "at": [0]})), f"{TRIG}.args", ["0"]),
    ("unknown-unit", v1(hooked({"unit": "minute", "at": [1]})), f"{TRIG}.args", ["minute"]),
    (
        "unknown-runner",
        v1({"runner": {"type": "fast"}}),
        "Dummy.dummy[0].runner.type",
        ["constant", "serial"],
    ),
    (
        "negative-times",
        v1({"runner": {"type": "constant", "times": -1}}),
        "Dummy.dummy[0].runner",
        ["-1"],
    ),
    (
        "wrong-type",
        v1({"runner": {"type": "constant", "times": "ten"}}),
        "Dummy.dummy[0].runner.times",
        ["'ten'"],
    ),
    ("unknown-scenario", v1({}, scenario="Dummy.dumy"), "Dummy.dumy[0]", ["Dummy.dummy"]),
    (
        "unknown-context",
        v1({"context": {"nope": {}}}),
        "Dummy.dummy[0].context.nope",
        ["dummy_context"],
    ),
    (
        "bad-context-config",
        v1({"context": {"dummy_context": {"x": 1}}}),
        "Dummy.dummy[0].context.dummy_context",
        ["x"],
    ),
    ("unknown-sla", v1({"sla": {"fast": True}}), "Dummy.dummy[0].sla.fast", ["failure_rate"]),
    (
        "v1-hook-extra-key",
        v1(
            {
                "hooks": [
                    {
                        "name": "sys_call",
                        "args": "x",
                        "trigger": {"name": "event", "args": AT},
                        "when": 1,
                    }
                ]
            }
        ),
        "Dummy.dummy[0].hooks[0]",
        ["when"],
    ),
    ("v1-workload-not-list", {"Dummy.dummy": {"args": {}}}, "Dummy.dummy", ["array"]),
    ("v1-unknown-key", v1({"contexts": {}}), "Dummy.dummy[0]", ["contexts"]),
    (
        "v2-two-actions",
        {
            "version": 2,
            "title": "t",
            "subtasks": [
                {
                    "title": "s",
                    "scenario": {"Dummy.dummy": {}},
                    "hooks": [{"action": {"a": 1, "b": 2}, "trigger": {"event": AT}}],
                }
            ],
        },
        "subtasks[0].hooks[0].action",
        ["too many"],
    ),
    (
        "v2-bad-trigger",
        {
            "version": 2,
            "title": "t",
            "subtasks": [
                {
                    "title": "s",
                    "scenario": {"Dummy.dummy": {}},
                    "hooks": [
                        {
                            "action": {"sys_call": "true"},
                            "trigger": {"event": {"unit": "iteration", "at": []}},
                        }
                    ],
                }
            ],
        },
        "subtasks[0].hooks[0].trigger.event",
        ["[]"],
    ),
    ("v2-no-title", {"version": 2, "subtasks": []}, "", ["title"]),
    ("bad-version", {"version": 3}, "version", ["3"]),
    ("not-a-mapping", [1, 2], "", ["mapping"]),
    (
        "bt-wrong-kind",
        {"apiVersion": "krally.dev/v1alpha1", "kind": "Job", "spec": {}},
        "kind",
        ["BenchmarkTask"],
    ),
    (
        "bt-bad-at",
        {
            "apiVersion": "krally.dev/v1alpha1",
            "kind": "BenchmarkTask",
            "metadata": {"name": "x"},
            "spec": {
                "scenario": {"name": "Dummy.dummy"},
                "hooks": [
                    {
                        "name": "sys_call",
                        "args": "x",
                        "trigger": {"name": "event", "args": {"unit": "iteration", "at": []}},
                    }
                ],
            },
        },
        "spec.hooks[0].trigger.args",
        ["at least one value"],
    ),
    (
        "bt-unknown-field",
        {
            "apiVersion": "krally.dev/v1alpha1",
            "kind": "BenchmarkTask",
            "spec": {"scenario": {"name": "Dummy.dummy"}, "hoks": []},
        },
        "spec.hoks",
        ["unknown field"],
    ),
]


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [pytest.param(c, w, words, id=name) for name, c, w, words in BAD_INPUTS],
)
def test_bad_input(tmp_path: Path, content: Any, where: str, words: list[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(TaskInvalid) as info:
        load_task(path)
    exc = info.value
    text = "\n".join(exc.lines())
    assert str(path) in str(exc)
    assert any(p.path == where or p.path.startswith(where + ".") for p in exc.problems), text
    for word in words:
        assert word in text, text
    assert "\n" not in str(exc)


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("t.json", '{\n  "Dummy.dummy": [\n    {"args": {}},\n  ]\n}\n', 4),
        ("t.yaml", "Dummy.dummy:\n  - args: {sleep: 0\n  - runner: x\n", 3),
        ("t.yaml", "a: b\n c: d\n  e: [\n", 2),
    ],
)
def test_malformed_file_names_file_and_line(
    tmp_path: Path, name: str, text: str, line: int
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TaskFileError) as info:
        load_task(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert "malformed" in message and "\n" not in message


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="cannot read"):
        load_task(tmp_path / "nope.json")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(TaskFileError, match="empty"):
        load_task(empty)


def test_warning_for_unreachable_iteration(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(v1(hooked({"unit": "iteration", "at": [1, 11]}))))
    task = load_task(path)
    assert isinstance(task, TaskSpec)
    assert any(f"{TRIG}.args.at" in w and "11" in w for w in task.warnings)
