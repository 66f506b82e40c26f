"""BenchmarkSchedules: a pass per schedule at each slot and on each change (its own or one
of its tasks'), carried out against the API. What to do is :mod:`.schedule_planner`'s.

Like the tasks' controller, no kopf timer (a timer's finalizer wedges deletion while the
operator is down): the work queue's deferred kick wakes a schedule at its next slot, and a
resync every few minutes covers anything missed. Only the leader acts; the deterministic task
names make a second actor harmless anyway (AlreadyExists is success).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from krally.api import names
from krally.api.schedule_schema import TASK_CREATED
from krally.api.times import rfc3339
from krally.kube import events
from krally.kube.operator import requester, schedule_planner
from krally.kube.operator.leader import Leadership
from krally.kube.operator.metrics import OperatorMetrics
from krally.kube.operator.queue import WorkQueue
from krally.kube.operator.retry import RetryPolicy, refusal
from krally.schedule import label_value

log = logging.getLogger("krally.schedules")

Key = tuple[str, str]
Obj = dict[str, Any]


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


class ScheduleController:
    def __init__(
        self,
        api: Any,
        *,
        policy: RetryPolicy | None = None,
        leadership: Leadership | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.api = api
        self.policy = policy or RetryPolicy()
        self.leadership = leadership or Leadership(leading=True)
        self.metrics = metrics or OperatorMetrics()
        self.queue = WorkQueue(self.reconcile, self.policy)
        self.schedules: dict[Key, Obj] = {}  # the latest body the watch showed
        self.leadership.on_acquired(self.kick_all)

    # -- events ---------------------------------------------------------------------------------

    def seen(self, key: Key, body: Obj | None) -> None:
        """A watch event of the schedule (None: deleted; its tasks go with it, owned)."""
        if body is None:
            self.schedules.pop(key, None)
            self.queue.forget(key)
            return
        self.schedules[key] = body
        self.kick(key)

    def task_changed(self, task: Obj) -> None:
        """A task changed: its schedule (if one made it) looks again (history, active)."""
        meta = task.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") == names.SCHEDULE_KIND:
                self.kick((meta.get("namespace") or "", ref.get("name") or ""))

    def kick(self, key: Key) -> None:
        if self.leadership.leading and key in self.schedules:
            self.queue.kick(key)

    def kick_all(self) -> None:
        for key in list(self.schedules):
            self.kick(key)

    # -- a pass ---------------------------------------------------------------------------------

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.policy.run(fn, *args, on_error=self.metrics.api_error, **kwargs)

    async def reconcile(self, key: Key) -> None:
        schedule = self.schedules.get(key)
        if schedule is None or schedule["metadata"].get("deletionTimestamp"):
            return
        if not self.leadership.leading:
            return
        namespace, name = key
        custom = self.api.custom
        selector = f"{names.LABEL_SCHEDULE}=" + label_value(name)
        listed = await self._call(
            custom.list_namespaced_custom_object,
            names.GROUP,
            names.VERSION,
            namespace,
            names.PLURAL,
            label_selector=selector,
        )
        tasks = list(listed.get("items") or [])
        plan = schedule_planner.plan(schedule, tasks, dt.datetime.now(dt.UTC))
        for victim in plan.aborts:
            await self._abort(namespace, victim)
        refused = await self._create_all(namespace, schedule, plan.creates)
        for doomed in plan.deletes:
            await self._delete(namespace, doomed)
        status = plan.status
        if refused:
            # The template is refused (schema, CEL or the webhook): said on the schedule, the
            # slot stays dealt with (no retry loop); the next slot tries again.
            text = "; ".join(refused.values())
            status["message"] = text[:1024]
            status["conditions"] = [
                *[c for c in status.get("conditions") or [] if c["type"] != TASK_CREATED],
                {
                    "type": TASK_CREATED,
                    "status": "False",
                    "reason": "TaskRefused",
                    "message": text[:1024],
                    "lastTransitionTime": rfc3339(time.time()),
                },
            ]
            status["active"] = [a for a in status.get("active") or [] if a["name"] not in refused]
            status["activeCount"] = len(status["active"])
            plan.events.append(("Warning", "TaskRefused", text))
        await self._write_status(namespace, name, status)
        if plan.events:
            await asyncio.to_thread(events.post, self.api.core, schedule, plan.events)
        if plan.requeue_after is not None:
            self.queue.cancel_later(key)
            self.queue.later(key, plan.requeue_after)

    async def _create_all(self, namespace: str, schedule: Obj, bodies: list[Obj]) -> dict[str, str]:
        """Create the tasks; task name → why it was not created."""
        refused: dict[str, str] = {}
        # Its author's rights were checked at admission by the requester policy, if it was in
        # force then (requester.py): else no task is made from it.
        unchecked = await requester.object_problems(self.api, schedule) if bodies else []
        for body in bodies:
            task = body["metadata"]["name"]
            problem = (
                f"task {task} not created: {unchecked[0]}"
                if unchecked
                else await self._create(namespace, schedule, body)
            )
            if problem:
                refused[task] = problem
        return refused

    async def _abort(self, namespace: str, name: str) -> None:
        try:
            await self._call(
                self.api.custom.patch_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                namespace,
                names.PLURAL,
                name,
                {"spec": {"abort": True}},
            )
        except Exception as exc:
            if _status_code(exc) != 404:  # gone already: nothing to abort
                raise

    async def _create(self, namespace: str, schedule: Obj, body: Obj) -> str | None:
        """Create the task; None when it exists now (made here or before), else why not."""
        task = body["metadata"]["name"]
        try:
            await self._call(
                self.api.custom.create_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                namespace,
                names.PLURAL,
                body,
            )
        except Exception as exc:
            code = _status_code(exc)
            if code == 409:
                existing = await self._call(
                    self.api.custom.get_namespaced_custom_object,
                    names.GROUP,
                    names.VERSION,
                    namespace,
                    names.PLURAL,
                    task,
                )
                if schedule_planner.owned(schedule, existing):
                    return None  # an earlier pass (or replica) made it: exactly once
                return f"task {task}: the name is taken by a task this schedule does not own"
            if code in (400, 403, 422):
                reason, message = refusal(exc)
                return f"task {task} refused ({reason}): {message}"
            raise
        log.info("%s/%s: created task %s", namespace, schedule["metadata"]["name"], task)
        return None

    async def _delete(self, namespace: str, name: str) -> None:
        try:
            await self._call(
                self.api.custom.delete_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                namespace,
                names.PLURAL,
                name,
                propagation_policy="Background",
            )
        except Exception as exc:
            if _status_code(exc) != 404:
                raise

    async def _write_status(self, namespace: str, name: str, status: Obj) -> None:
        try:
            await self._call(
                self.api.custom.patch_namespaced_custom_object_status,
                names.GROUP,
                names.VERSION,
                namespace,
                names.SCHEDULE_PLURAL,
                name,
                {"status": status},
            )
        except Exception as exc:
            if _status_code(exc) != 404:  # deleted meanwhile
                raise
