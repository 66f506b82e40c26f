"""Outage-exact recovery (krally.task.recovery through ImpactRecorder) on synthetic timelines.

A closed-loop load is simulated as the runner makes it: ``workers`` loops, each sending one
request after the other. A freeze of the server over [a, b) holds every request in flight: it
fails at its timeout if that comes first, else completes just after b (the pile-up). The truth
is b: the recovery must be b - S within one bucket, whatever the rate after the freeze.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from krally.task import recovery
from krally.task.impact import ImpactRecorder
from krally.task.impact_config import ImpactConfig

T0 = 1_700_000_000.0
RES = 0.25  # the default resolution


def closed_loop(
    seconds: float,
    *,
    workers: int = 2,
    service: float = 0.01,
    after: float | None = None,
    freeze: tuple[float, float] | None = None,
    timeout: float | None = 0.5,
    seed: int = 0,
    jitter: float = 0.2,
) -> Iterator[dict[str, Any]]:
    """Records (completion order) of ``workers`` back-to-back requests of ``service`` seconds
    (``after``: the service time once the freeze is over), the server frozen over ``freeze``
    (seconds into the load)."""
    rng = random.Random(seed)
    records = []
    for _ in range(workers):
        t = rng.random() * service
        while t < seconds:
            base = service if freeze is None or after is None or t < freeze[1] else after
            took = base * (1 + jitter * (rng.random() - 0.5))
            done, failed = t + took, False
            if freeze is not None and t < freeze[1] and done > freeze[0]:
                resumed = max(freeze[1], t) + took * 0.5
                if timeout is not None and t + timeout < resumed:
                    done, failed = t + timeout, True
                else:
                    done = resumed
            records.append(
                {
                    "timestamp": T0 + t,
                    "duration": done - t,
                    "idle_duration": 0.0,
                    "error": ["ReadTimeout", "timed out", ""] if failed else [],
                    "atomic_actions": [],
                }
            )
            t = done
    records.sort(key=lambda r: r["timestamp"] + r["duration"])
    return iter(records)


def analyse(
    records: Iterator[dict[str, Any]],
    started: float,
    finished: float,
    config: ImpactConfig | None = None,
) -> dict[str, Any]:
    recorder = ImpactRecorder(config or ImpactConfig(baseline_seconds=5, after_seconds=5))
    marked, last = False, T0
    for record in records:
        end = record["timestamp"] + record["duration"]
        if not marked and end >= T0 + started:
            recorder.mark(T0 + started, (0, "time", 1))
            marked = True
        recorder.add(record)
        last = max(last, end)
    result = {
        "status": "success",
        "started_at": T0 + started,
        "finished_at": T0 + finished,
        "triggered_by": {"event_type": "time", "value": 1},
    }
    (entry,) = recorder.analyze(
        [{"config": {"action": {"sys_call": "x"}}, "results": [result]}],
        load_start=T0,
        load_end=last,
    )
    return entry


@pytest.mark.parametrize("workers", [1, 2, 8])
@pytest.mark.parametrize("freeze", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("after", [0.007, 0.011])  # faster / slower than the baseline
def test_a_freeze_recovers_when_it_ends(workers: int, freeze: float, after: float) -> None:
    start = 8.0 + 0.37 * workers  # not on the bucket grid
    records = closed_loop(
        start + freeze + 8, workers=workers, after=after, freeze=(start, start + freeze)
    )
    entry = analyse(records, start, start + freeze)
    assert entry["degraded"] is True and entry["recovered"] is True, entry
    assert entry["recoverySeconds"] == pytest.approx(freeze, abs=RES), entry


def test_the_pile_up_and_a_fast_rate_after_cannot_hide_the_freeze() -> None:
    # The case: no timeout, so every request waits and completes at once after the
    # freeze; then twice the baseline's rate. A 2 s window over the freeze's end holds more
    # completions than the baseline's: the old window test passed it, recovering early.
    start = 8.1
    records = closed_loop(
        start + 10, workers=2, after=0.004, freeze=(start, start + 0.6), timeout=None
    )
    entry = analyse(records, start, start + 0.6)
    assert entry["degraded"] is True
    assert entry["recoverySeconds"] == pytest.approx(0.6, abs=RES)


@pytest.mark.parametrize("offset", [0.0, 0.05, 0.12, 0.2, 0.24])
def test_a_freeze_of_two_buckets_is_always_degraded(offset: float) -> None:
    start = 8.0 + offset
    records = closed_loop(start + 8, workers=2, freeze=(start, start + 2 * RES))
    entry = analyse(records, start, start + 2 * RES)
    assert entry["degraded"] is True, entry
    assert entry["recoverySeconds"] == pytest.approx(2 * RES, abs=RES)


def test_timeouts_count_when_they_fail_never_before_the_hook() -> None:
    # Requests in flight at the freeze fail at their timeout, after S: the baseline stays clean.
    start = 8.0
    records = closed_loop(start + 8, workers=8, freeze=(start, start + 2), timeout=0.5)
    entry = analyse(records, start, start + 2)
    assert entry["baseline"]["failures"] == 0
    assert entry["during"]["failures"] > 0
    assert entry["recoverySeconds"] == pytest.approx(2, abs=RES)


@pytest.mark.parametrize("seed", range(20))
def test_an_undisturbed_load_is_never_degraded(seed: int) -> None:
    records = closed_loop(20, workers=1 + seed % 8, seed=seed, jitter=0.8)
    entry = analyse(records, 10.0 + seed * 0.013, 10.1 + seed * 0.013)
    assert entry["degraded"] is False, entry
    assert entry["recoverySeconds"] == 0.0


def test_a_quiet_bucket_at_a_low_rate_raises_no_alarm() -> None:
    # 8 iterations/s at random moments: 2 a bucket on average, often none.
    rng = random.Random(3)
    times = sorted(rng.uniform(0, 30) for _ in range(240))
    records = (
        {"timestamp": T0 + t, "duration": 0.01, "error": [], "idle_duration": 0.0} for t in times
    )
    entry = analyse(records, 15.0, 15.5)
    assert entry["degraded"] is False, entry


def test_a_load_completing_in_bursts_has_gaps_of_its_own() -> None:
    # 20 workers in step, 1.5 s a request: 20 completions every 1.5 s, nothing between.
    records = (
        {"timestamp": T0 + k * 1.5, "duration": 1.5, "error": [], "idle_duration": 0.0}
        for k in range(30)
        for _ in range(20)
    )
    config = ImpactConfig(baseline_seconds=10, after_seconds=10, window_seconds=3)
    entry = analyse(records, 20.0, 20.5, config)
    assert entry["degraded"] is False, entry


def test_a_mild_lasting_shortfall_is_blamed_where_it_is() -> None:
    # 65 % of the baseline's rate for 3 s (tolerance 80 %): no bucket is empty, yet every
    # window over it is short; the recovery is where the rate came back.
    start = 8.0
    rng = random.Random(5)
    times: list[float] = []
    t = 0.0
    while t < 20:
        times.append(t)
        slow = start <= t < start + 3
        t += (1 / 65 if slow else 1 / 100) * (1 + 0.1 * (rng.random() - 0.5))
    records = (
        {"timestamp": T0 + t, "duration": 0.005, "error": [], "idle_duration": 0.0} for t in times
    )
    entry = analyse(records, start, start + 0.1)
    assert entry["degraded"] is True
    assert entry["recoverySeconds"] == pytest.approx(3, abs=2 * RES)


def test_the_rules_one_by_one() -> None:
    ok = recovery.Bucket(25, 0, ((0, 25),))
    predict = recovery.Prediction.of([ok] * 40, 0.01)
    tolerance = recovery.Tolerance(0.01, 1.5, 0.8)

    def judge(span: list[recovery.Bucket]) -> recovery.Verdict:
        return recovery.judge(span, predict, tolerance, 8, p95_of=lambda keys: 0.01, slow_key=None)

    empty = recovery.Bucket(0, 0, ())
    gap = judge([ok] * 4 + [empty] + [recovery.Bucket(60, 0, ((0, 60),))] * 8)
    assert gap.bad == [False] * 4 + [True] + [False] * 8  # the pile-up after it changes nothing
    failing = recovery.Bucket(25, 25, ())  # completions, no successes
    assert judge([failing] * 2 + [ok] * 8).bad[:3] == [True, True, False]
    half = recovery.Bucket(12, 0, ((0, 12),))
    low = judge([ok] * 3 + [half] * 8 + [ok] * 8)
    assert low.bad == [False] * 3 + [True] * 8 + [False] * 8
    assert recovery.recovery(low) == (True, 11)
    assert recovery.recovery(judge([ok] * 10)) == (False, 0)
    # Still short at the end: the last window is out of tolerance, not recovered.
    assert recovery.recovery(judge([ok] * 10 + [half] * 4)) == (True, None)
    # A gap just before a last window within tolerance: recovered at the gap's end; in it, not.
    late = judge([ok] * 8 + [empty] + [ok] * 8)
    assert late.bad[8] and not late.final_out
    assert recovery.recovery(late) == (True, 9)
    assert judge([ok] * 8 + [empty] + [ok] * 7).final_out
