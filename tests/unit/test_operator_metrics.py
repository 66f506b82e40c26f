"""The operator's metrics: each firing and hook result counted once (restarts, stale views,
replaced objects), the lag, API errors by cause, tasks by phase, the controller reporting them,
and `krally operator --metrics-port`."""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import urllib.request
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from tests.unit.test_kube_controller import KEY, FakeApi, make_task

from krally.api.times import rfc3339
from krally.kube import commands
from krally.kube import metrics as kmetrics
from krally.kube.operator.controller import Controller
from krally.kube.operator.leader import Leadership
from krally.kube.operator.metrics import OperatorMetrics, call_labels, error_code
from krally.kube.operator.settings import Settings
from krally.kube.operator.store import Store

NS = KEY[0]


def sample(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def firing(value: int, fired_at: str = "2026-01-01T00:00:00.000Z") -> dict[str, Any]:
    return {"hook": 0, "eventType": "iteration", "value": value, "firedAt": fired_at}


def task_with(
    firings: list[dict[str, Any]], phase: str = "Running", uid: str = "uid-1"
) -> dict[str, Any]:
    task = make_task()
    task["metadata"]["uid"] = uid
    task["status"] = {"phase": phase, "runner": {"state": "Running", "firings": firings}}
    return task


def result(value: int, status: str) -> dict[str, Any]:
    return {"triggeredBy": {"eventType": "iteration", "value": value}, "status": status}


def hooks(*results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"index": 0, "name": "sys_call", "results": list(results)}]


FIRINGS = "krally_operator_firings_total"
RESULTS = "krally_operator_hook_results_total"


def test_each_firing_counts_once_whatever_the_views() -> None:
    metrics = OperatorMetrics()
    metrics.observe_task(KEY, task_with([firing(5)]))
    metrics.observe_task(KEY, task_with([firing(5)]))  # the same view again
    metrics.observe_task(KEY, task_with([firing(5), firing(50)]))
    metrics.observe_task(KEY, task_with([firing(5)]))  # a stale view: nothing new, nothing lost
    assert sample(metrics, FIRINGS, namespace=NS, hook="sys_call") == 2
    # A new object under the same name: its firings are new.
    metrics.observe_task(KEY, task_with([firing(5)], uid="uid-2"))
    assert sample(metrics, FIRINGS, namespace=NS, hook="sys_call") == 3


def test_a_finished_task_first_seen_is_history() -> None:
    """A restarted operator (or a new leader) sees finished tasks: nothing is counted again; a
    running task's firings are counted by the process that handles them."""
    metrics = OperatorMetrics()
    done = task_with([firing(5), firing(50)], phase="Succeeded")
    done["status"]["hooks"] = hooks(result(5, "success"), result(50, "failed"))
    metrics.observe_task(KEY, done)
    metrics.status_written(KEY, done, {"hooks": done["status"]["hooks"]})
    assert sample(metrics, FIRINGS, namespace=NS, hook="sys_call") == 0
    assert sample(metrics, RESULTS, namespace=NS, hook="sys_call", status="success") == 0
    other = ("ns", "running")
    metrics.observe_task(other, task_with([firing(5)]))
    assert sample(metrics, FIRINGS, namespace=NS, hook="sys_call") == 1


def test_each_final_result_counts_once_when_written() -> None:
    metrics = OperatorMetrics()
    task = task_with([firing(5), firing(50), firing(200)])
    # Results already final when this process first saw the task were counted by their writer.
    task["status"]["hooks"] = hooks(result(5, "success"))
    metrics.observe_task(KEY, task)
    metrics.status_written(KEY, task, {"hooks": hooks(result(5, "success"), result(50, "running"))})
    assert sample(metrics, RESULTS, namespace=NS, hook="sys_call", status="success") == 0
    patch = {"hooks": hooks(result(5, "success"), result(50, "success"), result(200, "failed"))}
    metrics.status_written(KEY, task, patch)
    metrics.status_written(KEY, task, patch)  # planned again from a stale view: not again
    assert sample(metrics, RESULTS, namespace=NS, hook="sys_call", status="success") == 1
    assert sample(metrics, RESULTS, namespace=NS, hook="sys_call", status="failed") == 1
    assert sample(metrics, "krally_operator_status_writes_total", namespace=NS) == 3
    metrics.status_written(KEY, task, {"progress": "1/2"})  # a write without hooks
    assert sample(metrics, "krally_operator_status_writes_total", namespace=NS) == 4


