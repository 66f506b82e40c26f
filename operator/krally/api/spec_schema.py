"""The BenchmarkTask ``spec`` schema: the single source of truth.

The engine validates ``spec`` with it (jsonschema, :mod:`krally.task.schema`) and the CRD
generator (:mod:`krally.api.crd`) embeds it as the structural OpenAPI schema of
``benchmarktasks.krally.dev``. So it keeps to the subset both understand: a ``type`` on every node
(except free-form plugin ``args``, which carry ``x-kubernetes-preserve-unknown-fields`` instead), a
``description`` on every field (for ``kubectl explain``), no ``$ref``, no ``oneOf`` at the top of
``properties`` and never ``additionalProperties`` next to ``properties`` (forbidden in structural
schemas); the one junctor is the ``anyOf: [integer, string]`` of an ``x-kubernetes-int-or-string``
quantity, as Kubernetes' own schemas write it. Patterns are written for both RE2 (the API
server) and Python's ``re``. What needs more than a keyword (a bound that depends on the plugin
named beside it, map keys with a syntax) is a rule of :mod:`krally.api.rules`: CEL in the CRD and
the same check in Python; CEL reads only declared fields, so the built-in runners' and
triggers' fields are declared here (third-party plugins may add others). Unknown fields are
instead reported by :func:`krally.task.schema.validate_spec` walking
the schema (like ``kubectl``'s strict field validation), so a typo such as ``hoks`` is an error,
not silently pruned.
"""

from __future__ import annotations

import copy
from typing import Any

from krally.api import rules
from krally.api.schema import PRESERVE

# runner.parallelism: the most runner pods one task may spread over; runner.podFailurePolicy.
MAX_PARALLELISM = 64
POD_FAILURE_POLICIES = ("FailTask", "Continue")


def _free(description: str) -> dict[str, Any]:
    """A free-form plugin config: any JSON value, validated later by the plugin's CONFIG_SCHEMA."""
    return {PRESERVE: True, "description": description}


_PLUGIN_MAP_NOTE = " Keys are plugin names; each value is that plugin's config (free-form)."


def _quantity(description: str) -> dict[str, Any]:
    # Integer or string, as a Pod's quantities (`cpu: 1` or `cpu: 500m`); the syntax is checked.
    return {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": rules.QUANTITY,
        "description": description,
    }


def _quantities(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "maxProperties": 20,
        "additionalProperties": _quantity("A quantity, e.g. 500m, 1, 256Mi."),
    }


_RESOURCES = {
    "type": "object",
    "description": "Compute resources (requests/limits) of the container, as in a Pod spec.",
    "properties": {
        "requests": _quantities("Minimum resources, e.g. {cpu: 100m, memory: 128Mi}."),
        "limits": _quantities("Maximum resources, e.g. {cpu: '1', memory: 256Mi}."),
    },
}

_TOLERATIONS = {
    "type": "array",
    "maxItems": 20,
    "description": "Tolerations of the pod, as in a Pod spec.",
    "items": {
        "type": "object",
        "description": "A toleration, as in a Pod spec.",
        "properties": {
            "key": {
                "type": "string",
                "maxLength": 316,
                "pattern": rules.OPTIONAL_LABEL_KEY,
                "description": "Taint key the toleration applies to (empty: every key, with "
                "operator Exists).",
            },
            "operator": {
                "type": "string",
                "enum": ["Exists", "Equal"],
                "description": "Exists or Equal (default Equal).",
            },
            "value": {
                "type": "string",
                "maxLength": 63,
                "pattern": rules.LABEL_VALUE,
                "description": "Taint value the toleration matches (operator Equal).",
            },
            "effect": {
                "type": "string",
                "enum": ["", "NoSchedule", "PreferNoSchedule", "NoExecute"],
                "description": "Taint effect to match (empty: every effect).",
            },
            "tolerationSeconds": {
                "type": "integer",
                "description": "With effect NoExecute: how long the pod stays bound after the "
                "taint appears.",
            },
        },
    },
}


def _node_selector(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "maxProperties": 20,
        "additionalProperties": {
            "type": "string",
            "maxLength": 63,
            "pattern": rules.LABEL_VALUE,
            "description": "A label value.",
        },
    }


