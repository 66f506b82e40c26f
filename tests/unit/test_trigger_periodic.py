"""Trigger ``periodic``: schema (Rally's), defaults, inclusive ends, no Infinity in results."""

import json

import pytest

from krally.task import trigger
from krally.task.spec import HookSpec


class _Handle:
    def __init__(self, triggered_by):
        self.triggered_by = triggered_by

    def result(self, timeout=None):
        return {"status": "success", "triggered_by": self.triggered_by}


def _make(config: dict) -> trigger.Trigger:
    spec = HookSpec("sys_call", "true", "periodic", config)
    instance = trigger.Trigger.get("periodic")(spec.rally_hook_cfg(), None, None)
    instance._launch = lambda event_type, value: _Handle({"event_type": event_type, "value": value})
    return instance


def _fired(instance, unit, values) -> list[int]:
    return [v for v in values if instance.on_event(unit, v)]


def _problems(config) -> list[str]:
    return [str(p) for p in trigger.Trigger.validate("periodic", config, "hooks[1].trigger")]


@pytest.mark.parametrize(
    "config",
    [
        {"unit": "iteration", "step": 1},
        {"unit": "iteration", "step": 2, "start": 4, "end": 8},
        {"unit": "time", "step": 5, "start": 0},
        {"unit": "time", "step": 1, "end": 1},
    ],
)
def test_valid_configs(config):
    assert _problems(config) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"unit": "iteration", "step": 0},
            "hooks[1].trigger.step: trigger 'periodic': 0 is less than the minimum of 1",
        ),
        (
            {"unit": "iteration", "step": 1, "start": 0},
            "hooks[1].trigger.start: trigger 'periodic': 0 is less than the minimum of 1",
        ),
        (
            {"unit": "time", "step": 1, "start": -1},
            "hooks[1].trigger.start: trigger 'periodic': -1 is less than the minimum of 0",
        ),
        (
            {"unit": "time", "step": 1, "end": 0},
            "hooks[1].trigger.end: trigger 'periodic': 0 is less than the minimum of 1",
        ),
        (
            {"unit": "time", "step": "1"},
            "hooks[1].trigger.step: trigger 'periodic': '1' is not of type 'integer'",
        ),
        (
            {"unit": "time"},
            "hooks[1].trigger: trigger 'periodic': 'step' is a required property",
        ),
        (
            {"unit": "hour", "step": 1},
            "hooks[1].trigger.unit: trigger 'periodic': 'hour' is not one of ['time', 'iteration']",
        ),
        (
            {"unit": "time", "step": 1, "at": [1]},
            "hooks[1].trigger: trigger 'periodic': Additional properties are not allowed "
            "('at' was unexpected)",
        ),
    ],
)
def test_bad_configs_name_the_path(config, expected):
    assert _problems(config) == [expected]


def test_iteration_step_start_end_inclusive():
    instance = _make({"unit": "iteration", "step": 2, "start": 4, "end": 8})
    assert _fired(instance, "iteration", range(1, 20)) == [4, 6, 8]
    assert list(instance.planned_values()) == [4, 6, 8]


def test_iteration_default_start_is_one_and_no_end():
    instance = _make({"unit": "iteration", "step": 3})
    assert _fired(instance, "iteration", range(1, 11)) == [1, 4, 7, 10]
    assert instance.planned_values() is None


def test_time_default_start_is_zero():
    instance = _make({"unit": "time", "step": 2, "end": 5})
    assert instance.get_listening_event() == "time"
    assert _fired(instance, "time", range(10)) == [0, 2, 4]
    assert not instance.on_event("iteration", 2)


def test_defaults_never_written_into_config():
    config = {"unit": "time", "step": 1}
    instance = _make(config)
    instance.on_event("time", 0)
    results = instance.get_results()
    assert results["config"]["trigger"] == {"periodic": {"unit": "time", "step": 1}}
    assert config == {"unit": "time", "step": 1}
    json.dumps(results, allow_nan=False)  # Rally would write "end": Infinity here
