"""What the operator reads of its children: a Job's state, pods grouped by Job, a container's
state and termination message, and the firings the runner recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from krally.api.shards import runner_view
from krally.api.wire import firing_key
from krally.kube.operator import builders as kjobs


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return cond
    return None


def job_state(job: dict[str, Any]) -> tuple[str, str, str]:
    """(state, reason, message) of a Job: complete, failed, active or pending."""
    for ctype, state in (
        ("Failed", "failed"),
        ("FailureTarget", "failed"),
        ("Complete", "complete"),
        ("SuccessCriteriaMet", "complete"),
    ):
        cond = _condition(job, ctype)
        if cond:
            return state, cond.get("reason") or ctype, cond.get("message") or ""
    status = job.get("status") or {}
    # A failed pod fails the Job at once (backoffLimit 0), except with backoffLimitPerIndex (a
    # distributed load's Continue): the other indexes run on, and the Job's conditions say when
    # it is over.
    if status.get("failed") and (job.get("spec") or {}).get("backoffLimitPerIndex") is None:
        return "failed", "PodFailed", ""
    if status.get("active") or status.get("ready"):
        return "active", "", ""
    return "pending", "", ""


def _pod_job(pod: dict[str, Any]) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    name = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")
    if name:
        return name
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Job":
            return ref.get("name")
    return None


def pods_by_job(pods: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        name = _pod_job(pod)
        if name:
            grouped.setdefault(name, []).append(pod)
    for items in grouped.values():
        items.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    return grouped


def container_state(pod: dict[str, Any]) -> dict[str, Any]:
    """The first container's state: {'terminated': {...}} / {'running': ...} / {'waiting': ...}."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (statuses[0].get("state") or {}) if statuses else {}


def termination_message(pod: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(parsed JSON termination message or None, the terminated state or {}). The message is
    untrusted (any image writes anything): nothing here raises on it."""
    terminated = container_state(pod).get("terminated") or {}
    raw = terminated.get("message")
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return None, terminated
    # FallbackToLogsOnError may put log lines before the JSON: take the last JSON object line.
    for candidate in [text, *reversed(text.splitlines())]:
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            continue
        if isinstance(value, dict):
            return value, terminated
    return None, terminated


# -- hooks -------------------------------------------------------------------------------------


def unique_firings(firings: Iterable[dict[str, Any]], n_hooks: int) -> list[dict[str, Any]]:
    """Firings in order, each (hook, unit, value) once, only for hooks that exist."""
    seen: set[tuple[int, str, str]] = set()
    result = []
    for firing in firings or []:
        index = firing.get("hook")
        if not isinstance(index, int) or not 0 <= index < n_hooks:
            continue
        key = firing_key(index, firing.get("eventType", ""), firing.get("value"))
        if key in seen:
            continue
        seen.add(key)
        result.append(firing)
    return result


def fired_by_job(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Job name → the runner's record, for every recorded firing."""
    name = task["metadata"]["name"]
    status = task.get("status") or {}
    spec_hooks = (task.get("spec") or {}).get("hooks") or []
    firings = runner_view(status.get("runner") or {}).get("firings") or []
    return {
        kjobs.hook_job_name(name, f["hook"], str(f.get("eventType", "")), f.get("value")): f
        for f in unique_firings(firings, len(spec_hooks))
    }


def previous_results(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The hook results the status recorded, by Job name (they outlive cleaned-up Jobs)."""
    found = {}
    for hook in status.get("hooks") or []:
        for item in hook.get("results") or []:
            if item.get("job"):
                found[item["job"]] = item
    return found


def still_running(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Pending", "Running") and not container_state(pod).get("terminated")


def reported_pod(pods: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The runner pod the phase speaks of: the first one that failed (a distributed load has
    one per shard), else the newest."""
    for pod in pods:
        terminated = container_state(pod).get("terminated") or {}
        if terminated.get("exitCode") not in (None, 0):
            return pod
    return pods[-1] if pods else None
