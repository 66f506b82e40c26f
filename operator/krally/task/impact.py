"""What each disruption did: per-firing impact windows, recovery time (pure, no Kubernetes).

While the load runs, :class:`ImpactRecorder` counts the iterations in time buckets of
``resolutionSeconds`` by **completion** time (``timestamp + duration``: a request that hangs
until its timeout counts when it fails); per bucket: iterations, failures and a DDSketch-like
histogram of the successful iterations' durations (the keys of
:class:`krally.task.stats.LogHistogram`, 2 %, computed inline: one log per record). It always
keeps a rolling ``baselineSeconds`` (+ a little) of buckets; ``mark(fired_at, key)`` (a hook
fired) retains ``[fired_at - baselineSeconds, fired_at + maxSeconds + afterSeconds]`` (+ one
``windowSeconds`` of slack on both sides); every other bucket is dropped as it ages. At most
``MAX_FIRINGS`` firings are retained per workload and ``MAX_BUCKETS`` buckets in all (a firing
past either limit gets an entry saying it was not analysed), so memory is bounded however long
the run.

After the load, :meth:`ImpactRecorder.analyze` gives one entry per firing (hooks in task order,
then firings in order), with epoch times and camelCase keys (it also goes into a status):
``hook`` (index), ``name`` (plugin), ``triggeredBy {eventType, value}``, ``status``,
``startedAt``/``finishedAt`` (the hook result's), ``firedAt`` (when the engine saw the firing),
then, for a hook that started at S and finished at F, windows aligned on the bucket grid:

* ``baseline`` [S - baselineSeconds, S) (not before the load's first iteration), ``during``
  [S, F] (stopped at the load's end and at S + maxSeconds), ``after`` (F, F + afterSeconds]
  (stopped at the load's end); each ``{start, end, seconds, iterations, failures, errorRate
  (0..1), p50, p95, p99 (seconds, successful iterations only; null without any), throughput
  (iterations completed per second)}``;
* ``p95Ratio``, ``throughputRatio``: during / baseline;
* the analysed span is [S, min(F + afterSeconds, S + maxSeconds, load end)), judged bucket by
  bucket against what the baseline's buckets predict (:mod:`krally.task.recovery`: gaps,
  deficits beyond the noise, and sliding windows of ``windowSeconds`` out of ``tolerance``,
  each blaming only the buckets that make it so);
* ``degraded``: some bucket is out of tolerance; ``recoverySeconds``: the end of the last
  out-of-tolerance bucket, minus S (0 when never degraded); when the span's last window is
  still out of tolerance (or holds a gap or deficit), ``recovered: false, recoverySeconds:
  null``;
* ``notes`` (a list, absent when empty): the edge cases (no baseline because the hook fired at
  the load's start: no verdict, null ``degraded``/``recovered``; not analysed: limit; hook
  still running when the load ended; hook never started; hook failed).

Config: :class:`krally.task.impact_config.ImpactConfig`, from BenchmarkTask ``spec.impact`` (schema:
:mod:`krally.api.spec_schema`) or the ``impact`` of a Rally v1 entry / v2 workload, where the
snake_case spellings (``baseline_seconds``, ``tolerance.error_rate``, ...) are accepted too
(:func:`rally_problems`, :func:`normalise`).
"""

from __future__ import annotations

import bisect
import collections
import heapq
import math
import threading
from collections.abc import Hashable
from typing import Any

from krally.task.impact_analysis import ImpactAnalysis, _Mark
from krally.task.impact_buckets import INV_LOG_GAMMA, TINY, ZERO, Bucket
from krally.task.impact_config import ImpactConfig

# At most this many firings analysed per workload; later ones: "not analysed: limit".
MAX_FIRINGS = 100
# At most this many buckets held at once per workload (rolling history + retained firings).
MAX_BUCKETS = 25_000
# A bucket is packed once it is this many buckets older than the newest.
PACK_AFTER = 2


# -- recording --------------------------------------------------------------------------------