def test_the_lag_from_the_firing_to_its_job() -> None:
    now = [1_800_000_000.0]
    metrics = OperatorMetrics(clock=lambda: now[0])
    metrics.hook_job_created(firing(5, rfc3339(now[0] - 0.180) or ""))
    metrics.hook_job_created(firing(6, rfc3339(now[0] + 0.5) or ""))  # a skewed clock: 0
    metrics.hook_job_created({"hook": 0})  # armed: no firedAt, nothing observed
    lag = "krally_operator_hook_job_creation_lag_seconds"
    assert sample(metrics, f"{lag}_count") == 2
    assert sample(metrics, f"{lag}_sum") == pytest.approx(0.180, abs=0.002)
    assert sample(metrics, f"{lag}_bucket", le="0.01") == 1
    assert sample(metrics, f"{lag}_bucket", le="0.25") == 2


def test_api_errors_by_verb_resource_and_cause() -> None:
    from kubernetes import client

    assert call_labels(client.BatchV1Api.create_namespaced_job) == ("create", "jobs")
    assert call_labels(client.CustomObjectsApi.patch_namespaced_custom_object_status) == (
        "patch",
        "benchmarktasks/status",
    )
    assert call_labels(client.BatchV1Api.delete_namespaced_job) == ("delete", "jobs")
    assert call_labels(client.CoreV1Api.read_namespaced_service_account) == (
        "get",
        "serviceaccounts",
    )
    assert call_labels(client.RbacAuthorizationV1Api.create_namespaced_role_binding) == (
        "create",
        "rolebindings",
    )
    assert call_labels(lambda: None) == ("<lambda>", "")
    assert error_code(ApiException(status=409, reason="AlreadyExists")) == "409"
    assert error_code(ApiException(status=0, reason="no response")) == "connection"
    assert error_code(ConnectionResetError()) == "connection"
    assert error_code(TimeoutError()) == "timeout"
    assert error_code(ValueError("a bug")) == "error"


def test_tasks_by_phase_from_the_leader_only() -> None:
    metrics = OperatorMetrics()
    metrics.observe_task(("a", "t1"), {"metadata": {"namespace": "a", "uid": "1"}})
    metrics.observe_task(("a", "t2"), {"metadata": {"namespace": "a", "uid": "2"},
                                       "status": {"phase": "Running"}})  # fmt: skip
    metrics.observe_task(("b", "t3"), {"metadata": {"namespace": "b", "uid": "3"},
                                       "status": {"phase": "Running"}})  # fmt: skip
    tasks = "krally_operator_tasks"
    assert sample(metrics, tasks, namespace="a", phase="Pending") == 1  # no phase yet
    assert sample(metrics, tasks, namespace="a", phase="Running") == 1
    assert metrics.registry.get_sample_value(tasks, {"namespace": "b", "phase": "Failed"}) == 0
    # Our own write changes the phase at once (before the watch shows it).
    metrics.status_written(("a", "t2"), {"metadata": {"namespace": "a"}}, {"phase": "Succeeded"})
    assert sample(metrics, tasks, namespace="a", phase="Succeeded") == 1
    assert sample(metrics, tasks, namespace="a", phase="Running") == 0
    metrics.forget(("b", "t3"))
    assert metrics.registry.get_sample_value(tasks, {"namespace": "b", "phase": "Running"}) is None
    assert sample(metrics, "krally_operator_leader") == 1
    metrics.leading = lambda: False
    assert metrics.registry.get_sample_value(tasks, {"namespace": "a", "phase": "Running"}) is None
    assert sample(metrics, "krally_operator_leader") == 0


class ConflictingApi(FakeApi):
    """The hook Job exists already (an earlier process made it): each create is a 409."""

    def __init__(self) -> None:
        super().__init__()
        self.existing.add(("Job", "t-h0-i5"))
        self.objects[("Job", "t-h0-i5")] = {"metadata": {"name": "t-h0-i5", "ownerReferences": [
            {"uid": "uid-1", "controller": True}]}}  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        fn = super().__getattr__(name)
        fn.__name__ = name  # as the official client's methods are named
        return fn


def _running_task() -> dict[str, Any]:
    task = make_task()
    task["status"] = {
        "phase": "Running",
        "runnerJob": "krally-t-runner",
        "runner": {"state": "Running", "firings": [firing(5, rfc3339(1_800_000_000.0) or "")]},
        "conditions": [{"type": "Accepted", "status": "True"}],
    }
    return task


def _run_controller(api: FakeApi, task: dict[str, Any], leadership: Leadership) -> Controller:
    runner = {
        "metadata": {"name": "krally-t-runner", "uid": "j1", "labels": {},
                     "ownerReferences": [{"uid": "uid-1", "controller": True}]},
        "status": {"active": 1},
    }  # fmt: skip
    store = Store({"task_index": {KEY: [task]}, "job_index": {KEY: [runner]}, "pod_index": {}})
    metrics = OperatorMetrics(clock=lambda: 1_800_000_000.25)
    op = Controller(Settings(), api, store=store, leadership=leadership, metrics=metrics)

    async def scenario() -> None:
        for _ in range(3):
            op.kick(KEY)
        await op.queue.idle()

    asyncio.run(scenario())
    return op


