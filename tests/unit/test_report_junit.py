"""krally.results.junit: JUnit XML of reports the engine made, and of a BenchmarkTask."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, ClassVar

import pytest
from tests.reports import event_hook, run_report

from krally.results import cluster, rally
from krally.results.junit import output_text, render_junit, xml_safe
from krally.task import hook
from krally.task.spec import WorkloadSpec

# What XML 1.0 cannot hold (NUL, ESC, BEL, a lone surrogate) next to what it must escape.
NASTY = 'nul \x00 esc \x1b[31m bel \x07 lone \ud800 <tag> & "quoted" ]]> end'


@hook.configure(name="test_report_junit_nasty")
class NastyHook(hook.Hook):
    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "string"}

    def run(self) -> None:
        self.add_output(
            complete={"title": "nasty <out>", "chart_plugin": "TextArea", "data": [self.config]}
        )
        self.set_error(exception_name="Nasty<&>", description=self.config, details="trace\x08")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    # Iterations 3 and 4 of 10 fail: failure_rate fails, max_seconds_per_iteration passes.
    failing = WorkloadSpec(
        scenario_name="Dummy.failure",
        scenario_args={"sleep": 0.001, "from_iteration": 3, "to_iteration": 4},
        runner_type="constant",
        runner_args={"times": 10, "concurrency": 1},
        sla={"failure_rate": {"max": 0}, "max_seconds_per_iteration": 10},
        hooks=(
            event_hook("sys_call", "/bin/echo hello", [2]),
            event_hook("sys_call", "/bin/false", [5, 50]),  # fails at 5, never reaches 50
            event_hook("test_report_junit_nasty", NASTY, [3]),
        ),
    )
    crashing = WorkloadSpec(scenario_name="Dummy.dummy", runner_type="no_such_runner")
    return run_report(failing, crashing, title="junit-demo")


def _suites(xml: str) -> list[ET.Element]:
    root = ET.fromstring(xml)  # expat: raises on anything not well-formed
    assert root.tag == "testsuites"
    return root.findall("testsuite")


def _outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def _cases(suite: ET.Element) -> dict[str, ET.Element]:
    cases = suite.findall("testcase")
    names = [c.get("name") or "" for c in cases]
    assert len(set(names)) == len(names), names
    return dict(zip(names, cases, strict=True))


def test_one_suite_per_workload_with_every_criterion_and_firing(report: dict[str, Any]) -> None:
    xml = render_junit(report)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    failing, crashing = _suites(xml)
    assert failing.get("name") == "junit-demo / Dummy.failure (position 0)"
    assert crashing.get("name") == "junit-demo / Dummy.dummy (position 1)"
    outcomes = {name: _outcome(case) for name, case in _cases(failing).items()}
    assert outcomes == {
        "load": "passed",
        "sla failure_rate": "failure",
        "sla max_seconds_per_iteration": "passed",
        "hook #1 sys_call @ iteration 2": "passed",
        "hook #2 sys_call @ iteration 5": "failure",
        "hook #2 sys_call @ iteration 50": "skipped",
        "hook #3 test_report_junit_nasty @ iteration 3": "failure",
    }
    # The order is the report's: load, SLA criteria, then hooks in spec order.
    assert list(outcomes)[:3] == ["load", "sla failure_rate", "sla max_seconds_per_iteration"]
    assert {name: _outcome(case) for name, case in _cases(crashing).items()} == {
        "load": "error",
        "sla failure_rate": "passed",
        "sla something_went_wrong": "failure",
    }


def test_counts_add_up(report: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(report))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root.findall("testsuite"):
        cases = suite.findall("testcase")
        counted = {
            "tests": len(cases),
            "failures": sum(1 for c in cases if _outcome(c) == "failure"),
            "errors": sum(1 for c in cases if _outcome(c) == "error"),
            "skipped": sum(1 for c in cases if _outcome(c) == "skipped"),
        }
        assert {k: int(suite.get(k) or -1) for k in counted} == counted
        for key, count in counted.items():
            totals[key] += count
    assert totals == {"tests": 10, "failures": 4, "errors": 1, "skipped": 1}
    assert {k: int(root.get(k) or -1) for k in totals} == totals
    suite_times = sum(float(s.get("time") or 0) for s in root.findall("testsuite"))
    assert float(root.get("time") or -1) == pytest.approx(suite_times, abs=0.002)


def test_failures_carry_the_details(report: dict[str, Any]) -> None:
    (failing, _) = _suites(render_junit(report))
    workload = report["tasks"][0]["subtasks"][0]["workloads"][0]
    cases = _cases(failing)

    sla = cases["sla failure_rate"].find("failure")
    assert sla is not None
    (detail,) = [s["detail"] for s in workload["sla_results"]["sla"] if not s["success"]]
    assert sla.get("message") == detail and sla.text == detail and "20.00%" in detail

    hook_case = cases["hook #2 sys_call @ iteration 5"]
    failure = hook_case.find("failure")
    assert failure is not None
    assert failure.get("type") == "n/a"
    assert failure.get("message") == "n/a: Subprocess returned 1"
    result = workload["hooks"][1]["results"][0]
    took = result["finished_at"] - result["started_at"]
    assert float(hook_case.get("time") or -1) == pytest.approx(took, abs=0.0006)
    assert "RetCode: 1" in (hook_case.findtext("system-out") or "")

    ok = cases["hook #1 sys_call @ iteration 2"]
    assert "StdOut: hello" in (ok.findtext("system-out") or "")
    skipped = cases["hook #2 sys_call @ iteration 50"].find("skipped")
    assert skipped is not None and "not reached" in (skipped.get("message") or "")


def test_run_error_and_properties(report: dict[str, Any]) -> None:
    failing, crashing = _suites(render_junit(report))
    error = _cases(crashing)["load"].find("error")
    assert error is not None and error.get("type") == "PluginNotFound"
    assert "no_such_runner" in (error.get("message") or "")
    assert "Traceback" in (error.text or "")
    props = {p.get("name"): p.get("value") for p in failing.iter("property")}
    assert props["task.uuid"] == report["tasks"][0]["uuid"]
    assert props["scenario"] == "Dummy.failure"
    assert props["runner"] == "constant (times=10, concurrency=1)"
    assert (props["iterations"], props["failures"], props["pass_sla"]) == ("10", "2", "false")


def test_xml_unsafe_characters_stay_well_formed(report: dict[str, Any]) -> None:
    (failing, _) = _suites(render_junit(report))
    case = _cases(failing)["hook #3 test_report_junit_nasty @ iteration 3"]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "Nasty<&>"
    message = failure.get("message") or ""
    assert message == "Nasty<&>: " + xml_safe(NASTY)
    assert '<tag> & "quoted" ]]> end' in message  # escaped by ElementTree, read back intact
    assert "\\x00" in message and "\\x1b[31m" in message and "\\ud800" in message
    assert "\\x08" in (failure.text or "")
    assert "nasty <out>" in (case.findtext("system-out") or "")


def test_unsafe_characters_everywhere() -> None:
    bad = "x\x01y <&> \x0c\ufffe"
    report = {
        "tasks": [
            {
                "uuid": bad,
                "title": bad,
                "subtasks": [
                    {
                        "workloads": [
                            {
                                "scenario": {bad: {}},
                                "runner": {"serial": {"times": bad}},
                                "error": [bad, bad, bad],
                                "warnings": [bad],
                                "sla_results": {
                                    "sla": [{"criterion": bad, "success": False, "detail": bad}]
                                },
                                "hooks": [
                                    {
                                        "config": {"action": {bad: bad}, "trigger": {bad: bad}},
                                        "results": [
                                            {
                                                "status": "validation_failed",
                                                "triggered_by": {"event_type": bad, "value": 1},
                                                "error": {"etype": bad, "msg": bad},
                                                "output": {"complete": [{"data": [bad]}]},
                                            }
                                        ],
                                        "trigger_error": bad,
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    root = ET.fromstring(render_junit(report))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "3")
    assert root.get("name") == "x\\x01y <&> \\x0c\\ufffe"


def test_output_text_and_limits() -> None:
    table = {"cols": ["pod", "phase"], "rows": [["db-0", "Running"], ["db-1", "Pending"]]}
    text = output_text({"complete": [{"title": "Pods", "chart_plugin": "Table", "data": table}]})
    assert text.splitlines() == [
        "[complete] Pods (Table)",
        "pod\tphase",
        "db-0\tRunning",
        "db-1\tPending",
    ]
    long = xml_safe("a" * 100_000)
    assert len(long) == 65536 and long.endswith("more characters)")


def test_stable_and_the_same_after_a_rally_json_round_trip(report: dict[str, Any]) -> None:
    xml = render_junit(report)
    assert render_junit(report) == xml
    # `krally report results.json` reads the report back from Rally's import document.
    assert render_junit(rally.inline_extras(rally.to_rally(report))) == xml


def test_from_a_benchmark_task() -> None:
    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {
            "name": "bt",
            "namespace": "ns",
            "uid": "0b7ad7b4-5a4f-4f57-9a3e-7f1f2f5d3c11",
        },
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "runner": {"type": "constant", "times": 100},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "kubectl delete pod db-0",
                    "trigger": {
                        "name": "event",
                        "args": {"unit": "iteration", "at": [10, 20, 900]},
                    },
                }
            ],
        },
        "status": {
            "phase": "Running",
            "passSLA": False,
            "sla": [{"criterion": "failure_rate", "success": False, "detail": "3.00% > 0.00%"}],
            "hooks": [
                {
                    "name": "sys_call",
                    "results": [
                        {
                            "triggeredBy": {"eventType": "iteration", "value": 10},
                            "status": "failed",
                            "startedAt": "2025-01-01T00:00:01.000Z",
                            "finishedAt": "2025-01-01T00:00:03.500Z",
                            "error": {"etype": "n/a", "msg": "Subprocess returned 1"},
                        },
                        {
                            "triggeredBy": {"eventType": "iteration", "value": 20},
                            "status": "pending",
                            "error": {"etype": "NotStarted", "msg": "Unschedulable"},
                        },
                    ],
                    "unreached": [{"eventType": "iteration", "value": 900}],
                }
            ],
            "result": {"iterations": 100, "failures": 3},
        },
    }
    root = ET.fromstring(render_junit(cluster.report_from_task(task)))
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "ns/bt / Dummy.dummy (position 0)"
    cases = _cases(suite)
    assert {name: _outcome(case) for name, case in cases.items()} == {
        "load": "passed",
        "sla failure_rate": "failure",
        "hook #1 sys_call @ iteration 10": "failure",
        "hook #1 sys_call @ iteration 20": "skipped",  # still pending: not a failure yet
        "hook #1 sys_call @ iteration 900": "skipped",
    }
    assert cases["hook #1 sys_call @ iteration 10"].get("time") == "2.500"
    pending = cases["hook #1 sys_call @ iteration 20"].find("skipped")
    assert pending is not None
    assert pending.get("message") == "not finished: pending: NotStarted: Unschedulable"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (props["task.uuid"], props["iterations"], props["failures"]) == (
        "0b7ad7b4-5a4f-4f57-9a3e-7f1f2f5d3c11",
        "100",
        "3",
    )
