"""The one place that carries the planner's actions out against the API, with one retry policy.

Creates treat 409 AlreadyExists as success (child names are deterministic, so a retried or
restarted create never makes a second Job); deletes treat 404 as success. A transient failure
(429, 5xx, a broken connection) is retried in place after the policy's delays; anything else, or
a transient failure that lasts, fails the pass, and the work queue plans it again after the same
policy's back-off. The official client blocks, so every call runs off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from krally.api import names
from krally.kube import events as kevents
from krally.kube.operator.planner import (
    Abort,
    Action,
    CreateIdentity,
    CreateJob,
    FlushLater,
    Key,
    Memory,
    Obj,
    StopHooks,
    WriteStatus,
)

log = logging.getLogger("krally.operator")

_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """In place: ``delays`` between attempts of one transient call. Between passes:
    ``backoff(n)`` after the n-th failed pass in a row (the last delay caps it)."""

    delays: tuple[float, ...] = (0.5, 1.0, 2.0)
    max_backoff: float = 5.0

    def backoff(self, failures: int) -> float:
        return min(0.5 * failures, self.max_backoff)

    @staticmethod
    def transient(exc: BaseException) -> bool:
        status = getattr(exc, "status", None)
        if isinstance(status, int):
            return status in _TRANSIENT_STATUS
        return isinstance(exc, ConnectionError | TimeoutError) or type(exc).__module__.startswith(
            "urllib3"
        )

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        for delay in (*self.delays, None):
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except Exception as exc:
                if delay is None or not self.transient(exc):
                    raise
                log.warning("API call failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


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
    ) -> None:
        self.api = api
        self.policy = policy or RetryPolicy()
        self._later = later
        self._cancel_later = cancel_later
        self._spawn = spawn

    async def create(self, kind: str, namespace: str, body: Obj) -> Obj | None:
        """Create a child; None when it already existed (409)."""
        fn = {
            "Job": self.api.batch.create_namespaced_job,
            "ServiceAccount": self.api.core.create_namespaced_service_account,
            "Role": self.api.rbac.create_namespaced_role,
            "RoleBinding": self.api.rbac.create_namespaced_role_binding,
        }[kind]
        try:
            reply = await self.policy.run(fn, namespace, body)
        except Exception as exc:
            if _status_code(exc) == 409:
                return None
            raise
        result: Obj = self.api.to_dict(reply)
        return result

    async def delete_job(self, namespace: str, name: str) -> None:
        try:
            await self.policy.run(
                self.api.batch.delete_namespaced_job,
                name,
                namespace,
                propagation_policy="Background",
            )
        except Exception as exc:
            if _status_code(exc) != 404:
                raise

    async def apply(self, key: Key, task: Obj, memory: Memory, actions: list[Action]) -> None:
        """Every action in order; the first failure stops the pass (it raises)."""
        namespace = task["metadata"]["namespace"]
        for action in actions:
            if isinstance(action, CreateIdentity):
                for kind, body in action.bodies:
                    await self.create(kind, namespace, body)
                memory.identity_done = True
            elif isinstance(action, CreateJob):
                await self.create_job(namespace, memory, action)
            elif isinstance(action, Abort):
                if action.job:
                    await self.delete_job(namespace, action.job)
                memory.abort_sent = True
            elif isinstance(action, StopHooks):
                for name in action.jobs:
                    await self.delete_job(namespace, name)
                    memory.stopped.add(name)
                    log.info("stopped hook Job %s/%s (spec.abort)", namespace, name)
            elif isinstance(action, FlushLater):
                self._later(key, action.delay)
            elif isinstance(action, WriteStatus):
                self._cancel_later(key)
                await self.write_status(task, memory, action)

    async def create_job(self, namespace: str, memory: Memory, action: CreateJob) -> None:
        """Create a runner or hook Job; in-flight names are marked first, so a concurrent pass
        does not create it again (and a second create would only be a 409)."""
        memory.created.setdefault(action.name, {"metadata": {"name": action.name}})
        try:
            reply = await self.create("Job", namespace, action.body)
        except Exception:
            memory.created.pop(action.name, None)
            raise
        if reply is not None and action.name in memory.created:
            memory.created[action.name] = reply
        if action.firing is None:
            log.info("created %s Job %s/%s", action.role, namespace, action.name)
            return
        log.info(
            "%s Job %s/%s for %s %s%s",
            action.role,
            namespace,
            action.name,
            action.firing.get("eventType"),
            action.firing.get("value"),
            "" if reply is not None else " (already existed)",
        )

    async def write_status(self, task: Obj, memory: Memory, action: WriteStatus) -> None:
        meta = task["metadata"]
        reply = await self.policy.run(
            self.api.custom.patch_namespaced_custom_object_status,
            names.GROUP,
            names.VERSION,
            meta["namespace"],
            names.PLURAL,
            meta["name"],
            {"status": action.patch},
        )
        memory.last_write = time.monotonic()
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
