"""End-to-end: the krally operator on a real control plane with the real node.

Each test gets a fresh namespace that enforces the `restricted` Pod Security level, installs the
CRD (from crds/), runs the operator as a subprocess (`python -m krally operator -n NS
--standalone`) with the token of an operator ServiceAccount bound to manifests' ClusterRole (so
RBAC is the shipped one), applies BenchmarkTasks with kubectl and reads what happened from the
API like a user would.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from tests.e2e.support import (
    RALLY_EXAMPLE,
    Operator,
    condition,
    dummy_spec,
    get_status,
    jobs,
    sys_call,
    task_yaml,
    triggered,
    wait_phase,
)

from krally.api.times import parse_time as epoch
from krally.kube.operator.status.display import recovery_text

pytestmark = pytest.mark.cluster

# -- tests -------------------------------------------------------------------------------------


def test_rally_hooks_example(cluster: Any, ns: str, operator: Operator, wait_for: Any) -> None:
    name = yaml.safe_load(RALLY_EXAMPLE.read_text())["metadata"]["name"]
    cluster.kubectl("apply", "-n", ns, "-f", str(RALLY_EXAMPLE))
    status = wait_phase(cluster, ns, name, {"Succeeded", "Failed", "Aborted"}, wait_for, 180)
    assert status["phase"] == "Succeeded", status.get("message")

    hook = status["hooks"][0]
    assert [r["status"] for r in hook["results"]] == ["success"] * 4
    assert triggered(hook["results"]) == [("iteration", v) for v in (5, 50, 200, 1000)]
    assert hook["summary"] == {"success": 4}
    for result in hook["results"]:
        assert result["firedAt"] <= result["startedAt"] <= result["finishedAt"]
        assert result["job"]
        # Armed: its pod was waiting before the firing, so the hook started within a moment
        # of its iteration (unarmed: seconds later, a pod start).
        assert result["armed"] is True, result
        assert epoch(result["startedAt"]) - epoch(result["firedAt"]) < 1.0, result
    arming = status["arming"]
    assert arming["armed"] == 4 and arming["awaited"] == 4, arming
    assert arming["readyAtRelease"] == 4 and arming["timedOut"] is False, arming
    assert arming["onFire"] == 0 and arming["unreached"] == 0 and arming["waiting"] == 0, arming
    assert 0 < arming["waitedSeconds"] < 60, arming
    assert status["progress"]["done"] == 1500 == status["progress"]["total"]
    display = dict(status["display"])
    # What each echo did to the load, analysed by the runner: one entry per firing.
    assert [i["triggeredBy"]["value"] for i in status["runner"]["impact"]] == [5, 50, 200, 1000]
    assert display.pop("recovery") == recovery_text(status["runner"]["impact"])
    # The -o wide columns: the failures, no failed criterion, the p95 of the load.
    assert display.pop("failures").split(" ")[0] == str(status["result"]["failures"])
    assert display.pop("failedSLA", "") == ""
    assert display.pop("p95").endswith("s")
    assert display == {"progress": "1500/1500", "hooks": "4/4", "sla": "Passed"}
    assert status["passSLA"] is True and status["result"]["iterations"] == 1500
    assert condition(status, "Complete")["status"] == "True"
    assert condition(status, "Accepted")["observedGeneration"] == 1

    cluster.kubectl("wait", "--for=condition=Complete", f"bt/{name}", "-n", ns, "--timeout=30s")
    table = cluster.kubectl("get", "bt", "-n", ns).stdout.splitlines()
    print("\n".join(table))
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "HOOKS", "SLA", "RECOVERY", "AGE"]
    assert table[1].split()[:5] == [name, "Succeeded", "1500/1500", "4/4", "Passed"]
    assert status["display"]["recovery"] in table[1]

    # One Job per firing, all owned by the task; every pod admitted under `restricted`.
    hook_jobs = jobs(cluster, ns, f"krally.dev/task={name},krally.dev/role=hook")
    assert len(hook_jobs) == 4
    for job in hook_jobs:
        ref = job["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "BenchmarkTask" and ref["controller"] is True
    reasons = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.kind=BenchmarkTask",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    for reason in ("Started", "HookFired", "HookSucceeded", "SLAPassed", "Completed"):
        assert reason in reasons
    assert reasons.count("HookFired") == 4
    refused = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", "reason=FailedCreate", "-o", "name"
    ).stdout.strip()
    assert not refused, "a pod was refused by Pod Security admission"


def test_time_and_periodic_triggers(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(
        times=40,
        sleep=0.1,  # about 4 s of load
        hooks=[
            sys_call("/bin/echo time", "event", unit="time", at=[0, 1, 2, 30]),
            sys_call("/bin/echo periodic-iteration", "periodic", unit="iteration", step=10),
            sys_call("/bin/echo periodic-time", "periodic", unit="time", step=2, end=2),
        ],
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("triggers", spec))
    status = wait_phase(cluster, ns, "triggers", {"Succeeded", "Failed"}, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    by_time, periodic_iter, periodic_time = status["hooks"]
    assert triggered(by_time["results"]) == [("time", 0), ("time", 1), ("time", 2)]
    assert by_time["unreached"] == [{"eventType": "time", "value": 30}]
    assert triggered(periodic_iter["results"]) == [("iteration", v) for v in (1, 11, 21, 31)]
    assert triggered(periodic_time["results"]) == [("time", 0), ("time", 2)]
    for hook in status["hooks"]:
        assert hook["summary"] == {"success": len(hook["results"])}
    # A time tick N fires N whole seconds after iteration 1 started (runner clock).
    fired = [r["firedAt"] for r in by_time["results"]]
    t0, t1, t2 = (time.mktime(time.strptime(f[:19], "%Y-%m-%dT%H:%M:%S")) for f in fired)
    assert 0 <= t1 - t0 <= 2 and 1 <= t2 - t0 <= 3


def test_failing_hook_is_recorded_and_task_completes(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(
        times=20,
        sleep=0.05,
        hooks=[
            sys_call("/bin/false", "event", unit="iteration", at=[2]),
            sys_call("/bin/echo fine", "event", unit="iteration", at=[3]),
        ],
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("failing", spec))
    status = wait_phase(cluster, ns, "failing", {"Succeeded", "Failed"}, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    failed, fine = status["hooks"]
    (result,) = failed["results"]
    assert result["status"] == "failed"
    assert "returned 1" in result["error"]["msg"]  # Rally's "Subprocess returned 1"
    assert failed["summary"] == {"failed": 1}
    assert fine["summary"] == {"success": 1}
    assert status["display"]["hooks"] == "1/2"
    assert status["passSLA"] is True  # a hook never affects the SLA, as in Rally

    # The result comes from the pod's termination message, which can be read before the Job
    # controller marks the Job: the Job's own verdict follows.
    def job_failed() -> bool:
        (job,) = jobs(cluster, ns, "krally.dev/task=failing,krally.dev/hook-index=0")
        return any(c["type"] == "Failed" for c in job["status"].get("conditions", []))

    wait_for(job_failed, timeout=30, message="the failed hook's Job marked Failed")


def test_operator_restart_fires_each_hook_once(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(
        times=400,
        sleep=0.02,  # about 8 s of load, firing every 20 iterations: 20 firings
        hooks=[sys_call("/bin/echo tick", "periodic", unit="iteration", step=20)],
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("restart", spec))
    wait_for(
        lambda: len(jobs(cluster, ns, "krally.dev/task=restart,krally.dev/role=hook")) >= 2,
        timeout=60,
        message="first hook Jobs",
    )
    operator.kill()
    done_at_kill = (get_status(cluster, ns, "restart").get("runner") or {}).get("progress", {})
    time.sleep(3)  # firings keep being recorded by the runner while no operator runs
    operator.start()
    status = wait_phase(cluster, ns, "restart", {"Succeeded", "Failed"}, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    assert done_at_kill.get("done", 0) < 400, "the operator was killed after the load ended"
    expected = [("iteration", v) for v in range(1, 401, 20)]
    results = status["hooks"][0]["results"]
    assert triggered(results) == expected
    assert status["hooks"][0]["summary"] == {"success": len(expected)}
    hook_jobs = jobs(cluster, ns, "krally.dev/task=restart,krally.dev/role=hook")
    assert len(hook_jobs) == len(expected)
    values = sorted(int(j["metadata"]["labels"]["krally.dev/trigger-value"]) for j in hook_jobs)
    assert values == [v for _, v in expected]


def test_runner_pod_deleted_mid_run_fails_keeping_progress(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(
        times=3000,
        sleep=0.01,
        hooks=[sys_call("/bin/echo early", "event", unit="iteration", at=[10])],
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("victim", spec))

    def running() -> bool:
        progress = (get_status(cluster, ns, "victim").get("runner") or {}).get("progress") or {}
        return progress.get("done", 0) >= 50

    wait_for(running, timeout=60, message="runner progress ≥ 50")
    cluster.kubectl(
        "delete", "pod", "-n", ns, "-l", "krally.dev/task=victim,krally.dev/role=runner",
        "--wait=false",
    )  # fmt: skip
    status = wait_phase(cluster, ns, "victim", {"Succeeded", "Failed", "Aborted"}, wait_for, 90)
    assert status["phase"] == "Failed"
    failed = condition(status, "Failed")
    assert failed["status"] == "True"
    assert failed["reason"] in ("RunnerTerminated", "RunnerPodDeleted"), failed
    assert "deleted" in status["message"]
    assert 50 <= status["progress"]["done"] < 3000  # partial progress kept
    assert status["runner"]["state"] == "Aborted"
    # The hook fired before the deletion still ran.
    wait_for(
        lambda: get_status(cluster, ns, "victim")["hooks"][0]["summary"] == {"success": 1},
        timeout=60,
        message="the early hook's result",
    )


def test_abort_stops_the_task(cluster: Any, ns: str, operator: Operator, wait_for: Any) -> None:
    spec = dummy_spec(times=3000, sleep=0.01, hooks=[])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("stopme", spec))
    wait_for(
        lambda: (
            (get_status(cluster, ns, "stopme").get("runner") or {})
            .get("progress", {})
            .get("done", 0)
            > 20
        ),
        timeout=60,
        message="runner progress",
    )
    cluster.kubectl(
        "patch", "bt", "stopme", "-n", ns, "--type=merge", "-p", '{"spec":{"abort":true}}'
    )
    status = wait_phase(cluster, ns, "stopme", {"Aborted", "Failed", "Succeeded"}, wait_for, 60)
    assert status["phase"] == "Aborted", status.get("message")
    final = wait_for(
        lambda: (
            (s := get_status(cluster, ns, "stopme")).get("runner", {}).get("state") == "Aborted"
            and s
        ),
        timeout=45,
        message="runner wrote its partial summary",
    )
    assert 20 <= final["progress"]["done"] < 3000


BAD_HOOKS = {
    "unknown-hook": {"name": "no_such_hook", "args": "x",
                     "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1]}}},
    "empty-at": {"name": "sys_call", "args": "/bin/true",
                 "trigger": {"name": "event", "args": {"unit": "iteration", "at": []}}},
    "bad-unit": {"name": "sys_call", "args": "/bin/true",
                 "trigger": {"name": "event", "args": {"unit": "minutes", "at": [1]}}},
}  # fmt: skip


def test_bad_specs_are_refused_and_operator_keeps_serving(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    for name, hook in BAD_HOOKS.items():
        spec = dummy_spec(times=5, sleep=0.0, hooks=[hook])
        applied = cluster.kubectl(
            "apply", "-n", ns, "-f", "-", input=task_yaml(name, spec), check=False
        )
        if applied.returncode != 0:  # refused by the API server: it must name the field
            assert "hooks" in applied.stderr, applied.stderr
            continue
        status = wait_phase(cluster, ns, name, {"Failed", "Succeeded", "Running"}, wait_for, 60)
        assert status["phase"] == "Failed", (name, status)
        accepted = condition(status, "Accepted")
        assert accepted["status"] == "False"
        assert "spec.hooks[0]" in accepted["message"], accepted["message"]
        assert not jobs(cluster, ns, f"krally.dev/task={name}"), "nothing may be created"
        warning = cluster.kubectl(
            "get", "events", "-n", ns, "--field-selector",
            f"involvedObject.name={name},type=Warning", "-o", "name",
        ).stdout.strip()  # fmt: skip
        assert warning, f"no Warning Event for {name}"

    good = dummy_spec(
        times=10, sleep=0.01, hooks=[sys_call("/bin/true", "event", unit="iteration", at=[1])]
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("good", good))
    status = wait_phase(cluster, ns, "good", {"Succeeded", "Failed"}, wait_for, 90)
    assert status["phase"] == "Succeeded", status.get("message")


def test_runner_identity_is_least_privilege(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(times=5, sleep=0.0, hooks=[])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("mine", spec))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("other", spec))
    for name in ("mine", "other"):
        wait_phase(cluster, ns, name, {"Succeeded", "Failed"}, wait_for, 90)
    runner_sa = get_status(cluster, ns, "mine")["runnerJob"]  # SA, Role, Job share the name
    as_runner = f"system:serviceaccount:{ns}:{runner_sa}"

    def can(*args: str) -> bool:
        out = cluster.kubectl("auth", "can-i", *args, "-n", ns, check=False, as_user=as_runner)
        return out.stdout.strip() == "yes"

    assert can("patch", "benchmarktasks/mine", "--subresource=status")
    assert can("get", "benchmarktasks/mine")
    assert not can("create", "jobs")
    assert not can("create", "pods")
    assert not can("patch", "benchmarktasks/other", "--subresource=status")
    assert not can("patch", "benchmarktasks/mine")  # the spec is not the runner's
    assert not can("list", "benchmarktasks")
    assert not can("get", "secrets")


def test_hook_timeout_is_recorded_with_its_cause(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    hook = sys_call("sleep 60", "event", unit="iteration", at=[1])
    hook["job"] = {"timeoutSeconds": 2}
    spec = dummy_spec(times=5, sleep=0.01, hooks=[hook])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("hangs", spec))
    status = wait_phase(cluster, ns, "hangs", {"Succeeded", "Failed"}, wait_for, 90)
    assert status["phase"] == "Succeeded", status.get("message")
    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "Timeout", result["error"]
    assert "timeout of 2 s" in result["error"]["msg"], result["error"]
    (job,) = jobs(cluster, ns, "krally.dev/task=hangs,krally.dev/role=hook")
    # Armed: the pod times the hook from its firing; the Job's deadline, set when it fired,
    # adds the wait before the firing and a margin for the pod to report.
    assert job["metadata"]["annotations"]["krally.dev/armed"] == "true"
    assert job["spec"]["activeDeadlineSeconds"] >= 2 + 5


def test_unschedulable_hook_fails_by_its_timeout_with_the_cause(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    hook = sys_call("/bin/echo never", "event", unit="iteration", at=[1])
    hook["job"] = {"nodeSelector": {"krally.dev/nowhere": "true"}, "timeoutSeconds": 2}
    spec = dummy_spec(times=5, sleep=0.01, hooks=[hook])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("nowhere", spec))

    def waiting() -> dict[str, Any] | None:
        results = (get_status(cluster, ns, "nowhere").get("hooks") or [{}])[0].get("results")
        return results[0] if results and results[0].get("error") else None

    # While it waits, the pending result says why (the pod is unbound, PodScheduled=False).
    pending = wait_for(waiting, timeout=30, message="the pending hook's cause", interval=0.1)
    assert pending["status"] in ("pending", "failed"), pending
    status = wait_phase(cluster, ns, "nowhere", {"Succeeded", "Failed"}, wait_for, 90)
    assert status["phase"] == "Succeeded", status.get("message")  # hooks never fail a task
    hook_status = status["hooks"][0]
    (result,) = hook_status["results"]
    assert triggered([result]) == [("iteration", 1)]
    assert result["status"] == "failed"
    error = result["error"]
    assert error["etype"] == "Timeout", error
    assert "timeout of 2 s" in error["msg"], error
    assert "pod never scheduled: Unschedulable" in error["msg"], error
    assert "didn't match Pod's node affinity/selector" in error["msg"], error
    assert hook_status["summary"] == {"failed": 1}
    assert status["display"]["hooks"] == "0/1"
    (job,) = jobs(cluster, ns, "krally.dev/task=nowhere,krally.dev/role=hook")
    # Armed, but its pod never ran (the load did not wait for it): the deadline set when it
    # fired (its wait before, the 2 s, a margin) failed it, with the cause.
    assert job["metadata"]["annotations"]["krally.dev/armed"] == "true"
    assert job["spec"]["activeDeadlineSeconds"] >= 2 + 5
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"krally.dev/nowhere": "true"}
    # FailureTarget first, Failed once its pod is gone: the operator acts on either.
    reasons = {
        c["type"]: c.get("reason")
        for c in job["status"].get("conditions") or []
        if c["status"] == "True"
    }
    assert "DeadlineExceeded" in (reasons.get("Failed"), reasons.get("FailureTarget")), reasons
    warning = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", "reason=HookFailed",
        "-o", "jsonpath={.items[*].message}",
    ).stdout  # fmt: skip
    assert "Unschedulable" in warning, warning


def test_deleting_a_task_deletes_its_children(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(
        times=5, sleep=0.01, hooks=[sys_call("/bin/true", "event", unit="iteration", at=[1])]
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("gone", spec))
    wait_phase(cluster, ns, "gone", {"Succeeded"}, wait_for, 90)
    selector = "krally.dev/task=gone"
    kinds = "jobs,serviceaccounts,roles,rolebindings"
    # Runner and hook Jobs, the runner's ServiceAccount, Role, RoleBinding, the hooks' account
    # and the armed hook pods' reader Role and RoleBinding.
    children = cluster.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout
    assert len(children.split()) == 8, children
    # No finalizer: deletion completes even with the operator stopped.
    operator.stop()
    cluster.kubectl("delete", "bt", "gone", "-n", ns, "--timeout=30s")
    wait_for(
        lambda: not cluster.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout,
        timeout=120,
        message="children garbage-collected",
    )


def test_runner_timeout_fails_the_task(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(times=5000, sleep=0.01, hooks=[])
    spec["runnerPod"] = {"timeoutSeconds": 4}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("slow", spec))
    status = wait_phase(cluster, ns, "slow", {"Succeeded", "Failed"}, wait_for, 90)
    assert status["phase"] == "Failed"
    assert condition(status, "Failed")["reason"] == "RunnerTimedOut", status["message"]
    assert "timeoutSeconds" in status["message"]
