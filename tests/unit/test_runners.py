"""Runner plugins: schemas, numbering, start events, abort, timeout, process split."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

from krally.errors import InvalidConfig, PluginNotFound
from krally.task import runner as runner_mod
from krally.task import scenario
from krally.task.runner import ScenarioRunner


@scenario.configure(name="Test.runner_probe")
class RunnerProbe(scenario.Scenario):
    """Records which iteration ran and can fail or mutate its context."""

    def run(self, fail_on: int = 0, sleep: float = 0, mutate: bool = False) -> None:
        if mutate:
            self.context["shared"].append(self.context["iteration"])
        if sleep:
            scenario.interruptable_sleep(sleep)
        if self.context["iteration"] == fail_on:
            raise RuntimeError(f"boom {fail_on}")


@scenario.configure(name="Test.concurrency_probe")
class ConcurrencyProbe(scenario.Scenario):
    """Waits on a barrier so it only finishes when N iterations really run at once."""

    def run(self, parties: int = 1) -> None:
        barrier = _BARRIERS.setdefault(parties, threading.Barrier(parties))
        barrier.wait(timeout=30)


_BARRIERS: dict[int, threading.Barrier] = {}


def run(
    runner_type: str,
    config: dict[str, Any],
    scenario_name: str = "Dummy.dummy",
    args: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    abort: threading.Event | None = None,
    on_result_hook: Any = None,
) -> tuple[list[int], list[dict[str, Any]]]:
    starts: list[int] = []
    records: list[dict[str, Any]] = []
    order: list[tuple[str, int]] = []
    abort = abort or threading.Event()

    def on_start(n: int) -> None:
        starts.append(n)
        order.append(("start", n))

    def on_result(record: dict[str, Any]) -> None:
        records.append(record)
        order.append(("result", record["iteration"]))
        if on_result_hook:
            on_result_hook(record, abort)

    ScenarioRunner.get(runner_type)(config).run(
        scenario_name,
        args or {},
        context or {},
        on_iteration_start=on_start,
        on_result=on_result,
        abort=abort,
    )
    # Every iteration's start event comes before its record.
    position = {event: i for i, event in enumerate(order)}
    for record in records:
        n = record["iteration"]
        assert position[("start", n)] < position[("result", n)]
    return starts, records


RECORD_KEYS = {
    "iteration",
    "timestamp",
    "duration",
    "idle_duration",
    "error",
    "output",
    "atomic_actions",
}


@pytest.mark.parametrize(
    ("runner_type", "config", "expected"),
    [
        ("constant", {"times": 7, "concurrency": 1}, 7),
        ("constant", {"times": 25, "concurrency": 3}, 25),
        ("constant", {"times": 30, "concurrency": 4, "max_cpu_count": 1}, 30),
        ("serial", {"times": 5}, 5),
        ("rps", {"times": 12, "rps": 200}, 12),
        ("rps", {"times": 9, "rps": {"start": 50, "end": 200, "step": 50, "duration": 1}}, 9),
    ],
)
def test_numbering_is_1_to_n_with_one_start_event_each(runner_type, config, expected):
    starts, records = run(runner_type, config)
    assert sorted(starts) == list(range(1, expected + 1))
    assert len(starts) == expected  # each exactly once
    assert sorted(r["iteration"] for r in records) == list(range(1, expected + 1))
    for record in records:
        assert set(record) == RECORD_KEYS
        assert record["error"] == []
        assert record["duration"] >= 0
        assert [a["name"] for a in record["atomic_actions"]] == ["foo"]
        assert record["atomic_actions"][0]["children"][0]["name"] == "bar"


def test_start_events_are_in_order_with_several_processes():
    starts, _ = run("constant", {"times": 400, "concurrency": 4})
    assert starts == list(range(1, 401))


def test_context_has_iteration_and_is_copied_per_iteration():
    shared: list[int] = []
    _, records = run(
        "constant",
        {"times": 4, "concurrency": 1},
        "Test.runner_probe",
        {"mutate": True},
        {"shared": shared},
    )
    assert len(records) == 4
    # Deep-copied like Rally: the workload's own context object is never touched.
    assert shared == []


def test_scenario_error_is_recorded_rally_style():
    _, records = run("constant", {"times": 3}, "Test.runner_probe", {"fail_on": 1})
    (record,) = [r for r in records if r["error"]]
    assert record["iteration"] == 1
    name, message, tb = record["error"]
    assert (name, message) == ("RuntimeError", "boom 1")
    assert "Traceback" in tb


def test_failure_scenario_fails_expected_iterations():
    _, records = run(
        "serial",
        {"times": 7},
        "Dummy.failure",
        {"sleep": 0, "from_iteration": 2, "to_iteration": 6, "each": 2},
    )
    failed = sorted(r["iteration"] for r in records if r["error"])
    assert failed == [2, 4, 6]
    assert {r["error"][0] for r in records if r["error"]} == {"DummyScenarioException"}


@pytest.mark.parametrize("concurrency", [1, 2])
def test_timeout_interrupts_the_iteration(concurrency):
    _, records = run(
        "constant",
        {"times": concurrency, "concurrency": concurrency, "timeout": 0.2},
        args={"sleep": 30},
    )
    assert len(records) == concurrency
    for record in records:
        assert record["error"][:2] == [
            "ThreadTimeoutException",
            "Iteration interrupted due to timeout.",
        ]
        assert record["duration"] < 10  # generous: interrupted, not the full 30 s
        assert record["atomic_actions"][0]["failed"] is True


def test_a_shorter_timeout_after_a_longer_one_still_interrupts():
    # One process, two loads: the timeout monitor was waiting for the first load's 600 s
    # deadline when the second load's 0.2 s one came.
    run("constant", {"times": 1, "timeout": 600}, args={"sleep": 0.01})
    _, records = run("constant", {"times": 1, "timeout": 0.2}, args={"sleep": 30})
    assert records[0]["error"][0] == "ThreadTimeoutException"
    assert records[0]["duration"] < 10


def test_no_timeout_when_iteration_is_fast():
    _, records = run("constant", {"times": 20, "concurrency": 2, "timeout": 5})
    assert all(not r["error"] for r in records)


@pytest.mark.parametrize(
    "config", [{"times": 1000, "concurrency": 1}, {"times": 1000, "concurrency": 4}]
)
def test_abort_stops_starting_new_iterations(config):
    def abort_at_10(record, abort):
        if record["iteration"] >= 10:
            abort.set()

    starts, records = run("constant", config, args={"sleep": 0.001}, on_result_hook=abort_at_10)
    assert 10 <= len(starts) < 1000
    assert len(records) == len(starts)  # running iterations finish and are reported


def test_abort_before_start_runs_nothing():
    abort = threading.Event()
    abort.set()
    for runner_type, config in [
        ("constant", {"times": 5}),
        ("constant", {"times": 5, "concurrency": 2}),
        ("serial", {"times": 5}),
        ("constant_for_duration", {"duration": 5}),
        ("rps", {"times": 5, "rps": 100}),
    ]:
        starts, records = run(runner_type, config, abort=abort)
        assert starts == [] and records == [], runner_type


def test_serial_abort():
    def abort_at_3(record, abort):
        if record["iteration"] == 3:
            abort.set()

    starts, _ = run("serial", {"times": 50}, on_result_hook=abort_at_3)
    assert starts == [1, 2, 3]


def test_constant_really_runs_concurrency_at_once():
    # The barrier only opens when 4 iterations wait on it together (threads of one process).
    _, records = run(
        "constant",
        {"times": 4, "concurrency": 4, "max_cpu_count": 1},
        "Test.concurrency_probe",
        {"parties": 4},
    )
    assert [r["error"] for r in records] == [[]] * 4


def test_constant_for_duration_runs_for_the_duration():
    starts, records = run(
        "constant_for_duration", {"duration": 0.3, "concurrency": 2}, args={"sleep": 0.02}
    )
    assert len(starts) >= 2
    assert sorted(r["iteration"] for r in records) == list(range(1, len(starts) + 1))


def test_constant_for_duration_zero_runs_one_iteration_per_process():
    plan, _ = ScenarioRunner.get("constant_for_duration")({"duration": 0, "concurrency": 1})._plan()
    starts, _ = run("constant_for_duration", {"duration": 0, "concurrency": 1})
    assert len(starts) == len(plan) == 1


def test_rps_paces_iterations():
    _, records = run("rps", {"times": 6, "rps": 20, "max_cpu_count": 1})
    stamps = sorted(r["timestamp"] for r in records)
    # 6 starts at 20/s span ~0.25 s; generous bounds, no tight timing.
    assert stamps[-1] - stamps[0] >= 0.2


def test_process_split_follows_rally():
    cpu = runner_mod.cpu_count()
    shares, limit = ScenarioRunner.get("constant")({"times": 10, "concurrency": 5})._plan()
    assert limit == 10 and sum(shares) == 5 and len(shares) == min(cpu, 5)
    shares, _ = ScenarioRunner.get("constant")(
        {"times": 10, "concurrency": 5, "max_cpu_count": 1}
    )._plan()
    assert shares == [5]
    assert runner_mod.split(5, 2) == [3, 2]


# -- configs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runner_type", "config", "where"),
    [
        ("constant", {"times": -1}, "times"),
        ("constant", {"times": 0}, "times"),
        ("constant", {"times": 3, "concurrency": 5}, "concurrency"),
        ("constant", {"concurrency": 2}, "concurrency"),  # default times is 1
        ("constant", {"times": 2, "bogus": 1}, ""),
        ("constant", {"times": "10"}, "times"),
        ("constant", {"times": 2, "max_cpu_count": 0}, "max_cpu_count"),
        ("constant_for_duration", {}, ""),
        ("constant_for_duration", {"duration": -1}, "duration"),
        ("constant_for_duration", {"duration": 1, "max_cpu_count": 2}, ""),
        ("constant_for_duration", {"duration": 1, "timeout": 0.5}, "timeout"),
        ("rps", {"times": 5}, ""),
        ("rps", {"times": 5, "rps": 0}, "rps"),
        ("rps", {"times": 5, "rps": {"start": 5, "end": 2, "step": 1}}, "rps.end"),
        ("serial", {"times": -1}, "times"),
    ],
)
def test_bad_configs_are_rejected_with_the_field(runner_type, config, where):
    cls = ScenarioRunner.get(runner_type)
    problems = cls.validate_config(config, "runner")
    assert problems, config
    assert problems[0].path == ("runner." + where if where else "runner")
    with pytest.raises(InvalidConfig):
        cls(config)


def test_concurrency_above_times_message():
    (problem,) = ScenarioRunner.validate("constant", {"times": 3, "concurrency": 5}, "runner")
    assert (
        str(problem)
        == "runner.concurrency: concurrency (5) must be less than or equal to times (3)"
    )


@pytest.mark.parametrize(
    ("runner_type", "config"),
    [
        ("constant", {"times": 3, "concurrency": 3, "timeout": 2, "max_cpu_count": 1}),
        ("constant", {"type": "constant", "times": 3}),
        ("constant", {}),
        ("constant_for_duration", {"duration": 0}),
        ("rps", {"times": 3, "rps": 0.5, "max_concurrency": 2, "timeout": 1}),
        ("serial", {"times": 3, "concurrency": 9, "anything": "else"}),  # extra keys allowed
    ],
)
def test_good_configs(runner_type, config):
    assert ScenarioRunner.validate(runner_type, config) == []


def test_unknown_runner_type_lists_known():
    with pytest.raises(PluginNotFound) as info:
        ScenarioRunner.get("no_such_runner")
    for name in ("constant", "constant_for_duration", "rps", "serial"):
        assert name in str(info.value)
    (problem,) = ScenarioRunner.validate("no_such_runner", {}, "runner")
    assert problem.path == "runner"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_callback_error_propagates_and_stops_the_load(concurrency):
    def explode(record, abort):
        if record["iteration"] == 5:
            raise RuntimeError("consumer broke")

    with pytest.raises(RuntimeError, match="consumer broke"):
        run("constant", {"times": 100_000, "concurrency": concurrency}, on_result_hook=explode)


@pytest.mark.timeout(120)
def test_workers_end_when_the_parent_stops_reading_despite_a_python_sigterm_handler():
    # The runner pod installs a SIGTERM handler that only sets a flag; forked workers inherit it.
    # A worker blocked on a full result pipe must still see the parent stop (EPIPE, not a
    # sibling's inherited copy of the pipe) and terminate() must still end it.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        for _ in range(3):

            def explode(record, abort):
                if record["iteration"] == 5:
                    raise RuntimeError("consumer broke")

            with pytest.raises(RuntimeError, match="consumer broke"):
                run("constant", {"times": 200_000, "concurrency": 4}, on_result_hook=explode)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_start_callback_error_propagates():
    def on_start(n: int) -> None:
        if n == 3:
            raise ValueError("hook launcher broke")

    with pytest.raises(ValueError, match="launcher"):
        ScenarioRunner.get("constant")({"times": 50, "concurrency": 2, "max_cpu_count": 1}).run(
            "Dummy.dummy",
            {},
            {},
            on_iteration_start=on_start,
            on_result=lambda r: None,
            abort=threading.Event(),
        )


@pytest.mark.parametrize(
    "context",
    [
        {"shared": []},  # picklable: copied from a snapshot
        {"shared": [], "fn": lambda: None},  # not picklable (a lambda): deepcopy
        {"n": 1, "s": "x", "t": (1, "a")},  # immutable values: shallow copy
    ],
)
def test_context_copy_strategies_isolate_iterations(context):
    from krally.task.runner import IterationExecutor

    execute = IterationExecutor(RunnerProbe, {"mutate": "shared" in context}, context)
    for n in (1, 2):
        record = execute(n)
        assert record["error"] == []
    assert context.get("shared", []) == []
    assert "iteration" not in context
