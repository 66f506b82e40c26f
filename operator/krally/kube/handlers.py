"""kopf handlers of the krally operator.

One level-based, idempotent ``reconcile`` per task, kicked by watch events on the task, its Jobs
and their pods (``@kopf.on.event``: no state, no finalizer, no timer). Everything reconcile
reads comes from in-memory indices kept by kopf's watches, so the firing path is:
runner patches ``status.runner.firings`` → task watch event → create the hook Job (one API call).

Why no on.create/on.update/timers: those store progress in annotations and timers/daemons add
a finalizer that wedges deletion while the operator is down; a task's children are owned
(ownerReferences) and the garbage collector deletes them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from krally.api import names
from krally.kube import events as kevents
from krally.kube import jobs as kjobs
from krally.kube import status as kstatus

log = logging.getLogger("krally.operator")

SETTINGS = kjobs.OperatorSettings.from_env()
# Status writes per running task (target ≤ 1.5/s with the runner's): a phase or condition change
# is written at once; anything else (progress, a hook going pending → running → success) at
# most once per this period, flushed by a deferred reconcile if nothing else comes first.
STATUS_WRITE_PERIOD = float(os.environ.get("KRALLY_STATUS_WRITE_PERIOD", "4"))
MANAGED = {kjobs.MANAGED_BY: kjobs.MANAGER}


@dataclass
class TaskState:
    """Per-task memory of this operator process (rebuilt from the cluster after a restart)."""

    uid: str = ""
    dirty: bool = False
    running: bool = False
    problems: list[str] | None = None  # None: not validated yet
    warnings: list[str] | None = None  # found by that validation (None after a restart)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)  # job name → create reply
    snapshot: dict[str, Any] | None = None  # the task as returned by our last status patch
    last_write: float = 0.0
    abort_sent: bool = False
    flush: asyncio.TimerHandle | None = None
    identity_done: bool = False


_STATES: dict[tuple[str, str], TaskState] = {}
_INDICES: dict[str, Any] = {}
_BACKGROUND: set[asyncio.Task[Any]] = set()


class Clients:
    """The official client's APIs, created once (kopf keeps its own aiohttp session)."""

    def __init__(self) -> None:
        from kubernetes import client, config

        config.load_config()
        self.api_client = client.ApiClient()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.rbac = client.RbacAuthorizationV1Api(self.api_client)

    def to_dict(self, obj: Any) -> dict[str, Any]:
        return self.api_client.sanitize_for_serialization(obj)


_CLIENTS: Clients | None = None


def clients() -> Clients:
    global _CLIENTS
    if _CLIENTS is None:
        _CLIENTS = Clients()
    return _CLIENTS


# -- settings ----------------------------------------------------------------------------------


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Events are posted by krally itself (events.py), not from kopf's log lines.
    settings.posting.enabled = False
    # Retry quickly: a failed API call in the firing path must not wait a minute.
    settings.execution.default_backoff = 1
    settings.networking.error_backoffs = [0.5, 1, 2, 5]
    settings.execution.max_workers = int(os.environ.get("KRALLY_MAX_WORKERS", "20"))
    # Re-establish watches every few minutes; inactivity_timeout catches silent freezes.
    settings.watching.server_timeout = 300
    settings.watching.inactivity_timeout = 70
    # The operator needs no cluster-wide CRD/namespace listing: the CRD is installed beforehand.
    settings.scanning.disabled = os.environ.get("KRALLY_SCANNING", "") != "1"
    clients()


# -- indices: the operator's view of the cluster ------------------------------------------------