def _key_ref(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"A key of a {kind} in the task's namespace.",
        "required": ["name", "key"],
        "properties": {
            "name": {
                "type": "string",
                "maxLength": 253,
                "pattern": rules.DNS1123_SUBDOMAIN,
                "description": f"Name of the {kind}.",
            },
            "key": {
                "type": "string",
                "minLength": 1,
                "maxLength": 253,
                "pattern": r"^[-._a-zA-Z0-9]+$",
                "description": f"The key of the {kind}'s data.",
            },
            "optional": {
                "type": "boolean",
                "description": f"Start the pod even if the {kind} or key is missing.",
            },
        },
    }


def _env(description: str) -> dict[str, Any]:
    return {
        "type": "array",
        "maxItems": 100,
        "description": description + " Values never appear in status, Events or the operator's "
        "log; take secrets from a Secret with valueFrom.",
        "items": {
            "type": "object",
            "description": "An environment variable: a value, or a reference to a Secret or "
            "ConfigMap key.",
            "required": ["name"],
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 256,
                    "pattern": rules.ENV_NAME,
                    "description": "Variable name ([-._a-zA-Z][-._a-zA-Z0-9]*).",
                },
                "value": {"type": "string", "description": "Variable value."},
                "valueFrom": {
                    "type": "object",
                    "description": "Where the value comes from (exactly one of the two).",
                    "properties": {
                        "secretKeyRef": _key_ref("Secret"),
                        "configMapKeyRef": _key_ref("ConfigMap"),
                    },
                },
            },
        },
    }


def _image(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": 512,
        "pattern": rules.IMAGE,
        "description": description + " A reference [host[:port]/]path[:tag][@digest].",
    }


