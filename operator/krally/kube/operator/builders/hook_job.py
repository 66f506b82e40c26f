"""The hook Job of one firing: ``krally hook run`` with the hook and the firing as its payload;
armed, made before the firing, with the startup probe and podFailurePolicy of a pod that waits."""

from __future__ import annotations

import json
from typing import Any

from krally.api import wire
from krally.api.names import (
    ANNOTATION_ARMED,
    ANNOTATION_CREATED_AT,
    ANNOTATION_FIRED_AT,
    ANNOTATION_HOOK_TIMEOUT,
)
from krally.kube.operator.builders.labels import hook_labels
from krally.kube.operator.builders.pod import job, task_env, user_env_var
from krally.kube.operator.settings import Settings

# Seconds an armed pod has to open its watch; past them the kubelet kills it (restartPolicy
# Never: its Job fails, and so does its firing, saying why).
STARTUP_PROBES = 600


def hook_timeout(hook: dict[str, Any], settings: Settings) -> int:
    job = hook.get("job") or {}
    return int(job.get("timeoutSeconds") or settings.hook_timeout_seconds)


def hook_payload(
    task: dict[str, Any], index: int, firing: dict[str, Any], settings: Settings, armed: bool
) -> dict[str, Any]:
    """What the hook pod runs (env KRALLY_HOOK): the hook, its args, the firing, its timeout;
    armed, where it says it is ready and how late a firing it still runs."""
    hook = (task.get("spec") or {}).get("hooks", [])[index]
    payload: dict[str, Any] = {
        "index": index,
        "name": hook["name"],
        "args": hook.get("args"),
        "description": hook.get("description") or "",
        "triggeredBy": {"event_type": firing.get("eventType", ""), "value": firing.get("value")},
        "timeoutSeconds": hook_timeout(hook, settings),
    }
    if armed:
        payload["armed"] = {
            "readyPort": wire.READY_PORT,
            "maxDelaySeconds": int(hook.get("maxDelaySeconds") or wire.DEFAULT_MAX_DELAY),
        }
    return payload


def hook_job(
    task: dict[str, Any],
    index: int,
    firing: dict[str, Any],
    settings: Settings,
    *,
    created_at: str | None = None,
    armed: bool = False,
) -> dict[str, Any]:
    """The Job of one firing of ``spec.hooks[index]``: runs ``krally hook run``. ``armed``: made
    before the firing (``firing`` holds only eventType and value); its pod prepares the hook,
    watches the task and runs the hook the moment the runner records the firing."""
    name = task["metadata"]["name"]
    hook = (task.get("spec") or {}).get("hooks", [])[index]
    job_spec = hook.get("job") or {}
    unit, value = firing.get("eventType", ""), firing.get("value")
    payload = hook_payload(task, index, firing, settings, armed)
    container: dict[str, Any] = {
        "name": "hook",
        "image": job_spec.get("image") or settings.hook_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [*settings.command, "hook", "run"],
        "env": [
            *task_env(task),
            {"name": wire.ENV_HOOK, "value": json.dumps(payload, sort_keys=True)},
            *({"name": k, "value": v} for k, v in settings.extra_env.items()),
            *(user_env_var(e) for e in job_spec.get("env") or []),
        ],
    }
    if job_spec.get("resources"):
        container["resources"] = job_spec["resources"]
    annotations = _annotations(firing, created_at)
    job_extra: dict[str, Any] = {}
    if armed:
        annotations[ANNOTATION_ARMED] = "true"
        annotations[ANNOTATION_HOOK_TIMEOUT] = str(hook_timeout(hook, settings))
        job_extra["podFailurePolicy"] = _arm(container)
    # A named ServiceAccount was opted in by the namespace's admin (admission checks it) and
    # keeps its token (kubectl in a sys_call hook needs it); else the per-task one, with a
    # token only when armed (the reader Role: get/watch of this task, nothing else).
    account = job_spec.get("serviceAccountName")
    return job(
        task,
        wire.hook_job_name(name, index, unit, value),
        hook_labels(name, index, unit, value),
        container,
        service_account=account or wire.hook_service_account_name(name),
        mount_token=True if armed else None if account else False,
        # Armed, the pod waits first: it enforces the timeout itself once the firing came.
        deadline=None if armed else hook_timeout(hook, settings),
        pod_extra={
            "nodeSelector": job_spec.get("nodeSelector"),
            "tolerations": job_spec.get("tolerations"),
        },
        annotations=annotations,
        job_extra=job_extra,
    )


def _annotations(firing: dict[str, Any], created_at: str | None) -> dict[str, str]:
    """When the operator sent the create (ms precision) and when the runner recorded the
    firing: the two ends of the firing → Job lag."""
    annotations = {}
    if created_at:
        annotations[ANNOTATION_CREATED_AT] = created_at
    if firing.get("firedAt"):
        annotations[ANNOTATION_FIRED_AT] = str(firing["firedAt"])
    return annotations


def _arm(container: dict[str, Any]) -> dict[str, Any]:
    """An armed pod's startup probe and port on ``container``; the Job's podFailurePolicy."""
    # Ready = watching the task: the operator releases the load once the first are. A
    # startup probe, not a readiness one: probed until it succeeds, then never again (50
    # armed pods probed every second would cost the node CPU the firing pod needs).
    container["startupProbe"] = {
        "tcpSocket": {"port": wire.READY_PORT},
        "periodSeconds": 1,
        "failureThreshold": STARTUP_PROBES,
    }
    container["ports"] = [{"name": "armed", "containerPort": wire.READY_PORT}]
    # Stopped before its firing (deleted, evicted), the pod exits DISARMED_EXIT: the Job
    # starts a replacement without counting a failure. Any other failure fails the Job
    # (backoffLimit 0): a hook that began must never run twice.
    return {
        "rules": [
            {
                "action": "Ignore",
                "onExitCodes": {
                    "containerName": "hook",
                    "operator": "In",
                    "values": [wire.DISARMED_EXIT],
                },
            }
        ]
    }


def is_armed(job: dict[str, Any]) -> bool:
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ANNOTATION_ARMED) == "true"
