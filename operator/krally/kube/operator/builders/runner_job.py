"""The runner Job: ``krally runner`` with the task's spec snapshot; for a distributed load an
Indexed Job of one pod per shard."""

from __future__ import annotations

import json
from typing import Any

from krally.api import wire
from krally.api.names import ROLE_RUNNER
from krally.kube.metrics import PORT_NAME as METRICS_PORT_NAME
from krally.kube.metrics import RUNNER_PORT as RUNNER_METRICS_PORT
from krally.kube.operator.builders.labels import task_labels
from krally.kube.operator.builders.pod import job, task_env, user_env_var
from krally.kube.operator.settings import Settings


def runner_job(task: dict[str, Any], settings: Settings, armed_pods: int = 0) -> dict[str, Any]:
    """The Job running ``krally runner`` with the spec snapshot taken now (env KRALLY_SPEC).
    ``armed_pods``: how many armed hook pods wait for the load (it lets them subscribe to its
    firing signal first)."""
    name = task["metadata"]["name"]
    spec = task.get("spec") or {}
    pod = spec.get("runnerPod") or {}
    container = _runner_container(task, settings, armed_pods)
    labels = task_labels(name, ROLE_RUNNER)
    parallelism = runner_parallelism(spec)
    pod_extra = {"nodeSelector": pod.get("nodeSelector"), "tolerations": pod.get("tolerations")}
    job_extra: dict[str, Any] = {}
    if parallelism > 1:
        # One pod per shard (JOB_COMPLETION_INDEX), all at once; the pods meet at a barrier
        # and start the load together (kube/pods/runner/shards.py).
        container["env"].append({"name": wire.ENV_PARALLELISM, "value": str(parallelism)})
        job_extra = _indexed(spec, parallelism)
        pod_extra["topologySpreadConstraints"] = _spread(pod, labels)
    body = job(
        task,
        wire.runner_name(name),
        labels,
        container,
        service_account=wire.runner_name(name),
        deadline=pod.get("timeoutSeconds"),
        pod_extra=pod_extra,
        job_extra=job_extra,
    )
    if "backoffLimitPerIndex" in job_extra:
        del body["spec"]["backoffLimit"]  # per index instead
    return body


def _runner_container(task: dict[str, Any], settings: Settings, armed_pods: int) -> dict[str, Any]:
    spec = task.get("spec") or {}
    pod = spec.get("runnerPod") or {}
    container: dict[str, Any] = {
        "name": "runner",
        "image": pod.get("image") or settings.runner_image,
        "imagePullPolicy": pod.get("imagePullPolicy") or settings.image_pull_policy,
        "command": [*settings.command, "runner"],
        "env": [
            *task_env(task),
            # The snapshot: the runner never reads the spec again, so what ran is what was accepted.
            {"name": wire.ENV_SPEC, "value": json.dumps(spec, sort_keys=True)},
            # Where armed hook pods reach the runner's firing signal (kube/pods/runner/signal.py).
            {"name": wire.ENV_POD_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": wire.ENV_ARMED_PODS, "value": str(armed_pods)},
            *({"name": k, "value": v} for k, v in settings.extra_env.items()),
            *(user_env_var(e) for e in pod.get("env") or []),
        ],
        "ports": [
            {"name": "signal", "containerPort": wire.SIGNAL_PORT},
            # The load's live metrics (kube/pods/runner/metrics.py), scraped by the PodMonitor.
            {"name": METRICS_PORT_NAME, "containerPort": RUNNER_METRICS_PORT},
        ],
    }
    if pod.get("resources"):
        container["resources"] = pod["resources"]
    return container


def _indexed(spec: dict[str, Any], parallelism: int) -> dict[str, Any]:
    """The Job fields of a load spread over ``parallelism`` pods."""
    job_extra: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": parallelism,
        "parallelism": parallelism,
    }
    if (spec.get("runner") or {}).get("podFailurePolicy") == "Continue":
        # A failed pod is not retried and the others finish; the Job fails at the end.
        job_extra["backoffLimitPerIndex"] = 0
    return job_extra


def _spread(pod: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The pods' topology spread: the task's own, else over nodes as far as they allow."""
    spread = pod.get("topologySpreadConstraints")
    if spread is not None:
        return list(spread)
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(labels)},
        }
    ]


def runner_parallelism(spec: dict[str, Any]) -> int:
    """How many runner pods the load is spread over (``spec.runner.parallelism``, default 1)."""
    value = (spec.get("runner") or {}).get("parallelism", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1
