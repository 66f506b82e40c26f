"""The operator's own re-validation of a task's (or a schedule's) author: was it checked?

The checks that need the author's identity (get on each referenced Secret and ConfigMap, use
on each hook ServiceAccount, create on tasks for a schedule) are made by the requester policy
(:mod:`.requester_policy`) inside the API server, at admission, where the identity is known.
The operator never learns who wrote an object, and records no identity: an annotation saying
"checked for alice" could be written by anyone while a webhook was down. What it checks before
running anything, and again after every restart, is that the policy could not have been
skipped:

- the policy and its binding exist, the policy fails closed (``failurePolicy: Fail``) and the
  binding denies (``validationActions: [Deny]``);
- the object was created after the binding (a task or schedule from before the install was
  never checked: it is refused, to be created again).

Tasks are checked when they reference a Secret, a ConfigMap or a ServiceAccount (a plain task
needs no right of its author's); schedules always (their author must hold ``create`` on tasks),
before each task is made from them. A check that cannot be made (the policy unreadable) refuses:
fail closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

from krally.kube.operator.requester_policy import BINDING, POLICY

Obj = dict[str, Any]
_HOW = "(install manifests/requester-policy.yaml)"


def references(spec: Mapping[str, Any]) -> list[str]:
    """The fields of ``spec`` that name a Secret, a ConfigMap or a ServiceAccount."""
    found = []
    runner_pod = spec.get("runnerPod")
    pods: list[tuple[str, Any]] = [("spec.runnerPod", runner_pod)]
    for index, hook in enumerate(spec.get("hooks") or []):
        job = hook.get("job") if isinstance(hook, Mapping) else None
        pods.append((f"spec.hooks[{index}].job", job))
        if isinstance(job, Mapping) and job.get("serviceAccountName"):
            found.append(f"spec.hooks[{index}].job.serviceAccountName")
    for where, pod in pods:
        env = pod.get("env") if isinstance(pod, Mapping) else None
        for j, item in enumerate(env or []):
            if isinstance(item, Mapping) and item.get("valueFrom"):
                found.append(f"{where}.env[{j}].valueFrom")
    return found


def _time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def problems(obj: Mapping[str, Any], policy: Obj | None, binding: Obj | None) -> list[str]:
    """Why ``obj`` (a task or schedule, as read) may not have passed the requester policy
    (the policy and binding as read, None: not found); [] when it must have."""
    kind = obj.get("kind") or "the object"
    why = (
        f"its author's rights on what it references could not have been checked at {kind} creation"
    )
    if policy is None or binding is None:
        missing = (
            "ValidatingAdmissionPolicy" if policy is None else "ValidatingAdmissionPolicyBinding"
        )
        return [
            f"the requester policy is not installed ({missing} {POLICY} not found) {_HOW}: {why}"
        ]
    if (policy.get("spec") or {}).get("failurePolicy") != "Fail":
        return [
            f"the requester policy {POLICY} fails open (failurePolicy is not Fail) {_HOW}: {why}"
        ]
    spec = binding.get("spec") or {}
    if spec.get("policyName") != POLICY or "Deny" not in (spec.get("validationActions") or []):
        return [f"the binding {BINDING} does not deny with policy {POLICY} {_HOW}: {why}"]
    created = _time((obj.get("metadata") or {}).get("creationTimestamp"))
    bound = _time((binding.get("metadata") or {}).get("creationTimestamp"))
    if created is None or bound is None or created <= bound:
        return [
            f"created before the requester policy was in force (binding {BINDING} created "
            f"{(binding.get('metadata') or {}).get('creationTimestamp')}): {why}; create it again"
        ]
    return []


async def read(api: Any) -> tuple[Obj | None, Obj | None]:
    """The policy and its binding (None: not found). Any other failure raises: the caller
    retries, and runs nothing meanwhile."""

    async def one(method: str, name: str) -> Obj | None:
        try:
            reply = await asyncio.to_thread(getattr(api.admission, method), name)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        result: Obj = api.to_dict(reply)
        return result

    return (
        await one("read_validating_admission_policy", POLICY),
        await one("read_validating_admission_policy_binding", BINDING),
    )


async def task_problems(api: Any, task: Mapping[str, Any]) -> list[str]:
    """The requester problems of a task: none unless it references something."""
    fields = references(task.get("spec") or {})
    if not fields:
        return []
    found = await object_problems(api, task)
    return [f"{fields[0]}: {found[0]}"] if found else []


async def object_problems(api: Any, obj: Mapping[str, Any]) -> list[str]:
    """:func:`problems` of ``obj`` with the policy as read now; refused (not retried) when the
    operator may not read it."""
    try:
        return problems(obj, *await read(api))
    except Exception as exc:
        if getattr(exc, "status", None) != 403:
            raise
        return [
            f"the operator may not read the requester policy {POLICY} (get on "
            "validatingadmissionpolicies and their bindings, in its ClusterRole): its author "
            "could not be checked"
        ]
