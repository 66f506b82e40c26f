"""Disruption impact (krally.task.impact): windows, recovery, edge cases, bounded memory, config."""

from __future__ import annotations

import json
import math
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any, get_type_hints

import pytest

from krally.api import types
from krally.api.spec_schema import SPEC_SCHEMA
from krally.task import impact_analysis, impact_buckets
from krally.task.impact import ImpactRecorder
from krally.task.impact_config import ImpactConfig
from krally.task.loader import TaskInvalid, load_task, spec_from_workload, validate_spec

T0 = 1_700_000_000.0
RATE = 100  # iterations per second
DURATION = 0.01


def stream(
    seconds: float,
    *,
    rate: int = RATE,
    start: float = T0,
    fail: Callable[[float], bool] = lambda t: False,
    slow: Callable[[float], bool] = lambda t: False,
) -> Iterable[dict[str, Any]]:
    """Records in completion order: ``rate`` per second; ``fail``/``slow`` by completion time."""
    for n in range(int(seconds * rate)):
        ts = start + n / rate
        end = ts + DURATION
        duration = 0.2 if slow(end) else DURATION
        yield {
            "timestamp": end - duration,
            "duration": duration,
            "idle_duration": 0.0,
            "error": ["E", "boom", ""] if fail(end) else [],
            "atomic_actions": [],
        }


def run(
    records: Iterable[dict[str, Any]],
    firings: list[tuple[float, float | None]],
    recorder: ImpactRecorder | None = None,
    *,
    status: str = "success",
    load_end: float | None = None,
) -> list[dict[str, Any]]:
    """Feed records, marking each firing (hook 0, iteration i) when the stream reaches it."""
    recorder = recorder or ImpactRecorder()
    pending = sorted(enumerate(firings), key=lambda f: f[1][0])
    last = T0
    for record in records:
        end = record["timestamp"] + record["duration"]
        while pending and pending[0][1][0] <= end:
            index, (fired, _) = pending.pop(0)
            recorder.mark(fired, (0, "iteration", index + 1))
        recorder.add(record)
        last = max(last, end)
    for index, (fired, _) in pending:
        recorder.mark(fired, (0, "iteration", index + 1))
    results = [
        {
            "status": status,
            "started_at": fired,
            "finished_at": finished,
            "triggered_by": {"event_type": "iteration", "value": index + 1},
        }
        for index, (fired, finished) in enumerate(firings)
    ]
    hooks = [
        {
            "config": {"description": "", "action": {"sys_call": "true"}, "trigger": {}},
            "results": results,
            "summary": {},
        }
    ]
    out = recorder.analyze(hooks, load_start=T0, load_end=load_end or last)
    json.dumps(out, allow_nan=False)  # JSON-safe: a status takes it too
    return out


def test_no_effect_is_never_degraded() -> None:
    (entry,) = run(stream(40), [(T0 + 20, T0 + 21)])
    assert entry["degraded"] is False
    assert entry["recovered"] is True and entry["recoverySeconds"] == 0.0
    assert entry["hook"] == 0 and entry["name"] == "sys_call" and entry["status"] == "success"
    assert entry["triggeredBy"] == {"eventType": "iteration", "value": 1}
    baseline, during, after = entry["baseline"], entry["during"], entry["after"]
    assert baseline["end"] == pytest.approx(T0 + 20) and baseline["seconds"] == pytest.approx(10)
    assert baseline["iterations"] == pytest.approx(1000, abs=2)
    assert baseline["throughput"] == pytest.approx(100, rel=0.01)
    assert baseline["errorRate"] == 0.0
    assert baseline["p50"] == pytest.approx(DURATION, rel=0.02)
    assert during["seconds"] == pytest.approx(1) and during["iterations"] == pytest.approx(100, 2)
    assert after["start"] == pytest.approx(T0 + 21) and after["seconds"] == pytest.approx(10)
    assert entry["p95Ratio"] == pytest.approx(1, rel=0.05)
    assert entry["throughputRatio"] == pytest.approx(1, rel=0.05)
    assert "notes" not in entry


