"""The runner pod's live metrics, served on ``RUNNER_PORT`` (8088, port ``metrics``).

- ``krally_runner_iterations_total`` (counter; task): iterations finished;
- ``krally_runner_failures_total`` (counter; task): iterations finished with an error;
- ``krally_runner_iteration_duration_seconds`` (histogram; task): their durations, failed ones
  included (as Rally's durations);
- ``krally_runner_iterations_per_second`` (gauge; task): iterations finished per second over the
  last ``RATE_WINDOW`` seconds.

The pod's namespace (and pod name) come from the scrape target, the task's name is a label.

The engine calls :meth:`RunnerMetrics.record` with every finished iteration, one call at a time,
at up to tens of thousands per second: it only adds to plain integers (no lock, no Prometheus
object per record; ``bench/bench_metrics.py`` measures it). A scrape, in another thread, reads
them: a histogram's buckets are copied in one step, so each scrape is consistent in itself.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

PREFIX = "krally_runner_"
# From a dummy iteration's sub-millisecond to a scenario of minutes.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
# The rate gauge's window, and the least time between two of its samples.
RATE_WINDOW = 5.0
SAMPLE_PERIOD = 0.25


class RunnerMetrics(Collector):
    """The counts of one task's load, and their exposition (``.registry``, of its own)."""

    def __init__(
        self,
        task: str,
        *,
        buckets: Sequence[float] = DURATION_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.task = task
        self.clock = clock
        self._bounds = [float(b) for b in buckets]
        # Per bucket (not cumulative), the last one past the highest bound (+Inf).
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        self.iterations = 0
        self.failures = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._samples_lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def record(self, record: dict[str, Any]) -> None:
        """One finished iteration (the engine's per-iteration record); the hot path."""
        duration = record.get("duration") or 0.0
        self._counts[bisect_left(self._bounds, duration)] += 1
        self._sum += duration
        self.iterations += 1
        if record.get("error"):
            self.failures += 1

    def tick(self) -> None:
        """Keep a sample for the rate (the runner's progress callback calls it ~10 times a
        second; every scrape does too)."""
        now = self.clock()
        with self._samples_lock:
            samples = self._samples
            if not samples or now - samples[-1][0] >= SAMPLE_PERIOD:
                samples.append((now, self.iterations))
            # Keep one sample at or before the window's start: the rate spans the whole window.
            while len(samples) >= 2 and samples[1][0] <= now - RATE_WINDOW:
                samples.popleft()

    def rate(self) -> float:
        """Iterations per second over the last RATE_WINDOW seconds (0 before any sample)."""
        self.tick()
        now = self.clock()
        with self._samples_lock:
            since, count = self._samples[0]
        elapsed = now - since
        return (self.iterations - count) / elapsed if elapsed > 0 else 0.0

    # -- exposition (prometheus_client's Collector protocol) ----------------------------------

    def collect(self) -> Iterable[Metric]:
        labels, values = ["task"], [self.task]
        counts = list(self._counts)  # one copy: buckets and count agree within a scrape
        total = self._sum
        iterations = CounterMetricFamily(
            PREFIX + "iterations", "Iterations of the load finished.", labels=labels
        )
        iterations.add_metric(values, self.iterations)
        failures = CounterMetricFamily(
            PREFIX + "failures", "Iterations finished with an error.", labels=labels
        )
        failures.add_metric(values, self.failures)
        duration = HistogramMetricFamily(
            PREFIX + "iteration_duration_seconds",
            "Duration of each iteration, failed ones included.",
            labels=labels,
        )
        cumulative, buckets = 0, []
        for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        duration.add_metric(values, buckets, total)
        rate = GaugeMetricFamily(
            PREFIX + "iterations_per_second",
            f"Iterations finished per second over the last {RATE_WINDOW:g} seconds.",
            labels=labels,
        )
        rate.add_metric(values, self.rate())
        return [iterations, failures, duration, rate]


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
