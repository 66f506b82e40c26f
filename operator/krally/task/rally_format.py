"""Rally's own task formats, v1 and v2, read into workloads as Rally reads them: the same
structure schemas (nothing else allowed), hooks in both forms, and krally's extensions beside
the runner (``parallelism``, ``podFailurePolicy``) and the workload (``impact``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jsonschema

from krally.errors import InvalidConfig
from krally.task import impact_config
from krally.task.plugin import explain, join_path
from krally.task.spec import HookSpec, WorkloadSpec, make_workload
from krally.task.validation import Style

V1_TITLE = "Task (adopted from task format v1)"
# What a format gives the loader: title, description, workloads, validation style, problems.
Read = tuple[str, str | None, list[WorkloadSpec], Style, list[InvalidConfig]]


def structure_errors(schema: dict[str, Any], value: Any, path: str) -> list[InvalidConfig]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        InvalidConfig(join_path(path, error.absolute_path), explain(error))
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ]


# --- Rally v1 ----------------------------------------------------------------------------------

_ANY: dict[str, Any] = {}


def _closed(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """An object with exactly these properties (Rally's task schemas allow nothing else)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_NAME = {"type": "string", "minLength": 1}
_PLUGIN_REF = _closed({"name": _NAME, "args": _ANY}, "name", "args")
_HOOK_V1 = _closed(
    {"name": _NAME, "args": _ANY, "description": {"type": "string"}, "trigger": _PLUGIN_REF},
    "name",
    "args",
    "trigger",
)
_WORKLOAD_V1 = {
    "type": "object",
    "properties": {
        "args": {"type": "object"},
        "runner": {
            "type": "object",
            "properties": {"type": {"type": "string", "minLength": 1}},
            "required": ["type"],
        },
        "context": {"type": "object"},
        "sla": {"type": "object"},
        "hooks": {"type": "array", "items": _HOOK_V1},
        "description": {"type": "string"},
        "impact": {"type": "object"},  # krally's extension, checked by _impact()
    },
    "additionalProperties": False,
}
V1_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {"type": "array", "items": _WORKLOAD_V1},
}


def read_v1(task: dict[str, Any]) -> Read:
    """A Rally v1 task (``{scenario: [workload, ...]}``, ``version`` removed)."""
    problems = structure_errors(V1_SCHEMA, task, "")
    workloads: list[WorkloadSpec] = []
    if not problems:
        for scenario_name, entries in task.items():
            for index, entry in enumerate(entries):
                runner = dict(entry.get("runner") or {"type": "serial"})
                hooks = tuple(
                    HookSpec(
                        action_name=h["name"],
                        action_args=h["args"],
                        trigger_name=h["trigger"]["name"],
                        trigger_args=h["trigger"]["args"],
                        description=h.get("description"),
                    )
                    for h in entry.get("hooks", [])
                )
                path = join_path("", [scenario_name, index])
                workloads.append(
                    _impact(
                        make_workload(
                            scenario_name,
                            entry.get("args", {}),
                            runner,
                            entry.get("context", {}),
                            entry.get("sla"),
                            hooks,
                            entry.get("description"),
                            path,
                        ),
                        entry,
                        path,
                        problems,
                    )
                )
    return V1_TITLE, None, workloads, "rally_v1", problems


def _impact(
    workload: WorkloadSpec, entry: dict[str, Any], path: str, problems: list[InvalidConfig]
) -> WorkloadSpec:
    """A Rally workload's ``impact`` (krally's extension; camelCase or snake_case keys)."""
    if "impact" not in entry:
        return workload

    found = impact_config.rally_problems(entry["impact"], join_path(path, ["impact"]))
    if found:
        problems.extend(found)
        return workload
    return dataclasses.replace(workload, impact=impact_config.normalise(entry["impact"]))


# --- Rally v2 ----------------------------------------------------------------------------------

_SINGLE = {"type": "object", "minProperties": 1, "maxProperties": 1}
_HOOK_V2 = {
    "type": "object",
    "properties": {
        "description": {"type": ["string", "null"]},
        "action": _SINGLE,
        "trigger": _SINGLE,
    },
    "required": ["action", "trigger"],
    "additionalProperties": False,
}
_WORKLOAD_FIELDS = {
    "scenario": _SINGLE,
    "runner": _SINGLE,
    "contexts": {"type": "object"},
    "sla": {"type": "object"},
    "hooks": {"type": "array", "items": _HOOK_V2},
    "description": {"type": "string"},
    "impact": {"type": "object"},  # krally's extension, checked by _impact()
}
_SUBTASK_FIELDS = {
    "title": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "group": {"type": "string"},
}
_SIMPLE_SUBTASK = _closed({**_SUBTASK_FIELDS, **_WORKLOAD_FIELDS}, "title", "scenario")
_COMPLEX_SUBTASK = _closed(
    {
        **_SUBTASK_FIELDS,
        "run_in_parallel": {"type": "boolean"},
        "workloads": {
            "type": "array",
            "minItems": 1,
            "items": _closed(_WORKLOAD_FIELDS, "scenario"),
        },
    },
    "title",
    "workloads",
)
V2_SCHEMA = {
    "type": "object",
    "properties": {
        "version": {"enum": [2]},
        "title": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "subtasks": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    },
    "required": ["title", "subtasks"],
    "additionalProperties": False,
}


def read_v2(task: dict[str, Any]) -> Read:
    """A Rally v2 task (``version: 2``, subtasks and their workloads)."""
    problems = structure_errors(V2_SCHEMA, task, "")
    if not problems:
        for index, subtask in enumerate(task["subtasks"]):
            schema = _COMPLEX_SUBTASK if "workloads" in subtask else _SIMPLE_SUBTASK
            problems.extend(structure_errors(schema, subtask, f"subtasks[{index}]"))
    workloads: list[WorkloadSpec] = []
    if not problems:
        for index, subtask in enumerate(task["subtasks"]):
            entries = subtask.get("workloads", [subtask])
            for windex, entry in enumerate(entries):
                path = f"subtasks[{index}]" + (
                    f".workloads[{windex}]" if "workloads" in subtask else ""
                )
                ((scenario_name, scenario_args),) = entry["scenario"].items()
                runner: dict[str, Any] = {"type": "serial"}
                if "runner" in entry:
                    ((runner_type, runner_args),) = entry["runner"].items()
                    runner = {**(runner_args or {}), "type": runner_type}
                hooks = tuple(_hook_v2(h) for h in entry.get("hooks", []))
                workload = make_workload(
                    scenario_name,
                    scenario_args,
                    runner,
                    entry.get("contexts", {}),
                    entry.get("sla"),
                    hooks,
                    entry.get("description", subtask.get("description")),
                    path,
                )
                workloads.append(_impact(workload, entry, path, problems))
    return task.get("title", ""), task.get("description"), workloads, "rally_v2", problems


def _hook_v2(hook: dict[str, Any]) -> HookSpec:
    ((action_name, action_args),) = hook["action"].items()
    ((trigger_name, trigger_args),) = hook["trigger"].items()
    return HookSpec(
        action_name=action_name,
        action_args=action_args,
        trigger_name=trigger_name,
        trigger_args=trigger_args,
        description=hook.get("description"),
    )
