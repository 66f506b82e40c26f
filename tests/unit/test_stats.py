"""Bounded statistics: accuracy vs exact quantiles, bounded memory, timeline, atomics."""

from __future__ import annotations

import math
import random

import pytest

from krally.task.histogram import LogHistogram
from krally.task.stats import WorkloadStats


def exact_quantile(values: list[float], q: float) -> tuple[float, float]:
    """The two order statistics a linear-interpolated quantile lies between, and the value."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lo, hi = math.floor(position), math.ceil(position)
    return ordered[lo], ordered[hi]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(-4, 1.5),
        lambda r: r.uniform(0.001, 2.0),
        lambda r: r.expovariate(50),
        lambda r: 0.01 + r.random() * 1e-4,  # very narrow spread
    ],
)
def test_quantiles_within_one_percent(seed, draw):
    rng = random.Random(seed)
    values = [draw(rng) for _ in range(20_000)]
    hist = LogHistogram(0.01)
    for v in values:
        hist.add(v)
    for q in (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0):
        lo, hi = exact_quantile(values, q)
        got = hist.quantile(q)
        assert lo * 0.99 <= got <= hi * 1.01, (q, lo, hi, got)
    assert hist.min == min(values) and hist.max == max(values)
    assert hist.mean == pytest.approx(sum(values) / len(values))
    assert hist.count == len(values)


def test_histogram_memory_is_bounded():
    hist = LogHistogram(0.01)
    rng = random.Random(0)
    for _ in range(200_000):
        hist.add(10 ** rng.uniform(-6, 4))  # 1 µs .. 3 h
    assert len(hist) <= 1200


def test_zero_and_tiny_values():
    hist = LogHistogram()
    for v in (0.0, 0.0, 1e-12, 1.0):
        hist.add(v)
    assert hist.quantile(0) == 0.0
    assert hist.quantile(0.5) == 0.0
    assert hist.quantile(1) == 1.0


def test_empty_summary():
    assert LogHistogram().summary() == {
        "min": None,
        "median": None,
        "90%ile": None,
        "95%ile": None,
        "max": None,
        "avg": None,
    }
    stats = WorkloadStats()
    assert stats.summary()["iterations"] == 0
    assert stats.timeline() == []
    assert stats.load_duration == 0.0


def test_merge():
    a, b, both = LogHistogram(), LogHistogram(), LogHistogram()
    rng = random.Random(5)
    for i in range(1000):
        v = rng.random()
        (a if i % 2 else b).add(v)
        both.add(v)
    a.merge(b)
    assert a.summary() == pytest.approx(both.summary())


def record(ts, duration, error=False, atomics=None, idle=0.0, iteration=1):
    return {
        "iteration": iteration,
        "timestamp": ts,
        "duration": duration,
        "idle_duration": idle,
        "error": ["E", "m", "tb"] if error else [],
        "output": {"additive": [], "complete": []},
        "atomic_actions": atomics or [],
    }


def test_workload_summary_and_rally_statistics():
    stats = WorkloadStats()
    durations = [0.1, 0.2, 0.3, 0.4, 5.0]
    for i, d in enumerate(durations):
        stats.add(record(1000.0 + i, d, error=(d == 5.0), idle=0.05))
    summary = stats.summary()
    assert summary["iterations"] == 5 and summary["failures"] == 1
    assert summary["success_rate"] == "80.0%"
    assert summary["start_time"] == 1000.0
    assert summary["load_duration"] == pytest.approx(4 + 5.0 + 0.05)
    assert summary["durations"]["max"] == 5.0 and summary["durations"]["min"] == 0.1
    assert summary["durations"]["median"] == pytest.approx(0.3, rel=0.01)
    total = stats.statistics()["total"]
    assert total["name"] == "total"
    assert total["data"]["iteration_count"] == 5
    assert total["data"]["success"] == "80.0%"
    assert total["data"]["max"] == pytest.approx(0.45)  # duration + idle, successful only
    assert [c["name"] for c in total["children"]] == ["duration", "idle_duration"]


def test_atomics_tree():
    stats = WorkloadStats()
    for i in range(10):
        t = 100.0 + i
        atomics = [
            {
                "name": "foo",
                "started_at": t,
                "finished_at": t + 0.5,
                "children": [
                    {"name": "bar", "started_at": t, "finished_at": t + 0.25, "children": []}
                ],
            },
            {"name": "baz", "started_at": t, "finished_at": t + 1, "children": [], "failed": i < 3},
            {"name": "baz", "started_at": t, "finished_at": t + 1, "children": []},
        ]
        stats.add(record(t, 1.0, atomics=atomics))
    foo, baz = stats.atomics()
    assert foo["name"] == "foo" and foo["data"]["iteration_count"] == 10
    assert foo["data"]["median"] == pytest.approx(0.5, rel=0.01)
    assert foo["children"][0]["name"] == "bar"
    assert foo["children"][0]["data"]["avg"] == pytest.approx(0.25)
    assert baz["count_per_iteration"] == 2
    assert baz["data"]["success"] == "85.0%"


def test_timeline_per_second_and_bounded():
    stats = WorkloadStats(max_points=50)
    for i in range(100):  # 10 iterations per second for 10 s
        stats.add(record(500.0 + i / 10, 0.01 * (1 + i % 10), error=(i % 10 == 0)))
    points = stats.timeline()
    assert len(points) == 10
    assert [p["offset"] for p in points] == [float(s) for s in range(10)]
    assert all(p["count"] == 10 and p["failures"] == 1 for p in points)
    assert points[0]["durations"]["max"] == pytest.approx(0.1)
    # A long run coarsens: never more than max_points points, counts preserved.
    for i in range(10_000):
        stats.add(record(510.0 + i * 0.1, 0.02))
    points = stats.timeline()
    assert len(points) <= 50
    assert sum(p["count"] for p in points) == 10_100
    assert points[0]["width"] > 1


def test_start_time_is_the_earliest_start_whatever_the_finish_order() -> None:
    """Rally's load_duration is max(ts + duration) - min(ts): with concurrency the record that
    finishes first need not have started first (Rally's load chart overflows otherwise)."""
    stats = WorkloadStats()
    stats.add({"timestamp": 10.5, "duration": 0.1, "idle_duration": 0.0, "error": []})
    stats.add({"timestamp": 10.0, "duration": 1.0, "idle_duration": 0.0, "error": []})
    assert stats.start_time == 10.0
    assert stats.load_duration == pytest.approx(1.0)
