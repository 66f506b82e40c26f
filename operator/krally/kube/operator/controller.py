"""The controller: one level-based, idempotent reconcile per task, from the parts.

Watch events on a task, its Jobs and pods call :meth:`Controller.kick`: the firing fast path
creates the hook Job of every new firing at once (one API call after the runner's status patch),
then the work queue runs a reconcile: admission once per object, then the planner's actions,
applied in order. Everything a pass reads comes from the watched store, so a restarted operator
rebuilds the same plan from the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from krally.kube.operator import admission, planner, requester
from krally.kube.operator.apply import Applier, NameConflict
from krally.kube.operator.leader import Leadership
from krally.kube.operator.metrics import OperatorMetrics
from krally.kube.operator.planner import CreateJob, Key, Memory
from krally.kube.operator.queue import WorkQueue
from krally.kube.operator.retry import RetryPolicy
from krally.kube.operator.settings import Settings
from krally.kube.operator.store import Store

log = logging.getLogger("krally.operator")


class Controller:
    """The operator's parts for every task it watches. ``api`` is the official client's APIs
    (:class:`.apply.Clients`) or, in tests, a fake with the same methods."""

    def __init__(
        self,
        settings: Settings,
        api: Any,
        *,
        store: Store | None = None,
        policy: RetryPolicy | None = None,
        leadership: Leadership | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.settings = settings
        # A follower (leader election) watches but does nothing until it leads.
        self.leadership = leadership or Leadership(leading=True)
        self.store = store or Store()
        self.policy = policy or RetryPolicy()
        # A registry of its own unless the process serves one (krally operator --metrics-port).
        self.metrics = metrics or OperatorMetrics()
        self.metrics.leading = lambda: self.leadership.leading
        self.queue = WorkQueue(self.reconcile, self.policy)
        self.applier = Applier(
            api,
            self.policy,
            later=self.queue.later,
            cancel_later=self.queue.cancel_later,
            spawn=self.queue.spawn,
            kick=self.queue.kick,
            metrics=self.metrics,
        )
        self.memory: dict[Key, Memory] = {}
        self.leadership.on_acquired(self.kick_all)

    # -- events ---------------------------------------------------------------------------------

    def kick(self, key: Key) -> None:
        """Something about ``key`` changed: fire new hooks now, then reconcile (coalesced)."""
        if not self.leadership.leading:
            return
        memory = self.memory.setdefault(key, Memory())
        self._fire_hooks(key, memory)
        self.queue.kick(key)

    def kick_all(self) -> None:
        """This replica just became the leader: reconcile every task the watch has shown."""
        for key in self.store.task_keys():
            self.kick(key)

    def forget(self, key: Key) -> None:
        """The task was deleted (its children go with it: they are owned)."""
        self.memory.pop(key, None)
        self.queue.forget(key)
        self.metrics.forget(key)

    def _fire_hooks(self, key: Key, memory: Memory) -> None:
        task = self.store.task(key)
        if task is None:
            return
        self.metrics.observe_task(key, task)  # its phase and new firings
        observed = self.store.observe(key, task["metadata"]["uid"])
        for action in planner.plan_firings(task, observed, memory, self.settings, now=time.time()):
            # Marked in flight now, so the next event (or the reconcile) does not plan it again.
            memory.created[action.name] = {"metadata": {"name": action.name}}
            self.queue.spawn(self._create_hook_job(key, task, memory, action))

    async def _create_hook_job(
        self, key: Key, task: dict[str, Any], memory: Memory, action: CreateJob
    ) -> None:
        # Failures are handled there: a refusal is recorded, a transient one backs off.
        try:
            if await self.applier.create_job(task["metadata"]["namespace"], memory, action, key):
                self.queue.kick(key)  # a name conflict: no watch event will record the result
        except Exception as exc:  # not an API error: a bug; the next pass tries again
            log.exception("creating hook Job %s failed: %s", action.name, exc)
            await asyncio.sleep(self.policy.backoff(1))
            self.kick(key)

    # -- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        with self.metrics.reconcile_duration.time():
            await self._reconcile(key)

    async def _reconcile(self, key: Key) -> None:
        task = self.store.task(key)
        if task is None or task["metadata"].get("deletionTimestamp"):
            return
        uid = task["metadata"]["uid"]
        memory = self.memory.setdefault(key, Memory())
        if memory.uid != uid:  # a new object under an old name: forget everything
            memory = self.memory[key] = Memory(uid=uid)
        task = planner.newest(task, memory.snapshot)
        # Admission, once per object and operator process (the spec is immutable), whatever the
        # status says: a status patched to Accepted=True by hand must not skip the policy.
        if memory.problems is None:
            await self._admit(task, memory)
        observed = self.store.observe(key, uid)
        seen = {j["metadata"]["name"] for j in observed.jobs}
        for name in [n for n in memory.created if n in seen]:
            del memory.created[name]  # the watch caught up: the index is the truth again
        actions = self._plan(task, observed, memory)
        for action in actions:
            log.debug("%s/%s: %s", *key, planner.describe(action))
        try:
            await self.applier.apply(key, task, memory, actions)
        except NameConflict as exc:
            # The runner or its identity cannot be created under its name: the task fails with
            # it (planned again, so the status says so in this same pass).
            log.error("%s/%s: %s", *key, exc)
            memory.conflict = str(exc)
            await self.applier.apply(key, task, memory, self._plan(task, observed, memory))

    def _plan(
        self, task: dict[str, Any], observed: planner.Observed, memory: Memory
    ) -> list[planner.Action]:
        return planner.plan(
            task, observed, memory, self.settings, now=datetime.now(UTC), clock=time.monotonic()
        )

    async def _admit(self, task: dict[str, Any], memory: Memory) -> None:
        """Validate the spec, reading the ServiceAccounts it names (their opt-in)."""
        spec = task.get("spec") or {}
        namespace = task["metadata"]["namespace"]
        accounts = {
            name: await self.applier.read_service_account(namespace, name)
            for name in admission.named_service_accounts(spec)
        }
        memory.problems, memory.warnings = await asyncio.to_thread(
            admission.validate, spec, self.settings, accounts
        )
        if not memory.problems:  # was its author checked? (README: Identity and trust)
            memory.problems = await requester.task_problems(self.applier.api, task)
