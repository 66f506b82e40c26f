"""Rally's ``Dummy.*`` scenarios: no external system, for testing runners, hooks, SLA, reports.

None of them counts its sleep as idle time, so sleeps are part of ``duration`` (as in Rally).
"""

from __future__ import annotations

import random
from typing import Any

from krally.task import atomic, scenario
from krally.task.scenario import args_schema, interruptable_sleep, number

_PROBABILITY = number(0, 1)


class DummyScenarioException(Exception):  # Rally's name, shown in results
    """The error Dummy scenarios raise on purpose."""


@scenario.configure(name="Dummy.dummy")
class Dummy(scenario.Scenario):
    """Do nothing but sleep ``sleep`` seconds, inside nested atomic actions foo -> bar."""

    CONFIG_SCHEMA = args_schema({"sleep": number()}, extra=True)

    def run(self, sleep: float = 0, **kwargs: Any) -> None:
        with atomic.ActionTimer(self, "foo"), atomic.ActionTimer(self, "bar"):
            interruptable_sleep(sleep)


@scenario.configure(name="Dummy.failure")
class DummyFailure(scenario.Scenario):
    """Sleep, then fail iterations ``from_iteration..to_iteration`` divisible by ``each``."""

    CONFIG_SCHEMA = args_schema(
        {
            "sleep": number(),
            "from_iteration": number(integer=True),
            "to_iteration": number(integer=True),
            "each": number(integer=True),
        }
    )

    def run(
        self, sleep: float = 0.1, from_iteration: int = 0, to_iteration: int = 0, each: int = 1
    ) -> None:
        interruptable_sleep(sleep)
        iteration = self.context["iteration"]
        if from_iteration <= iteration <= to_iteration and each and iteration % each == 0:
            raise DummyScenarioException("Expected failure")


@scenario.configure(name="Dummy.dummy_exception")
class DummyException(scenario.Scenario):
    """Sleep, then always raise (``message``, or ``size_of_message`` times "M")."""

    CONFIG_SCHEMA = args_schema(
        {
            "size_of_message": number(1, integer=True),
            "sleep": number(),
            "message": {"type": "string"},
        }
    )

    def run(self, size_of_message: int = 1, sleep: float = 1, message: str = "") -> None:
        if size_of_message < 1:
            raise ValueError("size_of_message must be >= 1")
        interruptable_sleep(sleep)
        raise DummyScenarioException(message or "M" * size_of_message)


@scenario.configure(name="Dummy.dummy_exception_probability")
class DummyExceptionProbability(scenario.Scenario):
    """Raise with probability ``exception_probability``."""

    CONFIG_SCHEMA = args_schema({"exception_probability": _PROBABILITY})

    def run(self, exception_probability: float = 0.5) -> None:
        if random.random() < exception_probability:
            raise KeyError(f"Dummy test exception (probability {exception_probability})")


@scenario.configure(name="Dummy.dummy_output")
class DummyOutput(scenario.Scenario):
    """Emit one output of every chart kind, with random values in ``1..random_range``."""

    CONFIG_SCHEMA = args_schema({"random_range": number(1, integer=True)})

    def run(self, random_range: int = 25) -> None:
        def rand() -> int:
            return random.randint(1, random_range)

        names = ("foo", "bar", "spam")
        described = "Example of {} chart output ({} output)."
        for chart in ("StatsTable", "StackedArea", "Lines", "Pie"):
            self.add_output(
                additive={
                    "title": f"Additive {chart}",
                    "description": described.format(chart, "additive"),
                    "chart_plugin": chart,
                    "data": [[name, rand()] for name in names],
                    "label": "value",
                }
            )
        for chart in ("StackedArea", "Lines"):
            self.add_output(
                complete={
                    "title": f"Complete {chart}",
                    "description": described.format(chart, "complete"),
                    "chart_plugin": chart,
                    "data": [[name, [[x, rand()] for x in range(1, 11)]] for name in names],
                    "label": "value",
                    "axis_label": "x",
                }
            )
        self.add_output(
            complete={
                "title": "Complete Pie",
                "chart_plugin": "Pie",
                "data": [[name, rand()] for name in names],
            }
        )
        self.add_output(
            complete={
                "title": "Complete Table",
                "chart_plugin": "Table",
                "data": {
                    "cols": ["name", "value 1", "value 2"],
                    "rows": [[name, rand(), rand()] for name in names],
                },
            }
        )
        self.add_output(
            complete={
                "title": "Complete TextArea",
                "chart_plugin": "TextArea",
                "data": [f"{name}: {rand()}" for name in names],
            }
        )


@scenario.configure(name="Dummy.dummy_with_scenario_output")
class DummyWithScenarioOutput(DummyOutput):
    """Rally's older name for an output-producing dummy; same as ``Dummy.dummy_output``."""


@scenario.configure(name="Dummy.dummy_random_fail_in_atomic")
class DummyRandomFailInAtomic(scenario.Scenario):
    """Two atomic actions, each raising KeyError with probability ``exception_probability``."""

    CONFIG_SCHEMA = args_schema({"exception_probability": _PROBABILITY})

    @atomic.action_timer("dummy_fail_test")
    def _random_fail_emitter(self, exception_probability: float) -> None:
        if random.random() < exception_probability:
            raise KeyError("Dummy test exception")

    def run(self, exception_probability: float = 0.5) -> None:
        self._random_fail_emitter(exception_probability)
        self._random_fail_emitter(exception_probability)


@scenario.configure(name="Dummy.dummy_random_action")
class DummyRandomAction(scenario.Scenario):
    """``actions_num`` atomic actions ``action_<i>``, each sleeping in [sleep_min, sleep_max]."""

    CONFIG_SCHEMA = args_schema(
        {"actions_num": number(integer=True), "sleep_min": number(), "sleep_max": number()}
    )

    def run(self, actions_num: int = 5, sleep_min: float = 0, sleep_max: float = 0) -> None:
        for index in range(actions_num):
            with atomic.ActionTimer(self, f"action_{index}"):
                interruptable_sleep(random.uniform(sleep_min, sleep_max))


@scenario.configure(name="Dummy.dummy_timed_atomic_actions")
class DummyTimedAtomicActions(scenario.Scenario):
    """Atomic actions ``action_<i>`` (i = 0..number_of_actions-1) sleeping i*sleep_factor s."""

    CONFIG_SCHEMA = args_schema(
        {"number_of_actions": number(integer=True), "sleep_factor": number()}
    )

    def run(self, number_of_actions: int = 5, sleep_factor: float = 1) -> None:
        for index in range(number_of_actions):
            with atomic.ActionTimer(self, f"action_{index}"):
                interruptable_sleep(index * sleep_factor)
