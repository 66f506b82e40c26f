"""Bounded workload statistics: never keeps every iteration.

Durations go into log-bucketed histograms (:mod:`krally.task.histogram`), so every quantile is
within 1 % of an order statistic of the data, whatever the number of iterations.

``WorkloadStats`` adds, per iteration: counts, the total duration histogram, per-atomic-action
histograms (a tree by name path, like Rally's table), and a per-second timeline that halves its
resolution whenever it would exceed ``max_points`` buckets.
"""

from __future__ import annotations

from typing import Any

from krally.task.histogram import LogHistogram


class _AtomicNode:
    __slots__ = ("children", "count", "failed", "hist", "iterations", "name")

    def __init__(self, name: str):
        self.name = name
        self.hist = LogHistogram()  # durations of runs that did not fail
        self.count = 0  # runs (an action may run several times per iteration)
        self.failed = 0
        self.iterations = 0  # iterations in which it ran
        self.children: dict[str, _AtomicNode] = {}


class _TimelinePoint:
    __slots__ = ("count", "failures", "hist")

    def __init__(self) -> None:
        self.count = 0
        self.failures = 0
        self.hist = LogHistogram(0.02)  # coarser: there are many points


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


class WorkloadStats:
    """Everything the results and status need about a workload's iterations, bounded."""

    def __init__(
        self, start_time: float | None = None, max_points: int = 300, origin: float | None = None
    ):
        self.iterations = 0
        self.failures = 0
        # Epoch of the earliest iteration start (Rally's start_time, and load_duration's origin).
        # Records arrive in finish order, so with concurrency the first one added need not be
        # the earliest: a later record can move it back. The timeline keeps its own origin.
        self.start_time = start_time
        # The timeline's origin: given (a distributed load's shared start, so that the shards'
        # timelines line up), else the first record's start.
        self._origin = origin if origin is not None else start_time
        self.end_time: float | None = None  # max(timestamp + duration + idle)
        self.durations = LogHistogram()  # every iteration's duration
        self.ok_durations = LogHistogram()  # successful iterations only (Rally's table)
        self.ok_idle = LogHistogram()
        self.ok_total = LogHistogram()  # duration + idle_duration
        self._atomics: dict[str, _AtomicNode] = {}
        self._max_points = max_points
        self._width = 1.0  # seconds per timeline point; doubles when points exceed max_points
        self._points: dict[int, _TimelinePoint] = {}

    # -- input --------------------------------------------------------------------------------

    def add(self, record: dict[str, Any]) -> None:
        """Account for one Rally per-iteration record."""
        duration = record["duration"]
        idle = record.get("idle_duration", 0.0)
        timestamp = record["timestamp"]
        failed = bool(record.get("error"))
        self.iterations += 1
        self.durations.add(duration)
        if failed:
            self.failures += 1
        else:
            self.ok_durations.add(duration)
            self.ok_idle.add(idle)
            self.ok_total.add(duration + idle)
        if self.start_time is None or timestamp < self.start_time:
            self.start_time = timestamp
        if self._origin is None:
            self._origin = timestamp
        end = timestamp + duration + idle
        if self.end_time is None or end > self.end_time:
            self.end_time = end
        atomics = record.get("atomic_actions")
        if atomics:
            self._add_atomics(self._atomics, atomics)
        self._add_point(timestamp, duration, failed)

    def _add_atomics(self, nodes: dict[str, _AtomicNode], actions: list[dict[str, Any]]) -> None:
        seen: set[str] = set()
        for action in actions:
            name = action["name"]
            node = nodes.get(name)
            if node is None:
                node = nodes[name] = _AtomicNode(name)
            node.count += 1
            if name not in seen:
                seen.add(name)
                node.iterations += 1
            finished = action.get("finished_at")
            if action.get("failed") or finished is None:
                node.failed += 1
            else:
                node.hist.add(finished - action["started_at"])
            children = action.get("children")
            if children:
                self._add_atomics(node.children, children)

    def _add_point(self, timestamp: float, duration: float, failed: bool) -> None:
        assert self._origin is not None
        index = max(0, int((timestamp - self._origin) / self._width))
        point = self._points.get(index)
        if point is None:
            if len(self._points) >= self._max_points:
                self._coarsen()
                index = max(0, int((timestamp - self._origin) / self._width))
            point = self._points.get(index)
            if point is None:
                point = self._points[index] = _TimelinePoint()
        point.count += 1
        if failed:
            point.failures += 1
        point.hist.add(duration)

    def coarsen_to(self, points: int) -> None:
        """Halve the timeline's resolution until it has at most ``points`` points (exact:
        points merge pairwise); later records keep below that bound."""
        self._max_points = max(1, points)
        while len(self._points) > self._max_points:
            self._halve()

    def _coarsen(self) -> None:
        # Merge points pairwise until there is room: memory stays O(max_points).
        while len(self._points) >= self._max_points:
            self._halve()

    def _halve(self) -> None:
        self._width *= 2
        merged: dict[int, _TimelinePoint] = {}
        for index, point in self._points.items():
            target = merged.get(index // 2)
            if target is None:
                merged[index // 2] = point
            else:
                target.count += point.count
                target.failures += point.failures
                target.hist.merge(point.hist)
        self._points = merged

    # -- output -------------------------------------------------------------------------------

    @property
    def timeline_start(self) -> float | None:
        """Epoch the timeline's offsets count from (the first record's start)."""
        return self._origin

    @property
    def load_duration(self) -> float:
        """Rally's load_duration: max(ts + duration) - min(ts)."""
        if self.start_time is None or self.end_time is None:
            return 0.0
        return self.end_time - self.start_time

    def summary(self) -> dict[str, Any]:
        """The bounded result summary (durations over every iteration, failed ones included)."""
        return {
            "iterations": self.iterations,
            "failures": self.failures,
            "success_rate": _percent(self.iterations - self.failures, self.iterations),
            "start_time": self.start_time,
            "load_duration": self.load_duration,
            "durations": self.durations.summary(),
        }

    def timeline(self) -> list[dict[str, Any]]:
        """Per-second points (wider once coarsened): iterations *started* in each interval."""
        out = []
        for index in sorted(self._points):
            point = self._points[index]
            durations = point.hist.summary()
            out.append(
                {
                    "offset": index * self._width,
                    "width": self._width,
                    "count": point.count,
                    "failures": point.failures,
                    "durations": durations,
                }
            )
        return out

    def atomics(self) -> list[dict[str, Any]]:
        """Rally's statistics nodes for the atomic actions (a tree, in first-seen order)."""
        return [self._node(node) for node in self._atomics.values()]

    def _node(self, node: _AtomicNode) -> dict[str, Any]:
        data: dict[str, Any] = dict(node.hist.summary())
        data["iteration_count"] = node.iterations
        data["success"] = _percent(node.count - node.failed, node.count)
        return {
            "name": node.name,
            "display_name": node.name,
            "count_per_iteration": (node.count // node.iterations) if node.iterations else 0,
            "data": data,
            "children": [self._node(child) for child in node.children.values()],
        }

    def statistics(self) -> dict[str, Any]:
        """Rally's ``statistics.durations``: ``{total, atomics}``."""

        def data(hist: LogHistogram) -> dict[str, Any]:
            values: dict[str, Any] = dict(hist.summary())
            values["iteration_count"] = self.iterations
            values["success"] = _percent(self.iterations - self.failures, self.iterations)
            return values

        total = {
            "name": "total",
            "display_name": "total",
            "count_per_iteration": 1,
            "data": data(self.ok_total),
            "children": [
                {
                    "name": "duration",
                    "display_name": "duration",
                    "count_per_iteration": 1,
                    "data": data(self.ok_durations),
                    "children": [],
                },
                {
                    "name": "idle_duration",
                    "display_name": "idle_duration",
                    "count_per_iteration": 1,
                    "data": data(self.ok_idle),
                    "children": [],
                },
            ],
        }
        return {"total": total, "atomics": self.atomics()}

    # -- crossing processes (a distributed load's shards) -------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything :meth:`merge` needs, JSON-safe (histograms: ``LogHistogram.to_state``)."""
        return {
            "iterations": self.iterations,
            "failures": self.failures,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "origin": self._origin,
            "width": self._width,
            "durations": self.durations.to_state(),
            "ok": self.ok_durations.to_state(),
            "okIdle": self.ok_idle.to_state(),
            "okTotal": self.ok_total.to_state(),
            "atomics": [_atomic_state(node) for node in self._atomics.values()],
            "points": [
                [index, point.count, point.failures, point.hist.to_state()]
                for index, point in sorted(self._points.items())
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], max_points: int = 300) -> WorkloadStats:
        """The statistics :meth:`to_state` described (ValueError when it is not one)."""
        stats = cls(max_points=max_points)
        try:
            stats.iterations = int(state["iterations"])
            stats.failures = int(state["failures"])
            stats.start_time = _optional_float(state.get("startTime"))
            stats.end_time = _optional_float(state.get("endTime"))
            stats._origin = _optional_float(state.get("origin"))
            stats._width = float(state.get("width") or 1.0)
            stats.durations = LogHistogram.from_state(state["durations"])
            stats.ok_durations = LogHistogram.from_state(state["ok"])
            stats.ok_idle = LogHistogram.from_state(state["okIdle"])
            stats.ok_total = LogHistogram.from_state(state["okTotal"])
            for item in state.get("atomics") or []:
                node = _atomic_from_state(item)
                stats._atomics[node.name] = node
            for index, count, failures, hist in state.get("points") or []:
                point = stats._points[int(index)] = _TimelinePoint()
                point.count, point.failures = int(count), int(failures)
                point.hist = LogHistogram.from_state(hist)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a statistics state: {exc}") from None
        return stats

    def merge(self, other: WorkloadStats) -> None:
        """Add ``other``'s iterations: counts add, histograms merge bucket by bucket (exact:
        the merged quantiles are those of one histogram fed every record), the timelines are
        summed point by point on a common origin and width, atomic actions merge by name."""
        self.iterations += other.iterations
        self.failures += other.failures
        for hist, more in (
            (self.durations, other.durations),
            (self.ok_durations, other.ok_durations),
            (self.ok_idle, other.ok_idle),
            (self.ok_total, other.ok_total),
        ):
            hist.merge(more)
        if other.start_time is not None and (
            self.start_time is None or other.start_time < self.start_time
        ):
            self.start_time = other.start_time
        if other.end_time is not None and (self.end_time is None or other.end_time > self.end_time):
            self.end_time = other.end_time
        _merge_atomics(self._atomics, other._atomics)
        self._merge_points(other)

    def _merge_points(self, other: WorkloadStats) -> None:
        if not other._points:
            return
        origins = [o for o in (self._origin, other._origin) if o is not None]
        origin = min(origins) if origins else None
        width = max(self._width, other._width)
        merged: dict[int, _TimelinePoint] = {}
        for stats in (self, other):
            shift = 0.0 if origin is None or stats._origin is None else stats._origin - origin
            for index, point in stats._points.items():
                # The point's start, on the common origin and width (widths are powers of 2).
                target = int((shift + index * stats._width) / width + 1e-9)
                into = merged.get(target)
                if into is None:
                    into = merged[target] = _TimelinePoint()
                into.count += point.count
                into.failures += point.failures
                into.hist.merge(point.hist)
        self._origin, self._width, self._points = origin, width, merged
        # As add() does: a load may hold max_points points, one more halves the resolution.
        if len(self._points) > self._max_points:
            self._coarsen()


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _atomic_state(node: _AtomicNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "count": node.count,
        "failed": node.failed,
        "iterations": node.iterations,
        "hist": node.hist.to_state(),
        "children": [_atomic_state(child) for child in node.children.values()],
    }


def _atomic_from_state(state: dict[str, Any]) -> _AtomicNode:
    node = _AtomicNode(str(state["name"]))
    node.count, node.failed = int(state["count"]), int(state["failed"])
    node.iterations = int(state["iterations"])
    node.hist = LogHistogram.from_state(state["hist"])
    for item in state.get("children") or []:
        child = _atomic_from_state(item)
        node.children[child.name] = child
    return node


def _merge_atomics(into: dict[str, _AtomicNode], other: dict[str, _AtomicNode]) -> None:
    for name, node in other.items():
        mine = into.get(name)
        if mine is None:
            mine = into[name] = _AtomicNode(name)
        mine.count += node.count
        mine.failed += node.failed
        mine.iterations += node.iterations
        mine.hist.merge(node.hist)
        _merge_atomics(mine.children, node.children)
