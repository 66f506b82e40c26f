"""End-to-end on the real node: armed hooks under faults (a pod deleted while armed, the operator
down while pods are armed), firings the load never reaches, and a trigger faster than pods."""

from __future__ import annotations

from collections import Counter
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


def pods_of(cluster: Any, ns: str, job: str) -> list[dict[str, Any]]:
    import json

    out = cluster.kubectl("get", "pods", "-n", ns, "-l", f"job-name={job}", "-o", "json").stdout
    return json.loads(out)["items"]


def released(cluster: Any, ns: str, name: str) -> dict[str, Any] | None:
    status = get_status(cluster, ns, name)
    return status if (status.get("arming") or {}).get("loadReleasedAt") else None


def test_an_armed_pod_deleted_before_its_firing_is_replaced_and_runs_once(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(times=400, sleep=0.05, hooks=[sys_call("/bin/echo once", "event",
                      unit="iteration", at=[350])])  # fmt: skip
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("replaced", spec))
    wait_for(lambda: released(cluster, ns, "replaced"), timeout=120, message="load released")
    job = "replaced-h0-i350"
    (first,) = pods_of(cluster, ns, job)
    cluster.kubectl("delete", "pod", "-n", ns, first["metadata"]["name"], "--wait=false")

    def replacement() -> dict[str, Any] | None:
        pods = [
            p for p in pods_of(cluster, ns, job) if p["metadata"]["uid"] != first["metadata"]["uid"]
        ]
        return pods[0] if pods else None

    wait_for(replacement, timeout=60, message="a replacement armed pod")
    status = wait_phase(cluster, ns, "replaced", {"Succeeded", "Failed"}, wait_for, 180)
    assert status["phase"] == "Succeeded", status.get("message")
    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "success" and result["armed"] is True, result
    (hook_job,) = jobs(cluster, ns, "krally.dev/task=replaced,krally.dev/role=hook")
    assert hook_job["status"].get("succeeded") == 1 and not hook_job["status"].get("failed")
    # The deleted pod left as disarmed (exit code 3, not counted); one pod ran the hook.
    codes = sorted(
        (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("terminated", {})
        .get("exitCode", -1)
        for p in pods_of(cluster, ns, job)
    )  # fmt: skip
    assert codes in ([0], [0, 3]), codes  # the deleted pod may be gone already
    assert "once" in str(result.get("output"))


def test_armed_hooks_fire_while_the_operator_is_down(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(times=500, sleep=0.02, hooks=[sys_call("/bin/echo down", "event",
                      unit="iteration", at=[200, 400])])  # fmt: skip
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("down", spec))
    wait_for(lambda: released(cluster, ns, "down"), timeout=120, message="load released")
    operator.kill()
    # With no operator at all, the runner records the firings and the armed pods run them.
    selector = "krally.dev/task=down,krally.dev/role=hook"

    def both_ran() -> bool:
        found = jobs(cluster, ns, selector)
        return len(found) == 2 and all(j["status"].get("succeeded") == 1 for j in found)

    wait_for(both_ran, timeout=120, message="both armed hooks ran while the operator was down")
    operator.start()
    status = wait_phase(cluster, ns, "down", {"Succeeded", "Failed"}, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    results = status["hooks"][0]["results"]
    assert [(r["triggeredBy"]["value"], r["status"], r["armed"]) for r in results] == [
        (200, "success", True),
        (400, "success", True),
    ]
    for result in results:
        assert parse_time(result["startedAt"]) - parse_time(result["firedAt"]) < 1.0, result


def test_an_armed_firing_the_load_never_reaches_ends_cleanly(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
        # No iteration count known ahead: iteration 100000000 is armed, never reached.
        "runner": {"type": "constant_for_duration", "duration": 4, "concurrency": 1},
        "hooks": [sys_call("/bin/echo event", "event", unit="iteration", at=[1, 100000000])],
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("never", spec))
    status = wait_phase(cluster, ns, "never", {"Succeeded", "Failed"}, wait_for, 180)
    assert status["phase"] == "Succeeded", status.get("message")
    (hook,) = status["hooks"]
    assert [(r["triggeredBy"]["value"], r["status"]) for r in hook["results"]] == [(1, "success")]
    assert hook["unreached"] == [{"eventType": "iteration", "value": 100000000}]
    assert hook["summary"] == {"success": 1}  # as in Rally: an unreached value is no result
    # Counted once its pod has ended (it may still be exiting as the task completes).
    wait_for(
        lambda: (get_status(cluster, ns, "never").get("arming") or {}).get("unreached") == 1,
        timeout=60,
        message="the unreached armed Job counted",
    )

    # Its armed pod saw the load end and exited on its own: the Job completed, nothing ran.
    def ended() -> dict[str, Any] | None:
        (job,) = jobs(cluster, ns, "krally.dev/task=never,krally.dev/trigger-value=100000000")
        return job if job["status"].get("succeeded") == 1 else None

    job = wait_for(ended, timeout=60, message="the unreached armed Job completed")
    (pod,) = pods_of(cluster, ns, job["metadata"]["name"])
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert '"status":"unreached"' in message and "load ended" in message, message


def test_a_trigger_faster_than_pods_start_outruns_arming_and_says_so(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
        "runner": {"type": "constant_for_duration", "duration": 5, "concurrency": 1},
        # Every 30 iterations (about 0.3 s), one armed pod at a time: the next pod is created
        # as a firing comes and needs longer than that to start.
        "hooks": [sys_call("/bin/echo tick", "periodic", unit="iteration", step=30)],
        "arming": {"maxArmed": 1},
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("fast", spec))
    status = wait_phase(cluster, ns, "fast", {"Succeeded", "Failed"}, wait_for, 240)
    assert status["phase"] == "Succeeded", status.get("message")
    (ticks,) = status["hooks"]
    values = [r["triggeredBy"]["value"] for r in ticks["results"]]
    assert len(values) >= 5 and len(values) == len(set(values)), values
    assert all(r["status"] == "success" for r in ticks["results"]), ticks["results"][:3]
    arming = status["arming"]
    # Outrun (armed too late) or, when the firing came before its Job, on-fire: both said.
    assert arming["outrun"] + arming["onFire"] >= 1 and "faster than" in arming["message"], arming
    # Still one Job per firing.
    by_value = Counter(
        int(j["metadata"]["labels"]["krally.dev/trigger-value"])
        for j in jobs(cluster, ns, "krally.dev/task=fast,krally.dev/role=hook")
    )
    assert all(by_value[v] == 1 for v in values), by_value
