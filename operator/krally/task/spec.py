"""The normalised task: what every task format (Rally v1, Rally v2, BenchmarkTask) loads into.

The engine, the runner pod and the operator all work on these, never on raw files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HookSpec:
    """One hook: an action plugin fired by a trigger plugin."""

    action_name: str
    action_args: Any
    trigger_name: str
    trigger_args: Any
    description: str | None = None
    # Cluster-only settings (``spec.hooks[].job``: image, serviceAccountName, timeoutSeconds).
    job: dict[str, Any] | None = None

    @property
    def timeout_seconds(self) -> float | None:
        """Optional per-hook timeout; Rally has none, so absent means "never killed"."""
        value = (self.job or {}).get("timeoutSeconds")
        return float(value) if value is not None else None

    def rally_config(self) -> dict[str, Any]:
        """Rally's v2 hook config, as it appears in results (``description`` always present)."""
        return {
            "description": self.description or "",
            "action": {self.action_name: self.action_args},
            "trigger": {self.trigger_name: self.trigger_args},
        }

    def rally_hook_cfg(self) -> dict[str, Any]:
        """What Rally hands a trigger plugin's ``__init__``: ``(name, cfg)`` tuples."""
        return {
            "description": self.description,
            "action": (self.action_name, self.action_args),
            "trigger": (self.trigger_name, self.trigger_args),
        }


@dataclass(frozen=True)
class WorkloadSpec:
    scenario_name: str
    scenario_args: dict[str, Any] = field(default_factory=dict)
    runner_type: str = "serial"
    runner_args: dict[str, Any] = field(default_factory=dict)
    contexts: dict[str, Any] = field(default_factory=dict)
    # Rally's default when a workload has no SLA section.
    sla: dict[str, Any] = field(default_factory=lambda: {"failure_rate": {"max": 0}})
    hooks: tuple[HookSpec, ...] = ()
    description: str | None = None
    # Dotted path of this workload in its source file, used to name fields in errors.
    path: str = ""
    # BenchmarkTask ``spec.abortOnSLAFailure``; the engine ORs it with its own argument.
    abort_on_sla_failure: bool = False
    # The disruption impact analysis config as written (BenchmarkTask ``spec.impact``, or the
    # ``impact`` of a Rally workload, normalised to camelCase); defaults: krally.task.impact.
    impact: dict[str, Any] = field(default_factory=dict)
    # krally: the load spread over this many runner pods (``runner.parallelism``; in a task
    # file, ``krally run`` runs the shards side by side), and what one failing pod does
    # (``runner.podFailurePolicy``: FailTask or Continue). Not part of the runner's config.
    parallelism: int = 1
    pod_failure_policy: str = "FailTask"


@dataclass(frozen=True)
class TaskSpec:
    title: str
    workloads: tuple[WorkloadSpec, ...]
    description: str | None = None
    source: str = "<memory>"
    # Non-fatal findings (e.g. an OpenStack context in local mode, `at` beyond `times`).
    warnings: tuple[str, ...] = ()


# runner.<key> → WorkloadSpec field: how the load is spread over runner pods.
SPREAD_KEYS = {"parallelism": "parallelism", "podFailurePolicy": "pod_failure_policy"}


def make_workload(
    scenario_name: str,
    scenario_args: Any,
    runner: dict[str, Any],
    contexts: dict[str, Any],
    sla: dict[str, Any] | None,
    hooks: tuple[HookSpec, ...],
    description: str | None,
    path: str,
) -> WorkloadSpec:
    """A workload from its parts as the task formats give them (the runner's ``type`` and
    krally's distribution keys inside ``runner``)."""
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
