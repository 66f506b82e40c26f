"""Pure builders of the objects the operator creates for a BenchmarkTask.

No API calls here: every function takes the task body (a plain dict) and returns a manifest dict,
so unit tests can check names, labels, owner references and the security context directly.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from krally.api.names import (
    ANNOTATION_ARMED,
    ANNOTATION_CREATED_AT,
    ANNOTATION_FIRED_AT,
    ANNOTATION_HOOK_TIMEOUT,
    API_VERSION,
    CHILD_PREFIX,
    GROUP,
    KIND,
    LABEL_HOOK_INDEX,
    LABEL_ROLE,
    LABEL_TASK,
    LABEL_TRIGGER_UNIT,
    LABEL_TRIGGER_VALUE,
    MANAGED_BY,
    MANAGER,
    PLURAL,
    ROLE_HOOK,
    ROLE_RUNNER,
)
from krally.kube.armedpod import DEFAULT_MAX_DELAY, DISARMED_EXIT, READY_PORT
from krally.kube.firingsignal import SIGNAL_PORT
from krally.kube.metrics import PORT_NAME as METRICS_PORT_NAME
from krally.kube.metrics import RUNNER_PORT as RUNNER_METRICS_PORT
from krally.kube.operator.settings import Settings

MAX_NAME = 63
# The UID of the image's non-root user (distroless "nonroot" convention).
RUN_AS_USER = 65532
TERMINATION_LOG = "/dev/termination-log"
# Seconds an armed pod has to open its watch; past them the kubelet kills it (restartPolicy
# Never: its Job fails, and so does its firing, saying why).
STARTUP_PROBES = 600


# -- names -----------------------------------------------------------------------------------


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def child_name(task: str, suffix: str, prefix: str = "") -> str:
    """``<prefix><task><suffix>``, at most 63 characters: a long task name is cut and made
    unique again with a hash of the full name (two long names sharing a prefix must not
    collide)."""
    name = f"{prefix}{task}{suffix}"
    if len(name) <= MAX_NAME:
        return name
    keep = MAX_NAME - len(prefix) - len(suffix) - 9
    return f"{prefix}{task[:keep].rstrip('-.')}-{_short_hash(task)}{suffix}"


def runner_name(task: str) -> str:
    """Name of the runner Job and of its ServiceAccount, Role and RoleBinding:
    ``krally-<task>-runner`` (the prefix keeps it clear of ordinary names such as a
    ``gitlab-runner`` ServiceAccount next to a task ``gitlab``)."""
    return child_name(task, "-runner", CHILD_PREFIX)


def hook_service_account_name(task: str) -> str:
    """The per-task ServiceAccount hooks run as when they name none: ``krally-<task>-hooks``."""
    return child_name(task, "-hooks", CHILD_PREFIX)


def _value_token(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    token = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return token or _short_hash(text)


def hook_job_name(task: str, index: int, unit: str, value: Any) -> str:
    """Deterministic name of the Job of one firing: the (hook, unit, value) identity makes a
    retried or restarted create return 409 instead of firing twice."""
    return child_name(task, f"-h{index}-{(unit or 'x')[0]}{_value_token(value)}")


def task_label(task: str) -> str:
    """The ``krally.dev/task`` label of a task's children, also the key the operator's store
    keeps the task under: the name itself up to 63 characters, else cut and suffixed with a
    hash of the full name, so two long names sharing 63 characters never share state."""
    if len(task) <= MAX_NAME:
        return task
    keep = MAX_NAME - 9
    return f"{task[:keep].rstrip('-.')}-{_short_hash(task)}"


def label_value(value: Any) -> str:
    """A value usable as a label value (≤ 63 chars of [A-Za-z0-9._-])."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return text[:MAX_NAME].rstrip("._-")


# -- common parts ------------------------------------------------------------------------------


def task_labels(task_name: str, role: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, LABEL_TASK: task_label(task_name), LABEL_ROLE: role}


