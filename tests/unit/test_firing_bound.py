"""The bound on firings per task (KRALLY_MAX_FIRINGS), enforced by admission: the trigger and
its count named; time triggers counted over the runner's duration where it is known."""

from __future__ import annotations

from typing import Any

import pytest

from krally.api import wire
from krally.kube.operator import admission, firing_bound
from krally.kube.operator.settings import Settings


def _spec(runner: dict[str, Any], *triggers: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    hooks = [
        {"name": "sys_call", "args": "true", "trigger": {"name": name, "args": args}}
        for name, args in triggers
    ]
    return {"scenario": {"name": "Dummy.dummy"}, "runner": runner, "hooks": hooks}


CONSTANT = {"type": "constant", "times": 1_000_000}
FOR_DURATION = {"type": "constant_for_duration", "duration": 5000}


def test_a_periodic_trigger_over_the_bound_is_refused_naming_it_and_its_count() -> None:
    spec = _spec(CONSTANT, ("event", {"unit": "iteration", "at": [5]}),
                 ("periodic", {"unit": "iteration", "step": 1}))  # fmt: skip
    (problem,) = firing_bound.problems(spec, 1000)
    assert problem.startswith("spec.hooks[1].trigger: periodic fires 1000000 times")
    assert "1000000 iterations" in problem and "KRALLY_MAX_FIRINGS" in problem


def test_the_bound_itself_passes() -> None:
    spec = _spec(CONSTANT, ("periodic", {"unit": "iteration", "step": 1000}))
    assert firing_bound.problems(spec, 1000) == []  # exactly 1000
    spec = _spec(CONSTANT, ("periodic", {"unit": "iteration", "step": 999}))
    assert "fires 1002 times" in firing_bound.problems(spec, 1000)[0]


def test_time_triggers_count_over_the_runners_duration() -> None:
    (problem,) = firing_bound.problems(
        _spec(FOR_DURATION, ("periodic", {"unit": "time", "step": 1})), 1000
    )
    assert "fires 5001 times over the runner's 5000 s" in problem
    assert (
        firing_bound.problems(_spec(FOR_DURATION, ("periodic", {"unit": "time", "step": 5})), 1001)
        == []
    )
    # runnerPod.timeoutSeconds caps the load: 600 s, 601 firings.
    capped = dict(_spec(FOR_DURATION, ("periodic", {"unit": "time", "step": 1})),
                  runnerPod={"timeoutSeconds": 600})  # fmt: skip
    assert firing_bound.problems(capped, 1000) == []
    assert "fires 601 times over the runner's 600 s" in firing_bound.problems(capped, 600)[0]


def test_a_time_trigger_of_a_load_of_unknown_length_is_not_counted() -> None:
    assert (
        firing_bound.problems(_spec(CONSTANT, ("periodic", {"unit": "time", "step": 1})), 10) == []
    )


def test_an_endless_iteration_trigger_of_a_timed_load_is_left_to_the_runners_cap() -> None:
    """Rally's constant_for_duration with an iteration periodic: its count is not known ahead;
    the runner records at most MAX_FIRINGS firings, the setting's ceiling."""
    spec = _spec(FOR_DURATION, ("periodic", {"unit": "iteration", "step": 10}))
    assert firing_bound.problems(spec, 10) == []
    bounded = _spec(FOR_DURATION, ("periodic", {"unit": "iteration", "step": 10, "end": 1000}))
    assert "fires 100 times" in firing_bound.problems(bounded, 10)[0]
    assert Settings().max_firings == wire.MAX_FIRINGS == 500


def test_hooks_together_over_the_bound() -> None:
    spec = _spec({"type": "constant", "times": 600},
                 ("periodic", {"unit": "iteration", "step": 1}),
                 ("periodic", {"unit": "iteration", "step": 1}))  # fmt: skip
    (problem,) = firing_bound.problems(spec, 1000)
    assert problem.startswith("spec.hooks: the triggers fire 1200 times together")


def test_admission_applies_the_setting() -> None:
    spec = _spec({"type": "constant", "times": 50}, ("periodic", {"unit": "iteration", "step": 1}))
    problems, _ = admission.validate(spec, Settings(max_firings=10))
    assert any("spec.hooks[0].trigger: periodic fires 50 times" in p for p in problems)
    assert admission.validate(spec, Settings())[0] == []


@pytest.mark.parametrize("text", ["0", "-3", "many", "501"])
def test_a_bad_setting_names_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="KRALLY_MAX_FIRINGS"):
        Settings.from_env({"KRALLY_MAX_FIRINGS": text})
    assert Settings.from_env({"KRALLY_MAX_FIRINGS": "7"}).max_firings == 7
