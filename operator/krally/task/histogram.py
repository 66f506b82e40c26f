"""A log-bucketed histogram (the DDSketch scheme): bucket ``i`` holds values in
``(gamma**(i-1), gamma**i]`` and reports ``2*gamma**i/(gamma+1)``, so every quantile is within
``relative_error`` (1 % by default) of an order statistic of the data, whatever the number of
values, in O(log(max/min)/relative_error) memory (at most ~1 200 buckets from 1 µs to 3 h).
Why not the ``hdrhistogram`` package: it needs integer values and a fixed range chosen up front,
and is a compiled dependency; this exactly fits Rally's float seconds. Histograms merge bucket
by bucket, so merged quantiles are those of one histogram fed every value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

QUANTILES = {"median": 0.5, "90%ile": 0.9, "95%ile": 0.95}
_TINY = 1e-9  # durations at or below this count as zero (a bucket of their own)


class LogHistogram:
    """Quantiles of positive floats within ``relative_error``, in bounded memory."""

    __slots__ = ("_buckets", "_gamma", "_inv_log_gamma", "count", "max", "min", "sum", "zeros")

    def __init__(self, relative_error: float = 0.01):
        if not 0 < relative_error < 1:
            raise ValueError("relative_error must be in (0, 1)")
        self._gamma = (1 + relative_error) / (1 - relative_error)
        self._inv_log_gamma = 1 / math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value <= _TINY:
            self.zeros += 1
            return
        key = math.ceil(math.log(value) * self._inv_log_gamma)
        buckets = self._buckets
        buckets[key] = buckets.get(key, 0) + 1

    def merge(self, other: LogHistogram) -> None:
        if other._gamma != self._gamma:
            raise ValueError("cannot merge histograms of different precision")
        for key, n in other._buckets.items():
            self._buckets[key] = self._buckets.get(key, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def _values_at(self, ranks: list[int]) -> list[float]:
        """Approximate order statistics for sorted 0-based ``ranks``."""
        out: list[float] = []
        it = iter(ranks)
        rank = next(it, None)
        seen = self.zeros
        while rank is not None and rank < seen:
            out.append(max(self.min, 0.0))
            rank = next(it, None)
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            while rank is not None and rank < seen:
                value = 2 * self._gamma**key / (self._gamma + 1)
                out.append(min(max(value, self.min), self.max))
                rank = next(it, None)
            if rank is None:
                break
        while rank is not None:
            out.append(self.max)
            rank = next(it, None)
        return out

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Linear-interpolated quantiles like Rally's (numpy's default) percentile."""
        qs = list(qs)
        if not self.count:
            return [None] * len(qs)
        positions = [q * (self.count - 1) for q in qs]
        ranks = sorted({r for p in positions for r in (math.floor(p), math.ceil(p))})
        values = dict(zip(ranks, self._values_at(ranks), strict=True))
        # The extremes are known exactly.
        values[0] = self.min
        values[self.count - 1] = self.max
        out: list[float | None] = []
        for p in positions:
            lo, hi = math.floor(p), math.ceil(p)
            out.append(values[lo] + (values[hi] - values[lo]) * (p - lo))
        return out

    def quantile(self, q: float) -> float | None:
        return self.quantiles([q])[0]

    def summary(self) -> dict[str, float | None]:
        """``{min, median, 90%ile, 95%ile, max, avg}`` (None everywhere when empty)."""
        median, p90, p95 = self.quantiles(QUANTILES.values())
        empty = not self.count
        return {
            "min": None if empty else self.min,
            "median": median,
            "90%ile": p90,
            "95%ile": p95,
            "max": None if empty else self.max,
            "avg": self.mean,
        }

    def bins(self, max_bins: int = 40) -> list[list[float]]:
        """The distribution as at most ``max_bins`` ``[low, high, count]`` bins, adjacent
        buckets merged evenly on the log scale (what a histogram chart draws)."""
        keys = sorted(self._buckets)
        if not keys:
            return [[0.0, 0.0, self.zeros]] if self.zeros else []
        per_bin = max(1, math.ceil((keys[-1] - keys[0] + 1) / max_bins))
        out: list[list[float]] = [[0.0, 0.0, self.zeros]] if self.zeros else []
        merged: dict[int, int] = {}
        for key in keys:
            slot = (key - keys[0]) // per_bin
            merged[slot] = merged.get(slot, 0) + self._buckets[key]
        for slot in sorted(merged):
            first = keys[0] + slot * per_bin
            low = max(self._gamma ** (first - 1), self.min)
            high = min(self._gamma ** (first + per_bin - 1), self.max)
            out.append([low, high, merged[slot]])
        return out

    def __len__(self) -> int:
        """Buckets in use (what the memory is proportional to)."""
        return len(self._buckets) + (1 if self.zeros else 0)

    # -- crossing processes (a distributed load's shards) -------------------------------------

    @property
    def relative_error(self) -> float:
        return (self._gamma - 1) / (self._gamma + 1)

    def to_state(self) -> dict[str, Any]:
        """JSON-safe and compact: the buckets as one dense run of counts from the lowest key."""
        state: dict[str, Any] = {"e": round(self.relative_error, 9), "n": self.count}
        if not self.count:
            return state
        state.update(s=self.sum, lo=self.min, hi=self.max)
        if self.zeros:
            state["z"] = self.zeros
        if self._buckets:
            first, last = min(self._buckets), max(self._buckets)
            state["k"] = first
            state["c"] = [self._buckets.get(k, 0) for k in range(first, last + 1)]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LogHistogram:
        """The histogram :meth:`to_state` described (ValueError when it is not one)."""
        try:
            hist = cls(float(state["e"]))
            hist.count = int(state["n"])
            if hist.count:
                hist.sum, hist.min, hist.max = (float(state[k]) for k in ("s", "lo", "hi"))
                hist.zeros = int(state.get("z", 0))
                first = int(state.get("k", 0))
                for offset, n in enumerate(state.get("c") or []):
                    if n:
                        hist._buckets[first + offset] = int(n)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a histogram state: {exc}") from None
        if hist.zeros + sum(hist._buckets.values()) != hist.count:
            raise ValueError("not a histogram state: its buckets do not add up to its count")
        return hist
