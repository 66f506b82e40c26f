"""Task files → :class:`~krally.task.spec.TaskSpec`.

Formats, detected from the content:

* Rally v1: ``{"Scenario.name": [workload, ...]}`` with ``args``, ``runner {type, ...}``,
  ``context``, ``sla``, ``hooks [{name, args, description?, trigger {name, args}}]``;
  krally's extension ``impact`` (as BenchmarkTask's ``spec.impact``; snake_case keys too) is
  accepted on a v1 entry and a v2 workload;
* Rally v2: ``{version: 2, title, subtasks: [...]}``, simple or complex subtasks, hooks
  ``{description?, action {name: args}, trigger {name: args}}``;
* ``BenchmarkTask`` YAML (``apiVersion: krally.dev/v1alpha1``), one document, several documents,
  or a ``kind: List``.

JSON or YAML. Everything is validated (format structure, every plugin config, cross checks) and
every problem names the file and the dotted path of the field as written.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from krally.api.names import API_VERSION, KIND
from krally.errors import InvalidConfig, KrallyError, TaskFileError
from krally.task.plugin import explain, join_path
from krally.task.schema import schema_errors
from krally.task.spec import HookSpec, TaskSpec, WorkloadSpec
from krally.task.validation import Style, validate_workload

V1_TITLE = "Task (adopted from task format v1)"


class TaskInvalid(KrallyError):
    """A task file parsed but is not a valid task; ``problems`` holds every problem."""

    def __init__(self, source: str, problems: list[InvalidConfig]):
        self.source, self.problems = source, problems
        first = f"{source}: {problems[0]}"
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(first + more)

    def lines(self) -> list[str]:
        return [f"{self.source}: {problem}" for problem in self.problems]


# --- reading -----------------------------------------------------------------------------------


def read_documents(path: str | Path, text: str | None = None) -> list[Any]:
    """Parse a JSON or YAML file into its documents; malformed → TaskFileError with file:line."""
    source = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise TaskFileError(f"{source}: cannot read task file: {reason}") from None
    hint = " (Jinja2 task templates are not supported)" if re.search(r"{%|{{", text) else ""
    stripped = text.lstrip()
    if stripped.startswith("{") and (
        source.endswith(".json") or not source.endswith((".yaml", ".yml"))
    ):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise TaskFileError(
                f"{source}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}{hint}"
            ) from None
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        kind = "JSON" if source.endswith(".json") else "YAML"
        raise TaskFileError(f"{where}: malformed {kind}: {problem}{hint}") from None
    if not docs:
        raise TaskFileError(f"{source}: empty task file")
    return docs


def load_task(path: str | Path, text: str | None = None) -> TaskSpec:
    """Read, detect, normalise and validate a task file. Raises TaskFileError or TaskInvalid."""
    source = str(path)
    docs = read_documents(path, text)
    if len(docs) == 1 and isinstance(docs[0], dict) and docs[0].get("kind") == "List":
        items = docs[0].get("items")
        if not isinstance(items, list) or not items:
            raise TaskInvalid(source, [InvalidConfig("items", "a List needs a non-empty items")])
        return _load_benchmark_tasks(source, items, prefix="items")
    if len(docs) > 1 or _is_benchmark_task(docs[0]):
        return _load_benchmark_tasks(source, docs, prefix="documents" if len(docs) > 1 else "")
    task = docs[0]
    if not isinstance(task, dict):
        raise TaskInvalid(
            source,
            [
                InvalidConfig(
                    "",
                    "a task must be a mapping (Rally v1, Rally v2 or BenchmarkTask), "
                    f"got {type(task).__name__}",
                )
            ],
        )
    version = task.get("version", 1)
    if version == 2:
        return _load_v2(source, task)
    if version != 1:
        raise TaskInvalid(
            source,
            [InvalidConfig("version", f"unsupported task format version {version!r}; 1 or 2")],
        )
    return _load_v1(source, {k: v for k, v in task.items() if k != "version"})


def _is_benchmark_task(doc: Any) -> bool:
    return isinstance(doc, dict) and ("apiVersion" in doc or "kind" in doc)


def _structure_errors(schema: dict[str, Any], value: Any, path: str) -> list[InvalidConfig]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        InvalidConfig(join_path(path, error.absolute_path), explain(error))
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ]


def _finish(
    source: str,
    title: str,
    description: str | None,
    workloads: list[WorkloadSpec],
    style: Style,
    problems: list[InvalidConfig],
) -> TaskSpec:
    warnings: list[str] = []
    if not problems:
        for workload in workloads:
            problems.extend(validate_workload(workload, style, warnings))
    if problems:
        raise TaskInvalid(source, problems)
    return TaskSpec(
        title=title,
        workloads=tuple(workloads),
        description=description,
        source=source,
        warnings=tuple(warnings),
    )


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


def _load_v1(source: str, task: dict[str, Any]) -> TaskSpec:
    problems = _structure_errors(V1_SCHEMA, task, "")
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
                        _workload(
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
    return _finish(source, V1_TITLE, None, workloads, "rally_v1", problems)


def _impact(
    workload: WorkloadSpec, entry: dict[str, Any], path: str, problems: list[InvalidConfig]
) -> WorkloadSpec:
    """A Rally workload's ``impact`` (krally's extension; camelCase or snake_case keys)."""
    if "impact" not in entry:
        return workload
    from krally.task import impact_config

    found = impact_config.rally_problems(entry["impact"], join_path(path, ["impact"]))
    if found:
        problems.extend(found)
        return workload
    return dataclasses.replace(workload, impact=impact_config.normalise(entry["impact"]))


# runner.<key> → WorkloadSpec field: how the load is spread over runner pods.
SPREAD_KEYS = {"parallelism": "parallelism", "podFailurePolicy": "pod_failure_policy"}


def _workload(
    scenario_name: str,
    scenario_args: Any,
    runner: dict[str, Any],
    contexts: dict[str, Any],
    sla: dict[str, Any] | None,
    hooks: tuple[HookSpec, ...],
    description: str | None,
    path: str,
) -> WorkloadSpec:
    runner = dict(runner)
    runner_type = runner.pop("type", "serial")
    extra: dict[str, Any] = {} if sla is None else {"sla": dict(sla)}
    # krally's distribution keys sit beside the runner's config, but are not part of it.
    for key, field_name in SPREAD_KEYS.items():
        if key in runner:
            extra[field_name] = runner.pop(key)
    return WorkloadSpec(
        scenario_name=scenario_name,
        scenario_args=scenario_args if scenario_args is not None else {},
        runner_type=runner_type,
        runner_args=runner,
        contexts=dict(contexts or {}),
        hooks=hooks,
        description=description,
        path=path,
        **extra,
    )


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


def _load_v2(source: str, task: dict[str, Any]) -> TaskSpec:
    problems = _structure_errors(V2_SCHEMA, task, "")
    if not problems:
        for index, subtask in enumerate(task["subtasks"]):
            schema = _COMPLEX_SUBTASK if "workloads" in subtask else _SIMPLE_SUBTASK
            problems.extend(_structure_errors(schema, subtask, f"subtasks[{index}]"))
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
                workload = _workload(
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
    return _finish(
        source, task.get("title", ""), task.get("description"), workloads, "rally_v2", problems
    )


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


# --- BenchmarkTask -----------------------------------------------------------------------------


def _load_benchmark_tasks(source: str, docs: list[Any], prefix: str) -> TaskSpec:
    problems: list[InvalidConfig] = []
    workloads: list[WorkloadSpec] = []
    names: list[str] = []
    for index, doc in enumerate(docs):
        base = f"{prefix}[{index}]" if prefix else ""
        if not isinstance(doc, dict):
            problems.append(InvalidConfig(base, f"expected a {KIND} mapping"))
            continue
        if doc.get("kind") != KIND:
            problems.append(
                InvalidConfig(join_path(base, ["kind"]), f"{doc.get('kind')!r} is not {KIND!r}")
            )
            continue
        if doc.get("apiVersion") != API_VERSION:
            problems.append(
                InvalidConfig(
                    join_path(base, ["apiVersion"]),
                    f"{doc.get('apiVersion')!r} is not {API_VERSION!r}",
                )
            )
            continue
        metadata = doc.get("metadata") or {}
        name = metadata.get("name") if isinstance(metadata, dict) else None
        names.append(str(name or Path(source).stem))
        spec_path = join_path(base, ["spec"])
        if "spec" not in doc:
            problems.append(InvalidConfig(spec_path, "required field missing"))
            continue
        spec_problems = schema_errors(doc["spec"], spec_path)
        if spec_problems:
            problems.extend(spec_problems)
            continue
        workloads.append(workload_from_spec(doc["spec"], path=spec_path))
    description = None
    if len(workloads) == 1 and workloads[0].description:
        description = workloads[0].description
    return _finish(source, ", ".join(names), description, workloads, "benchmarktask", problems)


def workload_from_spec(spec: dict[str, Any], path: str = "spec") -> WorkloadSpec:
    """A BenchmarkTask ``spec`` (already schema-valid) → WorkloadSpec. Cluster-only fields
    (runnerPod, abort, abortOnSLAFailure) are not part of a workload; read them from the spec."""
    if not isinstance(spec, dict) or not isinstance(spec.get("scenario"), dict):
        raise InvalidConfig(join_path(path, ["scenario"]), "required field missing")
    hooks = tuple(
        HookSpec(
            action_name=h["name"],
            action_args=h.get("args"),
            trigger_name=h["trigger"]["name"],
            trigger_args=h["trigger"].get("args"),
            description=h.get("description"),
            job=dict(h["job"]) if h.get("job") else None,
        )
        for h in spec.get("hooks") or []
    )
    workload = _workload(
        spec["scenario"]["name"],
        spec["scenario"].get("args", {}),
        spec.get("runner") or {"type": "serial"},
        spec.get("contexts") or {},
        spec.get("sla"),
        hooks,
        spec.get("description"),
        path,
    )
    if spec.get("abortOnSLAFailure"):
        workload = dataclasses.replace(workload, abort_on_sla_failure=True)
    if spec.get("impact"):
        workload = dataclasses.replace(workload, impact=dict(spec["impact"]))
    return workload


def spec_from_workload(w: WorkloadSpec) -> dict[str, Any]:
    """WorkloadSpec → BenchmarkTask ``spec`` (what ``krally convert`` prints)."""
    spec: dict[str, Any] = {}
    if w.description:
        spec["description"] = w.description
    spec["scenario"] = {"name": w.scenario_name, "args": w.scenario_args}
    spec["runner"] = {"type": w.runner_type, **w.runner_args}
    if w.parallelism != 1:
        spec["runner"]["parallelism"] = w.parallelism
    if w.pod_failure_policy != "FailTask":
        spec["runner"]["podFailurePolicy"] = w.pod_failure_policy
    if w.contexts:
        spec["contexts"] = dict(w.contexts)
    spec["sla"] = dict(w.sla)
    if w.abort_on_sla_failure:
        spec["abortOnSLAFailure"] = True
    if w.impact:
        spec["impact"] = dict(w.impact)
    if w.hooks:
        hooks = []
        for h in w.hooks:
            hook: dict[str, Any] = {"name": h.action_name, "args": h.action_args}
            if h.description:
                hook["description"] = h.description
            hook["trigger"] = {"name": h.trigger_name, "args": h.trigger_args}
            if h.job:
                hook["job"] = dict(h.job)
            hooks.append(hook)
        spec["hooks"] = hooks
    return spec


def k8s_name(text: str, taken: set[str] | None = None) -> str:
    """A DNS-1123 name from a scenario name or title (``Dummy.dummy`` → ``dummy-dummy``)."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50] or "task"
    if taken is not None:
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        taken.add(candidate)
        name = candidate
    return name


def benchmark_tasks(task: TaskSpec) -> list[dict[str, Any]]:
    """A TaskSpec as BenchmarkTask objects, one per workload."""
    taken: set[str] = set()
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": k8s_name(w.scenario_name, taken)},
            "spec": spec_from_workload(w),
        }
        for w in task.workloads
    ]
