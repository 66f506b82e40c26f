"""Runner ``rps``: start ``times`` iterations at a target rate, fixed or increasing."""

from __future__ import annotations

import threading
import time
from typing import Any

from krally import consts
from krally.errors import InvalidConfig
from krally.task import plugin, runner

_POSITIVE = {"type": "number", "minimum": 1}


@runner.configure(name="rps")
class RPSScenarioRunner(runner.ScenarioRunner):
    """Start iterations at ``rps`` per second (or ``{start, end, step, duration}``: the rate
    grows by ``step`` every ``duration`` seconds up to ``end``). Each iteration runs in its own
    thread; ``max_concurrency`` caps how many run at once (the rate drops when it is reached)."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "times": {"type": "integer", "minimum": 1, "description": "Total iterations."},
            "rps": {
                "anyOf": [
                    {
                        "type": "number",
                        "minimum": 0,
                        "exclusiveMinimum": True,
                        "description": "Iterations started per second.",
                    },
                    {
                        "type": "object",
                        "properties": {
                            "start": _POSITIVE,
                            "end": _POSITIVE,
                            "step": _POSITIVE,
                            "duration": _POSITIVE,
                        },
                        "required": ["start", "end", "step"],
                        "additionalProperties": False,
                    },
                ]
            },
            "timeout": {
                "type": "number",
                "description": "Seconds after which an iteration is interrupted (0: never).",
            },
            "max_concurrency": {"type": "integer", "minimum": 1},
            "max_cpu_count": {"type": "integer", "minimum": 1},
        },
        "required": ["times", "rps"],
        "additionalProperties": False,
    }

    @classmethod
    def validate_config(cls, config: Any, path: str = "") -> list[InvalidConfig]:
        problems = super().validate_config(config, path)
        if problems or not isinstance(config.get("rps"), dict):
            return problems
        rps = config["rps"]
        if rps["end"] < rps["start"]:
            return [
                InvalidConfig(
                    plugin.join_path(path, ["rps", "end"]),
                    f"end ({rps['end']}) must be greater than or equal to start ({rps['start']})",
                )
            ]
        return []

    # Each pod: its interleaved share of `times`, paced at 1/N of the rate and staggered so
    # that global iteration n is due (n - 1)/rate after the start, as in one pod.
    SPREADS = True

    @classmethod
    def parallelism_problems(
        cls, config: dict[str, Any], parallelism: int, path: str = "runner"
    ) -> list[InvalidConfig]:
        times = config.get("times", 1)
        problems = runner.check_parts(path, "times", times, parallelism, "iteration")
        cap = config.get("max_concurrency", times)
        return problems or runner.check_parts(
            path, "max_concurrency", cap, parallelism, "iteration slot"
        )

    @classmethod
    def expected_iterations(cls, config: dict[str, Any]) -> int | None:
        return runner.times_of(config, default=None)

    def _rate(self, elapsed: float) -> float:
        """Total target rate ``elapsed`` seconds into the load."""
        rps = self.config["rps"]
        if not isinstance(rps, dict):
            return float(rps)
        steps = int(elapsed // rps.get("duration", 1))
        return float(min(rps["start"] + rps["step"] * steps, rps["end"]))

    def _plan(self) -> tuple[list[int], int | None]:
        times = self.shard.share(self.config["times"])
        max_concurrency = self.shard.part(self.config.get("max_concurrency", self.config["times"]))
        max_cpu = self.config.get("max_cpu_count", runner.cpu_count())
        processes = max(1, min(runner.cpu_count(), max_cpu, times, max_concurrency))
        return runner.split(max_concurrency, processes), times

    def _worker(self, ctx: runner.WorkerContext) -> None:
        # Every process paces 1/processes of the rate, staggered by index/rate (Rally's split);
        # spread over pods, process j of pod i is the (i + j*pods)-th of processes*pods.
        pods, pod = self.shard.count, self.shard.index
        stride = ctx.processes * pods
        slots = threading.BoundedSemaphore(ctx.concurrency)
        threads: list[threading.Thread] = []
        failures: list[BaseException] = []
        t0 = ctx.started_at

        def one(number: int) -> None:
            try:
                ctx.run_one(number)
            except BaseException as exc:
                failures.append(exc)
            finally:
                slots.release()

        due = t0 + (pod + ctx.index * pods) / self._rate(0)
        while not failures:
            while (left := due - time.monotonic()) > 0:
                if ctx.gate.stopped():
                    break
                time.sleep(min(left, 0.05))
            while not slots.acquire(timeout=0.05):
                if ctx.gate.stopped():
                    break
            else:
                number = ctx.gate.claim()
                if number is None:
                    slots.release()
                    break
                thread = threading.Thread(target=one, args=(number,), daemon=True)
                thread.start()
                threads = [t for t in threads if t.is_alive()]
                threads.append(thread)
                due += stride / self._rate(due - t0)
                continue
            break
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