def test_a_burst_of_errors_recovers_when_it_ends() -> None:
    fired = T0 + 20.1
    burst = (fired, fired + 2.0)

    def failing(t: float) -> bool:
        return burst[0] <= t < burst[1]

    (entry,) = run(stream(40, fail=failing), [(fired, fired + 0.5)])
    assert entry["degraded"] is True and entry["recovered"] is True
    # Recovery is measured by whole windows: within one resolution step of the burst's end.
    assert entry["recoverySeconds"] == pytest.approx(2.0, abs=0.25)
    assert entry["during"]["errorRate"] > 0.8  # windows are aligned on the 0.25 s grid
    assert entry["baseline"]["errorRate"] == 0.0
    assert entry["after"]["failures"] > 0 and entry["after"]["errorRate"] < 0.2


def test_a_latency_burst_recovers_when_it_ends() -> None:
    fired = T0 + 20.0

    def slow(t: float) -> bool:
        return fired <= t < fired + 3.0

    (entry,) = run(stream(40, slow=slow), [(fired, fired + 1.0)])
    assert entry["degraded"] is True and entry["recovered"] is True
    assert entry["recoverySeconds"] == pytest.approx(3.0, abs=0.25)
    assert entry["p95Ratio"] == pytest.approx(20, rel=0.05)
    assert entry["during"]["errorRate"] == 0.0


def test_never_recovering() -> None:
    fired = T0 + 20.0
    (entry,) = run(stream(40, fail=lambda t: t >= fired), [(fired, fired + 1)])
    assert entry["degraded"] is True
    assert entry["recovered"] is False and entry["recoverySeconds"] is None


def test_an_outage_without_completions_is_degraded() -> None:
    # Nothing completes for 3 s: empty windows have throughput 0.
    fired = T0 + 20.0
    records = (r for r in stream(40) if not fired <= r["timestamp"] + r["duration"] < fired + 3)
    (entry,) = run(records, [(fired, fired + 0.5)])
    assert entry["degraded"] is True
    assert entry["recoverySeconds"] == pytest.approx(3.0, abs=0.25)
    assert entry["throughputRatio"] == 0.0
    assert entry["p95Ratio"] is None  # no successful iteration while the hook ran


def test_a_firing_at_the_load_start_has_no_baseline() -> None:
    (entry,) = run(stream(20), [(T0, T0 + 1)])
    assert entry["degraded"] is None and entry["recovered"] is None
    assert entry["recoverySeconds"] is None and entry["p95Ratio"] is None
    assert entry["during"]["iterations"] > 0
    assert any(note.startswith("no baseline") for note in entry["notes"])
    assert not impact_analysis.analysed(entry)


def test_late_records_of_long_iterations_count_at_completion() -> None:
    # A request started before the hook that hangs 5 s until its timeout fails when it ends.
    fired = T0 + 20.0
    records = list(stream(40))
    hung = {"timestamp": fired - 1, "duration": 6.0, "idle_duration": 0.0, "error": ["Timeout"]}
    records.append(hung)
    records.sort(key=lambda r: r["timestamp"] + r["duration"])
    (entry,) = run(records, [(fired, fired + 10)])
    assert entry["baseline"]["failures"] == 0
    assert entry["during"]["failures"] == 1


def test_a_hook_still_running_at_the_load_end() -> None:
    fired = T0 + 20.0
    (entry,) = run(stream(30), [(fired, None)], status="running")
    assert entry["after"] is None
    assert entry["during"]["end"] == pytest.approx(T0 + 30, abs=0.25)
    assert any("still running" in note for note in entry["notes"])


def test_a_hook_that_never_started() -> None:
    (entry,) = run(stream(30), [(T0 + 20, None)], status="pending")
    assert entry["baseline"] is None and entry["recovered"] is None
    assert entry["firedAt"] == T0 + 20 and entry["startedAt"] == T0 + 20
    assert any("never started" in note for note in entry["notes"])
    # A hook that never fired has no entry.
    hooks = [{"config": {"action": {"x": 1}}, "results": []}]
    assert ImpactRecorder().analyze(hooks, load_start=T0, load_end=T0 + 1) == []


