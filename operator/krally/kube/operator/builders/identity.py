"""The identities of a task's pods: the runner's ServiceAccount, Role (get/patch of its own
task's status) and RoleBinding; the hooks' ServiceAccount (no rights) and the armed pods' reader
Role and RoleBinding (get/watch of the one task)."""

from __future__ import annotations

from typing import Any

from krally.api.names import GROUP, PLURAL, ROLE_HOOK, ROLE_RUNNER
from krally.api.wire import hook_service_account_name, runner_name
from krally.kube.operator.builders.labels import task_labels
from krally.kube.operator.builders.pod import metadata

_RBAC = "rbac.authorization.k8s.io"


def _runner_object(task: dict[str, Any], api_version: str, kind: str, **fields: Any) -> dict:
    """A namespaced object named like the runner, labelled and owned like every child."""
    name = task["metadata"]["name"]
    meta = metadata(task, runner_name(name), task_labels(name, ROLE_RUNNER))
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
    meta = metadata(task, hook_service_account_name(name), task_labels(name, ROLE_HOOK))
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
    meta = metadata(task, hook_service_account_name(name), task_labels(name, ROLE_HOOK))
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
    meta = metadata(task, hook_service_account_name(name), task_labels(name, ROLE_HOOK))
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