def owner_reference(task: dict[str, Any]) -> dict[str, Any]:
    meta = task["metadata"]
    return {
        "apiVersion": task.get("apiVersion", API_VERSION),
        "kind": task.get("kind", KIND),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(task: dict[str, Any], name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": task["metadata"]["namespace"],
        "labels": dict(labels),
        "ownerReferences": [owner_reference(task)],
    }


def pod_security_context() -> dict[str, Any]:
    # Passes the `restricted` Pod Security Standard (runAsNonRoot, seccomp RuntimeDefault).
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _task_env(task: dict[str, Any]) -> list[dict[str, str]]:
    meta = task["metadata"]
    return [
        {"name": "KRALLY_TASK_NAME", "value": meta["name"]},
        {"name": "KRALLY_TASK_NAMESPACE", "value": meta["namespace"]},
        {"name": "KRALLY_TASK_UID", "value": meta["uid"]},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def user_env_var(entry: dict[str, Any]) -> dict[str, Any]:
    """A task's env entry for the container: a value, or its ``valueFrom`` reference passed
    through unchanged (the kubelet resolves the Secret/ConfigMap: the value never passes through
    the operator, the spec, status or the Job's manifest)."""
    if entry.get("valueFrom"):
        return {"name": entry["name"], "valueFrom": dict(entry["valueFrom"])}
    return {"name": entry["name"], "value": entry.get("value", "")}


def _tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    return {"name": "tmp", "emptyDir": {}}, {"name": "tmp", "mountPath": "/tmp"}


# -- runner identity ---------------------------------------------------------------------------


_RBAC = "rbac.authorization.k8s.io"


def _runner_object(task: dict[str, Any], api_version: str, kind: str, **fields: Any) -> dict:
    """A namespaced object named like the runner, labelled and owned like every child."""
    name = task["metadata"]["name"]
    meta = _metadata(task, runner_name(name), task_labels(name, ROLE_RUNNER))
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}


def runner_service_account(task: dict[str, Any]) -> dict[str, Any]:
    return _runner_object(task, "v1", "ServiceAccount")


def needs_hook_service_account(task: dict[str, Any]) -> bool:
    """Some hook names no ServiceAccount of its own: it runs as the per-task one."""
    hooks = (task.get("spec") or {}).get("hooks") or []
    return any(not (h.get("job") or {}).get("serviceAccountName") for h in hooks)


def hook_service_account(task: dict[str, Any]) -> dict[str, Any]:
    """The hooks' own identity when a hook names none: no RoleBinding (no rights at all), and no
    token in its pods (``krally hook run`` reports through the termination message; a token
    with no rights would only be something to steal). A hook that needs rights names a
    ServiceAccount its namespace's admin opted in."""
    name = task["metadata"]["name"]
    meta = _metadata(task, hook_service_account_name(name), task_labels(name, ROLE_HOOK))
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta,
        "automountServiceAccountToken": False,
    }


def runner_role(task: dict[str, Any]) -> dict[str, Any]:
    """get/patch of this one task's status (resourceNames), get of the task: nothing else."""
    name = task["metadata"]["name"]
    return _runner_object(
        task,
        f"{_RBAC}/v1",
        "Role",
        rules=[
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [name],
                "verbs": ["get", "patch"],
            },
            {
                "apiGroups": [GROUP],
                "resources": [PLURAL],
                "resourceNames": [name],
                "verbs": ["get"],
            },
        ],
    )


def hook_reader_role(task: dict[str, Any]) -> dict[str, Any]:
    """What an armed hook pod needs to learn of its firing: get and watch this one task
    (resourceNames; a watch names it with fieldSelector metadata.name). Nothing else: it
    cannot even read another task."""
    name = task["metadata"]["name"]
    meta = _metadata(task, hook_service_account_name(name), task_labels(name, ROLE_HOOK))
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [PLURAL],
                "resourceNames": [name],
                "verbs": ["get", "list", "watch"],
            }
        ],
    }


def hook_reader_binding(task: dict[str, Any]) -> dict[str, Any]:
    """The reader Role bound to every identity an armed hook pod of this task runs as: the
    per-task hooks ServiceAccount and each ServiceAccount a hook names."""
    name = task["metadata"]["name"]
    namespace = task["metadata"]["namespace"]
    accounts = sorted(
        {
            (h.get("job") or {}).get("serviceAccountName") or hook_service_account_name(name)
            for h in (task.get("spec") or {}).get("hooks") or []
        }
    )
    meta = _metadata(task, hook_service_account_name(name), task_labels(name, ROLE_HOOK))
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": hook_service_account_name(name)},
        "subjects": [
            {"kind": "ServiceAccount", "name": account, "namespace": namespace}
            for account in accounts
        ],
    }