def test_a_hook_that_started_after_the_load() -> None:
    (entry,) = run(stream(30), [(T0 + 30.5, T0 + 31)], load_end=T0 + 30)
    assert entry["during"] is None and entry["recovered"] is None
    assert entry["notes"] == ["not analysed: the hook started after the load ended"]
    # One that started just before the end and outlived the load: a short during window.
    (late,) = run(stream(30), [(T0 + 29.9, T0 + 31)], load_end=T0 + 30)
    assert late["during"]["seconds"] == pytest.approx(0.25) and late["after"] is None
    assert any("finished 1.0 s later" in note for note in late["notes"])


def test_a_failed_launch_is_noted() -> None:
    recorder = ImpactRecorder()
    for record in stream(30):
        recorder.add(record)
    recorder.mark(T0 + 29, (0, "iteration", 1))
    result = {
        "status": "failed",
        "started_at": T0 + 29,
        "finished_at": T0 + 29,
        "triggered_by": {"event_type": "iteration", "value": 1},
        "error": {"etype": "OSError", "msg": "the hook could not be launched: no such file"},
    }
    (entry,) = recorder.analyze(
        [{"config": {}, "results": [result]}], load_start=T0, load_end=T0 + 30
    )
    assert any(note.startswith("hook failed: OSError") for note in entry["notes"])


def test_firings_beyond_the_limit_are_not_analysed() -> None:
    recorder = ImpactRecorder(max_firings=2)
    firings = [(T0 + 10 + 5 * i, T0 + 10.5 + 5 * i) for i in range(3)]
    entries = run(stream(40), firings, recorder)
    assert [impact_analysis.analysed(e) for e in entries] == [True, True, False]
    assert "not analysed: limit of 2 firings" in entries[2]["notes"][0]
    assert entries[2]["baseline"] is None


def test_memory_is_bounded_over_a_long_run_with_many_firings() -> None:
    # 2 hours, a firing every 20 s (360 of them): the bucket cap holds whatever comes.
    recorder = ImpactRecorder(ImpactConfig(max_seconds=60), max_firings=1000, max_buckets=5_000)
    seen = 0
    next_firing, n = T0 + 15, 0
    tracemalloc.start()
    for record in stream(2 * 3600, rate=20):
        end = record["timestamp"] + record["duration"]
        if end >= next_firing:
            n += 1
            recorder.mark(next_firing, (0, "time", n))
            next_firing += 20
        recorder.add(record)
        seen = max(seen, recorder.bucket_count)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 360
    assert seen <= 5_000
    assert peak < 5_000_000
    # Without firings, only the rolling baseline is kept.
    idle = ImpactRecorder()
    for record in stream(600):
        idle.add(record)
    assert idle.bucket_count <= math.ceil((10 + 4) / 0.25) + 3


def test_the_bucket_cap_refuses_firings_with_a_note() -> None:
    recorder = ImpactRecorder(ImpactConfig(max_seconds=60), max_buckets=400)
    firings = [(T0 + 15, T0 + 16), (T0 + 200, T0 + 201)]
    entries = run(stream(300), firings, recorder)
    assert impact_analysis.analysed(entries[0])
    assert not impact_analysis.analysed(entries[1])
    assert "buckets" in entries[1]["notes"][0]


def test_a_firing_without_a_mark_is_not_analysed() -> None:
    recorder = ImpactRecorder()
    for record in stream(30):
        recorder.add(record)
    result = {
        "status": "success",
        "started_at": T0 + 20,
        "finished_at": T0 + 21,
        "triggered_by": {"event_type": "time", "value": 5},
    }
    (entry,) = recorder.analyze([{"results": [result]}], load_start=T0, load_end=T0 + 30)
    assert entry["baseline"] is None and "no firing was recorded" in entry["notes"][0]


def test_quantiles_match_log_histogram() -> None:
    from krally.task.stats import LogHistogram

    hist = LogHistogram(impact_buckets.RELATIVE_ERROR)
    recorder = ImpactRecorder()
    durations = [0.001 * (1 + i % 97) for i in range(1000)]
    for i, d in enumerate(durations):
        hist.add(d)
        recorder.add({"timestamp": T0 + i * 0.001, "duration": d, "error": []})
    window = recorder._window(math.floor(T0 * 4) - 1, math.floor((T0 + 2) * 4) + 1)
    for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        assert window[key] == pytest.approx(hist.quantile(q), rel=0.03)


