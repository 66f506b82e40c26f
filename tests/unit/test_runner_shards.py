"""The runner pods of a distributed load without a cluster: N ShardRuns in threads share one
in-memory task status, written with merge-patch semantics (what the API server does to
``status.runner``), and read back whole."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

from krally.api.shards import runner_view
from krally.api.times import parse_time
from krally.kube.pods.runner import shards
from krally.kube.pods.runner import writer as status_writer
from krally.task.shard import Shard

PODS = 3


class TaskStatus:
    """The task's status: merge patches of status.runner in, the task out."""

    def __init__(self, **status: Any) -> None:
        self.status: dict[str, Any] = {"runner": {}, **status}
        self.lock = threading.Lock()

    def patch(self, state: dict[str, Any]) -> None:
        with self.lock:
            _merge(self.status["runner"], json.loads(json.dumps(state)))

    def read(self) -> dict[str, Any]:
        with self.lock:
            return {"status": copy.deepcopy(self.status)}

    @property
    def runner(self) -> dict[str, Any]:
        return self.status["runner"]


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def spec(policy: str = "FailTask", sleep: float = 0.002, times: int = 300) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": sleep}},
        "runner": {
            "type": "constant",
            "times": times,
            "concurrency": PODS,
            "parallelism": PODS,
            "podFailurePolicy": policy,
        },
        "sla": {"failure_rate": {"max": 0}},
        "hooks": [
            {
                "name": "sys_call",
                "args": "/bin/true",
                "trigger": {
                    "name": "event",
                    "args": {"unit": "iteration", "at": [1, 2, 6, 200, 999]},
                },
            },
            {
                "name": "sys_call",
                "args": "/bin/true",
                "trigger": {"name": "event", "args": {"unit": "time", "at": [0, 60]}},
            },
        ],
    }


def run_pods(
    task: TaskStatus,
    body: dict[str, Any],
    pods: range = range(PODS),
    stop: dict[int, float] | None = None,
) -> dict[int, int]:
    """Every pod in ``pods`` in its thread; ``stop``: pod → seconds after which it gets SIGTERM."""
    codes: dict[int, int] = {}

    def pod(index: int) -> None:
        abort, reason = threading.Event(), []
        if stop and index in stop:

            def terminate() -> None:
                reason.append("SIGTERM")
                abort.set()

            threading.Timer(stop[index], terminate).start()
        writer = status_writer.StatusWriter(status_writer.pod_patcher(task.patch, index), 0.2)
        run = shards.ShardRun(
            body, Shard(index, PODS), writer, task.patch, task.read, abort, reason
        )
        codes[index] = run()

    threads = [threading.Thread(target=pod, args=(i,)) for i in pods]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return codes


def test_pods_start_together_fire_what_they_own_and_pod_0_merges() -> None:
    task = TaskStatus()
    assert run_pods(task, spec()) == {0: 0, 1: 0, 2: 0}
    top = task.runner
    assert top["state"] == "Finished"
    start = parse_time(top["startAt"])
    for i in range(PODS):
        pod = top["pods"][str(i)]
        assert pod["state"] == "Finished" and "result" not in pod  # merged, then dropped
        assert parse_time(pod["startedAt"]) >= start - 0.002
        assert pod["progress"]["done"] == 100
    owners = {
        (f["hook"], f["value"]): int(i)
        for i, pod in top["pods"].items()
        for f in pod.get("firings") or []
    }
    assert owners == {(0, 1): 0, (0, 2): 1, (0, 6): 2, (0, 200): 1, (1, 0): 0}
    summary = top["summary"]
    assert summary["iterations"] == 300 and summary["passSLA"] is True
    assert summary["unreached"] == [
        {"hook": 0, "eventType": "iteration", "value": 999},
        {"hook": 1, "eventType": "time", "value": 60},
    ]
    assert sum(point["count"] for point in summary["timeline"]) == 300
    assert top["progress"]["done"] == 300 == top["progress"]["total"]
    # What every reader sees: the firings of all pods, in one list.
    assert len(runner_view(top)["firings"]) == 5


def test_a_stopped_pod_fails_the_task_by_default_keeping_what_it_ran() -> None:
    task = TaskStatus()
    codes = run_pods(task, spec(sleep=0.01), stop={2: 1.5})
    assert codes[2] == 1 and codes[0] == 1
    top = task.runner
    assert top["pods"]["2"]["state"] == "Aborted"
    assert top["state"] == "Error" and "runner pod 2" in top["error"], top.get("error")
    done = sum(top["pods"][str(i)]["progress"]["done"] for i in range(PODS))
    assert top["summary"]["iterations"] == done < 300


def test_continue_lets_the_others_finish_and_says_which_pod_stopped() -> None:
    task = TaskStatus()
    codes = run_pods(task, spec("Continue", sleep=0.01), stop={2: 1.5})
    assert codes[0] == 0 and codes[1] == 0 and codes[2] == 1
    top = task.runner
    assert top["state"] == "Finished"
    assert any("runner pod 2" in w for w in top["summary"]["warnings"]), top["summary"]
    assert top["pods"]["0"]["progress"]["done"] == 100 == top["pods"]["1"]["progress"]["done"]
    assert top["summary"]["iterations"] == 200 + top["pods"]["2"]["progress"]["done"]


def test_a_pod_the_job_saw_fail_is_not_waited_for() -> None:
    task = TaskStatus(failedRunnerPods=[2])  # e.g. OOM-killed before it reported anything
    assert run_pods(task, spec("Continue"), pods=range(2)) == {0: 0, 1: 0}
    summary = task.runner["summary"]
    assert summary["iterations"] == 200
    assert any("2 of 3 did not report" in w for w in summary["warnings"]), summary["warnings"]


def test_a_failed_index_of_continue_is_not_the_job_failing() -> None:
    from krally.kube.operator.status.observed import job_state

    running = {"spec": {"backoffLimitPerIndex": 0}, "status": {"failed": 1, "active": 2}}
    assert job_state(running)[0] == "active"
    ended = {
        "spec": {"backoffLimitPerIndex": 0},
        "status": {
            "failed": 1,
            "failedIndexes": "2",
            "conditions": [{"type": "Failed", "status": "True", "reason": "FailedIndexes"}],
        },
    }
    assert job_state(ended)[:2] == ("failed", "FailedIndexes")
    assert job_state({"spec": {"backoffLimit": 0}, "status": {"failed": 1}})[0] == "failed"


def test_failed_indexes_and_the_view_of_an_unmerged_load() -> None:
    from krally.api.shards import failed_indexes

    assert failed_indexes("1,3-5") == [1, 3, 4, 5]
    assert failed_indexes(None) == [] == failed_indexes("x,-")
    view = runner_view(
        {
            "startAt": "2026-12-03T10:00:00.000Z",
            "pods": {
                "0": {"state": "Running", "progress": {"done": 5, "total": 10, "failures": 1}},
                "1": {"state": "Error", "error": "boom", "progress": {"done": 3, "total": 10}},
            },
        }
    )
    assert view["state"] == "Running" and view["error"] == "runner pod 1: boom"
    assert view["progress"] == {"done": 8, "failures": 1, "total": 20}
    assert view["startedAt"] == "2026-12-03T10:00:00.000Z"
    assert runner_view({"state": "Finished"}) == {"state": "Finished"}
