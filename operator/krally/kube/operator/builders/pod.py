"""The parts every child object shares: metadata with the owner reference, the security
contexts (the `restricted` Pod Security Standard), the task's environment, and the Job around
one container."""

from __future__ import annotations

from typing import Any

from krally.api.names import API_VERSION, KIND
from krally.api.wire import ENV_TASK_NAME, ENV_TASK_NAMESPACE, ENV_TASK_UID

# The UID of the image's non-root user (distroless "nonroot" convention).
RUN_AS_USER = 65532
TERMINATION_LOG = "/dev/termination-log"


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


def metadata(task: dict[str, Any], name: str, labels: dict[str, str]) -> dict[str, Any]:
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


def task_env(task: dict[str, Any]) -> list[dict[str, str]]:
    meta = task["metadata"]
    return [
        {"name": ENV_TASK_NAME, "value": meta["name"]},
        {"name": ENV_TASK_NAMESPACE, "value": meta["namespace"]},
        {"name": ENV_TASK_UID, "value": meta["uid"]},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def user_env_var(entry: dict[str, Any]) -> dict[str, Any]:
    """A task's env entry for the container: a value, or its ``valueFrom`` reference passed
    through unchanged (the kubelet resolves the Secret/ConfigMap: the value never passes through
    the operator, the spec, status or the Job's manifest)."""
    if entry.get("valueFrom"):
        return {"name": entry["name"], "valueFrom": dict(entry["valueFrom"])}
    return {"name": entry["name"], "value": entry.get("value", "")}


def tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    return {"name": "tmp", "emptyDir": {}}, {"name": "tmp", "mountPath": "/tmp"}


def job(
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
    volume, mount = tmp_volume()
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
    meta = metadata(task, name, labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}
