"""The one place that carries the planner's actions out against the API, with the one retry policy
(:mod:`krally.kube.operator.retry`).

Child names are deterministic, so a retried or restarted create never makes a second Job: a 409
AlreadyExists is answered by reading the object, which is adopted only when its controller
ownerReference is this task (anything else raises :class:`NameConflict`). Deletes treat 404 as
success and carry the uid as a precondition (never someone else's object under the name).
Every call has a timeout. A transient failure (429, 5xx, a timeout, a broken connection) is
retried in place after the policy's jittered delays; when it lasts, a hook Job's create is tried
again after a capped exponential back-off of its own (the firing stays pending), anything else
fails the pass and the work queue plans it again after the same kind of back-off. A permanent
refusal (400, 404, 422: an admission webhook or policy, an invalid object) is not retried: a hook
Job's firing is recorded failed with the API's message, a refused runner Job or identity fails
the task. 401 and 403 (RBAC, a quota) are taken as permanent only after FORBIDDEN_PATIENCE
attempts in a row: an API server that just restarted answers 403 until its authorizer has caught
up, and a quota may free up. The official client blocks, so every call runs off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from kubernetes import client
from kubernetes.client import V1DeleteOptions, V1Preconditions
from kubernetes.client.exceptions import ApiException

from krally.api import names
from krally.api.names import ROLE_HOOK
from krally.api.times import rfc3339
from krally.api.types import hook_error
from krally.kube import client as kclient
from krally.kube import events as kevents
from krally.kube.operator.metrics import OperatorMetrics
from krally.kube.operator.planner import (
    Abort,
    Action,
    CreateIdentity,
    CreateJob,
    FlushLater,
    Key,
    Memory,
    Obj,
    SetDeadline,
    StopHooks,
    WriteStatus,
    conflict_stand_in,
)
from krally.kube.operator.retry import RetryPolicy, refusal, short_error

log = logging.getLogger("krally.operator")


class NameConflict(Exception):
    """A child's name is taken by an object this task does not control."""

    def __init__(self, kind: str, name: str, owner: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(
            f"{kind} {name} already exists and is not this task's ({owner}); "
            "krally adopts only objects whose controller ownerReference is the task"
        )


def controller_uid(obj: Obj) -> str | None:
    """The uid of the object's controller ownerReference (None: no controller)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def _owner_text(obj: Obj) -> str:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), None)
    if ref is None:
        return "it has no controller"
    return f"its controller is {ref.get('kind')} {ref.get('name')} uid {ref.get('uid')}"


# memory.failures counts the runner's failed creates (identity and Job) under this key.
RUNNER_KEY = ""


def _count(memory: Memory, name: str) -> int:
    """One more failed attempt at creating ``name``; the count so far."""
    memory.failures[name] = memory.failures.get(name, 0) + 1
    return memory.failures[name]


class Clients:
    """The official client's APIs, created once (kopf keeps its own aiohttp session)."""

    def __init__(self) -> None:

        self.api_client = kclient.api_client()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.rbac = client.RbacAuthorizationV1Api(self.api_client)
        self.admission = client.AdmissionregistrationV1Api(self.api_client)  # requester.py

    def to_dict(self, obj: Any) -> Any:
        return self.api_client.sanitize_for_serialization(obj)


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


class Applier:
    """Carries out actions for one task at a time; records their outcome in its Memory."""

    def __init__(
        self,
        api: Any,
        policy: RetryPolicy | None = None,
        *,
        later: Callable[[Key, float], None],
        cancel_later: Callable[[Key], None],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        kick: Callable[[Key], None] | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.api = api
        self.policy = policy or RetryPolicy()
        self.metrics = metrics or OperatorMetrics()
        self._later = later
        self._cancel_later = cancel_later
        self._spawn = spawn
        self._kick = kick or (lambda key: later(key, 0))

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Every API call of the applier: the retry policy, each failure counted."""
        return await self.policy.run(fn, *args, on_error=self.metrics.api_error, **kwargs)

    def _verb(self, verb: str, kind: str) -> Callable[..., Any]:
        api, resource = {
            "Job": (self.api.batch, "job"),
            "ServiceAccount": (self.api.core, "service_account"),
            "Role": (self.api.rbac, "role"),
            "RoleBinding": (self.api.rbac, "role_binding"),
        }[kind]
        fn: Callable[..., Any] = getattr(api, f"{verb}_namespaced_{resource}")
        return fn

    async def create(self, kind: str, namespace: str, body: Obj) -> tuple[Obj, bool]:
        """Create a child: (the object, True), or (the existing one, False) when the name was
        taken by an object this task controls (a retried or restarted create). Raises
        :class:`NameConflict` when the name is taken by anything else."""
        try:
            reply = await self._call(self._verb("create", kind), namespace, body)
        except Exception as exc:
            if _status_code(exc) != 409:
                raise
            name = body["metadata"]["name"]
            existing: Obj = self.api.to_dict(
                await self._call(self._verb("read", kind), name, namespace)
            )
            if controller_uid(existing) != controller_uid(body):
                raise NameConflict(kind, name, _owner_text(existing)) from None
            return existing, False
        result: Obj = self.api.to_dict(reply)
        return result, True

    async def read_service_account(self, namespace: str, name: str) -> Obj | None:
        """The ServiceAccount ``name`` (for admission), None when there is none."""
        try:
            reply = await self._call(self.api.core.read_namespaced_service_account, name, namespace)
        except Exception as exc:
            if _status_code(exc) == 404:
                return None
            raise
        result: Obj = self.api.to_dict(reply)
        return result

    async def delete_job(self, namespace: str, name: str, uid: str | None) -> None:
        """Delete the Job ``name`` only if it is still the object ``uid`` (a precondition the
        API server checks): a namesake created meanwhile is not ours to delete."""

        options = V1DeleteOptions(
            propagation_policy="Background",
            preconditions=V1Preconditions(uid=uid) if uid else None,
        )
        try:
            await self._call(self.api.batch.delete_namespaced_job, name, namespace, body=options)
        except Exception as exc:
            code = _status_code(exc)
            if code == 409:  # the precondition failed: the name is someone else's now
                log.warning("not deleting Job %s/%s: it is no longer uid %s", namespace, name, uid)
            elif code != 404:
                raise

    async def set_deadline(self, namespace: str, action: SetDeadline) -> None:
        """Patch the Job's activeDeadlineSeconds; its uid in the patch makes the API server
        refuse it (uid is immutable) if the name now belongs to another object."""
        body: Obj = {"spec": {"activeDeadlineSeconds": action.seconds}}
        if action.uid:
            body["metadata"] = {"uid": action.uid}
        try:
            await self._call(self.api.batch.patch_namespaced_job, action.job, namespace, body)
        except Exception as exc:
            # Gone or not ours: nothing to time. Refused (e.g. RBAC without patch): the pod's
            # own timer still enforces the timeout; only a pod that never runs stays pending.
            if _status_code(exc) not in (404, 409, 422):
                log.warning("armed Job %s/%s: timeout not set: %s", namespace, action.job, exc)

    async def apply(self, key: Key, task: Obj, memory: Memory, actions: list[Action]) -> None:
        """Every action in order; the first failure stops the pass (it raises)."""
        namespace = task["metadata"]["namespace"]
        replan = False
        for action in actions:
            if isinstance(action, CreateIdentity):
                for kind, body in action.bodies:
                    try:
                        await self.create(kind, namespace, body)
                    except Exception as exc:
                        if not self.policy.permanent(exc, _count(memory, RUNNER_KEY)):
                            raise
                        self._runner_refused(key, memory, f"{kind} {body['metadata']['name']}", exc)
                        return  # the runner needs its identity: the task fails instead
                memory.identity_done = True
                memory.failures.pop(RUNNER_KEY, None)
            elif isinstance(action, CreateJob):
                replan = await self.create_job(namespace, memory, action, key) or replan
                if action.role != ROLE_HOOK and memory.runner_refused:
                    return
            elif isinstance(action, Abort):
                if action.job:
                    await self.delete_job(namespace, action.job, action.uid)
                memory.abort_sent = True
            elif isinstance(action, StopHooks):
                uids = action.uids or (None,) * len(action.jobs)
                for name, uid in zip(action.jobs, uids, strict=True):
                    await self.delete_job(namespace, name, uid)
                    memory.stopped.add(name)
                    log.info("stopped hook Job %s/%s (%s)", namespace, name, action.why)
            elif isinstance(action, SetDeadline):
                await self.set_deadline(namespace, action)
                memory.deadlines.add(action.job)
            elif isinstance(action, FlushLater):
                self._later(key, action.delay)
            elif isinstance(action, WriteStatus):
                self._cancel_later(key)
                await self.write_status(task, memory, action, key)
        if replan:  # a hook's name conflict: no watch event will come, plan its result now
            self._later(key, 0.0)

    def _create_failed(
        self, namespace: str, memory: Memory, action: CreateJob, key: Key | None, exc: Exception
    ) -> bool:
        """A Job's create failed: refused for good (a hook's firing fails, the runner's task
        fails), or a hook Job tried again after a back-off. False: the caller raises."""
        counter = action.name if action.role == ROLE_HOOK else RUNNER_KEY
        attempts = _count(memory, counter)
        if key is not None and self.policy.permanent(exc, attempts):
            if action.role == ROLE_HOOK:
                reason, message = refusal(exc)
                memory.refused[action.name] = hook_error(
                    "JobCreateFailed",
                    f"the API server refused to create hook Job {action.name}: {message}",
                    reason,
                )
                log.error("hook Job %s/%s refused: %s", namespace, action.name, message)
                self._kick(key)  # the status records it
            else:
                self._runner_refused(key, memory, f"Job {action.name}", exc)
            return True
        if key is None or action.role != ROLE_HOOK:
            return False
        delay = self.policy.backoff(attempts)
        log.warning(
            "creating hook Job %s/%s failed (%s); trying again in %.1f s",
            namespace,
            action.name,
            short_error(exc),
            delay,
        )
        placeholder = {"metadata": {"name": action.name}}
        memory.created[action.name] = placeholder
        self._spawn(self._again_after(key, memory, action.name, placeholder, delay))
        return True

    async def create_job(
        self, namespace: str, memory: Memory, action: CreateJob, key: Key | None = None
    ) -> bool:
        """Create a runner or hook Job; in-flight names are marked first, so a concurrent pass
        does not create it again (and a second create would only be a 409). A hook Job refused
        for good is recorded in ``memory.refused`` (its firing fails); one failing transiently
        stays marked in flight for a back-off, then is planned again.

        A hook Job's name taken by an object this task does not control becomes that firing's
        failed result (etype NameConflict), not a failed task: the firing cannot run under its
        exactly-once name, but the load and the other firings are unaffected, as for any failed
        hook. The runner's conflict raises (the task cannot run at all). True: such a
        conflict was recorded (the caller plans again: no watch event will follow)."""
        memory.created.setdefault(action.name, {"metadata": {"name": action.name}})
        try:
            reply, new = await self.create("Job", namespace, action.body)
        except NameConflict as exc:
            if action.role != ROLE_HOOK:
                memory.created.pop(action.name, None)
                raise
            log.error("hook Job %s/%s: %s", namespace, action.name, exc)
            memory.created[action.name] = conflict_stand_in(
                action.name, str(exc), rfc3339(time.time())
            )
            return True
        except Exception as exc:
            memory.created.pop(action.name, None)
            if not self._create_failed(namespace, memory, action, key, exc):
                raise
            return False
        memory.failures.pop(action.name if action.role == ROLE_HOOK else RUNNER_KEY, None)
        if action.name in memory.created:
            memory.created[action.name] = reply
        if new and action.firing is not None:
            self.metrics.hook_job_created(action.firing)  # created on its firing: the lag
        if action.firing is None:
            log.info("created %s Job %s/%s", action.role, namespace, action.name)
            return False
        log.info(
            "%s Job %s/%s for %s %s%s",
            action.role,
            namespace,
            action.name,
            action.firing.get("eventType"),
            action.firing.get("value"),
            "" if new else " (already existed)",
        )
        return False

    async def _again_after(
        self, key: Key, memory: Memory, name: str, placeholder: Obj, delay: float
    ) -> None:
        """End a hook Job's back-off: unmark it (unless something else took it) and plan again."""
        await asyncio.sleep(delay)
        if memory.created.get(name) is placeholder:
            del memory.created[name]
        self._kick(key)

    def _runner_refused(self, key: Key, memory: Memory, what: str, exc: BaseException) -> None:
        _, message = refusal(exc)
        memory.runner_refused = f"the API server refused to create the runner's {what}: {message}"
        log.error("%s/%s: %s", key[0], key[1], memory.runner_refused)
        self._kick(key)  # the status records it

    async def write_status(self, task: Obj, memory: Memory, action: WriteStatus, key: Key) -> None:
        meta = task["metadata"]
        reply = await self._call(
            self.api.custom.patch_namespaced_custom_object_status,
            names.GROUP,
            names.VERSION,
            meta["namespace"],
            names.PLURAL,
            meta["name"],
            {"status": action.patch},
        )
        memory.last_write = time.monotonic()
        self.metrics.status_written(key, task, action.patch)
        if "phase" in action.patch:
            log.info(
                "%s/%s: %s: %s",
                meta["namespace"],
                meta["name"],
                action.patch["phase"],
                action.message,
            )
        if isinstance(reply, dict) and reply.get("metadata"):
            memory.snapshot = {
                "apiVersion": reply.get("apiVersion"),
                "kind": reply.get("kind"),
                "metadata": reply["metadata"],
                "spec": reply.get("spec") or {},
                "status": reply.get("status") or {},
            }
        if action.events:
            # In the background: Events must not hold up the next reconcile (or a firing).
            self._spawn(asyncio.to_thread(kevents.post, self.api.core, task, list(action.events)))


# -- the admission webhook's certificate (kube/operator/webhook.py) --------------------------


def load_or_create_secret(core: Any, namespace: str, name: str, data: dict[str, str]) -> Any:
    """The data of Secret ``name``, created with ``data`` if absent. A 409 means another replica
    created it first: its data wins, so every replica serves the same certificate."""

    for _ in range(3):
        try:
            return core.read_namespaced_secret(name, namespace).data
        except ApiException as exc:
            if exc.status != 404:
                raise
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": {names.MANAGED_BY: names.MANAGER}},
            "type": "Opaque",
            "data": data,
        }
        try:
            core.create_namespaced_secret(namespace, body)
            return data
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise RuntimeError(f"secret {namespace}/{name}: neither readable nor creatable")
