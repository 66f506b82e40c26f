"""The engine: Rally's ordering, results shape, SLA abort, external abort, progress."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, ClassVar

from krally.task import context, hook, scenario
from krally.task.engine import run_workload
from krally.task.hook_executor import LocalLauncher
from krally.task.result import Progress
from krally.task.spec import HookSpec, TaskSpec, WorkloadSpec
from krally.task.task_run import run_task

EVENTS: list[str] = []
_LOCK = threading.Lock()


def log(event: str) -> None:
    with _LOCK:
        EVENTS.append(event)


@context.configure(name="test_engine_ctx", order=5)
class RecordingContext(context.Context):
    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object"}

    def setup(self) -> None:
        log("context setup")

    def cleanup(self) -> None:
        log("context cleanup")


@scenario.configure(name="TestEngine.record")
class RecordingScenario(scenario.Scenario):
    def run(self, **kwargs: Any) -> None:
        log(f"iteration {self.context['iteration']}")


@hook.configure(name="test_engine_slow_hook")
class SlowHook(hook.Hook):
    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "number"}

    def run(self) -> None:
        log(f"hook start {self.triggered_by['value']}")
        time.sleep(self.config)
        log(f"hook end {self.triggered_by['value']}")


class RecordingLauncher(LocalLauncher):
    def launch(self, index: int, hook: HookSpec, hook_cls: type, triggered_by: dict) -> Any:
        log(f"fire {triggered_by['event_type']} {triggered_by['value']}")
        return super().launch(index, hook, hook_cls, triggered_by)


def slow_hook(at: list[int], seconds: float = 0.3) -> HookSpec:
    return HookSpec(
        action_name="test_engine_slow_hook",
        action_args=seconds,
        trigger_name="event",
        trigger_args={"unit": "iteration", "at": at},
    )


def test_rally_ordering() -> None:
    EVENTS.clear()
    w = WorkloadSpec(
        scenario_name="TestEngine.record",
        runner_type="serial",
        runner_args={"times": 3},
        contexts={"test_engine_ctx": {}},
        hooks=(slow_hook([3]),),
    )
    result = run_workload(w, launcher=RecordingLauncher())
    log("returned")
    # The iteration event for N is delivered when N starts, i.e. before the scenario runs.
    assert EVENTS.index("context setup") < EVENTS.index("iteration 1")
    assert EVENTS.index("fire iteration 3") < EVENTS.index("iteration 3")
    # The load ends, contexts are cleaned up, and only then is the hook awaited.
    assert EVENTS.index("iteration 3") < EVENTS.index("context cleanup")
    assert EVENTS.index("context cleanup") < EVENTS.index("hook end 3") < EVENTS.index("returned")
    # full_duration ends with the cleanup, not with the hook (Rally's semantics).
    hook_result = result["hooks"][0]["results"][0]
    assert hook_result["status"] == "success"
    assert hook_result["triggered_by"] == {"event_type": "iteration", "value": 3}
    assert (
        result["full_duration"]
        < hook_result["finished_at"] - result["contexts_results"][0]["setup"]["started_at"]
    )


def test_result_is_rally_shaped() -> None:
    w = WorkloadSpec(
        scenario_name="Dummy.dummy",
        scenario_args={"sleep": 0},
        runner_type="constant",
        runner_args={"times": 20, "concurrency": 2},
        hooks=(slow_hook([2, 50], 0),),
        description="shape",
    )
    result = run_workload(w)
    json.dumps(result)  # JSON-safe
    for key in [
        "uuid",
        "scenario",
        "runner",
        "hooks",
        "sla",
        "sla_results",
        "pass_sla",
        "statistics",
        "load_duration",
        "full_duration",
        "start_time",
        "total_iteration_count",
        "failed_iteration_count",
        "min_duration",
        "max_duration",
        "contexts_results",
        "timeline",
        "warnings",
        "created_at",
        "updated_at",
    ]:
        assert key in result, key
    assert result["scenario"] == {"Dummy.dummy": {"sleep": 0}}
    assert result["runner"] == {"constant": {"times": 20, "concurrency": 2}}
    assert result["total_iteration_count"] == 20 and result["failed_iteration_count"] == 0
    assert result["pass_sla"] is True
    assert result["sla_results"]["sla"][0]["criterion"] == "failure_rate"
    assert result["statistics"]["durations"]["total"]["data"]["iteration_count"] == 20
    assert [a["name"] for a in result["statistics"]["durations"]["atomics"]] == ["foo"]
    (hook_result,) = result["hooks"]
    assert hook_result["summary"] == {"success": 1}
    assert hook_result["unreached"] == [{"event_type": "iteration", "value": 50}]
    assert result["load_duration"] <= result["full_duration"]
    assert sum(point["count"] for point in result["timeline"]) == 20
    assert "error" not in result


def test_abort_on_sla_failure_stops_early() -> None:
    w = WorkloadSpec(
        scenario_name="Dummy.dummy_exception",
        scenario_args={"sleep": 0.001},
        runner_type="constant",
        runner_args={"times": 2000, "concurrency": 1},
    )
    result = run_workload(w, abort_on_sla_failure=True)
    assert result["pass_sla"] is False
    assert result["aborted"] is True
    assert 1 <= result["total_iteration_count"] < 100
    criteria = {item["criterion"]: item["success"] for item in result["sla_results"]["sla"]}
    assert criteria["failure_rate"] is False
    assert criteria.get("aborted_on_sla") is False


def test_abort_on_sla_failure_from_the_spec() -> None:
    w = WorkloadSpec(
        scenario_name="Dummy.dummy_exception",
        scenario_args={"sleep": 0.001},
        runner_type="serial",
        runner_args={"times": 2000},
        abort_on_sla_failure=True,
    )
    result = run_workload(w)
    assert result["aborted"] is True and result["total_iteration_count"] < 100


def test_sla_failure_without_abort_runs_everything() -> None:
    w = WorkloadSpec(
        scenario_name="Dummy.dummy_exception",
        scenario_args={"sleep": 0},
        runner_type="serial",
        runner_args={"times": 5},
    )
    result = run_workload(w)
    assert result["pass_sla"] is False and result["aborted"] is False
    assert result["total_iteration_count"] == 5 and result["failed_iteration_count"] == 5


def test_external_abort_and_progress() -> None:
    abort = threading.Event()
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:
        seen.append(p)
        if p.done >= 5:
            abort.set()

    w = WorkloadSpec(
        scenario_name="Dummy.dummy",
        scenario_args={"sleep": 0.02},
        runner_type="constant",
        runner_args={"times": 10000},
        hooks=(slow_hook([1], 0),),
    )
    started = time.monotonic()
    result = run_workload(w, on_progress=on_progress, abort=abort)
    elapsed = time.monotonic() - started
    assert result["aborted"] is True
    assert result["pass_sla"] is False
    assert 5 <= result["total_iteration_count"] < 200
    # Rate limited to ~10 per second (+ the final snapshot).
    assert len(seen) <= elapsed * 10 + 3
    last = seen[-1]
    assert last.total == 10000 and last.done == result["total_iteration_count"]
    assert last.hooks_fired == 1 and last.hooks_finished == 1


def test_context_setup_failure_is_a_run_error() -> None:
    w = WorkloadSpec(
        scenario_name="Dummy.dummy",
        runner_type="serial",
        contexts={"dummy_context": {"fail_setup": True}, "users": {}},
    )
    result = run_workload(w)
    assert result["error"][0] == "ContextError"
    assert result["pass_sla"] is False
    assert result["total_iteration_count"] == 0
    assert result["warnings"] == ["context 'users' needs OpenStack; ignored when running locally"]


def test_run_task_report_shape() -> None:
    w = WorkloadSpec(scenario_name="Dummy.dummy", runner_type="serial", runner_args={"times": 2})
    task = TaskSpec(title="t", workloads=(w, w), warnings=("x: y",))
    report = run_task(task)
    assert report["info"]["format_version"] == "1.2"
    (entry,) = report["tasks"]
    assert entry["title"] == "t" and entry["pass_sla"] is True and entry["status"] == "finished"
    assert [len(s["workloads"]) for s in entry["subtasks"]] == [1, 1]
    assert [s["workloads"][0]["position"] for s in entry["subtasks"]] == [0, 1]
    json.dumps(report)
