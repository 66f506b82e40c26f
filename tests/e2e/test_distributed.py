"""End-to-end: one task spread over three runner pods (spec.runner.parallelism: 3) on the real
node: an Indexed Job, a common start, global iteration numbers, triggers fired once each by the
pod that owns them, and one merged result."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tests.e2e.support import (
    Operator,
    dummy_spec,
    get_status,
    jobs,
    sys_call,
    task_yaml,
    wait_phase,
)

from krally.api.times import parse_time

pytestmark = pytest.mark.cluster

PODS = 3
AT = [1, 2, 3, 100, 250, 301]  # 301: past `times`, never reached


def test_three_runner_pods_fire_each_trigger_once_and_merge_one_result(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(
        times=300,
        sleep=0.02,  # 300 x 20 ms over 3 pods of concurrency 1: about 2 s of load
        hooks=[
            sys_call("/bin/echo iteration", "event", unit="iteration", at=AT),
            sys_call("/bin/echo time", "event", unit="time", at=[0, 1]),
        ],
    )
    spec["runner"].update(concurrency=PODS, parallelism=PODS)
    spec["sla"] = {"failure_rate": {"max": 0}, "max_avg_duration": 5}
    # Armed (the default): each firing's pod waits ahead and watches the task for its firing,
    # whichever runner pod records it.
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("spread", spec))
    status = wait_phase(cluster, ns, "spread", {"Succeeded", "Failed", "Aborted"}, wait_for, 240)
    assert status["phase"] == "Succeeded", (status.get("message"), status.get("runner"))

    # Kubernetes is the engine: one Indexed Job, one pod per index, spread over nodes.
    (job,) = jobs(cluster, ns, "krally.dev/task=spread,krally.dev/role=runner")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == PODS == job["spec"]["parallelism"]
    constraint = job["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"

    runner = status["runner"]
    pods = runner["pods"]
    assert sorted(pods) == [str(i) for i in range(PODS)]
    start = parse_time(runner["startAt"])
    starts = [parse_time(pods[str(i)]["startedAt"]) for i in range(PODS)]
    skew = max(starts) - min(starts)
    delays = [pods[str(i)]["startDelaySeconds"] for i in range(PODS)]
    print(f"start skew between the {PODS} pods: {skew * 1000:.1f} ms; delays {delays}")
    assert all(0 <= d < 0.5 for d in delays), delays
    assert all(s >= start - 0.005 for s in starts), (start, starts)  # none before the start
    assert skew < 0.5, starts  # the bench measures it; here: they started together
    for i in range(PODS):
        assert pods[str(i)]["state"] == "Finished", pods[str(i)]
        assert "result" not in pods[str(i)]  # merged, then dropped from the object
        assert pods[str(i)]["progress"]["done"] == 100

    # Each iteration firing exactly once, recorded by the pod that ran that iteration.
    fired = {
        (f["hook"], f["eventType"], f["value"]): i
        for i in range(PODS)
        for f in pods[str(i)].get("firings") or []
    }
    everything = [
        (f["hook"], f["eventType"], f["value"])
        for i in range(PODS)
        for f in pods[str(i)].get("firings") or []
    ]
    assert len(everything) == len(set(everything)), everything
    for value in AT[:-1]:
        assert fired[(0, "iteration", value)] == (value - 1) % PODS, fired
    # Time triggers: pod 0 alone, counting from the common start.
    assert fired[(1, "time", 0)] == 0 and fired[(1, "time", 1)] == 0, fired

    iteration_hook, time_hook = status["hooks"]
    assert sorted(r["triggeredBy"]["value"] for r in iteration_hook["results"]) == AT[:-1]
    assert {r["status"] for r in iteration_hook["results"]} == {"success"}
    assert all(r["armed"] for r in iteration_hook["results"]), iteration_hook["results"]
    assert [u["value"] for u in iteration_hook.get("unreached") or []] == [301], iteration_hook
    assert sorted(r["triggeredBy"]["value"] for r in time_hook["results"]) == [0, 1]

    # One merged result: every iteration counted once, statistics from the merged sketches.
    result = status["result"]
    assert result["iterations"] == 300 and result["failures"] == 0, result
    durations = result["durations"]
    assert 0.02 <= durations["min"] <= durations["median"] <= durations["p95"] <= durations["max"]
    assert status["progress"]["done"] == 300 == status["progress"]["total"]
    summary = runner["summary"]
    assert sum(p["count"] for p in summary["timeline"]) == 300
    assert sum(b[2] for b in summary["histogram"]) == 300
    assert status["passSLA"] is True
    assert [s["criterion"] for s in status["sla"]] == ["failure_rate", "max_avg_duration"]
    print(json.dumps({"skewMs": round(skew * 1000, 1), "durations": durations}))


@pytest.mark.parametrize("policy", ["Continue", "FailTask"])
def test_a_runner_pod_deleted_mid_load(
    cluster: Any, ns: str, operator: Operator, wait_for: Any, policy: str
) -> None:
    """Continue: the other pods finish, the merge counts what the stopped pod recorded and says
    so; FailTask (the default): the Job stops every pod, the task fails, partial results kept."""
    name = f"stop-{policy.lower()}"
    spec = dummy_spec(times=900, sleep=0.02, hooks=[])  # about 6 s of load
    spec["runner"].update(concurrency=PODS, parallelism=PODS, podFailurePolicy=policy)
    spec["arming"] = {"enabled": False}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml(name, spec))

    def running() -> bool:
        pods = (get_status(cluster, ns, name).get("runner") or {}).get("pods") or {}
        return all((pods.get(str(i)) or {}).get("state") == "Running" for i in range(PODS))

    wait_for(running, timeout=180, message="every runner pod running")
    time.sleep(1.5)  # each pod runs a few dozen iterations
    selector = (
        f"krally.dev/task={name},krally.dev/role=runner,batch.kubernetes.io/job-completion-index=2"
    )
    cluster.kubectl("delete", "pod", "-n", ns, "-l", selector, "--wait=false")
    status = wait_phase(cluster, ns, name, {"Succeeded", "Failed", "Aborted"}, wait_for, 240)
    runner = status["runner"]
    pods = runner["pods"]
    assert pods["2"]["state"] == "Aborted", pods["2"]
    stopped_at = pods["2"]["progress"]["done"]
    assert 0 < stopped_at < 300, pods["2"]
    if policy == "Continue":
        assert status["phase"] == "Succeeded", status.get("message")
        assert pods["0"]["state"] == pods["1"]["state"] == "Finished"
        assert status["result"]["iterations"] == 600 + stopped_at
        assert any("runner pod 2" in w for w in runner["summary"]["warnings"]), runner["summary"]
        assert status["failedRunnerPods"] == [2]
    else:
        assert status["phase"] == "Failed", status.get("message")
        assert "partial results kept" in status["message"], status["message"]
        done = sum(pods[str(i)]["progress"]["done"] for i in range(PODS))
        assert "result" in status, json.dumps(runner)[:3000]
        assert status["result"]["iterations"] == done < 900
