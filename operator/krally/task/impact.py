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
from dataclasses import dataclass
from typing import Any

from krally.task import recovery
from krally.task.impact_buckets import INV_LOG_GAMMA, TINY, ZERO, Bucket, key_of, quantiles
from krally.task.impact_config import ImpactConfig

# At most this many firings analysed per workload; later ones: "not analysed: limit".
MAX_FIRINGS = 100
# At most this many buckets held at once per workload (rolling history + retained firings).
MAX_BUCKETS = 25_000
# A baseline with fewer iterations per sliding window than this gives noisy verdicts.
MIN_PER_WINDOW = 5
# A bucket is packed once it is this many buckets older than the newest.
PACK_AFTER = 2


# -- recording --------------------------------------------------------------------------------


@dataclass
class _Mark:
    fired_at: float
    lo: int = 0  # retained bucket indices, inclusive
    hi: int = -1
    refused: str | None = None  # why it is not analysed


class ImpactRecorder:
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

    # -- analysis -----------------------------------------------------------------------------

    def analyze(
        self,
        hooks: list[dict[str, Any]],
        *,
        load_start: float | None,
        load_end: float,
    ) -> list[dict[str, Any]]:
        """One entry per firing of ``hooks`` (Rally's per-hook results), see the module doc."""
        out = []
        for index, hook in enumerate(hooks or []):
            name = _action_name(hook.get("config") or {})
            for result in hook.get("results") or []:
                out.append(self._entry(index, name, result, load_start, load_end))
        return out

    def _entry(
        self,
        index: int,
        name: str | None,
        result: dict[str, Any],
        load_start: float | None,
        load_end: float,
    ) -> dict[str, Any]:
        by = result.get("triggered_by") or {}
        event_type, value = by.get("event_type"), by.get("value")
        started, finished = _epoch(result.get("started_at")), _epoch(result.get("finished_at"))
        entry: dict[str, Any] = {
            "hook": index,
            "name": name,
            "triggeredBy": {"eventType": event_type, "value": value},
            "status": result.get("status"),
            "startedAt": started,
            "finishedAt": finished,
        }
        notes: list[str] = []
        entry["notes"] = notes
        mark = self._marks.get((index, event_type, value))
        error = result.get("error")
        if error and result.get("status") != "pending":
            notes.append(f"hook {result.get('status')}: {_error_text(error)}")
        if mark is None:
            notes.append("not analysed: no firing was recorded for it")
            return _finish(entry)
        entry["firedAt"] = mark.fired_at
        if mark.refused:
            notes.append(mark.refused)
            return _finish(entry)
        if started is None or result.get("status") == "pending":
            notes.append("not analysed: the hook never started")
            return _finish(entry)
        if load_start is None:
            notes.append("not analysed: no iteration finished")
            return _finish(entry)
        if started >= load_end:
            notes.append("not analysed: the hook started after the load ended")
            return _finish(entry)
        self._windows(entry, notes, mark, started, finished, load_start, load_end)
        return _finish(entry)

    def _windows(
        self,
        entry: dict[str, Any],
        notes: list[str],
        mark: _Mark,
        started: float,
        finished: float | None,
        load_start: float,
        load_end: float,
    ) -> None:
        cfg, inv, res = self.config, self._inv_res, self.resolution
        floor, ceil = math.floor, math.ceil
        running = finished is None or finished > load_end
        if running:
            late = "" if finished is None else f" (it finished {finished - load_end:.1f} s later)"
            notes.append(f"the hook was still running when the load ended{late}")
            finish = load_end
        else:
            assert finished is not None
            finish = max(finished, started)
        last = min(floor(load_end * inv), mark.hi + 1)  # past the last full bucket
        s0 = floor(started * inv)
        if s0 >= last:  # the hook started in the load's last (partial) bucket
            last = s0 + 1
        capped = finish > started + cfg.max_seconds
        if capped:
            notes.append(f"the hook ran longer than maxSeconds ({cfg.max_seconds:g} s)")
        during_end = min(ceil(finish * inv), floor((started + cfg.max_seconds) * inv), last)
        if ceil(finish * inv) > mark.hi + 1 and not capped and not running:
            notes.append("the hook started late after its firing: analysed up to the data kept")
        during_end = max(during_end, s0 + 1)
        b0 = max(floor((started - cfg.baseline_seconds) * inv), ceil(load_start * inv), mark.lo)
        baseline = self._window(b0, s0) if b0 < s0 else None
        during = self._window(s0, during_end)
        entry["baseline"], entry["during"] = baseline, during
        after = None
        if not running and not capped:
            after_end = min(ceil((finish + cfg.after_seconds) * inv), last)
            if after_end > during_end:
                after = self._window(during_end, after_end)
            elif cfg.after_seconds > 0:
                notes.append("no after window: the load ended with the hook")
        entry["after"] = after
        if (
            baseline is None
            or baseline["seconds"] < cfg.window_seconds
            or not baseline["iterations"]
        ):
            into = started - load_start
            notes.append(
                f"no baseline: the hook started {max(into, 0.0):.1f} s into the load "
                f"(a baseline needs windowSeconds, {cfg.window_seconds:g} s, of iterations): "
                "no recovery verdict"
            )
            return
        if during["p95"] is not None and baseline["p95"]:
            entry["p95Ratio"] = during["p95"] / baseline["p95"]
        entry["throughputRatio"] = during["throughput"] / baseline["throughput"]
        width = max(1, round(cfg.window_seconds * inv))
        if baseline["iterations"] < MIN_PER_WINDOW * baseline["seconds"] / (width * res):
            notes.append(
                f"the baseline has fewer than {MIN_PER_WINDOW} iterations per sliding window: "
                "a longer windowSeconds gives steadier verdicts"
            )
        span_end = min(
            ceil((finish + cfg.after_seconds) * inv),
            floor((started + cfg.max_seconds) * inv),
            last,
        )
        verdict = self._recovery((b0, s0), s0, span_end, width)
        if verdict is None:
            notes.append(
                f"the analysed span is shorter than windowSeconds ({cfg.window_seconds:g} s): "
                "no recovery verdict"
            )
            return
        degraded, recovered_at = verdict
        entry["tolerance"] = {
            "errorRate": cfg.error_rate,
            "p95Ratio": cfg.p95_ratio,
            "throughputRatio": cfg.throughput_ratio,
        }
        entry["degraded"] = degraded
        entry["recovered"] = recovered_at is not None
        entry["recoverySeconds"] = (
            None if recovered_at is None else max(0.0, recovered_at * res - started)
        )
        if not degraded:
            entry["recoverySeconds"] = 0.0

    def _window(self, i0: int, i1: int) -> dict[str, Any]:
        """Statistics of buckets [i0, i1)."""
        count = failures = 0
        merged: dict[int, int] = {}
        buckets = self._buckets
        for i in range(i0, i1):
            bucket = buckets.get(i)
            if bucket is None:
                continue
            count += bucket.count
            failures += bucket.failures
            for key, n in bucket.items():
                merged[key] = merged.get(key, 0) + n
        seconds = (i1 - i0) * self.resolution
        p50, p95, p99 = quantiles(merged, (0.5, 0.95, 0.99))
        return {
            "start": round(i0 * self.resolution, 6),
            "end": round(i1 * self.resolution, 6),
            "seconds": seconds,
            "iterations": count,
            "failures": failures,
            "errorRate": failures / count if count else 0.0,
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "throughput": count / seconds if seconds > 0 else 0.0,
        }

    def _recovery(
        self, baseline: tuple[int, int], s0: int, end: int, width: int
    ) -> tuple[bool, int | None] | None:
        """Judges buckets [s0, end) against the baseline's buckets (see :mod:`recovery`):
        (degraded, index past the last out-of-tolerance bucket; None: not recovered), or None
        when no full window fits."""
        if end - s0 < width:
            return None
        cfg = self.config
        base = [self._view(i) for i in range(*baseline)]
        merged: dict[int, int] = {}
        for bucket in base:
            for key, n in bucket.items:
                merged[key] = merged.get(key, 0) + n
        (base_p95,) = quantiles(merged, (0.95,))
        predict = recovery.Prediction.of(base, base_p95)
        tolerance = recovery.Tolerance(cfg.error_rate, cfg.p95_ratio, cfg.throughput_ratio)
        slow_key = key_of(cfg.p95_ratio * base_p95) if base_p95 else None
        verdict = recovery.judge(
            [self._view(i) for i in range(s0, end)],
            predict,
            tolerance,
            width,
            p95_of=lambda keys: quantiles(keys, (0.95,))[0],
            slow_key=slow_key,
        )
        degraded, past = recovery.recovery(verdict)
        return degraded, None if past is None else s0 + past

    def _view(self, index: int) -> recovery.Bucket:
        bucket = self._buckets.get(index)
        if bucket is None:
            return _EMPTY_VIEW
        return recovery.Bucket(bucket.count, bucket.failures, bucket.items())


_EMPTY_VIEW = recovery.Bucket(0, 0, ())


def _finish(entry: dict[str, Any]) -> dict[str, Any]:
    for key in ("baseline", "during", "after", "p95Ratio", "throughputRatio"):
        entry.setdefault(key, None)
    for key in ("degraded", "recovered", "recoverySeconds"):
        entry.setdefault(key, None)
    if not entry["notes"]:
        del entry["notes"]
    return entry


def _action_name(config: dict[str, Any]) -> str | None:
    action = config.get("action")
    if isinstance(action, dict) and len(action) == 1:
        return str(next(iter(action)))
    if isinstance(action, list | tuple) and action:
        return str(action[0])
    return None


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('etype')}: {error.get('msg')}"
    if isinstance(error, list | tuple) and len(error) >= 2:
        return f"{error[0]}: {error[1]}"
    return str(error)


def analysed(entry: dict[str, Any]) -> bool:
    """Whether an entry has a verdict (a baseline and a recovery search)."""
    return entry.get("recovered") is not None
