"""The analysis of what each disruption did (pure, no Kubernetes): per firing, its windows on
the bucket grid, the ratios to the baseline and the recovery verdict of :mod:`krally.task.recovery`,
from the buckets :class:`krally.task.impact.ImpactRecorder` kept (the entries' shape is in
:mod:`krally.task.impact`'s docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from krally.task import recovery
from krally.task.impact_buckets import Bucket, key_of, quantiles
from krally.task.impact_config import ImpactConfig

# A baseline with fewer iterations per sliding window than this gives noisy verdicts.
MIN_PER_WINDOW = 5


@dataclass
class _Mark:
    fired_at: float
    lo: int = 0  # retained bucket indices, inclusive
    hi: int = -1
    refused: str | None = None  # why it is not analysed


@dataclass(frozen=True)
class _Span:
    """A firing's buckets: its start, the end of during, past the last full bucket kept."""

    start: int
    during_end: int
    last: int
    finish: float  # when the hook finished (the load's end if it ran past it)
    running: bool  # the hook ran past the load's end
    capped: bool  # the hook ran past maxSeconds


class ImpactAnalysis:
    """The analysis half of :class:`krally.task.impact.ImpactRecorder` (its buckets and marks)."""

    config: ImpactConfig
    resolution: float
    _inv_res: float
    _buckets: dict[int, Bucket]
    _marks: dict[Any, _Mark]

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
        cfg, inv = self.config, self._inv_res
        span = self._span(notes, mark, started, finished, load_end)
        s0 = span.start
        b0 = max(
            math.floor((started - cfg.baseline_seconds) * inv),
            math.ceil(load_start * inv),
            mark.lo,
        )
        baseline = self._window(b0, s0) if b0 < s0 else None
        during = self._window(s0, span.during_end)
        entry["baseline"], entry["during"] = baseline, during
        after = None
        if not span.running and not span.capped:
            after_end = min(math.ceil((span.finish + cfg.after_seconds) * inv), span.last)
            if after_end > span.during_end:
                after = self._window(span.during_end, after_end)
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
        self._verdict(entry, notes, baseline, (b0, s0), span, started)

    def _span(
        self,
        notes: list[str],
        mark: _Mark,
        started: float,
        finished: float | None,
        load_end: float,
    ) -> _Span:
        """The buckets a firing's windows may use: its start, the end of during, the last
        full bucket kept; notes say where the hook outran the load or maxSeconds."""
        cfg, inv = self.config, self._inv_res
        running = finished is None or finished > load_end
        if running:
            late = "" if finished is None else f" (it finished {finished - load_end:.1f} s later)"
            notes.append(f"the hook was still running when the load ended{late}")
            finish = load_end
        else:
            assert finished is not None
            finish = max(finished, started)
        last = min(math.floor(load_end * inv), mark.hi + 1)  # past the last full bucket
        s0 = math.floor(started * inv)
        if s0 >= last:  # the hook started in the load's last (partial) bucket
            last = s0 + 1
        capped = finish > started + cfg.max_seconds
        if capped:
            notes.append(f"the hook ran longer than maxSeconds ({cfg.max_seconds:g} s)")
        during_end = min(
            math.ceil(finish * inv), math.floor((started + cfg.max_seconds) * inv), last
        )
        if math.ceil(finish * inv) > mark.hi + 1 and not capped and not running:
            notes.append("the hook started late after its firing: analysed up to the data kept")
        return _Span(s0, max(during_end, s0 + 1), last, finish, running, capped)

    def _verdict(
        self,
        entry: dict[str, Any],
        notes: list[str],
        baseline: dict[str, Any],
        base_buckets: tuple[int, int],
        span: _Span,
        started: float,
    ) -> None:
        """degraded, recovered and recoverySeconds from the buckets after the hook's start."""
        cfg, inv, res = self.config, self._inv_res, self.resolution
        width = max(1, round(cfg.window_seconds * inv))
        if baseline["iterations"] < MIN_PER_WINDOW * baseline["seconds"] / (width * res):
            notes.append(
                f"the baseline has fewer than {MIN_PER_WINDOW} iterations per sliding window: "
                "a longer windowSeconds gives steadier verdicts"
            )
        span_end = min(
            math.ceil((span.finish + cfg.after_seconds) * inv),
            math.floor((started + cfg.max_seconds) * inv),
            span.last,
        )
        verdict = self._recovery(base_buckets, span.start, span_end, width)
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
