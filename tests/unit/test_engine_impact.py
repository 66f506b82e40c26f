"""The engine's disruption impact: recorder fed, firings marked, settle, SLA, reports."""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from krally.results import impact_table, rally
from krally.results.console import render_report
from krally.task import hook
from krally.task.engine import run_workload
from krally.task.hook_executor import LocalLauncher
from krally.task.spec import HookSpec, TaskSpec, WorkloadSpec
from krally.task.task_run import run_task

# Small windows so that a 3-second load has a baseline, a disruption and an after window.
IMPACT = {
    "baselineSeconds": 1,
    "afterSeconds": 0.5,
    "windowSeconds": 0.2,
    "resolutionSeconds": 0.05,
    "maxSeconds": 5,
    # Loose on latency and throughput: a busy test machine must not look disrupted.
    "tolerance": {"errorRate": 0.02, "p95Ratio": 20, "throughputRatio": 0.2},
}


@hook.configure(name="test_impact_pause")
class PauseHook(hook.Hook):
    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "number"}

    def run(self) -> None:
        time.sleep(self.config)


def workload(
    *,
    hooks: bool = True,
    impact: dict[str, Any] | None = None,
    sla: Any = None,
    times: int = 1400,
) -> WorkloadSpec:
    # Dummy.failure: ~1 ms iterations; the ones from 700 to 800 fail (the "disruption"),
    # and the hook fires as iteration 700 starts.
    return WorkloadSpec(
        scenario_name="Dummy.failure",
        scenario_args={"sleep": 0.001, "from_iteration": 700, "to_iteration": 800},
        runner_type="constant",
        runner_args={"times": times, "concurrency": 1},
        sla=sla if sla is not None else {"disruption_impact": {"max_recovery_seconds": 5}},
        hooks=(
            (
                HookSpec(
                    action_name="test_impact_pause",
                    action_args=0.05,
                    trigger_name="event",
                    trigger_args={"unit": "iteration", "at": [700]},
                ),
            )
            if hooks
            else ()
        ),
        impact=IMPACT if impact is None else impact,
    )


def test_a_disruption_has_its_impact_in_the_result() -> None:
    result = run_workload(workload())
    json.dumps(result, allow_nan=False)
    (entry,) = result["impact"]
    assert entry["hook"] == 0 and entry["name"] == "test_impact_pause"
    assert entry["triggeredBy"] == {"eventType": "iteration", "value": 700}
    (hook_result,) = result["hooks"][0]["results"]
    assert entry["startedAt"] == hook_result["started_at"]
    assert entry["finishedAt"] == hook_result["finished_at"]
    assert entry["baseline"]["failures"] == 0 and entry["baseline"]["iterations"] > 100
    assert entry["during"]["failures"] > 0
    assert entry["degraded"] is True and entry["recovered"] is True, entry
    assert 0 < entry["recoverySeconds"] < 2
    assert result["pass_sla"] is True, result["sla_results"]
    (criterion,) = result["sla_results"]["sla"]
    assert criterion["criterion"] == "disruption_impact"
    assert "worst hook #1 test_impact_pause at iteration 700" in criterion["detail"]


def test_the_sla_fails_on_a_slow_recovery() -> None:
    result = run_workload(workload(sla={"disruption_impact": {"max_recovery_seconds": 0.01}}))
    assert result["pass_sla"] is False
    assert "recovery" in result["sla_results"]["sla"][0]["detail"]


def test_no_hooks_or_disabled_means_no_analysis_and_a_vacuous_gate_fails() -> None:
    for spec in (workload(hooks=False, times=20), workload(impact={"enabled": False}, times=710)):
        result = run_workload(spec)
        assert "impact" not in result
        (criterion,) = result["sla_results"]["sla"]
        assert criterion["success"] is False
        assert criterion["detail"].startswith("No disruption was analysed")