def runner_role_binding(task: dict[str, Any]) -> dict[str, Any]:
    sa = runner_name(task["metadata"]["name"])
    return _runner_object(
        task,
        f"{_RBAC}/v1",
        "RoleBinding",
        roleRef={"apiGroup": _RBAC, "kind": "Role", "name": sa},
        subjects=[
            {"kind": "ServiceAccount", "name": sa, "namespace": task["metadata"]["namespace"]}
        ],
    )


# -- Jobs --------------------------------------------------------------------------------------


def _job(
    task: dict[str, Any],
    name: str,
    labels: dict[str, str],
    container: dict[str, Any],
    *,
    service_account: str | None,
    deadline: int | None,
    pod_extra: dict[str, Any],
    annotations: dict[str, str] | None = None,
    mount_token: bool | None = None,
    job_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    volume, mount = _tmp_volume()
    container = {
        **container,
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        # The hook pod prints its result to stdout as well: a fallback if the file is empty.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [mount],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [volume],
        "terminationGracePeriodSeconds": 30,
        **{k: v for k, v in pod_extra.items() if v},
    }
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    # None: as the ServiceAccount says. An armed pod (which watches its task) needs its token
    # even when its ServiceAccount (the per-task one) turns automounting off.
    if mount_token is not None:
        pod_spec["automountServiceAccountToken"] = mount_token
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if deadline:
        job_spec["activeDeadlineSeconds"] = int(deadline)
    job_spec.update(job_extra or {})
    meta = _metadata(task, name, labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}


def runner_job(task: dict[str, Any], settings: Settings, armed_pods: int = 0) -> dict[str, Any]:
    """The Job running ``krally runner`` with the spec snapshot taken now (env KRALLY_SPEC).
    ``armed_pods``: how many armed hook pods wait for the load (it lets them subscribe to its
    firing signal first)."""
    name = task["metadata"]["name"]
    spec = task.get("spec") or {}
    pod = spec.get("runnerPod") or {}
    container: dict[str, Any] = {
        "name": "runner",
        "image": pod.get("image") or settings.runner_image,
        "imagePullPolicy": pod.get("imagePullPolicy") or settings.image_pull_policy,
        "command": [*settings.command, "runner"],
        "env": [
            *_task_env(task),
            # The snapshot: the runner never reads the spec again, so what ran is what was accepted.
            {"name": "KRALLY_SPEC", "value": json.dumps(spec, sort_keys=True)},
            # Where armed hook pods reach the runner's firing signal (firingsignal.py).
            {"name": "KRALLY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "KRALLY_ARMED_PODS", "value": str(armed_pods)},
            *({"name": k, "value": v} for k, v in settings.extra_env.items()),
            *(user_env_var(e) for e in pod.get("env") or []),
        ],
        "ports": [
            {"name": "signal", "containerPort": SIGNAL_PORT},
            # The load's live metrics (kube/runnermetrics.py), scraped by the PodMonitor.
            {"name": METRICS_PORT_NAME, "containerPort": RUNNER_METRICS_PORT},
        ],
    }
    if pod.get("resources"):
        container["resources"] = pod["resources"]
    labels = task_labels(name, ROLE_RUNNER)
    parallelism = runner_parallelism(spec)
    pod_extra = {"nodeSelector": pod.get("nodeSelector"), "tolerations": pod.get("tolerations")}
    job_extra: dict[str, Any] = {}
    if parallelism > 1:
        # One pod per shard (JOB_COMPLETION_INDEX), all at once; the pods meet at a barrier
        # and start the load together (kube/runner.py).
        container["env"].append({"name": "KRALLY_PARALLELISM", "value": str(parallelism)})
        job_extra = {
            "completionMode": "Indexed",
            "completions": parallelism,
            "parallelism": parallelism,
        }
        if (spec.get("runner") or {}).get("podFailurePolicy") == "Continue":
            # A failed pod is not retried and the others finish; the Job fails at the end.
            job_extra["backoffLimitPerIndex"] = 0
        spread = pod.get("topologySpreadConstraints")
        if spread is None:  # default: over nodes, as far as they allow
            spread = [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": dict(labels)},
                }
            ]
        pod_extra["topologySpreadConstraints"] = spread
    body = _job(
        task,
        runner_name(name),
        labels,
        container,
        service_account=runner_name(name),
        deadline=pod.get("timeoutSeconds"),
        pod_extra=pod_extra,
        job_extra=job_extra,
    )
    if "backoffLimitPerIndex" in job_extra:
        del body["spec"]["backoffLimit"]  # per index instead
    return body


def runner_parallelism(spec: dict[str, Any]) -> int:
    """How many runner pods the load is spread over (``spec.runner.parallelism``, default 1)."""
    value = (spec.get("runner") or {}).get("parallelism", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def hook_labels(task_name: str, index: int, unit: str, value: Any) -> dict[str, str]:
    return {
        **task_labels(task_name, ROLE_HOOK),
        LABEL_HOOK_INDEX: str(index),
        LABEL_TRIGGER_UNIT: label_value(unit),
        LABEL_TRIGGER_VALUE: label_value(value),
    }


def hook_timeout(hook: dict[str, Any], settings: Settings) -> int:
    job = hook.get("job") or {}
    return int(job.get("timeoutSeconds") or settings.hook_timeout_seconds)


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
    job = hook.get("job") or {}
    unit, value = firing.get("eventType", ""), firing.get("value")
    payload: dict[str, Any] = {
        "index": index,
        "name": hook["name"],
        "args": hook.get("args"),
        "description": hook.get("description") or "",
        "triggeredBy": {"event_type": unit, "value": value},
        "timeoutSeconds": hook_timeout(hook, settings),
    }
    if armed:
        payload["armed"] = {
            "readyPort": READY_PORT,
            "maxDelaySeconds": int(hook.get("maxDelaySeconds") or DEFAULT_MAX_DELAY),
        }
    container: dict[str, Any] = {
        "name": "hook",
        "image": job.get("image") or settings.hook_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [*settings.command, "hook", "run"],
        "env": [
            *_task_env(task),
            {"name": "KRALLY_HOOK", "value": json.dumps(payload, sort_keys=True)},
            *({"name": k, "value": v} for k, v in settings.extra_env.items()),
            *(user_env_var(e) for e in job.get("env") or []),
        ],
    }
    if job.get("resources"):
        container["resources"] = job["resources"]
    annotations = {}
    if created_at:
        annotations[ANNOTATION_CREATED_AT] = created_at
    if firing.get("firedAt"):
        annotations[ANNOTATION_FIRED_AT] = str(firing["firedAt"])
    job_extra: dict[str, Any] = {}
    if armed:
        annotations[ANNOTATION_ARMED] = "true"
        annotations[ANNOTATION_HOOK_TIMEOUT] = str(hook_timeout(hook, settings))
        # Ready = watching the task: the operator releases the load once the first are. A
        # startup probe, not a readiness one: probed until it succeeds, then never again (50
        # armed pods probed every second would cost the node CPU the firing pod needs).
        container["startupProbe"] = {
            "tcpSocket": {"port": READY_PORT},
            "periodSeconds": 1,
            "failureThreshold": STARTUP_PROBES,
        }
        container["ports"] = [{"name": "armed", "containerPort": READY_PORT}]
        # Stopped before its firing (deleted, evicted), the pod exits DISARMED_EXIT: the Job
        # starts a replacement without counting a failure. Any other failure fails the Job
        # (backoffLimit 0): a hook that began must never run twice.
        job_extra["podFailurePolicy"] = {
            "rules": [
                {
                    "action": "Ignore",
                    "onExitCodes": {
                        "containerName": "hook",
                        "operator": "In",
                        "values": [DISARMED_EXIT],
                    },
                }
            ]
        }
    # A named ServiceAccount was opted in by the namespace's admin (admission checks it) and
    # keeps its token (kubectl in a sys_call hook needs it); else the per-task one, with a
    # token only when armed (the reader Role: get/watch of this task, nothing else).
    account = job.get("serviceAccountName")
    return _job(
        task,
        hook_job_name(name, index, unit, value),
        hook_labels(name, index, unit, value),
        container,
        service_account=account or hook_service_account_name(name),
        mount_token=True if armed else None if account else False,
        # Armed, the pod waits first: it enforces the timeout itself once the firing came.
        deadline=None if armed else hook_timeout(hook, settings),
        pod_extra={"nodeSelector": job.get("nodeSelector"), "tolerations": job.get("tolerations")},
        annotations=annotations,
        job_extra=job_extra,
    )


def is_armed(job: dict[str, Any]) -> bool:
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ANNOTATION_ARMED) == "true"
