"""Which buckets of a firing's span are out of tolerance, judged bucket by bucket (pure).

The span is a run of ``resolutionSeconds`` buckets from the hook's start; the baseline's
buckets say what each one should hold. Three rules mark a bucket *bad*; the recovery is the end
of the last bad bucket, so it never falls inside a stretch that still holds part of an outage:

1. **Gaps.** A run of (almost) empty buckets: each with at most ``EMPTY_SHARE`` of the
   successes the baseline predicts per bucket, where the run predicts at least ``MANY``
   successes and is longer than the baseline's own longest such run (a load whose iterations
   complete in bursts has gaps of its own). Bad whatever the neighbouring buckets hold: the
   requests that pile up during an outage and complete at once afterwards cannot hide it.
2. **Deficits.** A stretch of 1 to ``width`` buckets whose successes fall short of the
   tolerated share (``throughputRatio``) of the prediction by more than ``Z`` times the noise:
   ``sqrt(predicted)`` (Poisson) or the baseline's own spread per bucket, the larger, scaled by
   ``sqrt(stretch length)``. At a low rate a quiet bucket is within the noise and raises no
   alarm. Its buckets more than one spread below the tolerated share are bad.
3. **Windows.** Every sliding window of ``width`` buckets (``windowSeconds``) out of the
   configured tolerance, as before (error rate above the baseline's + ``errorRate``, p95 above
   ``p95Ratio`` x the baseline's, completions below ``throughputRatio`` x the baseline's): the
   buckets that make it so are bad (with failures above the rate; with more than 5 % of
   their iterations past the p95 limit, else the one with most; completions well below the
   share, else any below it), never the whole window.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# A bucket with at most this share of the predicted successes is (almost) empty.
EMPTY_SHARE = 0.1
# A gap is an outage only where the baseline predicts at least this many successes in it.
MANY = 10.0
# How many noise units a stretch's deficit must exceed.
Z = 3.0
# A bucket with more than this share of its iterations past the p95 limit is too slow.
SLOW_SHARE = 0.05

Items = Sequence[tuple[int, int]]  # a bucket's duration keys -> counts (successes)


@dataclass(frozen=True)
class Tolerance:
    error_rate: float
    p95_ratio: float
    throughput_ratio: float


@dataclass(frozen=True)
class Bucket:
    count: int  # completed iterations
    failures: int
    items: Items

    @property
    def successes(self) -> int:
        return self.count - self.failures


@dataclass(frozen=True)
class Prediction:
    """What the baseline predicts for one bucket."""

    successes: float
    success_spread: float
    count: float
    count_spread: float
    error_rate: float
    p95: float | None
    longest_gap: int  # the baseline's own longest run of (almost) empty buckets

    @classmethod
    def of(cls, baseline: Sequence[Bucket], p95: float | None) -> Prediction:
        successes = [b.successes for b in baseline]
        counts = [b.count for b in baseline]
        mean_ok = statistics.fmean(successes) if successes else 0.0
        mean = statistics.fmean(counts) if counts else 0.0
        failures = sum(b.failures for b in baseline)
        return cls(
            successes=mean_ok,
            success_spread=_spread(successes, mean_ok),
            count=mean,
            count_spread=_spread(counts, mean),
            error_rate=failures / sum(counts) if sum(counts) else 0.0,
            p95=p95,
            longest_gap=max(_runs([s <= EMPTY_SHARE * mean_ok for s in successes]), default=0),
        )


def _spread(values: Sequence[int], mean: float) -> float:
    """The noise of one bucket: Poisson's, or the baseline's own if larger."""
    own = statistics.pstdev(values) if len(values) > 1 else 0.0
    return max(math.sqrt(mean), own)


def _runs(flags: Sequence[bool]) -> list[int]:
    """Lengths of the runs of True."""
    out, run = [], 0
    for flag in flags:
        if flag:
            run += 1
        elif run:
            out.append(run)
            run = 0
    if run:
        out.append(run)
    return out


@dataclass(frozen=True)
class Verdict:
    bad: list[bool]  # one flag per bucket of the span: out of tolerance
    final_out: bool  # the span's last window is out of tolerance (or holds a gap or deficit)


def judge(
    span: Sequence[Bucket],
    predict: Prediction,
    tolerance: Tolerance,
    width: int,
    *,
    p95_of: Callable[[dict[int, int]], float | None],
    slow_key: int | None,
) -> Verdict:
    """The buckets of ``span`` out of tolerance. ``p95_of`` gives the p95 of merged duration
    keys; ``slow_key`` is the key of the p95 limit (None: no latency limit)."""
    own = [False] * len(span)
    _gaps(span, predict, own)
    _deficits(span, predict, tolerance, width, own)
    bad = list(own)
    final = _windows(span, predict, tolerance, width, bad, p95_of, slow_key)
    return Verdict(bad, final or any(own[len(span) - width :]))


def _gaps(span: Sequence[Bucket], predict: Prediction, bad: list[bool]) -> None:
    expected = predict.successes
    if expected <= 0:
        return
    start = None
    for i, bucket in enumerate([*span, None]):
        empty = bucket is not None and bucket.successes <= EMPTY_SHARE * expected
        if empty and start is None:
            start = i
        elif not empty and start is not None:
            length = i - start
            if length > predict.longest_gap and length * expected >= MANY:
                bad[start:i] = [True] * length
            start = None


def _deficits(
    span: Sequence[Bucket], predict: Prediction, tolerance: Tolerance, width: int, bad: list[bool]
) -> None:
    level = tolerance.throughput_ratio * predict.successes
    sigma = predict.success_spread
    successes = [b.successes for b in span]
    prefix = [0]
    for s in successes:
        prefix.append(prefix[-1] + s)
    strong = [s < level - sigma for s in successes]
    for length in range(1, min(width, len(span)) + 1):
        limit = level * length - Z * sigma * math.sqrt(length)
        if limit <= 0:
            continue
        for a in range(len(span) - length + 1):
            if prefix[a + length] - prefix[a] < limit:
                for i in range(a, a + length):
                    bad[i] = bad[i] or strong[i]


def _windows(
    span: Sequence[Bucket],
    predict: Prediction,
    tolerance: Tolerance,
    width: int,
    bad: list[bool],
    p95_of: Callable[[dict[int, int]], float | None],
    slow_key: int | None,
) -> bool:
    """Blames the buckets of each window out of tolerance; whether the last window is."""
    if len(span) < width:
        return False
    max_error = predict.error_rate + tolerance.error_rate
    level = tolerance.throughput_ratio * predict.count
    min_count = level * width
    max_p95 = tolerance.p95_ratio * predict.p95 if predict.p95 else None
    count = failures = 0
    merged: dict[int, int] = {}

    def shift(bucket: Bucket, sign: int) -> None:
        nonlocal count, failures
        count += sign * bucket.count
        failures += sign * bucket.failures
        for key, n in bucket.items:
            total = merged.get(key, 0) + sign * n
            if total:
                merged[key] = total
            else:
                del merged[key]

    for i in range(width):
        shift(span[i], 1)
    for a in range(len(span) - width + 1):
        if a:
            shift(span[a - 1], -1)
            shift(span[a + width - 1], 1)
        window = span[a : a + width]
        out = False
        if count < min_count:
            out = True
            _blame_low(window, a, level, predict.count_spread, bad)
        if count and failures / count > max_error:
            out = True
            for i, b in enumerate(window, a):
                bad[i] = bad[i] or (b.count > 0 and b.failures / b.count > max_error)
        if max_p95 is not None and slow_key is not None and merged:
            p95 = p95_of(merged)
            if p95 is not None and p95 > max_p95:
                out = True
                _blame_slow(window, a, slow_key, bad)
    return out


def _blame_low(
    window: Sequence[Bucket], first: int, level: float, sigma: float, bad: list[bool]
) -> None:
    """A window short of completions: its buckets well below the tolerated level, or else the
    ones below it (a mild shortfall spread evenly)."""
    for margin in (sigma, 0.0):
        blamed = [first + i for i, b in enumerate(window) if b.count < level - margin]
        if blamed:
            for i in blamed:
                bad[i] = True
            return


def _blame_slow(window: Sequence[Bucket], first: int, slow_key: int, bad: list[bool]) -> None:
    """A window too slow: its buckets with more than 5 % of their iterations past the limit
    (each alone would fail it), or else the one with the most of them."""
    slow = [sum(n for key, n in b.items if key > slow_key) for b in window]
    blamed = [
        first + i
        for i, (n, b) in enumerate(zip(slow, window, strict=True))
        if n > SLOW_SHARE * b.successes
    ]
    if not blamed and max(slow) > 0:
        blamed = [first + slow.index(max(slow))]
    for i in blamed:
        bad[i] = True


def recovery(verdict: Verdict) -> tuple[bool, int | None]:
    """(degraded, the index past the last bad bucket; None when the span's last window is still
    out of tolerance: not back)."""
    last = max((i for i, flag in enumerate(verdict.bad) if flag), default=None)
    if last is None:
        return False, 0
    if verdict.final_out:
        return True, None
    return True, last + 1
