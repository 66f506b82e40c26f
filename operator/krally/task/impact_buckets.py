"""The impact recorder's buckets and their duration keys (pure, no Kubernetes).

A bucket keeps the iterations completed in one resolution step: failures, and the keys of the
successful ones' durations (those of :class:`krally.task.stats.LogHistogram`, 2 %) -> counts.
"""

from __future__ import annotations

import array
import math
from collections.abc import Iterable

RELATIVE_ERROR = 0.02
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
INV_LOG_GAMMA = 1 / math.log(GAMMA)
TINY = 1e-9  # as LogHistogram: at or below, a duration counts as zero
ZERO = -(1 << 30)  # the key of zero durations (packed as a 32-bit int)


class Bucket:
    """Iterations completed in one resolution step: ``failures`` and the LogHistogram keys of the
    successful ones' durations → counts (their sum: the successes, not counted apart: one add
    less per record). Once the bucket is two steps old its dict is ``pack``ed into an array of
    (key, count) pairs, about a tenth of the memory; a record that comes later still lands in a
    fresh dict."""

    __slots__ = ("failures", "keys", "packed")

    def __init__(self) -> None:
        self.failures = 0
        self.keys: dict[int, int] | None = {}  # None once packed, until a late record comes
        self.packed: array.array[int] | None = None

    def pack(self) -> None:
        packed = array.array("i")  # keys are within ±2**31 (1e-300 s .. 1e300 s), and counts
        for key, n in sorted(self.items()):
            packed.append(key)
            packed.append(n)
        self.packed = packed
        self.keys = None

    def items(self) -> list[tuple[int, int]]:
        packed = self.packed
        out = list(zip(packed[::2], packed[1::2], strict=True)) if packed is not None else []
        if self.keys:
            out.extend(self.keys.items())
        return out

    @property
    def count(self) -> int:
        packed, keys = self.packed, self.keys
        return (
            self.failures
            + (sum(keys.values()) if keys else 0)
            + (sum(packed[1::2]) if packed else 0)
        )


def key_of(duration: float) -> int:
    """The LogHistogram key of a duration (as :meth:`ImpactRecorder.add` computes it)."""
    return math.ceil(math.log(duration) * INV_LOG_GAMMA) if duration > TINY else ZERO


def quantiles(merged: dict[int, int], qs: Iterable[float]) -> list[float | None]:
    """numpy-style (linear) quantiles of LogHistogram keys → counts."""
    qs = list(qs)
    n = sum(merged.values())
    if not n:
        return [None] * len(qs)
    keys = sorted(merged)
    positions = [q * (n - 1) for q in qs]
    ranks = sorted({r for p in positions for r in (math.floor(p), math.ceil(p))})
    values: dict[int, float] = {}
    seen, at = 0, 0
    for key in keys:
        seen += merged[key]
        value = 0.0 if key == ZERO else 2 * GAMMA**key / (GAMMA + 1)
        while at < len(ranks) and ranks[at] < seen:
            values[ranks[at]] = value
            at += 1
        if at == len(ranks):
            break
    out: list[float | None] = []
    for p in positions:
        lo, hi = math.floor(p), math.ceil(p)
        out.append(values[lo] + (values[hi] - values[lo]) * (p - lo))
    return out
