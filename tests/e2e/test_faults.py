"""Faults on the real node (issue 10): refused creates, abort with a running hook, a SIGKILLed
runner, an API outage mid-run and as the load ends, short-lived watches."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from tests.cluster import images
from tests.cluster.controlplane import Cluster
from tests.e2e.support import (
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

pytestmark = pytest.mark.cluster

FINAL = {"Succeeded", "Failed", "Aborted"}


def requests_total(cluster: Cluster, *labels: str) -> int:
    """The API server's count of requests whose labels include ``labels``
    (apiserver_request_total, summed over the other labels)."""
    text = cluster.http.request("GET", "/metrics")["body"]
    total = 0
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and all(x in line for x in labels):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def job_post_failures(cluster: Cluster) -> int:
    """Refused Job creates (POST jobs answered 4xx)."""
    return requests_total(cluster, 'resource="jobs"', 'verb="POST"', 'code="4')


def deny_jobs(cluster: Cluster, ns: str, role: str) -> str:
    """A ValidatingAdmissionPolicy refusing, in ``ns`` only, every Job of krally ``role``."""
    name = f"deny-{role}-{ns}"[:63]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["batch"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["jobs"],
                    }
                ]
            },
            "validations": [
                {"expression": "false", "message": f"{role} Jobs are not allowed here (test)"}
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "objectSelector": {"matchLabels": {"krally.dev/role": role}},
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(policy))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(binding))
    return name


def wait_denied(cluster: Cluster, ns: str, role: str, wait_for: Any) -> None:
    """Policies take effect a moment after they are created: probe with a dry-run Job."""
    probe = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "probe", "labels": {"krally.dev/role": role}},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "x"}]}}},
    }  # fmt: skip

    def denied() -> bool:
        proc = cluster.kubectl(
            "create", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(probe), check=False
        )
        return proc.returncode != 0 and "not allowed here" in proc.stderr

    wait_for(denied, timeout=30, message="the admission policy denies Jobs")


def undeny(cluster: Cluster, name: str) -> None:
    cluster.kubectl("delete", "validatingadmissionpolicybinding", name, check=False)
    cluster.kubectl("delete", "validatingadmissionpolicy", name, check=False)


def test_a_refused_hook_job_fails_its_firing_and_the_task_completes(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    policy = deny_jobs(cluster, ns, "hook")
    try:
        wait_denied(cluster, ns, "hook", wait_for)
        before = job_post_failures(cluster)
        started = time.monotonic()
        spec = dummy_spec(
            times=400,
            sleep=0.02,
            hooks=[sys_call("/bin/echo hi", "event", unit="iteration", at=[5, 200])],
        )
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("refused", spec))
        status = wait_phase(cluster, ns, "refused", FINAL, wait_for, 120)
        elapsed = time.monotonic() - started
        refused = job_post_failures(cluster) - before
    finally:
        undeny(cluster, policy)
    assert status["phase"] == "Succeeded", status.get("message")
    results = status["hooks"][0]["results"]
    assert triggered(results) == [("iteration", 5), ("iteration", 200)]
    for result in results:
        assert result["status"] == "failed", result
        assert result["error"]["etype"] == "JobCreateFailed"
        assert "hook Jobs are not allowed here (test)" in result["error"]["msg"]
    assert status["hooks"][0]["summary"] == {"failed": 2}
    # One request per firing: a refusal is not retried.
    assert refused == 2, (refused, elapsed)
    print(f"refused hook creates: {refused} in {elapsed:.1f} s")
    assert jobs(cluster, ns, "krally.dev/role=hook") == []


def test_a_refused_runner_job_fails_the_task_with_the_api_message(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    policy = deny_jobs(cluster, ns, "runner")
    try:
        wait_denied(cluster, ns, "runner", wait_for)
        before = job_post_failures(cluster)
        spec = dummy_spec(times=10, sleep=0.01, hooks=[])
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("norunner", spec))
        status = wait_phase(cluster, ns, "norunner", FINAL, wait_for, 60)
        time.sleep(5)  # would a hot loop go on?
        refused = job_post_failures(cluster) - before
    finally:
        undeny(cluster, policy)
    assert status["phase"] == "Failed"
    assert condition(status, "Failed")["reason"] == "RunnerCreateFailed"
    assert "runner Jobs are not allowed here (test)" in status["message"]
    assert refused == 1


def test_abort_stops_a_running_hook_job(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(
        times=100000,
        sleep=0.01,
        hooks=[sys_call("/bin/sleep 300", "event", unit="iteration", at=[5])],
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("stophook", spec))

    def hook_running() -> bool:
        hooks = get_status(cluster, ns, "stophook").get("hooks") or [{}]
        return any(r.get("status") == "running" for r in hooks[0].get("results") or [])

    wait_for(hook_running, timeout=90, message="the sleeping hook runs")
    mark = time.monotonic()
    cluster.kubectl(
        "patch", "bt", "stophook", "-n", ns, "--type=merge", "-p", '{"spec":{"abort":true}}'
    )
    status = wait_phase(cluster, ns, "stophook", FINAL, wait_for, 60)
    assert status["phase"] == "Aborted", status.get("message")
    wait_for(
        lambda: jobs(cluster, ns, "krally.dev/role=hook") == [],
        timeout=30,
        message="the running hook Job is deleted",
    )
    aborted_in = time.monotonic() - mark
    (result,) = get_status(cluster, ns, "stophook")["hooks"][0]["results"]
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "Aborted"
    assert result["error"]["msg"] == "hook Job stopped by spec.abort"
    print(f"abort → hook Job gone in {aborted_in:.1f} s")


def runner_pid(ns: str, name: str) -> int | None:
    """The runner container's process on this host (containers share the host's /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if b"runner" not in argv or not any(a.endswith(b"krally") for a in argv):
                continue
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"KRALLY_TASK_NAME={name}".encode() in env and (
            f"KRALLY_TASK_NAMESPACE={ns}".encode() in env
        ):
            return int(entry)
    return None