def _meta(body: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {k: copy.deepcopy(meta[k]) for k in keys if k in meta}


def _task_key(body: Any) -> str:
    return kjobs.label_value((body.get("metadata") or {}).get("name", ""))


@kopf.index(names.GROUP, names.VERSION, names.PLURAL)
def task_index(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    plain = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": _meta(
            body,
            (
                "name",
                "namespace",
                "uid",
                "generation",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "labels",
            ),
        ),
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
        "status": copy.deepcopy(dict(body.get("status") or {})),
    }
    return {(namespace, _task_key(body)): plain}


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
def job_index(namespace: str, body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    plain = {
        "metadata": _meta(
            body,
            (
                "name",
                "namespace",
                "uid",
                "labels",
                "annotations",
                "ownerReferences",
                "creationTimestamp",
                "deletionTimestamp",
            ),
        ),
        "spec": {"activeDeadlineSeconds": (body.get("spec") or {}).get("activeDeadlineSeconds")},
        "status": copy.deepcopy(dict(body.get("status") or {})),
    }
    return {(namespace, labels.get(kjobs.LABEL_TASK, "")): plain}


@kopf.index("v1", "pods", labels=MANAGED)
def pod_index(namespace: str, body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    status = body.get("status") or {}
    plain = {
        "metadata": _meta(
            body,
            (
                "name",
                "namespace",
                "uid",
                "labels",
                "ownerReferences",
                "creationTimestamp",
                "deletionTimestamp",
            ),
        ),
        "status": {
            k: copy.deepcopy(status[k])
            for k in ("phase", "conditions", "containerStatuses", "startTime", "reason", "message")
            if k in status
        },
    }
    return {(namespace, labels.get(kjobs.LABEL_TASK, "")): plain}


def _remember(kwargs: dict[str, Any]) -> None:
    for name in ("task_index", "job_index", "pod_index"):
        if name in kwargs:
            _INDICES[name] = kwargs[name]


def _lookup(index_name: str, key: tuple[str, str]) -> list[dict[str, Any]]:
    index = _INDICES.get(index_name)
    if index is None:
        return []
    try:
        return list(index.get(key, []))
    except RuntimeError:  # changed during iteration (we are in the loop: should not happen)
        return list(index.get(key, []))


# -- watch events ------------------------------------------------------------------------------


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL)
async def task_event(type: str, namespace: str, body: kopf.Body, **kwargs: Any) -> None:
    _remember(kwargs)
    key = (namespace, _task_key(body))
    if type == "DELETED":
        _STATES.pop(key, None)
        return
    kick(key)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    _remember(kwargs)
    kick((namespace, labels.get(kjobs.LABEL_TASK, "")))


@kopf.on.event("v1", "pods", labels=MANAGED)
async def pod_event(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    _remember(kwargs)
    kick((namespace, labels.get(kjobs.LABEL_TASK, "")))


@kopf.on.probe(id="tasks")
def probe_tasks(**_: Any) -> int:
    return len(_STATES)


def kick(key: tuple[str, str]) -> None:
    """Schedule a reconcile of ``key``; events arriving meanwhile coalesce into one more pass."""
    state = _STATES.setdefault(key, TaskState())
    _fire_hooks(key, state)
    state.dirty = True
    if state.running:
        return
    state.running = True
    task = asyncio.get_running_loop().create_task(_reconcile_loop(key, state))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _fire_hooks(key: tuple[str, str], state: TaskState) -> None:
    """The firing fast path: create the Job of every new firing now, without waiting for a
    reconcile in progress (a status write, Events). Safe to race with reconcile: the names are
    deterministic, so a second create is a 409, and in-flight names are marked first."""
    if state.problems is None or state.problems:
        return  # not accepted (yet): reconcile validates first
    tasks = _lookup("task_index", key)
    if not tasks:
        return
    task = tasks[0]
    uid = task["metadata"]["uid"]
    if state.uid != uid or task["metadata"].get("deletionTimestamp"):
        return
    by_name = {j["metadata"]["name"]: j for j in _lookup("job_index", key) if _owned_by(j, uid)}
    for index, firing, name in kstatus.firings_without_job(task, by_name, state.created):
        state.created[name] = {"metadata": {"name": name}}
        job = asyncio.ensure_future(_create_hook_job(key, state, task, index, firing, name))
        _BACKGROUND.add(job)
        job.add_done_callback(_BACKGROUND.discard)


async def _create_hook_job(
    key: tuple[str, str],
    state: TaskState,
    task: dict[str, Any],
    index: int,
    firing: dict[str, Any],
    name: str,
) -> None:
    body = kjobs.hook_job(task, index, firing, SETTINGS, created_at=kstatus.rfc3339(time.time()))
    try:
        reply = await _create("Job", key[0], body)
    except Exception as exc:
        log.error("creating hook Job %s failed: %s", name, exc)
        state.created.pop(name, None)
        await asyncio.sleep(0.5)
        kick(key)  # level-based: the next pass tries again
        return
    if reply is not None and name in state.created:
        state.created[name] = reply
    log.info(
        "hook Job %s/%s for %s %s%s",
        key[0],
        name,
        firing.get("eventType"),
        firing.get("value"),
        "" if reply is not None else " (already existed)",
    )


async def _reconcile_loop(key: tuple[str, str], state: TaskState) -> None:
    try:
        failures = 0
        while state.dirty:
            state.dirty = False
            try:
                await reconcile(key, state)
                failures = 0
            except Exception:
                failures += 1
                log.exception("reconcile of %s/%s failed", *key)
                # Level-based: try again soon (the next watch event would too).
                await asyncio.sleep(min(0.5 * failures, 5))
                state.dirty = True
    finally:
        state.running = False


# -- reconcile ---------------------------------------------------------------------------------


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    # The official client blocks: run it off the event loop so watches keep flowing.
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _create(kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Create a child; 409 AlreadyExists is success (deterministic names make it idempotent)."""
    from kubernetes.client.exceptions import ApiException

    api = clients()
    fn = {
        "Job": api.batch.create_namespaced_job,
        "ServiceAccount": api.core.create_namespaced_service_account,
        "Role": api.rbac.create_namespaced_role,
        "RoleBinding": api.rbac.create_namespaced_role_binding,
    }[kind]
    try:
        return api.to_dict(await _call(fn, namespace, body))
    except ApiException as exc:
        if exc.status == 409:
            return None
        raise


def validate(spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the spec, each naming its field (schema + every plugin config).
    Warnings do not refuse the task (e.g. an OpenStack context, an `at` beyond `times`)."""
    from krally.errors import KrallyError
    from krally.task.schema import validate_spec

    warnings: list[str] = []
    try:
        problems = [str(p) for p in validate_spec(spec, warnings=warnings)]
    except KrallyError as exc:
        return [str(exc)], warnings
    allowed = os.environ.get("KRALLY_HOOK_SERVICE_ACCOUNTS")
    return problems + service_account_problems(spec, allowed), warnings


def service_account_problems(spec: dict[str, Any], allowed: str | None) -> list[str]:
    """Hooks may only run as service accounts the operator allows (comma list; unset = any):
    a task must not borrow a powerful identity it was not given."""
    if not allowed or allowed.strip() == "*":
        return []
    names = {n.strip() for n in allowed.split(",") if n.strip()}
    problems = []
    for index, hook in enumerate(spec.get("hooks") or []):
        account = (hook.get("job") or {}).get("serviceAccountName")
        if account and account not in names:
            problems.append(
                f"spec.hooks[{index}].job.serviceAccountName: {account!r} is not allowed by the "
                f"operator (allowed: {', '.join(sorted(names))})"
            )
    return problems


async def reconcile(key: tuple[str, str], state: TaskState) -> None:
    namespace = key[0]
    tasks = _lookup("task_index", key)
    if not tasks:
        return
    task = tasks[0]
    meta = task["metadata"]
    if meta.get("deletionTimestamp"):
        return  # the garbage collector removes the children
    uid = meta["uid"]
    if state.uid != uid:  # a new object under an old name: forget everything
        state.__init__(uid=uid, dirty=state.dirty, running=state.running)  # type: ignore[misc]
    if state.snapshot is not None and _rv(state.snapshot) > _rv(task):
        # Our own status write is newer than what the watch delivered so far.
        task = state.snapshot
    status = task.get("status") or {}
    spec = task.get("spec") or {}

    # 1. Acceptance: validated once per object (the spec is immutable).
    if state.problems is None:
        accepted = any(
            c.get("type") == "Accepted" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if accepted:
            state.problems = []
        else:
            state.problems, state.warnings = await _call(validate, spec)
    if state.problems:
        await _write_status(task, state, kstatus.rejected_status(task, state.problems, _now()))
        return

    jobs = [j for j in _lookup("job_index", key) if _owned_by(j, uid)]
    job_uids = {j["metadata"].get("uid") for j in jobs}
    pods = [
        p
        for p in _lookup("pod_index", key)
        if any(ref.get("uid") in job_uids for ref in p["metadata"].get("ownerReferences") or [])
    ]
    seen = {j["metadata"]["name"] for j in jobs}
    for name in list(state.created):
        if name in seen:
            del state.created[name]  # the watch caught up: the index is the truth again
    by_name = {j["metadata"]["name"]: j for j in jobs}
    terminal = status.get("phase") in kstatus.TERMINAL

    # 2. Hook Jobs (normally already created by the fast path in kick()).
    _fire_hooks(key, state)

    # 3. The runner: identity then Job, once.
    runner_name = kjobs.runner_name(meta["name"])
    runner_job = by_name.get(runner_name)
    if (
        runner_job is None
        and runner_name not in state.created
        and not status.get("runnerJob")
        and not spec.get("abort")
        and not terminal
    ):
        if not state.identity_done:
            for kind, body in (
                ("ServiceAccount", kjobs.runner_service_account(task)),
                ("Role", kjobs.runner_role(task)),
                ("RoleBinding", kjobs.runner_role_binding(task)),
            ):
                await _create(kind, namespace, body)
            state.identity_done = True
        reply = await _create("Job", namespace, kjobs.runner_job(task, SETTINGS))
        state.created[runner_name] = reply or {"metadata": {"name": runner_name}}
        log.info("created runner Job %s/%s", namespace, runner_name)

    # 4. Abort: deleting the Job makes the pod get SIGTERM; the runner records what it has.
    if spec.get("abort") and not state.abort_sent and not terminal:
        if runner_job is not None or runner_name in state.created:
            await _delete_job(namespace, runner_name)
        state.abort_sent = True

    # 5. Status and Events.
    jobs_view = [*jobs, *(j for j in state.created.values() if j.get("status") is not None)]
    derived = kstatus.derive_status(task, jobs_view, pods, _now(), created=state.created)
    # Found once, at acceptance; afterwards (even after a restart) the status keeps them.
    derived["warnings"] = state.warnings or status.get("warnings") or None
    await _write_status(task, state, derived)


def _flush(key: tuple[str, str]) -> None:
    state = _STATES.get(key)
    if state is not None:
        state.flush = None
        kick(key)


async def _delete_job(namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        await _call(
            clients().batch.delete_namespaced_job,
            name,
            namespace,
            propagation_policy="Background",
        )
    except ApiException as exc:
        if exc.status != 404:
            raise


async def _write_status(task: dict[str, Any], state: TaskState, derived: dict[str, Any]) -> None:
    status = task.get("status") or {}
    patch = kstatus.status_patch(status, derived)
    if not patch:
        return
    urgent = state.last_write == 0 or kstatus.urgent(patch, status)
    wait = state.last_write + STATUS_WRITE_PERIOD - time.monotonic()
    if not urgent and wait > 0:
        if state.flush is None:
            key = (task["metadata"]["namespace"], _task_key(task))
            state.flush = asyncio.get_running_loop().call_later(wait, _flush, key)
        return
    if state.flush is not None:
        state.flush.cancel()
        state.flush = None
    meta = task["metadata"]
    api = clients()
    reply = await _call(
        api.custom.patch_namespaced_custom_object_status,
        names.GROUP,
        names.VERSION,
        meta["namespace"],
        names.PLURAL,
        meta["name"],
        {"status": patch},
    )
    state.last_write = time.monotonic()
    if "phase" in patch:
        log.info(
            "%s/%s: %s: %s", meta["namespace"], meta["name"], patch["phase"], derived["message"]
        )
    if isinstance(reply, dict) and reply.get("metadata"):
        state.snapshot = {
            "apiVersion": reply.get("apiVersion"),
            "kind": reply.get("kind"),
            "metadata": reply["metadata"],
            "spec": reply.get("spec") or {},
            "status": reply.get("status") or {},
        }
    new_status = {**status, **{k: v for k, v in patch.items() if v is not None}}
    found = kevents.transitions(status, new_status)
    if found:
        # In the background: Events must not hold up the next reconcile (or a firing).
        posting = asyncio.ensure_future(_call(kevents.post, api.core, task, found))
        _BACKGROUND.add(posting)
        posting.add_done_callback(_BACKGROUND.discard)
