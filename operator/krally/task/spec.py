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