# -- config -----------------------------------------------------------------------------------


def test_config_defaults_and_spec() -> None:
    assert ImpactConfig.from_spec(None) == ImpactConfig()
    config = ImpactConfig.from_spec(
        {"windowSeconds": 1, "resolutionSeconds": 2, "tolerance": {"p95Ratio": 3}}
    )
    assert config.window_seconds == 1 and config.p95_ratio == 3 and config.error_rate == 0.01
    assert config.resolution == 1  # never wider than the window


def test_typed_dicts_match_the_schema() -> None:
    schema = SPEC_SCHEMA["properties"]["impact"]
    assert set(get_type_hints(types.Impact)) == set(schema["properties"])
    tolerance = schema["properties"]["tolerance"]["properties"]
    assert set(get_type_hints(types.ImpactTolerance)) == set(tolerance)
    assert "impact" in get_type_hints(types.TaskSpec)


def spec(impact_cfg: Any) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
        "runner": {"type": "constant", "times": 10},
        "hooks": [
            {
                "name": "sys_call",
                "args": "/bin/true",
                "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5]}},
            }
        ],
        "impact": impact_cfg,
    }


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"windowSeconds": 0}, "spec.impact.windowSeconds"),
        ({"windowSeconds": "2"}, "spec.impact.windowSeconds"),
        ({"baselineSeconds": 0}, "spec.impact.baselineSeconds"),
        ({"maxSeconds": 1e9}, "spec.impact.maxSeconds"),
        ({"tolerance": {"errorRate": 2}}, "spec.impact.tolerance.errorRate"),
        ({"tolerance": {"throughputRatio": -1}}, "spec.impact.tolerance.throughputRatio"),
        ({"enabled": "yes"}, "spec.impact.enabled"),
        ({"windowSecond": 2}, "spec.impact"),
    ],
)
def test_bad_values_are_refused_naming_the_field(value: Any, field: str) -> None:
    problems = validate_spec(spec(value))
    assert problems, value
    assert any(str(p).startswith(field) for p in problems), [str(p) for p in problems]


def test_a_valid_impact_loads_into_the_workload(tmp_path: Any) -> None:
    import yaml

    cfg = {"baselineSeconds": 5, "tolerance": {"errorRate": 0.05}}
    assert validate_spec(spec(cfg)) == []
    doc = {"apiVersion": "krally.dev/v1alpha1", "kind": "BenchmarkTask", "spec": spec(cfg)}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    (workload,) = load_task(path).workloads
    assert workload.impact == cfg
    assert spec_from_workload(workload)["impact"] == cfg


def rally_v2(impact_cfg: Any) -> dict[str, Any]:
    return {
        "version": 2,
        "title": "t",
        "subtasks": [
            {
                "title": "s",
                "scenario": {"Dummy.dummy": {"sleep": 0}},
                "runner": {"constant": {"times": 10}},
                "impact": impact_cfg,
            }
        ],
    }


def test_rally_formats_take_impact_in_either_spelling(tmp_path: Any) -> None:
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(rally_v2({"baseline_seconds": 5, "tolerance": {"p95_ratio": 2}})))
    (workload,) = load_task(path).workloads
    assert workload.impact == {"baselineSeconds": 5, "tolerance": {"p95Ratio": 2}}
    v1 = {"Dummy.dummy": [{"runner": {"type": "serial"}, "impact": {"windowSeconds": 1}}]}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    (workload,) = load_task(path).workloads
    assert workload.impact == {"windowSeconds": 1}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"window_seconds": 0}, "subtasks[0].impact.window_seconds"),
        ({"tolerance": {"errorRate": 5}}, "subtasks[0].impact.tolerance.errorRate"),
        ({"bogus": 1}, "subtasks[0].impact"),
        ({"max_seconds": 10, "maxSeconds": 20}, "subtasks[0].impact"),
    ],
)
def test_rally_formats_refuse_bad_impact(tmp_path: Any, value: Any, field: str) -> None:
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(rally_v2(value)))
    with pytest.raises(TaskInvalid) as caught:
        load_task(path)
    assert any(str(p).startswith(field) for p in caught.value.problems), caught.value.lines()
