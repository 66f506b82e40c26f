"""The Argo CD health check (manifests/argocd/health.lua) on statuses derive_status makes, and on
objects it must survive (no status, an unknown phase, wrong types): it never raises.

The statuses written by the real operator on a real control plane are the integration test's
(tests/integration/test_argocd_health.py); these are the edge cases and the mapping table.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from tests.argocd.health import KEY, PATCH, SCRIPT, render_patch, run_health

from krally.kube.operator.status.derive import derive_status

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def task(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "t", "namespace": "ns", "generation": generation},
        "spec": {"scenario": {"name": "Dummy.dummy"}, "runner": {"type": "constant"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def derived(runner: dict[str, Any] | None, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """The status the operator writes for this runner report and runner Job."""
    obj = task({"runner": runner} if runner else {})
    status = derive_status(obj, jobs, [], NOW, created=())
    status = {k: v for k, v in status.items() if v is not None}
    if runner:
        status["runner"] = runner
    return task(status)


def runner_job(state: str) -> dict[str, Any]:
    conditions = {"complete": [{"type": "Complete", "status": "True"}], "active": []}[state]
    return {
        "metadata": {"name": "krally-t-runner"},
        "status": {"active": int(state == "active"), "conditions": conditions},
    }


def finished(sla: list[dict[str, Any]], failures: int = 0) -> dict[str, Any]:
    return {
        "state": "Finished",
        "progress": {"done": 100, "total": 100, "failures": failures},
        "summary": {
            "iterations": 100,
            "failures": failures,
            "durations": {"p95": 0.0123},
            "sla": sla,
            "passSLA": all(s["success"] for s in sla),
        },
    }


FAILED_RATE = {
    "criterion": "failure_rate",
    "success": False,
    "detail": "Failure rate criteria 0.00% <= 3.00% <= 1.00% - Failed",
    "short": "failure_rate 3% > 1%",
}


def test_the_argocd_cm_patch_holds_the_script() -> None:
    data = yaml.safe_load(PATCH.read_text())
    assert (data["kind"], data["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert data["data"][KEY] == SCRIPT.read_text(), (
        "manifests/argocd/argocd-cm-patch.yaml differs from health.lua: "
        "run `python -m tests.argocd.health --write`"
    )
    assert render_patch() == PATCH.read_text()


def test_the_script_is_lua_5_1_without_string_or_math_libraries() -> None:
    # Argo CD's gopher-lua is Lua 5.1 and loads no string/math library for argocd-cm scripts;
    # the driver refuses those libraries at run time, this refuses 5.2+ syntax up front.
    code = "\n".join(line.split("--", 1)[0] for line in SCRIPT.read_text().splitlines())
    assert not re.search(r"\bgoto\b|//|<const>|<close>|::\w+::|\bstring\.|\bmath\.|:\w+\(", code)


def test_no_status_is_progressing() -> None:
    hs = run_health(task())
    assert hs == {
        "status": "Progressing",
        "message": "Waiting for the krally operator to accept the task",
    }


def test_a_status_behind_the_generation_is_progressing() -> None:
    obj = derived(finished([{"criterion": "failure_rate", "success": True, "detail": "ok"}]), [])
    obj["metadata"]["generation"] = 2  # spec.abort was just set: not acted upon yet
    hs = run_health(obj)
    assert hs["status"] == "Progressing"
    assert "observe generation 2 (status is of generation 1)" in hs["message"]
    del obj["status"]["observedGeneration"]
    assert "(status is of generation none)" in run_health(obj)["message"]


@pytest.mark.parametrize(
    ("status", "health", "words"),
    [
        ({"phase": "Pending", "message": "creating the runner Job"}, "Progressing", "Pending: "),
        ({"phase": "Running", "message": "load running"}, "Progressing", "Running: load"),
        ({"phase": "Finishing", "message": "load finished"}, "Progressing", "Finishing: "),
        ({"phase": "Aborted", "message": "aborted by spec.abort"}, "Suspended", "Aborted: "),
        ({"phase": "Paused", "message": "new"}, "Unknown", "Unknown BenchmarkTask phase Paused"),
        ({"phase": 7}, "Unknown", "phase (number)"),
        ({"phase": "Succeeded"}, "Healthy", "no SLA verdict"),
        (
            {"phase": "Failed", "message": "invalid spec: spec.x", "conditions": "not a list"},
            "Degraded",
            "Failed: invalid spec: spec.x",
        ),
        (
            {"phase": "Running", "runner": {"state": "Error", "error": "ValueError: x"}},
            "Degraded",
            "RunnerError: runner failed: ValueError: x",
        ),
        (
            {"phase": "Succeeded", "conditions": [{"type": "SLAPassed", "status": "False"}]},
            "Degraded",
            "SLA failed: no criterion detail",
        ),
        (
            {"phase": "Succeeded", "passSLA": False, "sla": [FAILED_RATE], "display": []},
            "Degraded",
            "SLA failed: failure_rate: Failure rate criteria 0.00% <= 3.00% <= 1.00% - Failed",
        ),
    ],
)
def test_edge_cases_never_raise(status: dict[str, Any], health: str, words: str) -> None:
    hs = run_health(task({"observedGeneration": 1, **status}))
    assert hs["status"] == health and words in hs["message"], hs


def test_statuses_derive_status_writes() -> None:
    passed = [{"criterion": "failure_rate", "success": True, "detail": "ok - Passed"}]
    hs = run_health(derived(finished(passed), [runner_job("complete")]))
    assert hs == {
        "status": "Healthy",
        "message": "SLA passed (iterations 100/100, failures 0, p95 0.0123s)",
    }
    hs = run_health(derived(finished([FAILED_RATE], failures=3), [runner_job("complete")]))
    assert hs == {
        "status": "Degraded",
        "message": "SLA failed: failure_rate 3% > 1% "
        "(iterations 100/100, failures 3 (3%), p95 0.0123s)",
    }
    running = {"state": "Running", "progress": {"done": 40, "total": 100, "failures": 1}}
    hs = run_health(derived(running, [runner_job("active")]))
    assert hs == {
        "status": "Progressing",
        "message": "Running: load running at 40/100 iterations (failures 1 (2.5%))",
    }
    crashed = {"state": "Error", "error": "ZeroDivisionError: division by zero"}
    hs = run_health(derived(crashed, [runner_job("active")]))
    assert hs == {
        "status": "Degraded",
        "message": "RunnerError: runner failed: ZeroDivisionError: division by zero",
    }


def test_a_missing_lua_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.argocd import health

    monkeypatch.setattr(health.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"lua5\.4 is not installed"):
        health.require_lua()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="CI=true fails instead"):
        health.require_lua()
