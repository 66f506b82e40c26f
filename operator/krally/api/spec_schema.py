"""The BenchmarkTask ``spec`` schema: the single source of truth.

The engine validates ``spec`` with it (jsonschema, :mod:`krally.task.schema`) and the CRD
generator (:mod:`krally.api.crd`) embeds it as the structural OpenAPI schema of
``benchmarktasks.krally.dev``. So it keeps to the subset both understand: a ``type`` on every node
(except free-form plugin ``args``, which carry ``x-kubernetes-preserve-unknown-fields`` instead), a
``description`` on every field (for ``kubectl explain``), no ``$ref``, no ``oneOf`` at the top of
``properties`` and never ``additionalProperties`` next to ``properties`` (forbidden in structural
schemas). Unknown fields are instead reported by :func:`krally.task.schema.validate_spec` walking
the schema (like ``kubectl``'s strict field validation), so a typo such as ``hoks`` is an error,
not silently pruned.
"""

from __future__ import annotations

import copy
from typing import Any

from krally.api.schema import PRESERVE


def _free(description: str) -> dict[str, Any]:
    """A free-form plugin config: any JSON value, validated later by the plugin's CONFIG_SCHEMA."""
    return {PRESERVE: True, "description": description}


def _string_map(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"type": "string", "description": "A label value."},
    }


_PLUGIN_MAP_NOTE = " Keys are plugin names; each value is that plugin's config (free-form)."

_RESOURCES = {
    "type": "object",
    "description": "Compute resources (requests/limits) of the container, as in a Pod spec.",
    PRESERVE: True,
}

_TOLERATIONS = {
    "type": "array",
    "description": "Tolerations of the pod, as in a Pod spec.",
    "items": {"type": "object", "description": "A toleration, as in a Pod spec.", PRESERVE: True},
}

_HOOK_JOB = {
    "type": "object",
    "description": (
        "Cluster-only settings of the Job that runs each firing of this hook. Absent fields take "
        "the operator's defaults. Ignored by `krally run`, except timeoutSeconds."
    ),
    "properties": {
        "image": {
            "type": "string",
            "minLength": 1,
            "description": "Container image of the hook pod; it must contain `krally` "
            "(and whatever the hook's command needs, e.g. kubectl).",
        },
        "serviceAccountName": {
            "type": "string",
            "minLength": 1,
            "description": "Service account the hook pod runs as: the rights the disruption "
            "needs (e.g. to delete pods). Must be allowed by the operator's settings.",
        },
        "timeoutSeconds": {
            "type": "integer",
            "minimum": 1,
            "description": "Kill the hook if it runs longer than this many seconds and record it "
            "failed (the Job's activeDeadlineSeconds). Absent: the operator's default; "
            "Rally itself never kills a hook.",
        },
        "resources": _RESOURCES,
        "nodeSelector": _string_map("Node labels the hook pod must be scheduled on."),
        "tolerations": _TOLERATIONS,
        "env": {
            "type": "array",
            "description": "Extra environment variables of the hook container.",
            "items": {
                "type": "object",
                "description": "An environment variable.",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "Variable name."},
                    "value": {"type": "string", "description": "Variable value."},
                },
            },
        },
    },
}

