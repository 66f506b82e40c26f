"""A load spread over N shards (runner pods): who runs which iteration, how concurrency and rates
split, what the runners refuse, how the task validation names the fields, and which shard fires
which hook."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from krally.errors import InvalidConfig
from krally.task import runner as runner_mod
from krally.task import workers
from krally.task.hook_executor import HookExecutor
from krally.task.loader import (
    TaskInvalid,
    load_task,
    spec_from_workload,
    validate_spec,
    workload_from_spec,
)
from krally.task.merge import merge_hooks
from krally.task.runner import ScenarioRunner
from krally.task.shard import MAX_PARALLELISM, Shard
from krally.task.spec import HookSpec
from krally.task.validation import validate_workload

CASES = [(1, 1), (1, 3), (2, 3), (7, 1), (7, 2), (10, 3), (23, 4), (64, 64), (100, 7), (3, 64)]


# --- Shard arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(("times", "count"), CASES)
def test_every_iteration_has_exactly_one_owner(times: int, count: int) -> None:
    shards = [Shard(i, count) for i in range(count)]
    for number in range(1, times + 1):
        owners = [s.index for s in shards if s.owns(number)]
        assert owners == [(number - 1) % count], number
    assert sum(s.share(times) for s in shards) == times
    # The shares differ by at most one, the first shards get the extra ones.
    shares = [s.share(times) for s in shards]
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)


@pytest.mark.parametrize(("times", "count"), CASES)
def test_global_numbers_are_the_owned_ones(times: int, count: int) -> None:
    seen: list[int] = []
    for index in range(count):
        shard = Shard(index, count)
        numbers = [shard.global_number(k) for k in range(1, shard.share(times) + 1)]
        assert numbers == sorted(numbers)
        assert all(shard.owns(n) for n in numbers)
        assert numbers == [n for n in range(1, times + 1) if shard.owns(n)]
        seen.extend(numbers)
    assert sorted(seen) == list(range(1, times + 1))


@pytest.mark.parametrize("value", [1, 2, 3, 5, 8, 64, 100])
@pytest.mark.parametrize("count", [1, 2, 3, 7, 64])
def test_parts_add_up(value: int, count: int) -> None:
    parts = [Shard(i, count).part(value) for i in range(count)]
    assert sum(parts) == value
    assert max(parts) - min(parts) <= 1
    assert parts == runner_mod.split(value, count)


def test_whole_and_keeps_time() -> None:
    assert Shard().whole and Shard().keeps_time
    assert Shard(0, 1) == Shard()
    assert not Shard(0, 2).whole
    assert [Shard(i, 3).keeps_time for i in range(3)] == [True, False, False]
    assert not Shard(1, 3).owns(0) and not Shard(0, 3).owns(0) and not Shard(0, 3).owns(-2)
    assert Shard(MAX_PARALLELISM - 1, MAX_PARALLELISM).global_number(1) == MAX_PARALLELISM


@pytest.mark.parametrize(("index", "count"), [(0, 0), (1, 1), (-1, 2), (3, 3), (0, 65)])
def test_no_such_shard(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="no shard"):
        Shard(index, count)


# --- Global numbers through the gate -----------------------------------------------------------


@pytest.mark.parametrize(("count", "index"), [(1, 0), (3, 0), (3, 2), (4, 1)])
def test_gate_hands_out_the_shards_global_numbers(count: int, index: int) -> None:
    shard = Shard(index, count)
    starts: list[int] = []
    results: list[dict[str, Any]] = []

    def body(gate: workers.Gate, sink: workers.Sink, _index: int, concurrency: int) -> None:
        def loop() -> None:
            while (number := gate.claim()) is not None:
                sink.put({"iteration": number})

        threads = [threading.Thread(target=loop) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    workers.run_in_process(
        body,
        3,
        5,
        starts.append,
        results.append,
        threading.Event(),
        shard,
    )
    expected = [shard.global_number(k) for k in range(1, 6)]
    assert starts == expected  # announced in number order, under the gate's lock
    assert sorted(r["iteration"] for r in results) == expected


def _run_shard(
    runner_type: str, config: dict[str, Any], shard: Shard
) -> tuple[list[int], list[dict[str, Any]], ScenarioRunner]:
    starts: list[int] = []
    records: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_start(n: int) -> None:
        with lock:
            starts.append(n)

    def on_result(record: dict[str, Any]) -> None:
        with lock:
            records.append(record)

    load = ScenarioRunner.get(runner_type)(dict(config), shard)
    load.run(
        "Dummy.dummy",
        {},
        {},
        on_iteration_start=on_start,
        on_result=on_result,
        abort=threading.Event(),
    )
    return starts, records, load


@pytest.mark.parametrize("count", [1, 2, 3])
def test_constant_runs_exactly_the_shards_iterations(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Enough CPUs on any machine: with a concurrency part > 1 the shard forks 2 workers.
    monkeypatch.setattr(runner_mod, "cpu_count", lambda: 4)
    config = {"times": 23, "concurrency": 4, "max_cpu_count": 2}
    union: list[int] = []
    for index in range(count):
        shard = Shard(index, count)
        load = ScenarioRunner.get("constant")(dict(config), shard)
        shares, limit = load._plan()
        assert limit == shard.share(23)
        assert sum(shares) == shard.part(4)
        assert len(shares) == min(2, shard.part(4))  # forked when the part is > 1
        starts, records, _ = _run_shard("constant", config, shard)
        expected = [n for n in range(1, 24) if shard.owns(n)]
        assert starts == expected  # every start announced once, in order
        assert sorted(r["iteration"] for r in records) == expected
        assert all(not r["error"] for r in records)
        union.extend(starts)
    assert sorted(union) == list(range(1, 24))


def test_constant_for_duration_numbers_are_global() -> None:
    config = {"duration": 0.05, "concurrency": 2}
    union: set[int] = set()
    for index in range(2):
        shard = Shard(index, 2)
        starts, records, _ = _run_shard("constant_for_duration", config, shard)
        assert starts and all(shard.owns(n) for n in starts)
        assert starts == sorted(starts)
        assert sorted(r["iteration"] for r in records) == starts
        # Its own count runs 1, 2, ... without holes: the global numbers are its first ones.
        assert starts == [shard.global_number(k) for k in range(1, len(starts) + 1)]
        union |= set(starts)
    assert len(union) >= 2


def test_rps_over_two_shards_covers_the_load_at_half_the_rate() -> None:
    config = {"times": 10, "rps": 20}
    union: list[int] = []
    for index in range(2):
        shard = Shard(index, 2)
        starts, records, load = _run_shard("rps", config, shard)
        assert starts == [n for n in range(1, 11) if shard.owns(n)]
        assert sorted(r["iteration"] for r in records) == starts
        # Each shard paces 10/s: its 5 starts take at least 4 intervals of 0.1 s (pacing only
        # ever waits, so this lower bound cannot be flaky).
        assert load.run_duration >= 0.7 * (len(starts) - 1) / (20 / 2)
        union.extend(starts)
    assert sorted(union) == list(range(1, 11))


def test_rps_splits_max_concurrency() -> None:
    config = {"times": 10, "rps": 20, "max_concurrency": 5, "max_cpu_count": 1}
    parts = [sum(ScenarioRunner.get("rps")(dict(config), Shard(i, 2))._plan()[0]) for i in (0, 1)]
    assert parts == [3, 2]
    limits = [ScenarioRunner.get("rps")(dict(config), Shard(i, 3))._plan()[1] for i in (0, 1, 2)]
    assert limits == [4, 3, 3]


def test_serial_refuses_to_spread() -> None:
    serial = ScenarioRunner.get("serial")
    assert not serial.SPREADS
    with pytest.raises(InvalidConfig, match="parallelism") as info:
        serial({"times": 3}, Shard(0, 2))
    assert info.value.path == "runner.parallelism"
    assert "serial" in info.value.message
    serial({"times": 3}, Shard(0, 1))  # one pod is fine


def test_runners_refuse_shards_without_a_part() -> None:
    with pytest.raises(InvalidConfig, match=r"parallelism \(3\) must be at most concurrency"):
        ScenarioRunner.get("constant")({"times": 6, "concurrency": 2}, Shard(0, 3))
    with pytest.raises(InvalidConfig, match=r"at most times \(2\)"):
        ScenarioRunner.get("rps")({"times": 2, "rps": 5}, Shard(1, 3))
    with pytest.raises(InvalidConfig, match=r"at most max_concurrency \(1\)"):
        ScenarioRunner.get("rps")({"times": 9, "rps": 5, "max_concurrency": 1}, Shard(0, 2))
    assert (
        ScenarioRunner.get("constant_for_duration").parallelism_problems(
            {"duration": 1, "concurrency": 2}, 2, "spec.runner"
        )
        == []
    )


# --- Validation names the field ----------------------------------------------------------------


def _spec(runner: dict[str, Any], sla: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"scenario": {"name": "Dummy.dummy", "args": {}}, "runner": runner}
    if sla is not None:
        spec["sla"] = sla
    return spec


BAD_SPREADS = [
    ({"type": "constant", "times": 6, "parallelism": 0}, None, "spec.runner.parallelism"),
    ({"type": "constant", "times": 6, "parallelism": "3"}, None, "spec.runner.parallelism"),
    ({"type": "constant", "times": 99, "parallelism": 65}, None, "spec.runner.parallelism"),
    (
        {"type": "constant", "times": 6, "podFailurePolicy": "Sometimes"},
        None,
        "spec.runner.podFailurePolicy",
    ),
    (
        {"type": "constant", "times": 6, "concurrency": 2, "parallelism": 3},
        None,
        "spec.runner.parallelism",
    ),
    ({"type": "serial", "times": 6, "parallelism": 2}, None, "spec.runner.parallelism"),
    (
        {"type": "constant", "times": 6, "concurrency": 2, "parallelism": 2},
        {"disruption_impact": {"max_recovery_seconds": 5}},
        "spec.sla.disruption_impact",
    ),
]


@pytest.mark.parametrize(("runner", "sla", "path"), BAD_SPREADS)
def test_benchmarktask_spec_problems_name_the_field(
    runner: dict[str, Any], sla: dict[str, Any] | None, path: str
) -> None:
    # The admission path: schema first, then the plugin checks.
    problems = validate_spec(_spec(runner, sla))
    assert [p.path for p in problems] == [path], [str(p) for p in problems]


@pytest.mark.parametrize(("runner", "sla", "path"), BAD_SPREADS)
def test_spread_checks_without_the_schema(
    runner: dict[str, Any], sla: dict[str, Any] | None, path: str
) -> None:
    # The same workload without the schema in front: krally's own checks catch it too.
    problems = validate_workload(workload_from_spec(_spec(runner, sla)))
    assert [p.path for p in problems] == [path], [str(p) for p in problems]
    message = problems[0].message
    if "parallelism" in runner and not isinstance(runner["parallelism"], int):
        assert message == "must be a whole number from 1 to 64, got '3'"
    elif runner.get("parallelism") in (0, 65):
        assert message.startswith("must be a whole number from 1 to 64")
    elif "podFailurePolicy" in runner:
        assert "FailTask, Continue" in message and "'Sometimes'" in message
    else:
        assert "parallelism" in message


def test_rally_task_files_name_the_field_as_written() -> None:
    v1 = (
        '{"Dummy.dummy": [{"args": {}, "runner": '
        '{"type": "constant", "times": 6, "concurrency": 2, "parallelism": 3}}]}'
    )
    with pytest.raises(TaskInvalid) as info:
        load_task("t.json", v1)
    assert [p.path for p in info.value.problems] == ["Dummy.dummy[0].runner.parallelism"]
    v2 = (
        "version: 2\ntitle: t\nsubtasks:\n  - title: s\n    scenario: {Dummy.dummy: {}}\n"
        "    runner: {constant: {times: 6, parallelism: 0}}\n"
    )
    with pytest.raises(TaskInvalid) as info:
        load_task("t.yaml", v2)
    assert [p.path for p in info.value.problems] == ["subtasks[0].runner.constant.parallelism"]
    assert "t.yaml: subtasks[0].runner.constant.parallelism: must be a whole number" in str(
        info.value
    )


def test_spread_keys_are_not_runner_config() -> None:
    spec = _spec(
        {
            "type": "constant",
            "times": 6,
            "concurrency": 3,
            "parallelism": 3,
            "podFailurePolicy": "Continue",
        }
    )
    assert validate_spec(spec) == []
    workload = workload_from_spec(spec)
    assert workload.runner_args == {"times": 6, "concurrency": 3}
    assert (workload.parallelism, workload.pod_failure_policy) == (3, "Continue")
    assert spec_from_workload(workload)["runner"] == spec["runner"]
    task = load_task(
        "t.json",
        '{"Dummy.dummy": [{"runner": {"type": "rps", "times": 4, "rps": 9, "parallelism": 2}}]}',
    )
    (w,) = task.workloads
    assert (w.runner_args, w.parallelism, w.pod_failure_policy) == (
        {"times": 4, "rps": 9},
        2,
        "FailTask",
    )


# --- Hooks over shards -------------------------------------------------------------------------


class _Fired:
    def __init__(self, triggered_by: dict[str, Any]):
        self.triggered_by = dict(triggered_by)
        self.started_at = time.time()

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        return {
            "status": "success",
            "started_at": self.started_at,
            "triggered_by": self.triggered_by,
        }


class _Recorder:
    """A launcher recording (shard, hook index, event type, value) of every firing."""

    def __init__(self, shard: int, log: list[tuple[int, int, str, Any]]):
        self.shard, self.log = shard, log

    def launch(
        self, index: int, hook: HookSpec, hook_cls: type, triggered_by: dict[str, Any]
    ) -> _Fired:
        self.log.append((self.shard, index, triggered_by["event_type"], triggered_by["value"]))
        return _Fired(triggered_by)


HOOKS = [
    HookSpec("sys_call", "true", "event", {"unit": "iteration", "at": [1, 2, 5, 7, 9999]}),
    HookSpec("sys_call", "true", "event", {"unit": "time", "at": [0, 1000]}),
]


def test_hooks_fire_once_over_the_shards_from_the_owner() -> None:
    times, count = 10, 3
    log: list[tuple[int, int, str, Any]] = []
    results = []
    for index in range(count):
        shard = Shard(index, count)
        executor = HookExecutor(
            HOOKS, launcher=_Recorder(index, log), tick_interval=0.01, shard=shard
        )
        assert executor.listens_to("iteration")
        assert executor.listens_to("time") is shard.keeps_time
        # The runner only announces the shard's own iterations.
        for number in range(index + 1, times + 1, count):
            executor.on_event("iteration", number)
        if shard.keeps_time:
            deadline = time.monotonic() + 5
            while not any(e[2] == "time" for e in log) and time.monotonic() < deadline:
                time.sleep(0.005)
        else:
            time.sleep(0.03)  # several ticks' worth: nothing must fire here
        results.append(executor.results())

    iteration_firings = sorted((v, s) for s, i, e, v in log if i == 0)
    assert iteration_firings == [(1, 0), (2, 1), (5, 1), (7, 0)]
    assert all(Shard(s, count).owns(v) for v, s in iteration_firings)
    assert [(s, v) for s, i, e, v in log if i == 1] == [(0, 0)]  # time: shard 0 alone

    # Unreached: each shard lists only the values it owns, so the union has each once.
    unreached = [
        (index, position, u["value"])
        for index, hooks in enumerate(results)
        for position, hook in enumerate(hooks)
        for u in hook.get("unreached", [])
    ]
    assert sorted(unreached) == [(0, 1, 1000), (2, 0, 9999)]
    assert [h.get("unreached_count") for h in results[2]] == [1, None]
    assert [h.get("unreached_count") for h in results[1]] == [None, None]

    merged = merge_hooks(results)
    assert [h["config"] for h in merged] == [h.rally_config() for h in HOOKS]
    values = sorted(r["triggered_by"]["value"] for r in merged[0]["results"])
    assert values == [1, 2, 5, 7]
    assert merged[0]["summary"] == {"success": 4}
    assert merged[0]["unreached"] == [{"event_type": "iteration", "value": 9999}]
    assert merged[0]["unreached_count"] == 1
    assert [r["triggered_by"]["value"] for r in merged[1]["results"]] == [0]
    assert merged[1]["unreached"] == [{"event_type": "time", "value": 1000}]
    assert merged[1]["unreached_count"] == 1
