"""Scenario runners: how many iterations, how many at once, at what pace (Rally's ``runner``).

The plugin-facing API: the :class:`ScenarioRunner` base, ``@runner.configure``, the
:class:`WorkerContext` a worker body gets, and helpers (``split``, ``cpu_count``,
``check_concurrency_vs_times``). The process machinery under it (fork, pipes, shared counters,
per-iteration timeouts) is :mod:`krally.task.workers`. Interface (shared with the engine)::

    runner = ScenarioRunner.get("constant")({"times": 100, "concurrency": 4})
    runner.run(scenario_name, scenario_args, context,
               on_iteration_start=..., on_result=..., abort=threading.Event())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from krally.consts import JSON_SCHEMA
from krally.errors import InvalidConfig, PluginNotFound
from krally.task import plugin, workers
from krally.task.iteration import IterationExecutor, ThreadTimeoutException, cpu_count
from krally.task.scenario import Scenario
from krally.task.shard import Shard
from krally.task.spec import WorkloadSpec
from krally.task.workers import Gate, OnResult, OnStart, Sink

__all__ = [
    "Gate",
    "IterationExecutor",
    "OnResult",
    "OnStart",
    "ScenarioRunner",
    "Shard",
    "Sink",
    "ThreadTimeoutException",
    "WorkerContext",
    "check_concurrency_vs_times",
    "check_parts",
    "concurrency_parts",
    "configure",
    "cpu_count",
    "split",
]

R = TypeVar("R", bound=type)


def config_schema(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A runner's CONFIG_SCHEMA: an object with ``type`` (the runner's name) and ``properties``."""
    return {
        "$schema": JSON_SCHEMA,
        "type": "object",
        "properties": {"type": {"type": "string"}, **properties},
        **extra,
    }


# Config fields several runners share, as in Rally.
TIMES = {"type": "integer", "minimum": 1, "description": "Total number of iterations (default 1)."}
CONCURRENCY = {
    "type": "integer",
    "minimum": 1,
    "description": "Iterations running at any moment (default 1).",
}


class WorkerContext:
    """What a runner's worker body gets: the gate, the sink, the executor and its share."""

    def __init__(
        self,
        gate: Gate,
        sink: Sink,
        execute: IterationExecutor,
        index: int,
        processes: int,
        concurrency: int,
        started_at: float,
    ):
        self.gate = gate
        self.sink = sink
        self.execute = execute
        self.index = index  # this worker's position among ``processes``
        self.processes = processes
        self.concurrency = concurrency  # this worker's share of the concurrency
        self.started_at = started_at  # time.monotonic() when the load started

    def run_one(self, number: int) -> None:
        self.sink.put(self.execute(number))

    def run_threads(self, count: int, target: Callable[[], None]) -> None:
        """Run ``target`` in ``count`` threads and join them; re-raise the first failure."""
        failures: list[BaseException] = []

        def guarded() -> None:
            try:
                target()
            except BaseException as exc:
                failures.append(exc)
                self.gate.halt()  # the other threads stop starting iterations too

        threads = [
            threading.Thread(target=guarded, name=f"krally-iter-{i}", daemon=True)
            for i in range(count)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except BaseException:  # e.g. KeyboardInterrupt in the caller's thread
            self.gate.halt()
            raise
        if failures:
            raise failures[0]


def split(total: int, parts: int) -> list[int]:
    """``total`` split in ``parts`` shares, the first ones one larger (Rally's divmod split)."""
    share, extra = divmod(total, parts)
    return [share + (1 if i < extra else 0) for i in range(parts)]


# --------------------------------------------------------------------------------------------
# The plugin base


class ScenarioRunner(plugin.Plugin, kind="runner"):
    """Base of runner plugins.

    Subclasses set ``CONFIG_SCHEMA`` and implement ``_plan()`` (how many processes, the
    concurrency of each, the iteration limit) and ``_worker(ctx)`` (one process's share of the
    load, using ``ctx.gate.claim()`` and ``ctx.run_one(n)``); they declare
    ``expected_iterations(config)`` when their config bounds the iteration count. ``serial``
    overrides ``run``.

    Distributed load (krally): a runner that sets ``SPREADS = True`` can run one
    :class:`Shard` of the load (``self.shard``; its ``_plan`` takes its part, iteration numbers
    are made global by the base). Others refuse ``runner.parallelism`` > 1.
    """

    CONFIG_SCHEMA: ClassVar[dict[str, Any]] = {"type": "object"}
    SPREADS: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any] | None = None, shard: Shard | None = None):
        config = dict(config or {})
        config.pop("type", None)
        problems = self.validate_config(config, "runner")
        if problems:
            raise problems[0]
        self.config = config
        self.shard = shard or Shard()
        if not self.shard.whole:
            problems = self.parallelism_problems(config, self.shard.count, "runner")
            if problems:
                raise problems[0]
        self.run_duration = 0.0  # seconds the load took (set by run)

    @classmethod
    def parallelism_problems(
        cls, config: dict[str, Any], parallelism: int, path: str = "runner"
    ) -> list[InvalidConfig]:
        """Why this (valid) config cannot be spread over ``parallelism`` pods (empty: it can).
        Runners that spread override it to check that every pod gets a part."""
        if parallelism <= 1 or cls.SPREADS:
            return []
        return [
            InvalidConfig(
                plugin.join_path(path, ["parallelism"]),
                f"runner {cls.get_name()!r} cannot be spread over {parallelism} pods "
                "(it runs iterations one after another); use parallelism 1",
            )
        ]

    # -- for subclasses -------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        return float(self.config.get("timeout", 0) or 0)

    def _plan(self) -> tuple[list[int], int | None]:
        """(concurrency share of each process, iteration limit or None)."""
        raise NotImplementedError

    def _worker(self, ctx: WorkerContext) -> None:
        raise NotImplementedError

    @classmethod
    def expected_iterations(cls, config: dict[str, Any]) -> int | None:
        """How many iterations a load with this (valid) config runs, when the config says so;
        None when unknown (e.g. bounded by time). The engine uses it for progress totals and
        to warn about trigger values the load never reaches. krally addition, not Rally API."""
        return None

    @classmethod
    def expected_duration(cls, config: dict[str, Any]) -> float | None:
        """Seconds a load with this (valid) config runs new iterations, when the config says
        so (None: unknown, e.g. bounded by iterations). The operator counts time-unit trigger
        firings over it (its bound on firings per task). krally addition, not Rally API."""
        return None

    # -- the engine's entry point ---------------------------------------------------------

    def run(
        self,
        scenario_name: str,
        scenario_args: dict[str, Any] | None,
        context: dict[str, Any] | None,
        *,
        on_iteration_start: OnStart,
        on_result: OnResult,
        abort: threading.Event,
    ) -> None:

        execute = IterationExecutor(
            Scenario.get(scenario_name), scenario_args, context, self.timeout
        )
        shares, limit = self._plan()
        started = time.monotonic()

        def body(gate: Gate, sink: Sink, index: int, share: int) -> None:
            self._worker(WorkerContext(gate, sink, execute, index, len(shares), share, started))

        try:
            if len(shares) == 1:
                workers.run_in_process(
                    body, shares[0], limit, on_iteration_start, on_result, abort, self.shard
                )
            else:
                workers.run_in_processes(
                    body, shares, limit, on_iteration_start, on_result, abort, self.shard
                )
        finally:
            self.run_duration = time.monotonic() - started