def test_a_sigkilled_runner_fails_the_task_keeping_progress(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = dummy_spec(times=3000, sleep=0.01, hooks=[])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("killed", spec))

    def progressed() -> bool:
        progress = (get_status(cluster, ns, "killed").get("runner") or {}).get("progress") or {}
        return progress.get("done", 0) >= 50

    wait_for(progressed, timeout=90, message="runner progress ≥ 50")
    pid = wait_for(lambda: runner_pid(ns, "killed"), timeout=10, message="the runner process")
    os.kill(pid, signal.SIGKILL)
    status = wait_phase(cluster, ns, "killed", FINAL, wait_for, 90)
    assert status["phase"] == "Failed"
    assert condition(status, "Failed")["reason"] == "RunnerKilled", status["message"]
    assert status["message"].startswith("the runner was killed (SIGKILL, exit code 137) at ")
    assert status["message"].endswith(" iterations; partial results kept")
    assert 50 <= status["progress"]["done"] < 3000
    assert status["runner"]["state"] == "Running"  # it had no chance to say more


def test_an_api_outage_mid_run_and_as_the_load_ends_loses_nothing(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    at = [20, 100, 200, 300, 400, 500, 600, 690]
    hook = sys_call("/bin/echo hi", "event", unit="iteration", at=at)
    # A firing during the 30 s outage reaches the operator only after it (and the API server's
    # warm-up, when it answers 403): it must still run, not turn Late (its own tests).
    hook["maxDelaySeconds"] = 300
    # A hook Job's deadline counts wall time, the outage included (the Operator fixture's
    # default is 60 s): a Job created as the second outage starts must not time out in it.
    hook["job"] = {"timeoutSeconds": 300}
    spec = dummy_spec(times=700, sleep=0.1, hooks=[hook])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("outage", spec))

    def done_at_least(n: int) -> Any:
        def check() -> bool:
            progress = (get_status(cluster, ns, "outage").get("runner") or {}).get("progress")
            return (progress or {}).get("done", 0) >= n

        return check

    wait_for(done_at_least(120), timeout=120, message="runner progress ≥ 120")
    first = cluster.restart_component("kube-apiserver", down_for=30)
    wait_for(done_at_least(640), timeout=120, message="runner progress ≥ 640")
    second = cluster.restart_component("kube-apiserver", down_for=30)
    back = time.monotonic()
    status = wait_phase(cluster, ns, "outage", FINAL, wait_for, 180)
    recovered = time.monotonic() - back
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["progress"]["done"] == 700
    assert status["result"]["iterations"] == 700
    results = status["hooks"][0]["results"]
    assert triggered(results) == [("iteration", v) for v in at]  # none lost, none twice
    brief = [(r["job"], r["status"], r.get("error")) for r in results]
    assert status["hooks"][0]["summary"] == {"success": len(at)}, brief
    hook_jobs = jobs(cluster, ns, "krally.dev/role=hook")
    values = sorted(int(j["metadata"]["labels"]["krally.dev/trigger-value"]) for j in hook_jobs)
    assert values == at
    assert operator.proc is not None and operator.proc.poll() is None  # rode it out
    print(f"outages {first:.0f} s and {second:.0f} s; Succeeded {recovered:.1f} s after the 2nd")


def test_short_watches_are_re_established(
    cluster: Cluster, ns: str, wait_for: Any, tmp_path: Path
) -> None:
    # The API server ends every watch after 2 s: a task still runs to completion.
    watches = ('resource="benchmarktasks"', 'verb="WATCH"')
    before = requests_total(cluster, *watches)
    op = Operator(cluster, ns, tmp_path).start(KRALLY_WATCH_TIMEOUT="2")
    try:
        spec = dummy_spec(
            times=300,
            sleep=0.05,
            hooks=[sys_call("/bin/echo hi", "event", unit="iteration", at=[10, 150, 290])],
        )
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("rewatch", spec))
        status = wait_phase(cluster, ns, "rewatch", FINAL, wait_for, 120)
        assert status["phase"] == "Succeeded", status.get("message")
        assert status["hooks"][0]["summary"] == {"success": 3}
        log = op.log.read_text(errors="replace")
        assert op.proc is not None and op.proc.poll() is None, log[-3000:]
        # The task watch really was ended and re-established, again and again.
        assert requests_total(cluster, *watches) - before >= 4
    finally:
        cluster.kubectl("delete", "bt", "--all", "-n", ns, "--wait=false", check=False)
        op.stop()


