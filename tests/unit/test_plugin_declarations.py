"""The engine core names no plugin: a runner declares its iteration count and a trigger what it
plans beyond it, so third-party plugins get the same progress totals and warnings."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.task import runner, trigger
from krally.task.loader import validate_spec, workload_from_spec
from krally.task.runner import expected_iterations


@runner.configure(name="test_fixed_rounds")
class FixedRoundsRunner(runner.ScenarioRunner):
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "object",
        "properties": {"type": {"type": "string"}, "rounds": {"type": "integer", "minimum": 1}},
    }

    @classmethod
    def expected_iterations(cls, config: dict[str, Any]) -> int | None:
        return 3 * config.get("rounds", 1)

    def _plan(self) -> tuple[list[int], int | None]:
        return [1], self.expected_iterations(self.config)

    def _worker(self, ctx: runner.WorkerContext) -> None:
        while (number := ctx.gate.claim()) is not None:
            ctx.run_one(number)


@trigger.configure(name="test_at_square")
class AtSquareTrigger(trigger.Trigger):
    CONFIG_SCHEMA = {"type": "object", "properties": {"root": {"type": "integer"}}}

    def get_listening_event(self) -> str:
        return consts.EventUnit.ITERATION

    def on_event(self, event_type: str, value: Any = None) -> bool:
        if value != self.config["root"] ** 2:
            return False
        return super().on_event(event_type, value)

    @classmethod
    def unreachable(cls, config: Any, iterations: int, path: str) -> list[str]:
        square = config["root"] ** 2
        return [f"{path}.root: {square} > {iterations}"] if square > iterations else []


def spec(runner_cfg: dict[str, Any], trigger_cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
        "runner": runner_cfg,
        "hooks": [{"name": "sys_call", "args": "/bin/true", "trigger": trigger_cfg}],
    }


def test_a_third_party_runner_declares_its_iterations() -> None:
    task = spec(
        {"type": "test_fixed_rounds", "rounds": 2}, {"name": "test_at_square", "args": {"root": 2}}
    )
    assert expected_iterations(workload_from_spec(task)) == 6
    # The built-in ones declare theirs the same way.
    for runner_cfg, expected in (
        ({"type": "constant", "times": 7}, 7),
        ({"type": "serial"}, 1),
        ({"type": "rps", "times": 9, "rps": 2}, 9),
        ({"type": "constant_for_duration", "duration": 1}, None),
    ):
        workload = workload_from_spec({**spec(runner_cfg, {}), "hooks": []})
        assert expected_iterations(workload) == expected


def test_a_third_party_trigger_and_runner_get_the_unreachable_warning() -> None:
    warnings: list[str] = []
    task = spec(
        {"type": "test_fixed_rounds", "rounds": 2}, {"name": "test_at_square", "args": {"root": 3}}
    )
    assert validate_spec(task, warnings=warnings) == []
    assert warnings == ["spec.hooks[0].trigger.args.root: 9 > 6"]
    # A built-in trigger against a third-party runner: the runner's count is used.
    warnings = []
    event = {"name": "event", "args": {"unit": "iteration", "at": [2, 7]}}
    assert (
        validate_spec(spec({"type": "test_fixed_rounds", "rounds": 2}, event), warnings=warnings)
        == []
    )
    assert warnings == [
        "spec.hooks[0].trigger.args.at: [7] beyond the runner's times (6); "
        "never fired, reported as unreached"
    ]