class ImpactRecorder(ImpactAnalysis):
    """Bounded per-bucket counts of a workload's iterations around its hook firings.

    ``add(record)`` is called for every finished iteration (one thread at a time: the engine's
    consumer lock); ``mark`` from any thread.
    """

    def __init__(
        self,
        config: ImpactConfig | None = None,
        *,
        max_firings: int = MAX_FIRINGS,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.config = config or ImpactConfig()
        self.resolution = res = self.config.resolution
        self._inv_res = 1.0 / res
        self._slack = self.config.window_seconds
        # Rolling history, in buckets: the baseline of a firing that comes now.
        self._rolling = math.ceil((self.config.baseline_seconds + 2 * self._slack) / res) + 2
        self.max_firings = max_firings
        self.max_buckets = max(max_buckets, 2 * self._rolling)
        self._budget = self.max_buckets - self._rolling - 2  # for retained firings
        self._buckets: dict[int, Bucket] = {}
        self._heap: list[int] = []  # bucket indices, oldest first (eviction order)
        self._unpacked: collections.deque[int] = collections.deque()  # newest indices, in order
        self._newest: int | None = None
        # The fast path: the last record's bucket and its bounds.
        self._cur = Bucket()
        self._lo = math.inf
        self._hi = -math.inf
        self._lock = threading.Lock()
        self._intervals: list[list[int]] = []  # retained [lo, hi] bucket indices, merged, sorted
        self._starts: list[int] = []
        self._reserved = 0
        self._marks: dict[Hashable, _Mark] = {}
        self._analysed = 0
        self.dropped = 0  # records too late for a bucket that was already dropped

    # -- input ----------------------------------------------------------------------------------

    def add(self, record: dict[str, Any], _log: Any = math.log, _ceil: Any = math.ceil) -> None:
        """Account for one finished iteration (Rally's record). The hot path: keep it short."""
        duration = record["duration"]
        end = record["timestamp"] + duration
        if self._lo <= end < self._hi:
            bucket = self._cur
        else:
            found = self._locate(end)
            if found is None:
                return
            bucket = found
        if record["error"]:
            bucket.failures += 1
            return
        key = _ceil(_log(duration) * INV_LOG_GAMMA) if duration > TINY else ZERO
        keys: dict[int, int] = bucket.keys  # type: ignore[assignment]  # never None here
        keys[key] = keys.get(key, 0) + 1

    def _locate(self, end: float) -> Bucket | None:
        index = math.floor(end * self._inv_res)
        with self._lock:
            bucket = self._buckets.get(index)
            if bucket is None:
                newest = self._newest
                too_old = newest is not None and index < newest - self._rolling
                full = len(self._buckets) >= self.max_buckets
                if (too_old or full) and not self._retained(index):
                    self.dropped += 1
                    return None
                bucket = self._buckets[index] = Bucket()
                heapq.heappush(self._heap, index)
                self._unpacked.append(index)
                if newest is None or index > newest:
                    self._newest = newest = index
                    self._evict(newest - self._rolling)
                    self._pack(newest - PACK_AFTER)
            elif bucket.keys is None:
                bucket.keys = {}  # a late record for a packed bucket
            elif bucket.packed is not None and len(bucket.keys) > 64:
                bucket.pack()  # many late records: keep it small
                bucket.keys = {}
            if self._newest is not None and index >= self._newest:
                self._cur = bucket
                self._lo = index * self.resolution
                self._hi = (index + 1) * self.resolution
            return bucket

    def _pack(self, before: int) -> None:
        unpacked = self._unpacked  # creation order: newest ones ascending, a late one between
        while unpacked and unpacked[0] <= before:
            bucket = self._buckets.get(unpacked.popleft())
            if bucket is not None and bucket.packed is None:
                bucket.pack()

    def _evict(self, horizon: int) -> None:
        heap, buckets = self._heap, self._buckets
        while heap and heap[0] < horizon:
            index = heapq.heappop(heap)
            if not self._retained(index):
                buckets.pop(index, None)

    def _retained(self, index: int) -> bool:
        at = bisect.bisect_right(self._starts, index) - 1
        return at >= 0 and self._intervals[at][1] >= index

    def mark(self, fired_at: float, key: Hashable) -> bool:
        """A hook fired at ``fired_at`` (epoch): retain the buckets its analysis needs.
        ``key`` names the firing, e.g. ``(hook index, event_type, value)``. False: refused."""
        cfg, inv = self.config, self._inv_res
        lo = math.floor((fired_at - cfg.baseline_seconds - self._slack) * inv)
        hi = math.floor((fired_at + cfg.max_seconds + cfg.after_seconds + self._slack) * inv)
        with self._lock:
            if key in self._marks:
                return self._marks[key].refused is None
            mark = _Mark(fired_at)
            self._marks[key] = mark
            if self._analysed >= self.max_firings:
                mark.refused = f"not analysed: limit of {self.max_firings} firings per workload"
                return False
            new = (hi - lo + 1) - self._overlap(lo, hi)
            if self._reserved + new > self._budget:
                mark.refused = (
                    f"not analysed: limit of {self.max_buckets} buckets per workload "
                    f"(at {self.resolution:g} s a bucket)"
                )
                return False
            self._reserved += new
            self._analysed += 1
            mark.lo, mark.hi = lo, hi
            self._insert(lo, hi)
            return True

    def _overlap(self, lo: int, hi: int) -> int:
        return sum(
            max(0, min(hi, b) - max(lo, a) + 1) for a, b in self._intervals if b >= lo and a <= hi
        )

    def _insert(self, lo: int, hi: int) -> None:
        kept: list[list[int]] = []
        for a, b in self._intervals:
            if b < lo - 1 or a > hi + 1:
                kept.append([a, b])
            else:
                lo, hi = min(lo, a), max(hi, b)
        kept.append([lo, hi])
        kept.sort()
        self._intervals = kept
        self._starts = [a for a, _ in kept]

    # -- introspection ------------------------------------------------------------------------

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)