class SettlingLauncher(LocalLauncher):
    """As the runner pod's launcher: the real timings come from ``settle`` after the load."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[dict[str, Any]], float]] = []

    def settle(self, hooks: list[dict[str, Any]], load_end: float) -> list[dict[str, Any]]:
        self.calls.append((hooks, load_end))
        settled = json.loads(json.dumps(hooks))
        for result in settled[0]["results"]:
            result["status"] = "running"
            result["finished_at"] = None  # still running when the load ended
        return settled


def test_the_launcher_settles_the_timings_for_the_analysis_only() -> None:
    launcher = SettlingLauncher()
    result = run_workload(workload(sla={}), launcher=launcher)
    ((hooks, load_end),) = launcher.calls
    assert hooks == result["hooks"]
    assert load_end <= time.time() and load_end >= result["start_time"]
    assert result["hooks"][0]["results"][0]["status"] == "success"  # as the executor gave it
    (entry,) = result["impact"]
    assert entry["status"] == "running" and entry["after"] is None
    assert any("still running" in note for note in entry["notes"])


def test_reports_carry_the_impact_outside_rallys_workload() -> None:
    task = TaskSpec(title="impact", workloads=(workload(),))
    report = run_task(task)
    (work,) = report["tasks"][0]["subtasks"][0]["workloads"]
    out = rally.to_rally(report)
    (rally_workload,) = out["tasks"][0]["subtasks"][0]["workloads"]
    assert "impact" not in rally_workload
    assert out["krally"]["workloads"][work["uuid"]]["impact"] == rally.finite(work["impact"])
    back = rally.inline_extras(json.loads(json.dumps(out)))
    (again,) = back["tasks"][0]["subtasks"][0]["workloads"]
    assert again["impact"] == rally.finite(work["impact"])
    text = render_report(back)
    assert "Disruption impact" in text and "iteration 700" in text
    assert impact_table.render(work["impact"]) in text


def test_the_table_shows_every_case() -> None:
    window = {"errorRate": 0.5, "p95": 0.25}
    impacts = [
        {
            "hook": 0,
            "name": "sys_call",
            "triggeredBy": {"eventType": "time", "value": 3},
            "baseline": window,
            "during": window,
            "after": None,
            "throughputRatio": 0.5,
            "degraded": True,
            "recovered": False,
            "recoverySeconds": None,
        },
        {
            "hook": 1,
            "name": "sys_call",
            "triggeredBy": {"eventType": "iteration", "value": 9},
            "baseline": None,
            "during": None,
            "after": None,
            "throughputRatio": None,
            "degraded": None,
            "recovered": None,
            "recoverySeconds": None,
            "notes": ["not analysed: limit of 100 firings per workload"],
        },
    ]
    text = impact_table.render(impacts)
    assert "50.0% / 0.250" in text and "not recovered" in text
    assert "#2 sys_call iteration 9: not analysed: limit" in text
    assert impact_table.render([]) == "" and impact_table.render(None) == ""


def test_text_and_markdown_never_say_no_impact_below_the_throughput_tolerance() -> None:
    from krally.results import markdown

    window = {"start": 0.0, "end": 1.0, "throughput": 100.0, "errorRate": 0.0, "p95": 0.01}

    def entry(after: float, tolerance: dict[str, Any] | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "hook": 0, "name": "sys_call", "triggeredBy": {"eventType": "time", "value": 5},
            "baseline": window, "during": window, "after": {**window, "throughput": after},
            "degraded": False, "recovered": True, "recoverySeconds": 0.0,
        }  # fmt: skip
        if tolerance is not None:
            item["tolerance"] = tolerance
        return item

    assert impact_table.recovery_text(entry(95.0)) == "no impact"
    low = impact_table.recovery_text(entry(40.0))  # degraded false, yet the rate fell to 0.4
    assert low == "throughput 0.40 x baseline (tolerance 0.8)"
    assert impact_table.recovery_text(entry(40.0, {"throughputRatio": 0.3})) == "no impact"
    assert low in impact_table.render([entry(40.0)])
    assert "no impact" not in impact_table.render([entry(40.0)])
    lines = markdown._impact({"impact": [entry(40.0)]})
    assert any(low in line for line in lines) and not any("no impact" in x for x in lines)
