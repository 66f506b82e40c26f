"""Validation of a normalised workload: every plugin config plus cross checks.

Problems name the field as the user wrote it, so the path depends on the file's format: the same
trigger config is ``Dummy.dummy[0].hooks[0].trigger.args`` in a Rally v1 file,
``subtasks[0].hooks[0].trigger.event`` in v2 and ``spec.hooks[0].trigger.args`` in a
BenchmarkTask.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from krally.errors import InvalidConfig, PluginNotFound
from krally.task.context import validate_contexts
from krally.task.hook import Hook
from krally.task.plugin import Plugin, join_path
from krally.task.runner import ScenarioRunner, expected_iterations
from krally.task.scenario import Scenario
from krally.task.shard import MAX_PARALLELISM, POD_FAILURE_POLICIES
from krally.task.sla import SLA
from krally.task.spec import WorkloadSpec
from krally.task.trigger import Trigger

Style = Literal["rally_v1", "rally_v2", "benchmarktask"]


def _paths(w: WorkloadSpec, style: Style) -> dict[str, str]:
    p = w.path
    if style == "rally_v1":
        return {
            "scenario": p,
            "scenario_args": f"{p}.args",
            "runner": f"{p}.runner.type",
            "runner_args": f"{p}.runner",
            "contexts": f"{p}.context",
        }
    if style == "rally_v2":
        return {
            "scenario": f"{p}.scenario",
            "scenario_args": join_path(f"{p}.scenario", [w.scenario_name]),
            "runner": f"{p}.runner",
            "runner_args": join_path(f"{p}.runner", [w.runner_type]),
            "contexts": f"{p}.contexts",
        }
    return {
        "scenario": f"{p}.scenario.name",
        "scenario_args": f"{p}.scenario.args",
        "runner": f"{p}.runner.type",
        "runner_args": f"{p}.runner",
        "contexts": f"{p}.contexts",
    }


def hook_paths(workload_path: str, index: int, hook: Any, style: Style) -> tuple[str, str]:
    """(action config path, trigger config path) of hook ``index``."""
    base = f"{workload_path}.hooks[{index}]"
    if style == "rally_v2":
        return (
            join_path(f"{base}.action", [hook.action_name]),
            join_path(f"{base}.trigger", [hook.trigger_name]),
        )
    return f"{base}.args", f"{base}.trigger.args"


def validate_workload(
    w: WorkloadSpec, style: Style = "benchmarktask", warnings: list[str] | None = None
) -> list[InvalidConfig]:
    """Every plugin config of ``w`` (scenario, runner, contexts, SLA, hooks, triggers)."""
    paths = _paths(w, style)
    problems: list[InvalidConfig] = []
    found_warnings: list[str] = []

    scenario_problems = _validate_scenario(Scenario, w.scenario_name, w.scenario_args, paths)
    # An unknown plugin is reported at the name's path, a bad config at the args' path.
    problems.extend(_at_name(scenario_problems, paths["scenario_args"], paths["scenario"]))
    runner_problems = ScenarioRunner.validate(w.runner_type, w.runner_args, paths["runner_args"])
    problems.extend(_at_name(runner_problems, paths["runner_args"], paths["runner"]))
    problems.extend(validate_contexts(w.contexts, paths["contexts"], found_warnings))
    for name, config in w.sla.items():
        problems.extend(SLA.validate(name, config, join_path(f"{w.path}.sla", [name])))
    problems.extend(_spread_problems(w, paths["runner_args"], not runner_problems))
    found_warnings.extend(_nothing_to_analyse(w))
    for index, hook in enumerate(w.hooks):
        action_path, trigger_path = hook_paths(w.path, index, hook, style)
        base = f"{w.path}.hooks[{index}]"
        name_path = (
            (f"{base}.action", f"{base}.trigger")
            if style == "rally_v2"
            else (f"{base}.name", f"{base}.trigger.name")
        )
        action_problems = Hook.validate(hook.action_name, hook.action_args, action_path)
        problems.extend(_at_name(action_problems, action_path, name_path[0]))
        trigger_problems = Trigger.validate(hook.trigger_name, hook.trigger_args, trigger_path)
        problems.extend(_at_name(trigger_problems, trigger_path, name_path[1]))
        if not trigger_problems:
            found_warnings.extend(_unreachable(w, hook, trigger_path))
    if warnings is not None:
        warnings.extend(found_warnings)
    return problems


def _spread_problems(w: WorkloadSpec, runner_path: str, runner_ok: bool) -> list[InvalidConfig]:
    """``runner.parallelism`` and ``runner.podFailurePolicy``: well-formed, and a load the
    runner can spread and whose SLA criteria can be judged merged."""
    n = w.parallelism
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PARALLELISM:
        return [
            InvalidConfig(
                join_path(runner_path, ["parallelism"]),
                f"must be a whole number from 1 to {MAX_PARALLELISM}, got {n!r}",
            )
        ]
    problems: list[InvalidConfig] = []
    if w.pod_failure_policy not in POD_FAILURE_POLICIES:
        problems.append(
            InvalidConfig(
                join_path(runner_path, ["podFailurePolicy"]),
                f"must be one of {', '.join(POD_FAILURE_POLICIES)}, got {w.pod_failure_policy!r}",
            )
        )
    if n == 1 or not runner_ok:
        return problems
    runner_cls = ScenarioRunner.get(w.runner_type)
    problems.extend(runner_cls.parallelism_problems(dict(w.runner_args), n, runner_path))
    known = SLA.get_all()
    for name in w.sla:
        if name in known and not known[name].mergeable():
            problems.append(
                InvalidConfig(
                    join_path(f"{w.path}.sla", [name]),
                    f"cannot be judged over {n} runner pods (the criterion has no merge); "
                    "use runner.parallelism 1",
                )
            )
    return problems


def _validate_scenario(
    base: Any, name: str, args: Any, paths: dict[str, str]
) -> list[InvalidConfig]:
    """A scenario's args: its own CONFIG_SCHEMA if it has one, else Rally's "args-spec" check
    (the args must fit ``run()``'s signature)."""
    try:
        cls = base.get(name)
    except PluginNotFound as exc:
        return [InvalidConfig(paths["scenario"], str(exc))]
    own_schema = any("CONFIG_SCHEMA" in vars(k) for k in cls.__mro__ if k is not Plugin)
    own_validate = getattr(cls.validate_config, "__func__", None) is not getattr(
        Plugin.validate_config, "__func__", None
    )
    if own_schema or own_validate:
        return cls.validate_config(args, paths["scenario_args"])
    where = paths["scenario_args"]
    if not isinstance(args, dict):
        return [InvalidConfig(where, f"scenario {name!r}: args must be an object, got {args!r}")]
    try:
        params = inspect.signature(cls.run).parameters
    except (TypeError, ValueError):
        return []
    named = [
        p
        for p in list(params.values())[1:]  # skip self
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    problems = []
    if not takes_any:
        accepted = [p.name for p in named]
        for key in args:
            if key not in accepted:
                problems.append(
                    InvalidConfig(
                        join_path(where, [key]),
                        f"scenario {name!r} has no argument {key!r}; "
                        f"its arguments: {', '.join(accepted) or 'none'}",
                    )
                )
    for p in named:
        if p.default is p.empty and p.name not in args:
            problems.append(
                InvalidConfig(where, f"scenario {name!r}: missing required argument {p.name!r}")
            )
    return problems


def _at_name(problems: list[InvalidConfig], args_path: str, name_path: str) -> list[InvalidConfig]:
    fixed = []
    for problem in problems:
        if problem.path == args_path and problem.message.startswith("unknown "):
            problem = InvalidConfig(name_path, problem.message)
        fixed.append(problem)
    return fixed


def _nothing_to_analyse(w: WorkloadSpec) -> list[str]:
    """An SLA on the impact of disruptions where none can be analysed fails at the end: say so
    before the load runs."""
    if "disruption_impact" not in w.sla:
        return []
    field = join_path(f"{w.path}.sla", ["disruption_impact"])
    if not w.hooks:
        return [f"{field}: the workload has no hooks: no disruption is analysed, so it fails"]
    if (w.impact or {}).get("enabled") is False:
        return [f"{field}: impact analysis is disabled (impact.enabled: false), so it fails"]
    return []


def _unreachable(w: WorkloadSpec, hook: Any, trigger_path: str) -> list[str]:
    """Warnings for trigger values the runner can never reach (Rally fires them silently never):
    the runner plugin declares its iteration count, the trigger plugin what it plans beyond."""
    iterations = expected_iterations(w)
    if iterations is None:
        return []
    trigger_cls = Trigger.get(hook.trigger_name)
    return trigger_cls.unreachable(hook.trigger_args, iterations, trigger_path)
