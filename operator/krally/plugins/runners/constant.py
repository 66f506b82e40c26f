"""Runner ``constant``: ``times`` iterations, ``concurrency`` of them at any moment."""

from __future__ import annotations

from typing import Any

from krally.errors import InvalidConfig
from krally.task import runner


@runner.configure(name="constant")
class ConstantScenarioRunner(runner.ScenarioRunner):
    """Run ``times`` iterations with a fixed ``concurrency``; optional per-iteration ``timeout``."""

    CONFIG_SCHEMA = runner.config_schema(
        {
            "concurrency": runner.CONCURRENCY,
            "times": runner.TIMES,
            "timeout": {
                "type": "number",
                "description": "Seconds after which an iteration is interrupted (0: never).",
            },
            "max_cpu_count": {
                "type": "integer",
                "minimum": 1,
                "description": "At most this many worker processes (default: CPU count).",
            },
        },
        additionalProperties=False,
    )

    @classmethod
    def validate_config(cls, config: Any, path: str = "") -> list[InvalidConfig]:
        problems = super().validate_config(config, path)
        return problems or runner.check_concurrency_vs_times(config, path)

    SPREADS = True  # each pod: its interleaved share of `times`, its part of `concurrency`

    @classmethod
    def parallelism_problems(
        cls, config: dict[str, Any], parallelism: int, path: str = "runner"
    ) -> list[InvalidConfig]:
        return runner.concurrency_parts(config, parallelism, path)

    @classmethod
    def expected_iterations(cls, config: dict[str, Any]) -> int | None:
        return runner.times_of(config)

    def _plan(self) -> tuple[list[int], int | None]:
        times = self.shard.share(self.config.get("times", 1))
        concurrency = self.shard.part(self.config.get("concurrency", 1))
        max_cpu = self.config.get("max_cpu_count", runner.cpu_count())
        processes = max(1, min(runner.cpu_count(), max_cpu, times, concurrency))
        return runner.split(concurrency, processes), times

    def _worker(self, ctx: runner.WorkerContext) -> None:
        claim, run_one = ctx.gate.claim, ctx.run_one

        def loop() -> None:
            while (number := claim()) is not None:
                run_one(number)

        ctx.run_threads(ctx.concurrency, loop)
