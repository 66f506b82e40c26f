"""The operator's Prometheus metrics, served by ``krally operator --metrics-port`` (8000).

- ``krally_operator_tasks`` (gauge; namespace, phase): tasks by ``status.phase``;
- ``krally_operator_leader`` (gauge): 1 while this replica leads;
- ``krally_operator_firings_total`` (counter; namespace, hook): firings in
  ``status.runner.firings``;
- ``krally_operator_hook_job_creation_lag_seconds`` (histogram): a firing's ``firedAt`` → its
  hook Job created;
- ``krally_operator_hook_results_total`` (counter; namespace, hook, status): final hook results
  written to status;
- ``krally_operator_kubernetes_api_errors_total`` (counter; verb, resource, code): failed API
  calls, each attempt;
- ``krally_operator_reconcile_duration_seconds`` (histogram): one reconcile pass of one task;
- ``krally_operator_status_writes_total`` (counter; namespace): status patches written.

What is counted where: the leading replica alone reconciles, so it alone counts tasks, firings
and results (a follower serves ``leader 0`` and no task series). A firing counts once, when this
process first sees it in the task's status; a hook result once, when this process writes it
final (success, failed, validation_failed) into the status. At the first sight of a task, the
results its status already holds were counted by whoever wrote them and are not counted again,
nor are the firings of a finished task; the firings of a task still running are (this process
handles them), so after a restart or a takeover they count in the new process too. The lag is
observed for hook Jobs created on their firing: an armed firing's Job exists before the firing
(``status.arming`` says how armed firings were served). ``namespace`` is the task's (the
ServiceMonitor keeps it with ``honorLabels``); task names are no label (unbounded series).

Everything is registered in a :class:`~prometheus_client.CollectorRegistry` of this object's
own. The controller calls it from the event loop; a scrape (another thread) reads only
Prometheus' thread-safe metrics and copies of small dicts.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import prometheus_client as prom
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from krally.api.shards import runner_view
from krally.api.times import parse_time
from krally.api.types import HOOK_FINAL, PENDING, PHASES, TERMINAL

Key = tuple[str, str]  # (namespace, task label): the controller's key
ResultKey = tuple[int, str, str]  # (hook index, trigger unit, value as JSON)

PREFIX = "krally_operator_"
# From a few milliseconds (the fast path right after the runner's write) to a minute (an API
# outage, a back-off).
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RECONCILE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# The official client's method names → (RBAC verb, resource).
_CALL = re.compile(
    r"(create|read|patch|replace|delete|list)_(?:namespaced_)?(\w+?)(?:_with_http_info)?"
)
_VERBS = {"read": "get", "replace": "update"}
_RESOURCES = {
    "job": "jobs",
    "service_account": "serviceaccounts",
    "role": "roles",
    "role_binding": "rolebindings",
    "custom_object": "benchmarktasks",
    "custom_object_status": "benchmarktasks/status",
    "event": "events",
    "secret": "secrets",
}


def call_labels(fn: Any) -> tuple[str, str]:
    """(verb, resource) of an official client call such as ``create_namespaced_job``."""
    name = getattr(fn, "__name__", "") or ""
    match = _CALL.fullmatch(name)
    if match is None:
        return name or "call", ""
    verb, rest = match.groups()
    return _VERBS.get(verb, verb), _RESOURCES.get(rest, rest)


def error_code(exc: BaseException) -> str:
    """The HTTP status of a refused call; else ``timeout``, ``connection`` (no answer) or
    ``error`` (anything else)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        return str(status)
    kind = type(exc)
    if isinstance(exc, TimeoutError) or "Timeout" in kind.__name__:
        return "timeout"
    if (
        isinstance(exc, ConnectionError)
        or kind.__module__.startswith("urllib3")
        or kind.__name__ == "ApiException"  # the client's own, without a response
    ):
        return "connection"
    return "error"


def final_results(hooks: Any) -> Iterator[tuple[ResultKey, str, str]]:
    """(result key, hook name, status) of every final result in a status' ``hooks``."""
    for entry in hooks if isinstance(hooks, list) else []:
        if not isinstance(entry, dict):
            continue
        for item in entry.get("results") or []:
            status = item.get("status")
            if status not in HOOK_FINAL:
                continue
            by = item.get("triggeredBy") or {}
            index = entry.get("index")
            key = (
                index if isinstance(index, int) else -1,
                str(by.get("eventType")),
                json.dumps(by.get("value"), sort_keys=True),
            )
            yield key, str(entry.get("name") or ""), str(status)


def _hook_name(hooks: list[Any], index: Any) -> str:
    try:
        return str(hooks[int(index)].get("name") or "")
    except (TypeError, ValueError, IndexError, AttributeError):
        return ""


@dataclass
class _Seen:
    """What of one task (one uid) this process has counted."""

    uid: str
    firings: int  # status.runner.firings[:firings] are counted (or were history)
    results: set[ResultKey] = field(default_factory=set)


