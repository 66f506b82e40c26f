"""A spread load's shards merged: the statistics sketches, the timeline, the atomic actions and
the SLA verdict equal those of one pod fed every record; a local spread run and its merge."""

from __future__ import annotations

import copy
import json
import math
import random
import time
from typing import Any

import pytest

from krally.task.engine import run_workload
from krally.task.histogram import LogHistogram
from krally.task.merge import merge_shards, shard_part
from krally.task.shard import Shard
from krally.task.sla import SLA, SLAChecker
from krally.task.spec import TaskSpec, WorkloadSpec
from krally.task.spread import run_spread
from krally.task.stats import WorkloadStats
from krally.task.task_run import run_task

ORIGIN = 1_700_000_000.0
SHARDS = 3


def _records(seed: int, n: int, origin: float = ORIGIN, step: float = 0.02) -> list[dict[str, Any]]:
    """Rally per-iteration records, numbered 1..n in start order, with failures, idle time,
    zero durations, nested and repeated atomic actions."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = origin + i * step + rng.random() * step / 4
        failed = rng.random() < 0.08
        duration = 0.0 if rng.random() < 0.01 else rng.lognormvariate(-3, 1)
        idle = 0.0 if rng.random() < 0.5 else rng.random() * 0.002
        inner = {"name": "a.inner", "started_at": ts, "finished_at": ts + duration * 0.3}
        actions: list[dict[str, Any]] = [
            {
                "name": "a",
                "started_at": ts,
                "finished_at": ts + duration * 0.6,
                "children": [inner],
            },
            {
                "name": "b",
                "started_at": ts + duration * 0.6,
                "finished_at": None if failed else ts + duration * 0.9,
            },
        ]
        if i % 4 == 0:
            actions.append({"name": "b", "started_at": ts, "finished_at": ts + duration * 0.05})
        out.append(
            {
                "iteration": i + 1,
                "timestamp": ts,
                "duration": duration,
                "idle_duration": idle,
                "error": ["DummyError", f"boom {i + 1}", "traceback"] if failed else [],
                "output": {"additive": [], "complete": []},
                "atomic_actions": actions,
            }
        )
    return out


def _shard_of(record: dict[str, Any]) -> int:
    return (record["iteration"] - 1) % SHARDS


def _through_json(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, allow_nan=False))


def _split_stats(
    records: list[dict[str, Any]], max_points: int = 300
) -> tuple[WorkloadStats, WorkloadStats, list[WorkloadStats]]:
    """(one pod fed everything, the merge of SHARDS pods, the pods)."""
    one = WorkloadStats(origin=ORIGIN, max_points=max_points)
    shards = [WorkloadStats(origin=ORIGIN, max_points=max_points) for _ in range(SHARDS)]
    for record in records:
        one.add(record)
        shards[_shard_of(record)].add(record)
    merged = WorkloadStats(max_points=max_points)
    for shard in shards:
        merged.merge(
            WorkloadStats.from_state(_through_json(shard.to_state()), max_points=max_points)
        )
    return one, merged, shards


def _same_summary(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key == "avg" and value is not None:
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        else:
            assert got[key] == value, key


def _same_nodes(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [n["name"] for n in got] == [n["name"] for n in want]
    for g, w in zip(got, want, strict=True):
        assert {k: v for k, v in g.items() if k not in ("data", "children")} == {
            k: v for k, v in w.items() if k not in ("data", "children")
        }
        _same_summary(g["data"], w["data"])
        _same_nodes(g["children"], w["children"])


def _same_timeline(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g["offset"], g["width"], g["count"], g["failures"]) == (
            w["offset"],
            w["width"],
            w["count"],
            w["failures"],
        )
        _same_summary(g["durations"], w["durations"])


# --- Statistics --------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n"), [(1, 3000), (2, 601), (3, 7)])
def test_merged_statistics_equal_one_pods(seed: int, n: int) -> None:
    records = _records(seed, n)
    one, merged, _ = _split_stats(records)
    assert (
        (merged.iterations, merged.failures)
        == (one.iterations, one.failures)
        == (
            n,
            sum(1 for r in records if r["error"]),
        )
    )
    for name in ("durations", "ok_durations", "ok_idle", "ok_total"):
        got, want = getattr(merged, name), getattr(one, name)
        assert (got.count, got.zeros, got.min, got.max) == (
            want.count,
            want.zeros,
            want.min,
            want.max,
        )
        _same_summary(got.summary(), want.summary())
        assert got.bins() == want.bins()
    assert (merged.start_time, merged.end_time) == (one.start_time, one.end_time)
    assert merged.load_duration == one.load_duration
    assert merged.timeline_start == one.timeline_start == ORIGIN
    _same_timeline(merged.timeline(), one.timeline())
    _same_nodes(merged.atomics(), one.atomics())
    _same_nodes([merged.statistics()["total"]], [one.statistics()["total"]])
    assert merged.summary()["success_rate"] == one.summary()["success_rate"]


@pytest.mark.parametrize("seed", [4, 5])
def test_merged_quantiles_within_the_sketch_error_of_the_data(seed: int) -> None:
    records = _records(seed, 4000)
    _, merged, _ = _split_stats(records)
    values = sorted(r["duration"] for r in records)
    summary = merged.durations.summary()
    assert summary["min"] == values[0] and summary["max"] == values[-1]
    for name, q in (("median", 0.5), ("90%ile", 0.9), ("95%ile", 0.95)):
        position = q * (len(values) - 1)
        lo, hi = values[math.floor(position)], values[math.ceil(position)]
        assert lo * 0.99 <= summary[name] <= hi * 1.01, (name, lo, hi, summary[name])
    assert summary["avg"] == pytest.approx(sum(values) / len(values), rel=1e-12)


def test_merged_timeline_coarsens_like_one_pod() -> None:
    # 80 s of load with room for 16 points: every pod coarsens to 8 s points.
    records = _records(6, 2000, step=0.04)
    one, merged, shards = _split_stats(records, max_points=16)
    assert [s._width for s in shards] == [one._width] * SHARDS
    assert one._width > 1
    _same_timeline(merged.timeline(), one.timeline())


def test_merged_timeline_with_exactly_max_points() -> None:
    # 10 seconds of load, 10 points allowed: one pod keeps 10 one-second points.
    records = _records(7, 40, step=0.25)
    one, merged, _ = _split_stats(records, max_points=10)
    assert (one._width, len(one.timeline())) == (1.0, 10)
    _same_timeline(merged.timeline(), one.timeline())


def test_merge_with_different_origins_and_widths_keeps_the_counts() -> None:
    records = _records(8, 900, step=0.1)
    parts = [
        WorkloadStats(max_points=300),  # origin: its first record
        WorkloadStats(origin=ORIGIN - 3.7, max_points=300),
        WorkloadStats(origin=ORIGIN + 0.5, max_points=8),  # coarser
    ]
    for record in records:
        parts[_shard_of(record)].add(record)
    assert len({p._width for p in parts}) > 1
    merged = WorkloadStats()
    for part in parts:
        merged.merge(WorkloadStats.from_state(_through_json(part.to_state())))
    timeline = merged.timeline()
    assert sum(p["count"] for p in timeline) == 900
    assert sum(p["failures"] for p in timeline) == sum(1 for r in records if r["error"])
    assert merged.timeline_start == ORIGIN - 3.7
    width = timeline[0]["width"]
    assert width == max(p._width for p in parts)
    assert all(p["width"] == width and p["offset"] % width == 0 for p in timeline)
    assert [p["offset"] for p in timeline] == sorted({p["offset"] for p in timeline})
    assert merged.iterations == 900 and merged.durations.count == 900
    assert merged.start_time == min(r["timestamp"] for r in records)


def test_empty_shards_merge_to_nothing() -> None:
    merged = WorkloadStats()
    for _ in range(2):
        merged.merge(WorkloadStats.from_state(_through_json(WorkloadStats().to_state())))
    assert merged.iterations == 0 and merged.timeline() == [] and merged.atomics() == []
    assert merged.durations.summary()["median"] is None
    one = WorkloadStats(origin=ORIGIN)
    for record in _records(9, 5):
        one.add(record)
    merged.merge(one)
    assert merged.iterations == 5 and merged.timeline_start == ORIGIN


def test_histogram_state_round_trip() -> None:
    rng = random.Random(10)
    hist = LogHistogram()
    for _ in range(500):
        hist.add(rng.expovariate(20))
    hist.add(0.0)
    state = _through_json(hist.to_state())
    back = LogHistogram.from_state(state)
    assert back.summary() == hist.summary()
    assert back.bins() == hist.bins()
    assert (back.count, back.zeros, back.relative_error) == (501, 1, pytest.approx(0.01))
    empty = LogHistogram.from_state(_through_json(LogHistogram(0.02).to_state()))
    assert empty.count == 0 and empty.relative_error == pytest.approx(0.02)
    with pytest.raises(ValueError, match="different precision"):
        LogHistogram().merge(empty)


_DROP = object()


def _corrupt(state: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    state = copy.deepcopy(state)
    if value is _DROP:
        del state[key]
    else:
        state[key] = value
    return state


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n", 7),  # the buckets do not add up
        ("z", 5),
        ("c", [1, 2]),
        ("c", "abc"),
        ("e", 2.0),  # no such precision
        ("e", "x"),
        ("s", _DROP),
        ("n", _DROP),
        ("lo", None),
    ],
)
def test_corrupted_histogram_state_is_refused(key: str, value: Any) -> None:
    hist = LogHistogram()
    for v in (0.0, 0.1, 0.2, 0.2, 3.0):
        hist.add(v)
    with pytest.raises(ValueError, match="not a histogram state"):
        LogHistogram.from_state(_corrupt(hist.to_state(), key, value))


def test_corrupted_statistics_state_is_refused() -> None:
    stats = WorkloadStats(origin=ORIGIN)
    for record in _records(11, 10):
        stats.add(record)
    state = stats.to_state()
    broken = copy.deepcopy(state)
    broken["durations"]["n"] += 1
    with pytest.raises(ValueError, match="not a statistics state"):
        WorkloadStats.from_state(broken)
    with pytest.raises(ValueError, match="not a statistics state"):
        WorkloadStats.from_state({k: v for k, v in state.items() if k != "ok"})


# --- SLA ---------------------------------------------------------------------------------------

SLA_CONFIG = {
    "failure_rate": {"max": 10},
    "max_seconds_per_iteration": 2.0,
    "max_avg_duration": 0.1,
    "max_avg_duration_per_atomic": {"a": 0.03, "b": 0.5},
    "outliers": {"max": 100, "min_iterations": 5, "sigmas": 2},
    "performance_degradation": {"max_degradation": 50000},
}


def _sla_runs(
    records: list[dict[str, Any]], config: dict[str, Any]
) -> tuple[SLAChecker, SLAChecker, list[SLAChecker]]:
    one = SLAChecker(config)
    shards = [SLAChecker(config) for _ in range(SHARDS)]
    for record in records:
        one.add_iteration(record)
        shards[_shard_of(record)].add_iteration(record)
    merged = SLAChecker.merged(config, [_through_json(s.to_state()) for s in shards])
    return one, merged, shards


def _criterion(checker: SLAChecker, name: str) -> Any:
    return next(c for c in checker.criteria if c.get_name() == name)


@pytest.mark.parametrize("seed", [12, 13, 14])
def test_merged_sla_equals_one_pods(seed: int) -> None:
    one, merged, shards = _sla_runs(_records(seed, 800), SLA_CONFIG)
    got = {r["criterion"]: r for r in merged.results()}
    want = {r["criterion"]: r for r in one.results()}
    assert list(got) == list(want) == list(SLA_CONFIG)
    for name in SLA_CONFIG:
        if name != "outliers":
            assert got[name] == want[name], name
    # Rally's outliers merge adds the shards' counts (each judged on its own stream).
    outliers: Any = _criterion(merged, "outliers")
    counts = [_criterion(s, "outliers").outliers for s in shards]
    assert outliers.outliers == sum(counts)
    assert outliers.iterations == sum(1 for r in _records(seed, 800) if not r["error"])
    assert got["outliers"]["success"] is (sum(counts) <= SLA_CONFIG["outliers"]["max"])
    assert got["outliers"]["detail"].startswith(f"Maximum number of outliers {sum(counts)} <=")
    assert merged.passed() is all(r["success"] for r in got.values())


def test_merged_sla_can_fail_like_one_pod() -> None:
    config = {
        "failure_rate": {"max": 1},
        "max_seconds_per_iteration": 0.05,
        "max_avg_duration": 0.01,
        "max_avg_duration_per_atomic": {"a": 0.001},
        "performance_degradation": {"max_degradation": 10},
    }
    one, merged, _ = _sla_runs(_records(15, 300), config)
    assert merged.results() == one.results()
    assert not any(r["success"] for r in merged.results())


def test_shard_without_successes_merges() -> None:
    # One shard saw only failures: its performance_degradation min is +inf, through JSON.
    records = _records(16, 30)
    for record in records:
        if _shard_of(record) == 1:
            record["error"] = ["E", "m", "tb"]
    config = {
        "performance_degradation": {"max_degradation": 1e9},
        "failure_rate": {"max": 50},
        "max_avg_duration": 1.0,
        "max_avg_duration_per_atomic": {"a": 1.0},
    }
    one, merged, _ = _sla_runs(records, config)
    assert merged.results() == one.results()
    # An empty shard (a pod that ran nothing) changes nothing either.
    config = {**config, "outliers": {"max": 100}, "max_seconds_per_iteration": 1.0}
    one, _, shards = _sla_runs(records, config)
    states = [_through_json(s.to_state()) for s in [*shards, SLAChecker(config)]]
    merged = SLAChecker.merged(config, states)
    assert [r for r in merged.results() if r["criterion"] != "outliers"] == [
        r for r in one.results() if r["criterion"] != "outliers"
    ]


def test_criterion_state_round_trip() -> None:
    records = _records(17, 50)
    for name, value in SLA_CONFIG.items():
        criterion = SLA.get(name)(value)
        for record in records:
            criterion.add_iteration(record)
        back = type(criterion).from_state(value, _through_json(criterion.to_state()))
        assert back.result() == criterion.result(), name
        fresh = SLA.get(name)(value)  # nothing seen yet: infinities and None cross too
        back = type(fresh).from_state(value, _through_json(fresh.to_state()))
        assert back.result() == fresh.result(), name
        for record in records:  # and it goes on exactly as one never serialised
            assert back.add_iteration(record) is fresh.add_iteration(record)
        assert back.result() == fresh.result() == criterion.result(), name


def test_mergeable_criteria() -> None:
    for name in SLA_CONFIG:
        assert SLA.get(name).mergeable(), name
    assert not SLA.get("disruption_impact").mergeable()


def test_merged_flags() -> None:
    config = {"failure_rate": {"max": 0}}
    a, b, c = SLAChecker(config), SLAChecker(config), SLAChecker(config)
    b.set_aborted_on_sla()
    c.set_unexpected_failure(RuntimeError("pod 2 lost"))
    merged = SLAChecker.merged(config, [_through_json(x.to_state()) for x in (a, b, c)])
    names = [r["criterion"] for r in merged.results()]
    assert names == ["failure_rate", "aborted_on_sla", "something_went_wrong"]
    assert merged.results()[-1]["detail"] == "Unexpected error: pod 2 lost"
    assert not merged.passed()
    clean = SLAChecker.merged(config, [_through_json(a.to_state())] * 2)
    assert clean.passed()


# --- A spread run and the merge of its parts ---------------------------------------------------

WORKLOAD = WorkloadSpec(
    scenario_name="Dummy.dummy",
    runner_type="constant",
    runner_args={"times": 60, "concurrency": 3},
    parallelism=3,
)


def test_run_spread_counts_every_iteration() -> None:
    numbers: list[int] = []
    result = run_spread(WORKLOAD, on_record=lambda r: numbers.append(r["iteration"]))
    assert result["total_iteration_count"] == 60
    assert result["failed_iteration_count"] == 0
    assert result["pass_sla"] is True
    assert sorted(numbers) == list(range(1, 61))
    assert "shard" not in result and "error" not in result
    assert sum(p["count"] for p in result["timeline"]) == 60
    assert result["statistics"]["durations"]["total"]["data"]["iteration_count"] == 60
    assert result["runner"] == {"constant": {"times": 60, "concurrency": 3}}


def test_run_task_runs_a_spread_workload() -> None:
    report = run_task(TaskSpec(title="spread", workloads=(WORKLOAD,)))
    (task,) = report["tasks"]
    (subtask,) = task["subtasks"]
    (workload,) = subtask["workloads"]
    assert workload["total_iteration_count"] == 60
    assert subtask["status"] == "finished" and task["pass_sla"] is True


def _parts(indexes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    origin = time.time()
    parts = {}
    for index in indexes:
        result = run_workload(WORKLOAD, shard=Shard(index, 3), origin=origin)
        assert result["shard"]["index"] == index and result["shard"]["count"] == 3
        assert result["total_iteration_count"] == 20
        parts[index] = _through_json(shard_part(result))
    return parts


def test_missing_shard_is_named_and_not_counted() -> None:
    parts = _parts((0, 2))
    result = merge_shards(WORKLOAD, parts, 3)
    assert result["total_iteration_count"] == 40
    assert (
        "runner pod(s) 1 of 3 did not report results: their iterations are not counted"
        in result["warnings"]
    )
    assert sum(p["count"] for p in result["timeline"]) == 40
    # A pod's error is reported with the pod named.
    parts[2]["error"] = ["RuntimeError", "boom", "tb"]
    assert merge_shards(WORKLOAD, parts, 3)["error"] == [
        "RuntimeError",
        "runner pod 2: boom",
        "tb",
    ]


def test_wrong_parts_are_refused() -> None:
    parts = _parts((0,))
    with pytest.raises(ValueError, match="runner pod 1 is not shard 1 of 3"):
        merge_shards(WORKLOAD, {1: parts[0]}, 3)
    with pytest.raises(ValueError, match="runner pod 0 is not shard 0 of 2"):
        merge_shards(WORKLOAD, parts, 2)
    with pytest.raises(ValueError, match="no runner pod"):
        merge_shards(WORKLOAD, {}, 3)
    whole = run_workload(WorkloadSpec(scenario_name="Dummy.dummy", runner_args={"times": 2}))
    assert "shard" not in whole
    with pytest.raises(ValueError, match="not a shard's result"):
        shard_part(whole)
    broken = copy.deepcopy(parts)
    broken[0]["shard"]["stats"]["durations"]["n"] = 999
    with pytest.raises(ValueError, match="not a statistics state"):
        merge_shards(WORKLOAD, broken, 3)


def test_a_long_loads_part_fits_its_share_of_the_status_with_exact_figures() -> None:
    from krally.task.merge import PARTS_MAX_BYTES

    rng = random.Random(7)
    stats = WorkloadStats(origin=0.0)
    for i in range(40_000):  # 400 s at 100 it/s, widely spread durations
        duration = rng.lognormvariate(-3, 0.8)
        stats.add({"timestamp": i / 100, "duration": duration, "idle_duration": 0.0, "error": []})
    for count in (2, 4):
        part = shard_part(
            {"shard": {"index": 0, "count": count, "stats": stats.to_state(), "sla": {}}}
        )
        assert len(json.dumps(part)) <= max(16 * 1024, PARTS_MAX_BYTES // count)
        fitted = WorkloadStats.from_state(part["shard"]["stats"])
        assert fitted.iterations == 40_000
        assert sum(p["count"] for p in fitted.timeline()) == 40_000
        assert (
            fitted.durations.summary() == stats.durations.summary()
        )  # only the timeline is coarser
