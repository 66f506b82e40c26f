"""Runner ``constant_for_duration``: a fixed ``concurrency`` for ``duration`` seconds."""

from __future__ import annotations

import time
from typing import Any

from krally.errors import InvalidConfig
from krally.task import runner


@runner.configure(name="constant_for_duration")
class ConstantForDurationScenarioRunner(runner.ScenarioRunner):
    """Start iterations while less than ``duration`` seconds have passed (per worker process,
    as in Rally); ``duration: 0`` runs one iteration per process."""

    CONFIG_SCHEMA = runner.config_schema(
        {
            "concurrency": runner.CONCURRENCY,
            "duration": {
                "type": "number",
                "minimum": 0.0,
                "description": "Seconds during which new iterations are started.",
            },
            "timeout": {
                "type": "number",
                "minimum": 1,
                "description": "Seconds after which an iteration is interrupted (default 600).",
            },
        },
        required=["duration"],
        additionalProperties=False,
    )

    SPREADS = True  # each pod: the whole duration, its part of `concurrency`

    @classmethod
    def parallelism_problems(
        cls, config: dict[str, Any], parallelism: int, path: str = "runner"
    ) -> list[InvalidConfig]:
        return runner.concurrency_parts(config, parallelism, path)

    @classmethod
    def expected_duration(cls, config: dict[str, Any]) -> float | None:
        duration = config.get("duration")
        return float(duration) if isinstance(duration, int | float) else None

    @property
    def timeout(self) -> float:
        return float(self.config.get("timeout", 600))

    def _plan(self) -> tuple[list[int], int | None]:
        concurrency = self.shard.part(self.config.get("concurrency", 1))
        processes = max(1, min(runner.cpu_count(), concurrency))
        return runner.split(concurrency, processes), None

    def _worker(self, ctx: runner.WorkerContext) -> None:
        duration = float(self.config["duration"])
        started = time.monotonic()  # Rally counts from each process's own start
        first = [True]
        claim, run_one = ctx.gate.claim, ctx.run_one

        def loop() -> None:
            while True:
                if time.monotonic() - started >= duration and not first[0]:
                    return
                first[0] = False
                number = claim()
                if number is None:
                    return
                run_one(number)

        ctx.run_threads(ctx.concurrency, loop)