_HOOK = {
    "type": "object",
    "description": "A hook: an action plugin (e.g. sys_call) run when its trigger fires, in "
    "parallel with the load. Rally's v1 hook format plus cluster settings.",
    "required": ["name", "trigger"],
    "properties": {
        "name": {
            "type": "string",
            "minLength": 1,
            "description": "Hook (action) plugin name, e.g. sys_call.",
        },
        "args": _free("The hook plugin's config, e.g. the command of sys_call."),
        "description": {"type": "string", "description": "Free text shown with the results."},
        "trigger": {
            "type": "object",
            "description": "When the hook fires: a trigger plugin and its config.",
            "required": ["name"],
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Trigger plugin name: event or periodic (or a third-party one).",
                },
                "args": _free(
                    "The trigger's config, e.g. {unit: iteration, at: [5, 50]} for event or "
                    "{unit: time, step: 10} for periodic."
                ),
            },
        },
        "job": _HOOK_JOB,
        "maxDelaySeconds": {
            "type": "integer",
            "minimum": 1,
            "description": "A firing the operator sees more than this many seconds after it "
            "happened (e.g. after an outage) is not run but recorded failed with etype Late: a "
            "disruption minutes late misleads. Default 60.",
        },
    },
}

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One Rally workload (scenario, runner, contexts, SLA) and its hooks. "
    "Immutable once created, except `abort`: a new run is a new BenchmarkTask, like a Job.",
    "required": ["scenario"],
    "properties": {
        "description": {"type": "string", "description": "Free text describing the workload."},
        "scenario": {
            "type": "object",
            "description": "The scenario plugin each iteration runs.",
            "required": ["name"],
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Scenario plugin name, e.g. Dummy.dummy or "
                    "HttpRequests.check_request.",
                },
                "args": _free("Arguments of the scenario, e.g. {sleep: 0.01} for Dummy.dummy."),
            },
        },
        "runner": {
            "type": "object",
            "description": "How iterations are run: `type` is the runner plugin (constant, "
            "constant_for_duration, rps, serial); every other field is that runner's config, "
            "as in Rally (e.g. times, concurrency). Default: serial, 1 iteration.",
            "required": ["type"],
            PRESERVE: True,
            "properties": {
                "type": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Runner plugin name: constant, constant_for_duration, rps or "
                    "serial.",
                },
            },
        },
        "contexts": {
            "type": "object",
            "description": "Contexts set up before the load and cleaned up after it."
            + _PLUGIN_MAP_NOTE
            + " OpenStack contexts (users, ...) are accepted and ignored with a warning.",
            PRESERVE: True,
        },
        "sla": {
            "type": "object",
            "description": "Success criteria checked on every iteration (failure_rate, "
            "max_seconds_per_iteration, max_avg_duration, outliers, ...)."
            + _PLUGIN_MAP_NOTE
            + " Absent: {failure_rate: {max: 0}}, as in Rally; {} checks nothing.",
            PRESERVE: True,
        },
        "abortOnSLAFailure": {
            "type": "boolean",
            "description": "Stop the load as soon as an SLA criterion fails (Rally's "
            "--abort-on-sla-failure); the task then fails its SLA with aborted_on_sla.",
        },
        "hooks": {
            "type": "array",
            "maxItems": 100,
            "description": "Hooks fired by triggers while the load runs, in this order in results.",
            "items": _HOOK,
        },
        "runnerPod": {
            "type": "object",
            "description": "Cluster-only settings of the pod that runs the load. Absent fields "
            "take the operator's defaults.",
            "properties": {
                "image": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Container image of the runner pod; it must contain `krally` "
                    "and any third-party plugins the task uses.",
                },
                "imagePullPolicy": {
                    "type": "string",
                    "enum": ["Always", "IfNotPresent", "Never"],
                    "description": "Image pull policy of the runner container.",
                },
                "resources": _RESOURCES,
                "nodeSelector": _string_map("Node labels the runner pod must be scheduled on."),
                "tolerations": _TOLERATIONS,
                "timeoutSeconds": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Fail the task if the runner has not finished after this many "
                    "seconds (the runner Job's activeDeadlineSeconds).",
                },
            },
        },
        "abort": {
            "type": "boolean",
            "description": "Set true to stop a running task; it ends Aborted with what was "
            "recorded. The only field that may change after creation.",
        },
    },
}


def spec_schema() -> dict[str, Any]:
    """A deep copy of SPEC_SCHEMA, for callers (the CRD generator) that add to it."""
    return copy.deepcopy(SPEC_SCHEMA)
