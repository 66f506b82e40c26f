"""Runner ``serial``: ``times`` iterations one after another in the calling thread."""

from __future__ import annotations

import threading
import time
from typing import Any

from krally.task import runner
from krally.task.scenario import Scenario


@runner.configure(name="serial")
class SerialScenarioRunner(runner.ScenarioRunner):
    """Rally's default runner. Extra keys are allowed so the runner type can be swapped
    without editing the other keys."""

    CONFIG_SCHEMA = runner.config_schema({"times": runner.TIMES}, additionalProperties=True)

    @classmethod
    def expected_iterations(cls, config: dict[str, Any]) -> int | None:
        return runner.times_of(config)

    @property
    def timeout(self) -> float:
        return 0.0  # serial has no timeout (a key called "timeout" is just an extra key)

    def run(
        self,
        scenario_name: str,
        scenario_args: dict[str, Any] | None,
        context: dict[str, Any] | None,
        *,
        on_iteration_start: runner.OnStart,
        on_result: runner.OnResult,
        abort: threading.Event,
    ) -> None:

        execute = runner.IterationExecutor(Scenario.get(scenario_name), scenario_args, context)
        started = time.monotonic()
        try:
            for number in range(1, self.config.get("times", 1) + 1):
                if abort.is_set():
                    break
                on_iteration_start(number)
                on_result(execute(number))
        finally:
            self.run_duration = time.monotonic() - started