class OperatorMetrics:
    """The operator's metrics in a registry of their own (``.registry``), and the rules that
    count each firing and result once. ``leading`` (set by the controller) says whether this
    replica leads; ``clock`` is the wall clock the lag is measured with (tests set it)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self.clock = clock
        self.leading: Callable[[], bool] = lambda: True
        reg = self.registry
        self.firings = prom.Counter(
            PREFIX + "firings",
            "Hook firings the runners recorded (status.runner.firings), seen by this operator.",
            ["namespace", "hook"],
            registry=reg,
        )
        self.hook_job_lag = prom.Histogram(
            PREFIX + "hook_job_creation_lag_seconds",
            "From a firing (its firedAt) to its hook Job created, for Jobs created on firing "
            "(armed Jobs exist before their firing).",
            buckets=LAG_BUCKETS,
            registry=reg,
        )
        self.hook_results = prom.Counter(
            PREFIX + "hook_results",
            "Final hook results (success, failed, validation_failed) written to task status.",
            ["namespace", "hook", "status"],
            registry=reg,
        )
        self.api_errors = prom.Counter(
            PREFIX + "kubernetes_api_errors",
            "Failed Kubernetes API calls of the operator, each attempt (code: HTTP status, "
            "timeout, connection or error).",
            ["verb", "resource", "code"],
            registry=reg,
        )
        self.reconcile_duration = prom.Histogram(
            PREFIX + "reconcile_duration_seconds",
            "Duration of one reconcile pass of one task.",
            buckets=RECONCILE_BUCKETS,
            registry=reg,
        )
        self.status_writes = prom.Counter(
            PREFIX + "status_writes",
            "Task status patches the operator wrote.",
            ["namespace"],
            registry=reg,
        )
        self._phases: dict[Key, tuple[str, str]] = {}  # key → (namespace, phase)
        self._seen: dict[Key, _Seen] = {}
        reg.register(_TaskGauges(self))

    # -- what the controller reports ---------------------------------------------------------

    def observe_task(self, key: Key, task: dict[str, Any]) -> None:
        """The task as the watch (or our own write) shows it: its phase, its new firings."""
        meta = task.get("metadata") or {}
        status = task.get("status") or {}
        namespace = str(meta.get("namespace") or key[0])
        self._phases[key] = (namespace, str(status.get("phase") or PENDING))
        seen = self._seen_for(key, task)
        firings = runner_view(status.get("runner") or {}).get("firings") or []
        # The list only grows; a stale view (shorter) has nothing new.
        if len(firings) <= seen.firings:
            return
        hooks = (task.get("spec") or {}).get("hooks") or []
        for firing in firings[seen.firings :]:
            hook = _hook_name(hooks, firing.get("hook") if isinstance(firing, dict) else None)
            self.firings.labels(namespace, hook).inc()
        seen.firings = len(firings)

    def status_written(self, key: Key, task: dict[str, Any], patch: dict[str, Any]) -> None:
        """A status patch of ``task`` (the view it was planned from) was written."""
        namespace = str((task.get("metadata") or {}).get("namespace") or key[0])
        self.status_writes.labels(namespace).inc()
        if patch.get("phase"):
            self._phases[key] = (namespace, str(patch["phase"]))
        if not isinstance(patch.get("hooks"), list):
            return
        seen = self._seen_for(key, task)
        for result, hook, status in final_results(patch["hooks"]):
            if result not in seen.results:
                seen.results.add(result)
                self.hook_results.labels(namespace, hook, status).inc()

    def hook_job_created(self, firing: dict[str, Any]) -> None:
        """A hook Job was created for a firing that had already happened."""
        fired = parse_time(firing.get("firedAt"))
        if fired is not None:
            # Clocks of the runner's and the operator's machines may differ a little.
            self.hook_job_lag.observe(max(0.0, self.clock() - fired))

    def api_error(self, fn: Any, exc: BaseException) -> None:
        verb, resource = call_labels(fn)
        self.api_errors.labels(verb, resource, error_code(exc)).inc()

    def forget(self, key: Key) -> None:
        """The task was deleted."""
        self._phases.pop(key, None)
        self._seen.pop(key, None)

    def _seen_for(self, key: Key, task: dict[str, Any]) -> _Seen:
        uid = str((task.get("metadata") or {}).get("uid") or "")
        seen = self._seen.get(key)
        if seen is None or seen.uid != uid:
            # First sight of this object: what its status holds already is history, except
            # the firings of a task still running (this process handles them).
            status = task.get("status") or {}
            firings = runner_view(status.get("runner") or {}).get("firings") or []
            history = len(firings) if status.get("phase") in TERMINAL else 0
            results = {result for result, _, _ in final_results(status.get("hooks"))}
            seen = self._seen[key] = _Seen(uid, history, results)
        return seen

    def phase_counts(self) -> dict[tuple[str, str], int]:
        """(namespace, phase) → tasks; every phase of a namespace with tasks (0 included)."""
        counts = Tally(list(self._phases.values()))  # a copy: the loop may change the dict
        namespaces = {namespace for namespace, _ in counts}
        return {(ns, phase): counts.get((ns, phase), 0) for ns in namespaces for phase in PHASES}


class _TaskGauges(Collector):
    """``krally_operator_tasks`` and ``krally_operator_leader``, computed at scrape time."""

    def __init__(self, metrics: OperatorMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        leading = self._metrics.leading()
        tasks = GaugeMetricFamily(
            PREFIX + "tasks",
            "BenchmarkTasks by status.phase (reported by the leading replica).",
            labels=["namespace", "phase"],
        )
        if leading:
            for (namespace, phase), count in sorted(self._metrics.phase_counts().items()):
                tasks.add_metric([namespace, phase], count)
        leader = GaugeMetricFamily(
            PREFIX + "leader", "1 while this operator replica leads (reconciles tasks)."
        )
        leader.add_metric([], 1.0 if leading else 0.0)
        return [tasks, leader]
