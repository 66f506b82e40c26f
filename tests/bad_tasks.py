"""Bad BenchmarkTasks, each with the field its refusal must name: one table for every checker.

``CRD_REFUSED`` are refused by the API server itself (the CRD's schema and CEL rules, test:
tests/integration/test_refused_at_apply.py) and by ``krally validate`` offline with the same
field (tests/unit/test_refused_offline.py). ``WEBHOOK_REFUSED`` need the plugins' own schemas:
the operator's validating webhook refuses them at apply time (tests/integration/test_webhook.py)
and ``krally validate`` offline.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

GOOD_SPEC: dict[str, Any] = {
    "description": "every field checked at apply time, set to a valid value",
    "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
    "runner": {"type": "constant", "times": 10, "concurrency": 2, "timeout": 30},
    "sla": {"failure_rate": {"max": 0}},
    "hooks": [
        {
            "name": "sys_call",
            "args": "/bin/true",
            "trigger": {"name": "event", "args": {"unit": "iteration", "at": [2, 5]}},
            "job": {
                "image": "images.example.test:5000/team/krally:1.0@sha256:" + "a" * 64,
                "serviceAccountName": "chaos.runner-1",
                "timeoutSeconds": 30,
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1}},
                "nodeSelector": {"kubernetes.io/os": "linux", "pool": "chaos_1"},
                "tolerations": [
                    {"key": "dedicated", "operator": "Equal", "value": "chaos"},
                    {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
                ],
                "env": [
                    {"name": "MODE", "value": "fast"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
                    {"name": "conf.x", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                ],
            },
        },
        {
            "name": "sys_call",
            "args": "/bin/true",
            "trigger": {
                "name": "periodic",
                "args": {"unit": "time", "step": 2, "start": 0, "end": 4},
            },
        },
    ],
    "runnerPod": {
        "image": "krally:0.1.0",
        "imagePullPolicy": "IfNotPresent",
        "timeoutSeconds": 600,
        "env": [{"name": "LOG", "valueFrom": {"secretKeyRef": {"name": "s", "key": "log"}}}],
    },
}


class Bad(NamedTuple):
    kind: str  # what is wrong, as a test id
    change: Callable[[dict[str, Any]], None]
    field: str  # the field the refusal names


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """``"hooks.0.job.image"`` = value (a missing "runnerPod" etc. is created)."""
    steps = [int(s) if s.isdigit() else s for s in path.split(".")]

    def change(spec: dict[str, Any]) -> None:
        node: Any = spec
        for step in steps[:-1]:
            node = node[step] if isinstance(step, int) else node.setdefault(step, {})
        node[steps[-1]] = value

    return change


JOB = "hooks.0.job"
TRIGGER0 = "hooks.0.trigger"
TRIGGER1 = "hooks.1.trigger"

CRD_REFUSED: list[Bad] = [
    Bad("unknown-field", _set("hoks", []), "spec.hoks"),
    Bad("scenario-without-name", _set("scenario", {"args": {}}), "spec.scenario.name"),
    Bad(
        "service-account-not-dns1123",
        _set(f"{JOB}.serviceAccountName", "Chaos_SA"),
        "spec.hooks[0].job.serviceAccountName",
    ),
    Bad("hook-timeout-zero", _set(f"{JOB}.timeoutSeconds", 0), "spec.hooks[0].job.timeoutSeconds"),
    Bad(
        "runner-timeout-zero", _set("runnerPod.timeoutSeconds", 0), "spec.runnerPod.timeoutSeconds"
    ),
    Bad(
        "image-pull-policy",
        _set("runnerPod.imagePullPolicy", "Sometimes"),
        "spec.runnerPod.imagePullPolicy",
    ),
    Bad("hook-image-syntax", _set(f"{JOB}.image", "Bad Image!"), "spec.hooks[0].job.image"),
    Bad("runner-image-syntax", _set("runnerPod.image", "krally:"), "spec.runnerPod.image"),
    Bad("parallelism-zero", _set("runner.parallelism", 0), "spec.runner.parallelism"),
    Bad(
        "pod-failure-policy",
        _set("runner.podFailurePolicy", "Sometimes"),
        "spec.runner.podFailurePolicy",
    ),
    Bad(
        "env-name",
        _set(f"{JOB}.env", [{"name": "1X", "value": "v"}]),
        "spec.hooks[0].job.env[0].name",
    ),
    Bad(
        "runner-env-name",
        _set("runnerPod.env", [{"name": "A=B", "value": "v"}]),
        "spec.runnerPod.env[0].name",
    ),
    Bad(
        "env-name-reserved",
        _set("runnerPod.env", [{"name": "KRALLY_SPEC", "value": "{}"}]),
        "spec.runnerPod.env[0].name",
    ),
    Bad(
        "env-value-and-valueFrom",
        _set(
            f"{JOB}.env",
            [{"name": "X", "value": "v", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        ),
        "spec.hooks[0].job.env[0].valueFrom",
    ),
    Bad(
        "valueFrom-two-sources",
        _set(
            f"{JOB}.env",
            [
                {
                    "name": "X",
                    "valueFrom": {
                        "secretKeyRef": {"name": "s", "key": "k"},
                        "configMapKeyRef": {"name": "c", "key": "k"},
                    },
                }
            ],
        ),
        "spec.hooks[0].job.env[0].valueFrom",
    ),
    Bad(
        "secret-name-not-dns1123",
        _set(
            f"{JOB}.env", [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "S!", "key": "k"}}}]
        ),
        "spec.hooks[0].job.env[0].valueFrom.secretKeyRef.name",
    ),
    Bad(
        "resources-quantity",
        _set(f"{JOB}.resources", {"limits": {"memory": "lots"}}),
        "spec.hooks[0].job.resources.limits.memory",
    ),
    Bad(
        "resources-unknown-key",
        _set("runnerPod.resources", {"limit": {"cpu": "1"}}),
        "spec.runnerPod.resources.limit",
    ),
    Bad(
        "toleration-operator",
        _set(f"{JOB}.tolerations", [{"key": "k", "operator": "Is"}]),
        "spec.hooks[0].job.tolerations[0].operator",
    ),
    Bad(
        "toleration-effect",
        _set(f"{JOB}.tolerations", [{"key": "k", "effect": "Never"}]),
        "spec.hooks[0].job.tolerations[0].effect",
    ),
    Bad(
        "toleration-exists-with-value",
        _set(f"{JOB}.tolerations", [{"key": "k", "operator": "Exists", "value": "v"}]),
        "spec.hooks[0].job.tolerations[0].value",
    ),
    Bad(
        "toleration-seconds-without-noexecute",
        _set(f"{JOB}.tolerations", [{"key": "k", "tolerationSeconds": 5}]),
        "spec.hooks[0].job.tolerations[0].tolerationSeconds",
    ),
    Bad(
        "node-selector-key",
        _set("runnerPod.nodeSelector", {"bad key": "x"}),
        "spec.runnerPod.nodeSelector",
    ),
    Bad(
        "node-selector-value",
        _set(f"{JOB}.nodeSelector", {"pool": "not ok"}),
        "spec.hooks[0].job.nodeSelector.pool",
    ),
    Bad("runner-times-zero", _set("runner.times", 0), "spec.runner.times"),
    Bad("runner-concurrency-zero", _set("runner.concurrency", 0), "spec.runner.concurrency"),
    Bad("runner-concurrency-over-times", _set("runner.concurrency", 11), "spec.runner.concurrency"),
    Bad("runner-timeout-negative", _set("runner.timeout", -1), "spec.runner.timeout"),
    Bad("runner-times-not-integer", _set("runner.times", "ten"), "spec.runner.times"),
    Bad(
        "constant-for-duration-without-duration",
        _set("runner", {"type": "constant_for_duration", "concurrency": 1}),
        "spec.runner.duration",
    ),
    Bad(
        "constant-for-duration-negative",
        _set("runner", {"type": "constant_for_duration", "duration": -5}),
        "spec.runner.duration",
    ),
    Bad("rps-without-times", _set("runner", {"type": "rps", "rps": 2}), "spec.runner.times"),
    Bad("trigger-unit", _set(f"{TRIGGER0}.args.unit", "minute"), "spec.hooks[0].trigger.args.unit"),
    Bad("event-at-empty", _set(f"{TRIGGER0}.args.at", []), "spec.hooks[0].trigger.args.at"),
    Bad(
        "event-at-iteration-zero",
        _set(f"{TRIGGER0}.args.at", [0, 5]),
        "spec.hooks[0].trigger.args.at",
    ),
    Bad(
        "event-at-not-integer",
        _set(f"{TRIGGER0}.args.at", ["5"]),
        "spec.hooks[0].trigger.args.at[0]",
    ),
    Bad(
        "event-at-time-negative",
        _set(TRIGGER0, {"name": "event", "args": {"unit": "time", "at": [-1]}}),
        "spec.hooks[0].trigger.args.at",
    ),
    Bad(
        "periodic-without-step",
        _set(f"{TRIGGER1}.args", {"unit": "time"}),
        "spec.hooks[1].trigger.args.step",
    ),
    Bad("periodic-step-zero", _set(f"{TRIGGER1}.args.step", 0), "spec.hooks[1].trigger.args.step"),
    Bad(
        "periodic-end-before-start",
        _set(f"{TRIGGER1}.args", {"unit": "time", "step": 1, "start": 10, "end": 5}),
        "spec.hooks[1].trigger.args.end",
    ),
    Bad(
        "periodic-iteration-start-zero",
        _set(f"{TRIGGER1}.args", {"unit": "iteration", "step": 1, "start": 0}),
        "spec.hooks[1].trigger.args.start",
    ),
]


def _spread_judged_on_impact(spec: dict[str, Any]) -> None:
    # disruption_impact has no Rally merge: it cannot judge a load spread over pods.
    spec["runner"]["parallelism"] = 2
    spec["sla"] = {"disruption_impact": {"max_recovery_seconds": 5}}


WEBHOOK_REFUSED: list[Bad] = [
    Bad("unknown-scenario", _set("scenario.name", "Dummy.nope"), "spec.scenario.name"),
    Bad("scenario-arg-negative", _set("scenario.args", {"sleep": -1}), "spec.scenario.args.sleep"),
    Bad("scenario-arg-type", _set("scenario.args", {"sleep": "x"}), "spec.scenario.args.sleep"),
    Bad("unknown-hook-plugin", _set("hooks.0.name", "no_such_hook"), "spec.hooks[0].name"),
    Bad("sys-call-args", _set("hooks.0.args", {"cmd": 1}), "spec.hooks[0].args"),
    Bad("unknown-runner", _set("runner", {"type": "fastest"}), "spec.runner.type"),
    Bad(
        "rps-not-positive", _set("runner", {"type": "rps", "times": 3, "rps": 0}), "spec.runner.rps"
    ),
    Bad("unknown-sla", _set("sla", {"fastest": True}), "spec.sla.fastest"),
    Bad("sla-config", _set("sla", {"failure_rate": {"max": "x"}}), "spec.sla.failure_rate"),
    Bad("unknown-trigger", _set(f"{TRIGGER0}.name", "sometimes"), "spec.hooks[0].trigger.name"),
    Bad(
        "context-config",
        _set("contexts", {"dummy_context": {"fail_setup": "yes"}}),
        "spec.contexts.dummy_context",
    ),
    # More runner pods than the load has iteration slots (concurrency 2), and serial.
    Bad("parallelism-over-concurrency", _set("runner.parallelism", 3), "spec.runner.parallelism"),
    Bad(
        "serial-spread",
        _set("runner", {"type": "serial", "times": 4, "parallelism": 2}),
        "spec.runner.parallelism",
    ),
    Bad("sla-without-merge", _spread_judged_on_impact, "spec.sla.disruption_impact"),
]


def task(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": name},
        "spec": spec,
    }


def bad_spec(bad: Bad) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD_SPEC)
    bad.change(spec)
    return spec