def test_the_controller_reports_firings_lag_writes_and_passes() -> None:
    api = FakeApi()
    op = _run_controller(api, _running_task(), Leadership(leading=True))
    assert api.created == [("Job", "t-h0-i5")]
    metrics = op.metrics
    assert sample(metrics, FIRINGS, namespace=NS, hook="sys_call") == 1
    lag = "krally_operator_hook_job_creation_lag_seconds"
    assert sample(metrics, f"{lag}_count") == 1
    assert sample(metrics, f"{lag}_sum") == pytest.approx(0.25)
    assert sample(metrics, "krally_operator_status_writes_total", namespace=NS) == len(api.patches)
    assert sample(metrics, "krally_operator_reconcile_duration_seconds_count") >= 1
    assert sample(metrics, "krally_operator_tasks", namespace=NS, phase="Running") == 1
    assert not [s for f in metrics.registry.collect() for s in f.samples
                if s.name == "krally_operator_kubernetes_api_errors_total"]  # fmt: skip


def test_the_controller_counts_api_errors_and_no_lag_for_an_existing_job() -> None:
    op = _run_controller(ConflictingApi(), _running_task(), Leadership(leading=True))
    errors = "krally_operator_kubernetes_api_errors_total"
    assert sample(op.metrics, errors, verb="create", resource="jobs", code="409") == 1
    # The Job was there already: its lag is not this process' to measure.
    assert sample(op.metrics, "krally_operator_hook_job_creation_lag_seconds_count") == 0


def test_a_follower_counts_nothing() -> None:
    api = FakeApi()
    op = _run_controller(api, _running_task(), Leadership(leading=False))
    assert api.created == [] and api.patches == []
    assert sample(op.metrics, FIRINGS, namespace=NS, hook="sys_call") == 0
    assert sample(op.metrics, "krally_operator_leader") == 0


def test_two_controllers_keep_their_metrics_apart() -> None:
    first = _run_controller(FakeApi(), _running_task(), Leadership(leading=True))
    second = _run_controller(FakeApi(), copy.deepcopy(_running_task()), Leadership(leading=True))
    assert first.metrics.registry is not second.metrics.registry
    assert sample(first.metrics, FIRINGS, namespace=NS, hook="sys_call") == 1
    assert sample(second.metrics, FIRINGS, namespace=NS, hook="sys_call") == 1


# -- krally operator --metrics-port ------------------------------------------------------------


def _parse(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    return parser.parse_args(["operator", *args])


def test_the_option_and_its_default() -> None:
    assert _parse().metrics_port is None  # the default port, best effort
    assert _parse("--metrics-port=0").metrics_port == 0
    assert _parse("--metrics-port", "9100").metrics_port == 9100
    with pytest.raises(SystemExit):
        _parse("--metrics-port=70000")
    op = next(
        a.choices["operator"] for a in _subparsers() if "operator" in getattr(a, "choices", {})
    )
    (action,) = [a for a in op._actions if "--metrics-port" in a.option_strings]
    assert f"default {kmetrics.OPERATOR_PORT}" in (action.help or "")


def _subparsers() -> list[Any]:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    return list(parser._subparsers._group_actions) if parser._subparsers else []


def test_metrics_are_served_and_a_port_asked_for_must_be_free(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert commands._serve_metrics(0) is None
    blocker = kmetrics.serve(OperatorMetrics().registry, 0, "127.0.0.1")
    try:
        with pytest.raises(SystemExit) as stopped:
            commands._serve_metrics(blocker.port)
        assert str(stopped.value) == (
            f"krally operator: cannot serve metrics on port {blocker.port}: address already in "
            "use (--metrics-port=0: no metrics)"
        )
    finally:
        blocker.close()
    port = kmetrics.serve(OperatorMetrics().registry, 0, "127.0.0.1")
    free = port.port
    port.close()
    served = commands._serve_metrics(free)
    assert served is not None
    served.observe_task(KEY, _running_task())
    with urllib.request.urlopen(f"http://127.0.0.1:{free}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'krally_operator_firings_total{hook="sys_call",namespace="ns"} 1.0' in text
    assert "krally_operator_firings_created" not in text  # no *_created series


def test_the_default_port_taken_only_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = kmetrics.serve(OperatorMetrics().registry, 0, "127.0.0.1")
    try:
        monkeypatch.setattr(kmetrics, "OPERATOR_PORT", blocker.port)
        with caplog.at_level(logging.WARNING, logger="krally"):
            assert commands._serve_metrics(None) is None
        assert f"port {blocker.port}: address already in use" in caplog.text
    finally:
        blocker.close()