_HOOK_JOB = {
    "type": "object",
    "description": (
        "Cluster-only settings of the Job that runs each firing of this hook. Absent fields take "
        "the operator's defaults. Ignored by `krally run`, except timeoutSeconds."
    ),
    "properties": {
        "image": _image(
            "Container image of the hook pod; it must contain `krally` "
            "(and whatever the hook's command needs, e.g. kubectl)."
        ),
        "serviceAccountName": {
            "type": "string",
            "minLength": 1,
            "maxLength": 253,
            "pattern": rules.DNS1123_SUBDOMAIN,
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
        "nodeSelector": _node_selector("Node labels the hook pod must be scheduled on."),
        "tolerations": _TOLERATIONS,
        "env": _env("Extra environment variables of the hook container."),
    },
}

_TRIGGER_ARGS = {
    "type": "object",
    PRESERVE: True,
    "description": "The trigger's config, e.g. {unit: iteration, at: [5, 50]} for event or "
    "{unit: time, step: 10} for periodic. The fields of the built-in triggers are declared "
    "(so the API server checks them); a third-party trigger may add others.",
    "properties": {
        "unit": {
            "type": "string",
            "description": "What the values count: iteration (from 1) or time (seconds from 0).",
        },
        "at": {
            "type": "array",
            "maxItems": 1000,
            "description": "event: the iterations or seconds to fire at.",
            "items": {"type": "integer", "description": "An iteration or a second."},
        },
        "start": {"type": "integer", "description": "periodic: first value (default 1 or 0)."},
        "end": {"type": "integer", "description": "periodic: last value (default: no end)."},
        "step": {"type": "integer", "minimum": 1, "description": "periodic: fire every step."},
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
                "args": _TRIGGER_ARGS,
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


def _seconds(description: str, minimum: float, maximum: float) -> dict[str, Any]:
    return {"type": "number", "minimum": minimum, "maximum": maximum, "description": description}


_IMPACT = {
    "type": "object",
    "description": "Disruption impact analysis (krally.task.impact): for every hook firing, the "
    "iterations completed before, during and after the hook (error rate, p50/p95/p99, "
    "throughput) and how long the load took to recover. Runs only when the workload has hooks.",
    "properties": {
        "enabled": {
            "type": "boolean",
            "description": "Analyse every firing (default true).",
        },
        "baselineSeconds": _seconds(
            "Baseline window before the hook starts, in seconds (default 10).", 1, 3600
        ),
        "afterSeconds": _seconds("Window after the hook ends, in seconds (default 10).", 0, 3600),
        "windowSeconds": _seconds(
            "Sliding window of the recovery search, in seconds (default 2); it should hold "
            "several iterations.",
            0.1,
            600,
        ),
        "resolutionSeconds": _seconds(
            "Bucket width and step of the sliding window, in seconds (default 0.25; at most "
            "windowSeconds is used).",
            0.01,
            10,
        ),
        "maxSeconds": _seconds(
            "Longest span analysed after a hook starts, in seconds (default 300): the during "
            "window and the recovery search stop there.",
            1,
            3600,
        ),
        "tolerance": {
            "type": "object",
            "description": "How far a sliding window may be from the baseline and still count "
            "as recovered.",
            "properties": {
                "errorRate": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "Error rate allowed above the baseline's, absolute, as a "
                    "fraction (default 0.01: one point).",
                },
                "p95Ratio": {
                    "type": "number",
                    "minimum": 1,
                    "maximum": 1000,
                    "description": "p95 duration allowed, as a multiple of the baseline's "
                    "(default 1.5).",
                },
                "throughputRatio": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "Throughput required, as a fraction of the baseline's "
                    "(default 0.8).",
                },
            },
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
                # Declared so that the API server (CEL) can check them; a third-party runner may
                # add other fields.
                "times": {"type": "integer", "minimum": 1, "description": "Iterations to run."},
                "concurrency": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Iterations running at any moment.",
                },
                "max_concurrency": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "rps: at most this many iterations at once.",
                },
                "max_cpu_count": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "At most this many worker processes.",
                },
                "timeout": {
                    "type": "number",
                    "description": "Seconds after which an iteration is interrupted.",
                },
                "duration": {
                    "type": "number",
                    "minimum": 0,
                    "description": "constant_for_duration: seconds during which iterations start.",
                },
                # krally's, not the runner plugin's (krally.task.shard).
                "parallelism": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PARALLELISM,
                    "description": "Spread the load over this many runner pods (an Indexed "
                    "Job; default 1). Iteration numbers stay global (pod i runs i+1, i+1+N, "
                    "...), the pods start together at status.runner.startAt, and their "
                    "results are merged exactly. serial refuses more than 1.",
                },
                "podFailurePolicy": {
                    "type": "string",
                    "enum": list(POD_FAILURE_POLICIES),
                    "description": "With parallelism > 1: FailTask (default) stops the load "
                    "when one runner pod fails; Continue lets the others finish (their results "
                    "are merged, the failed pod's partial ones too when it reported them).",
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
        "arming": {
            "type": "object",
            "description": "Armed hooks (cluster only): the Job of each firing known ahead "
            "(event values, the next periodic values) is created before the firing, its pod "
            "starts, prepares the hook and waits, and runs it milliseconds after the runner "
            "records the firing; the load starts once the first armed pods are ready. Firings "
            "not known ahead get their Job when they fire.",
            "properties": {
                "enabled": {
                    "type": "boolean",
                    "description": "Arm the hooks (default true); false: every hook Job is "
                    "created when its firing happens (its command starts seconds later).",
                },
                "maxArmed": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "description": "At most this many armed pods waiting at once (default 10); "
                    "the later firings are armed as earlier ones fire.",
                },
                "startTimeoutSeconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 3600,
                    "description": "The load waits at most this long for the first armed pods "
                    "to be ready (default 120); then it starts anyway (status.arming says so).",
                },
            },
        },
        "impact": _IMPACT,
        "runnerPod": {
            "type": "object",
            "description": "Cluster-only settings of the pod that runs the load. Absent fields "
            "take the operator's defaults.",
            "properties": {
                "image": _image(
                    "Container image of the runner pod; it must contain `krally` "
                    "and any third-party plugins the task uses."
                ),
                "imagePullPolicy": {
                    "type": "string",
                    "enum": ["Always", "IfNotPresent", "Never"],
                    "description": "Image pull policy of the runner container.",
                },
                "resources": _RESOURCES,
                "nodeSelector": _node_selector("Node labels the runner pod must be scheduled on."),
                "tolerations": _TOLERATIONS,
                "env": _env("Extra environment variables of the runner container."),
                "topologySpreadConstraints": {
                    "type": "array",
                    "maxItems": 8,
                    "description": "With runner.parallelism > 1: how the runner pods spread, as "
                    "in a Pod spec. Default: maxSkew 1 over kubernetes.io/hostname, "
                    "ScheduleAnyway; [] turns spreading off.",
                    "items": {
                        "type": "object",
                        "description": "A topology spread constraint, as in a Pod spec.",
                        PRESERVE: True,
                    },
                },
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
