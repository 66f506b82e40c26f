"""The Argo CD health check (manifests/argocd/health.lua) on statuses the real operator wrote on
the real control plane: `krally operator` runs against the test API server, its runner and hook
pods run on the process node, and each task is read back with `kubectl get -o json` and given to
the script (Debian's Lua 5.4 through tests/argocd/run_health.lua, as Argo CD gives it `obj`).

Tasks: one passes its SLA (Healthy), one fails it (Degraded, naming the criterion), one whose
setup raises (runner error: Degraded), one long one seen while it runs (Progressing), right after
spec.abort (its status behind the new generation: Progressing) and once aborted (Suspended).
`kubectl get bt -o wide` shows the verdict's columns.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.argocd.health import require_lua, run_health
from tests.cluster import Cluster, wait_for
from tests.e2e.support import CLUSTER_ROLE, OPERATOR_SA, Operator

from krally.api import crd

pytestmark = pytest.mark.cluster

TERMINAL = {"Succeeded", "Failed", "Aborted"}


def _task(name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "krally.dev/v1alpha1",
            "kind": "BenchmarkTask",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


HOOK = {
    "name": "sys_call",
    "args": "/bin/true",
    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [3]}},
}
TASKS = {
    # 20 iterations, a hook at 3, no failure: SLA passed.
    "healthy": {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
        "runner": {"type": "constant", "times": 20, "concurrency": 1},
        "sla": {"failure_rate": {"max": 0}, "max_seconds_per_iteration": 10},
        "hooks": [HOOK],
    },
    # Iterations 1..3 fail out of 20 (15%): failure_rate fails, the time limit passes.
    "sla-failed": {
        "scenario": {
            "name": "Dummy.failure",
            "args": {"sleep": 0.01, "from_iteration": 1, "to_iteration": 3},
        },
        "runner": {"type": "constant", "times": 20, "concurrency": 1},
        "sla": {"failure_rate": {"max": 5}, "max_seconds_per_iteration": 10},
    },
    # The context's setup raises: the runner reports Error, the task fails.
    "runner-error": {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
        "runner": {"type": "constant", "times": 5},
        "contexts": {"dummy_context": {"fail_setup": True}},
    },
    # Long enough to be seen running, then aborted.
    "slow": {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.05}},
        "runner": {"type": "constant", "times": 3000, "concurrency": 1},
        "sla": {"failure_rate": {"max": 0}},
    },
}


class Runs:
    """The objects read back from the API server at each moment that matters."""

    def __init__(self, cluster: Cluster, ns: str) -> None:
        self.cluster, self.ns = cluster, ns
        self.objects: dict[str, dict[str, Any]] = {}
        self.wide = ""

    def get(self, name: str) -> dict[str, Any]:
        out = self.cluster.kubectl("get", "bt", name, "-n", self.ns, "-o", "json").stdout
        obj: dict[str, Any] = json.loads(out)
        return obj

    def wait(self, name: str, done: Any, what: str, timeout: float = 180) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            obj = self.get(name)
            return obj if done(obj.get("status") or {}) else None

        found: dict[str, Any] = wait_for(
            reached,
            timeout=timeout,
            message=f"bt/{name}: {what}",
            interval=0.3,
        )
        return found


@pytest.fixture(scope="module")
def runs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    require_lua()  # before minutes of cluster work
    ns = cluster.create_namespace(f"t-argocd-{secrets.token_hex(2)}")
    cluster.apply_crd(crd.render_yaml(), crd.NAME)
    cluster.kubectl("apply", "-f", str(CLUSTER_ROLE))
    cluster.kubectl("create", "serviceaccount", OPERATOR_SA, "-n", ns)
    cluster.kubectl(
        "create", "rolebinding", OPERATOR_SA, "-n", ns,
        "--clusterrole=krally-operator", f"--serviceaccount={ns}:{OPERATOR_SA}",
    )  # fmt: skip
    workdir: Path = tmp_path_factory.mktemp("argocd")
    operator = Operator(cluster, ns, workdir).start()
    made = Runs(cluster, ns)
    try:
        for name, spec in TASKS.items():
            out = cluster.kubectl(
                "create", "-n", ns, "-o", "json", "-f", "-", input=_task(name, spec)
            )
            made.objects[f"{name}@created"] = json.loads(out.stdout)
        made.objects["slow@running"] = made.wait(
            "slow",
            lambda s: s.get("phase") == "Running" and (s.get("progress") or {}).get("done", 0) > 5,
            "running with progress",
            timeout=120,
        )
        # The API server's answer to the patch: the new generation with the status the operator
        # wrote for the previous one (it has not seen the abort yet).
        patched = cluster.kubectl(
            "patch", "bt", "slow", "-n", ns, "--type=merge", "-o", "json",
            "-p", '{"spec":{"abort":true}}',
        )  # fmt: skip
        made.objects["slow@abort-patched"] = json.loads(patched.stdout)
        for name in TASKS:
            made.objects[name] = made.wait(
                name,
                lambda s: s.get("phase") in TERMINAL and (s.get("runner") or {}).get("finishedAt"),
                "a final phase and the runner's final write",
            )
        made.wide = cluster.kubectl("get", "bt", "-n", ns, "-o", "wide").stdout
        print(made.wide)
        yield made
    finally:
        cluster.kubectl("delete", "bt", "--all", "-n", ns, "--wait=false", check=False)
        operator.stop()
        print(f"--- operator log ({operator.log}) ---\n{operator.output(120)}")
        cluster.delete_namespace(ns)


def test_sla_passed_is_healthy(runs: Runs) -> None:
    obj = runs.objects["healthy"]
    status = obj["status"]
    assert status["phase"] == "Succeeded" and status["passSLA"] is True, status.get("message")
    hs = run_health(obj)
    assert hs["status"] == "Healthy", hs
    display = status["display"]
    assert (display["progress"], display["failures"], display["hooks"]) == ("20/20", "0", "1/1")
    assert hs["message"] == (
        f"SLA passed (iterations 20/20, failures 0, p95 {display['p95']}, hooks 1/1)"
    )
    assert display["p95"].endswith("s") and display["failedSLA"] == ""


def test_sla_failed_is_degraded_naming_the_criterion(runs: Runs) -> None:
    obj = runs.objects["sla-failed"]
    status = obj["status"]
    assert status["phase"] == "Succeeded" and status["passSLA"] is False, status.get("message")
    assert status["display"]["failedSLA"] == "failure_rate 15% > 5%"
    assert status["display"]["failures"] == "3 (15%)"
    hs = run_health(obj)
    assert hs["status"] == "Degraded", hs
    assert hs["message"].startswith("SLA failed: failure_rate 15% > 5% (iterations 20/20, "), hs


def test_runner_error_is_degraded_with_its_cause(runs: Runs) -> None:
    obj = runs.objects["runner-error"]
    assert obj["status"]["phase"] == "Failed", obj["status"].get("message")
    hs = run_health(obj)
    assert hs["status"] == "Degraded", hs
    assert hs["message"].startswith(
        "RunnerError: runner failed: ContextError: context 'dummy_context' setup failed"
    ), hs


def test_no_status_and_running_are_progressing(runs: Runs) -> None:
    created = runs.objects["slow@created"]
    assert "status" not in created  # the API server's answer to the create
    assert run_health(created) == {
        "status": "Progressing",
        "message": "Waiting for the krally operator to accept the task",
    }
    running = runs.objects["slow@running"]
    hs = run_health(running)
    assert hs["status"] == "Progressing", hs
    assert hs["message"].startswith("Running: load running at "), hs


def test_a_status_behind_the_generation_is_progressing_then_aborted_is_suspended(
    runs: Runs,
) -> None:
    patched = runs.objects["slow@abort-patched"]
    assert patched["metadata"]["generation"] == 2
    assert patched["status"]["observedGeneration"] == 1
    hs = run_health(patched)
    assert hs == {
        "status": "Progressing",
        "message": "Waiting for the krally operator to observe generation 2 "
        "(status is of generation 1)",
    }
    aborted = runs.objects["slow"]
    assert aborted["status"]["phase"] == "Aborted", aborted["status"].get("message")
    assert aborted["status"]["observedGeneration"] == 2
    hs = run_health(aborted)
    assert hs["status"] == "Suspended", hs
    assert hs["message"].startswith("Aborted: aborted by spec.abort at "), hs


def test_kubectl_get_wide_shows_the_verdict(runs: Runs) -> None:
    header, *lines = runs.wide.splitlines()
    columns = ["PHASE", "PROGRESS", "HOOKS", "SLA", "RECOVERY", "AGE", "FAILURES", "P95"]
    assert header.split()[1:9] == columns, header
    assert "FAILED SLA" in header and header.rstrip().endswith("MESSAGE")
    (failed,) = [line for line in lines if line.startswith("sla-failed ")]
    assert "failure_rate 15% > 5%" in failed and "3 (15%)" in failed
    for name in TASKS:  # every status the operator wrote is one the CRD keeps whole
        status = runs.objects[name]["status"]
        assert set(status["display"]) == {
            "progress", "hooks", "sla", "recovery", "failures", "p95", "failedSLA",
        }  # fmt: skip


def _events(runs: Runs, name: str) -> dict[str, dict[str, Any]]:
    out = runs.cluster.kubectl(
        "get", "events", "-n", runs.ns, "-o", "json",
        "--field-selector", f"involvedObject.name={name}",
    ).stdout  # fmt: skip
    return {e["reason"]: e for e in json.loads(out)["items"]}


def test_verdict_events_carry_the_details(runs: Runs) -> None:
    sla = wait_for(
        lambda: _events(runs, "sla-failed").get("SLAFailed"), timeout=30, message="SLAFailed"
    )
    assert sla["type"] == "Warning"
    assert sla["message"] == (
        "SLA failed: failure_rate: Failure rate criteria 0.00% <= 15.00% <= 5.00% - Failed"
    )
    error = wait_for(
        lambda: _events(runs, "runner-error").get("RunnerError"), timeout=30, message="error"
    )
    assert error["type"] == "Warning"
    assert error["message"].startswith(
        "runner failed: ContextError: context 'dummy_context' setup failed"
    ), error["message"]
    completed = wait_for(
        lambda: _events(runs, "healthy").get("Completed"), timeout=30, message="Completed"
    )
    assert "(iterations 20/20, failures 0, p95 " in completed["message"], completed["message"]