GARBAGE = [
    "not a result at all",
    '{"status": "great"}',
    '{"status": "success", "started_at": "yesterday"}',
    '{"status": "success", "output": "x"}',
    "[" * 3000,
]


def test_a_hook_image_writing_garbage_gets_failed_invalid_results(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    # The alt image's test-only hook writes its config as the termination message, exits 0.
    hooks = [
        {
            "name": "krally_test_garbage",
            "args": text,
            "trigger": {"name": "event", "args": {"unit": "iteration", "at": [2]}},
            "job": {"image": images.ALT_REF},
        }
        for text in GARBAGE
    ]
    spec = dummy_spec(times=200, sleep=0.05, hooks=hooks)
    spec["runnerPod"] = {"image": images.ALT_REF}  # the runner loads the hook plugins too
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("garbage", spec))
    status = wait_phase(cluster, ns, "garbage", FINAL, wait_for, 180)
    assert status["phase"] == "Succeeded", status.get("message")
    for hook, text in zip(status["hooks"], GARBAGE, strict=True):
        (result,) = hook["results"]
        assert result["status"] == "failed", result
        assert result["error"]["etype"] == "InvalidHookResult", result
        assert result["error"]["details"] == text[:500]
    assert "Traceback" not in operator.log.read_text(errors="replace")


def test_the_status_stays_under_its_byte_budget(
    cluster: Cluster, ns: str, wait_for: Any, tmp_path: Path
) -> None:
    # A small budget and hooks that print 3 KB each: 12 firings would need ~40 KB of outputs
    # besides the rest (results, firings, the runner's summary and per-firing impact).
    budget = 30_000
    op = Operator(cluster, ns, tmp_path).start(KRALLY_STATUS_MAX_BYTES=str(budget))
    try:
        at = list(range(5, 125, 10))
        command = 'python3 -c "print(3000 * chr(120))"'
        printer = sys_call(command, "event", unit="iteration", at=at)
        spec = dummy_spec(times=150, sleep=0.05, hooks=[printer])
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("budget", spec))
        status = wait_phase(cluster, ns, "budget", FINAL, wait_for, 180)
        assert status["phase"] == "Succeeded", status.get("message")
        (hook,) = status["hooks"]
        assert hook["summary"] == {"success": len(at)}
        assert [r["status"] for r in hook["results"]] == ["success"] * len(at)
        trimmed = [bool(r.get("trimmed")) for r in hook["results"]]
        size = len(json.dumps(status, separators=(",", ":")).encode())
        assert trimmed[0] and not trimmed[-1], (size, trimmed)  # the oldest outputs went first
        assert size <= budget, size
        print(f"status: {size} bytes for {len(at)} firings, {sum(trimmed)} outputs trimmed")
    finally:
        cluster.kubectl("delete", "bt", "--all", "-n", ns, "--wait=false", check=False)
        op.stop()


def test_a_firing_the_operator_sees_late_is_recorded_late_not_run(
    cluster: Cluster, ns: str, wait_for: Any, tmp_path: Path
) -> None:
    """The operator is down when the hook fires and comes back later than the hook's
    maxDelaySeconds: the disruption is not run minutes late, it is recorded failed (Late)."""
    op = Operator(cluster, ns, tmp_path).start()
    try:
        hook = sys_call("/bin/echo late", "event", unit="iteration", at=[3])
        hook["maxDelaySeconds"] = 1
        # Create-on-fire: an armed pod would see the firing at once and run it in time, with
        # or without the operator (tests/e2e/test_armed.py).
        spec = {**dummy_spec(times=40, sleep=0.1, hooks=[hook]), "arming": {"enabled": False}}
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("late", spec))
        wait_for(lambda: jobs(cluster, ns, "krally.dev/role=runner"), timeout=60, message="runner")
        op.kill()  # down before the runner pod has even started

        def fired() -> bool:
            runner = get_status(cluster, ns, "late").get("runner") or {}
            return bool(runner.get("firings"))

        wait_for(fired, timeout=90, message="the runner records the firing")
        time.sleep(3)  # > maxDelaySeconds since the firing
        op.start()
        status = wait_phase(cluster, ns, "late", FINAL, wait_for, 120)
        (result,) = status["hooks"][0]["results"]
        assert result["status"] == "failed", result
        assert result["error"]["etype"] == "Late", result
        assert not jobs(cluster, ns, "krally.dev/role=hook"), "a Late firing must not run"
    finally:
        cluster.kubectl("delete", "bt", "--all", "-n", ns, "--wait=false", check=False)
        op.stop()
        print(f"--- operator log ---\n{op.output(60)}")