def configure(name: str, platform: str = "default") -> Callable[[R], R]:
    """Register a ScenarioRunner subclass as runner ``name`` (Rally: ``@runner.configure``)."""
    return plugin.configure(ScenarioRunner, name, platform)


def check_parts(
    path: str, key: str, value: int, parallelism: int, what: str
) -> list[InvalidConfig]:
    """A spread runner's check: every pod needs at least one of ``value`` (its ``key``)."""
    if value >= parallelism:
        return []
    return [
        InvalidConfig(
            plugin.join_path(path, ["parallelism"]),
            f"parallelism ({parallelism}) must be at most {key} ({value}): every runner pod "
            f"needs at least one {what}",
        )
    ]


def concurrency_parts(config: dict[str, Any], parallelism: int, path: str) -> list[InvalidConfig]:
    """``check_parts`` of ``concurrency`` (default 1): a slot for every pod."""
    concurrency = config.get("concurrency", 1)
    return check_parts(path, "concurrency", concurrency, parallelism, "iteration slot")


def check_concurrency_vs_times(
    config: Any, path: str, times_key: str = "times", concurrency_key: str = "concurrency"
) -> list[InvalidConfig]:
    """Rally's ``check_constant``: concurrency may not exceed times (default times = 1)."""
    if not isinstance(config, dict):
        return []
    times = config.get(times_key, 1)
    concurrency = config.get(concurrency_key, 1)
    if isinstance(times, int) and isinstance(concurrency, int) and concurrency > times:
        where = plugin.join_path(path, [concurrency_key])
        return [
            InvalidConfig(
                where,
                f"{concurrency_key} ({concurrency}) must be less than or equal to "
                f"{times_key} ({times})",
            )
        ]
    return []


def times_of(config: Any, default: int | None = 1) -> int | None:
    """A config's ``times`` when it is a whole number (Rally's default when absent)."""
    times = config.get("times", default) if isinstance(config, dict) else None
    return times if isinstance(times, int) and not isinstance(times, bool) else None


def expected_iterations(workload: WorkloadSpec) -> int | None:
    """How many iterations the runner will run, as its plugin declares (None: unknown)."""
    try:
        runner_cls = ScenarioRunner.get(workload.runner_type)
    except PluginNotFound:
        return None
    return runner_cls.expected_iterations(dict(workload.runner_args))
