"""The kopf wiring of the krally operator, and nothing else.

Three indices (the watched store) and three raw event handlers (``@kopf.on.event``: no state,
no finalizer, no timer) that kick the controller. Why no on.create/on.update/timers: those store
progress in annotations, and timers/daemons add a finalizer that wedges deletion while the
operator is down; a task's children are owned (ownerReferences) and the garbage collector
deletes them.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf

from krally.api import names
from krally.kube.operator import store, webhook
from krally.kube.operator.apply import Clients
from krally.kube.operator.controller import Controller
from krally.kube.operator.leader import Leadership
from krally.kube.operator.metrics import OperatorMetrics
from krally.kube.operator.schedules import ScheduleController
from krally.kube.operator.settings import Settings

MANAGED = {names.MANAGED_BY: names.MANAGER}
TASKS = (names.GROUP, names.VERSION, names.PLURAL)
SCHEDULES = (names.GROUP, names.VERSION, names.SCHEDULE_PLURAL)


class _Running:
    """The controllers, made at startup (when the API client can be configured)."""

    controller: Controller
    schedules: ScheduleController


def register(
    krally_settings: Settings,
    registry: kopf.OperatorRegistry | None = None,
    namespace: str = "default",
    leadership: Leadership | None = None,
    metrics: OperatorMetrics | None = None,
) -> None:
    """Register krally's handlers (into kopf's default registry unless given one); the
    controller is created at startup, when the API client can be configured. ``metrics``: the
    ones the process serves (else the controller keeps its own)."""
    registry = registry or kopf.get_default_registry()
    running = _Running()

    @kopf.on.startup(id="configure", registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, krally_settings)
        clients = Clients()
        running.controller = Controller(
            krally_settings, clients, leadership=leadership, metrics=metrics
        )
        running.schedules = ScheduleController(
            clients, leadership=leadership, metrics=running.controller.metrics
        )
        # Admission webhook (webhook.py); `namespace` is the operator's own.
        if krally_settings.webhook:
            webhook.configure(settings, krally_settings, namespace, clients.core)

    if krally_settings.webhook:

        async def read_account(account_namespace: str, name: str) -> dict[str, Any] | None:
            return await running.controller.applier.read_service_account(account_namespace, name)

        webhook.register(krally_settings, namespace, registry, read_account)
    _register_indices(registry)
    _register_events(registry, running)

    @kopf.on.probe(id="tasks", registry=registry)
    def probe_tasks(**_: Any) -> int:
        return len(running.controller.memory) if hasattr(running, "controller") else 0


def configure_kopf(settings: kopf.OperatorSettings, krally_settings: Settings) -> None:
    """kopf's own settings, for a controller whose firing path must not wait."""
    # Events are posted by krally itself (events.py), not from kopf's log lines.
    settings.posting.enabled = False
    # Retry quickly: a failed API call in the firing path must not wait a minute.
    settings.execution.default_backoff = 1
    # ... and ride out an API outage of up to about 5 minutes (past its last back-off a
    # watch's failure escalates and stops the operator), retrying every 3 s at most: a
    # watch back within seconds of the API server keeps firings from turning Late.
    settings.networking.error_backoffs = [0.5, 1, 2, *[3] * 100]
    settings.execution.max_workers = krally_settings.max_workers
    # Re-establish watches every few minutes (KRALLY_WATCH_TIMEOUT); inactivity_timeout
    # catches silent freezes; no request of kopf's hangs through an API outage.
    settings.watching.server_timeout = krally_settings.watch_timeout
    settings.watching.client_timeout = krally_settings.watch_timeout + 30
    settings.watching.connect_timeout = 10
    # A watch silent this long is re-established (bookmarks arrive about every minute).
    settings.watching.inactivity_timeout = 30
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # No cluster-wide CRD/namespace listing unless asked: the CRD is installed beforehand.
    settings.scanning.disabled = not krally_settings.scanning


def _register_indices(registry: kopf.OperatorRegistry) -> None:
    # Explicit ids: kopf passes each index to the handlers as a keyword named by its id
    # (store.INDEX_NAMES), and the ids stay stable across refactors.
    @kopf.index(*TASKS, id="task_index", registry=registry)
    def task_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace or "", store.task_key(body)): store.project_task(body)}

    @kopf.index("batch", "v1", "jobs", id="job_index", labels=MANAGED, registry=registry)
    def job_index(
        namespace: str | None, body: kopf.Body, labels: kopf.Labels, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace or "", store.child_key(labels)): store.project_job(body)}

    @kopf.index("v1", "pods", id="pod_index", labels=MANAGED, registry=registry)
    def pod_index(
        namespace: str | None, body: kopf.Body, labels: kopf.Labels, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace or "", store.child_key(labels)): store.project_pod(body)}


def _register_events(registry: kopf.OperatorRegistry, running: _Running) -> None:
    @kopf.on.event(*TASKS, id="task_event", registry=registry)
    async def task_event(type: str, namespace: str | None, body: kopf.Body, **kwargs: Any) -> None:
        running.controller.store.remember(kwargs)
        key = (namespace or "", store.task_key(body))
        if type == "DELETED":
            running.controller.forget(key)
        else:
            running.controller.kick(key)
        running.schedules.task_changed(dict(body))

    # BenchmarkSchedules: without their CRD installed, kopf only warns that the resource is
    # not served, and the tasks are reconciled as before.
    @kopf.on.event(*SCHEDULES, id="schedule_event", registry=registry)
    async def schedule_event(
        type: str, namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> None:
        key = (namespace or "", name)
        running.schedules.seen(key, None if type == "DELETED" else copy.deepcopy(dict(body)))

    @kopf.on.event("batch", "v1", "jobs", id="job_event", labels=MANAGED, registry=registry)
    async def job_event(namespace: str | None, labels: kopf.Labels, **kwargs: Any) -> None:
        running.controller.store.remember(kwargs)
        running.controller.kick((namespace or "", store.child_key(labels)))

    @kopf.on.event("v1", "pods", id="pod_event", labels=MANAGED, registry=registry)
    async def pod_event(namespace: str | None, labels: kopf.Labels, **kwargs: Any) -> None:
        running.controller.store.remember(kwargs)
        running.controller.kick((namespace or "", store.child_key(labels)))
