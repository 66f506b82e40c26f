"""The watched store's projections and lookups, and the work queue's coalescing (no kopf)."""

from __future__ import annotations

import asyncio
from typing import Any

from krally.kube.operator import store
from krally.kube.operator.queue import WorkQueue

KEY = ("ns", "t")


def test_projections_keep_only_what_the_operator_reads() -> None:
    job = {
        "metadata": {
            "name": "krally-t-runner",
            "uid": "j1",
            "labels": {"krally.dev/task": "t"},
            "annotations": {"a": "b"},
            "ownerReferences": [{"uid": "u1"}],
            "managedFields": [{"huge": True}],
        },
        "spec": {"activeDeadlineSeconds": 30, "template": {"spec": {"containers": []}}},
        "status": {"active": 1},
    }
    plain = store.project_job(job)
    assert "managedFields" not in plain["metadata"] and plain["metadata"]["annotations"] == {
        "a": "b"
    }
    assert plain["spec"] == {"activeDeadlineSeconds": 30}
    pod = {
        "metadata": {"name": "p", "annotations": {"x": "y"}, "ownerReferences": []},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": []},
    }
    assert store.project_pod(pod) == {
        "metadata": {"name": "p", "ownerReferences": []},
        "status": {"phase": "Running", "containerStatuses": []},
    }
    task = {"apiVersion": "v", "kind": "k", "metadata": {"name": "t", "uid": "u1"}, "spec": {}}
    projected = store.project_task(task)
    assert projected["status"] == {} and projected["metadata"] == {"name": "t", "uid": "u1"}
    projected["metadata"]["name"] = "changed"
    assert task["metadata"]["name"] == "t"  # a copy: the index never aliases kopf's body


def test_observe_keeps_only_the_tasks_own_children() -> None:
    mine = {
        "metadata": {"name": "krally-t-runner", "uid": "j1", "ownerReferences": [{"uid": "u1"}]}
    }
    namesake = {
        "metadata": {"name": "krally-t-runner", "uid": "j0", "ownerReferences": [{"uid": "u0"}]}
    }
    pod = {"metadata": {"name": "p1", "ownerReferences": [{"uid": "j1"}]}}
    stale_pod = {"metadata": {"name": "p0", "ownerReferences": [{"uid": "j0"}]}}
    watched = store.Store()
    watched.remember(
        {
            "task_index": {KEY: [{"metadata": {"name": "t", "uid": "u1"}}]},
            "job_index": {KEY: [mine, namesake]},
            "pod_index": {KEY: [pod, stale_pod]},
            "unrelated": object(),
        }
    )
    observed = watched.observe(KEY, "u1")
    assert observed.jobs == (mine,) and observed.pods == (pod,)
    assert watched.task(KEY) == {"metadata": {"name": "t", "uid": "u1"}}
    assert watched.task(("ns", "other")) is None
    assert store.Store().lookup("job_index", KEY) == []


def test_the_queue_coalesces_a_burst_into_one_more_pass() -> None:
    passes: list[int] = []

    async def scenario() -> None:
        gate = asyncio.Event()

        async def work(key: Any) -> None:
            passes.append(len(passes))
            await gate.wait()

        queue = WorkQueue(work)
        queue.kick(KEY)
        await asyncio.sleep(0.01)
        for _ in range(10):  # while the first pass runs
            queue.kick(KEY)
        gate.set()
        await queue.idle()
        assert len(queue) == 1
        queue.forget(KEY)
        assert len(queue) == 0

    asyncio.run(scenario())
    assert passes == [0, 1]


def test_a_failed_pass_is_retried_and_later_fires_once() -> None:
    calls: list[str] = []

    async def scenario() -> None:
        async def work(key: Any) -> None:
            calls.append("pass")
            if len(calls) == 1:
                raise RuntimeError("API down")

        queue = WorkQueue(work)
        queue.kick(KEY)
        await asyncio.sleep(0.7)  # the policy's first back-off is 0.5 s
        assert calls == ["pass", "pass"]
        queue.later(KEY, 0.05)
        queue.later(KEY, 0.05)  # one deferred kick per task
        await asyncio.sleep(0.2)
        await queue.idle()
        assert calls == ["pass", "pass", "pass"]
        queue.later(KEY, 0.05)
        queue.cancel_later(KEY)
        await asyncio.sleep(0.1)
        assert calls == ["pass", "pass", "pass"]

    asyncio.run(scenario())
