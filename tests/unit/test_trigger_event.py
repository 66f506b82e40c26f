"""Trigger ``event``: schema (Rally's), firing, at-most-once, planned values."""

import pytest

from krally.task import trigger
from krally.task.spec import HookSpec


class _Handle:
    def __init__(self, triggered_by):
        self.triggered_by = triggered_by

    def result(self, timeout=None):
        return {"status": "success", "triggered_by": self.triggered_by}


def _make(config: dict) -> trigger.Trigger:
    spec = HookSpec("sys_call", "true", "event", config)
    instance = trigger.Trigger.get("event")(spec.rally_hook_cfg(), None, None)
    instance._launch = lambda event_type, value: _Handle({"event_type": event_type, "value": value})
    return instance


def _problems(config) -> list[str]:
    return [str(p) for p in trigger.Trigger.validate("event", config, "hooks[0].trigger")]


@pytest.mark.parametrize(
    "config",
    [
        {"unit": "iteration", "at": [1]},
        {"unit": "iteration", "at": [5, 50, 200, 1000]},
        {"unit": "time", "at": [0, 3]},
    ],
)
def test_valid_configs(config):
    assert _problems(config) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"unit": "iteration", "at": []},
            "hooks[0].trigger.at: trigger 'event': [] should be non-empty",
        ),
        (
            {"unit": "iteration", "at": [2, 2]},
            "hooks[0].trigger.at: trigger 'event': [2, 2] has non-unique elements",
        ),
        (
            {"unit": "iteration", "at": [0]},
            "hooks[0].trigger.at[0]: trigger 'event': 0 is less than the minimum of 1",
        ),
        (
            {"unit": "time", "at": [-1]},
            "hooks[0].trigger.at[0]: trigger 'event': -1 is less than the minimum of 0",
        ),
        (
            {"unit": "minute", "at": [1]},
            "hooks[0].trigger.unit: trigger 'event': 'minute' is not one of ['time', 'iteration']",
        ),
        (
            {"unit": "iteration", "at": "5"},
            "hooks[0].trigger.at: trigger 'event': '5' is not of type 'array'",
        ),
        (
            {"unit": "iteration", "at": [1.5]},
            "hooks[0].trigger.at[0]: trigger 'event': 1.5 is not of type 'integer'",
        ),
        ({"unit": "iteration"}, "hooks[0].trigger: trigger 'event': 'at' is a required property"),
        (
            {"unit": "iteration", "at": [1], "every": 2},
            "hooks[0].trigger: trigger 'event': Additional properties are not allowed "
            "('every' was unexpected)",
        ),
        ("iteration", "hooks[0].trigger: trigger 'event': 'iteration' is not of type 'object'"),
    ],
)
def test_bad_configs_name_the_path(config, expected):
    assert _problems(config) == [expected]


def test_unknown_trigger_lists_known():
    (problem,) = trigger.Trigger.validate("evnet", {}, "hooks[0].trigger")
    assert "unknown trigger plugin 'evnet'" in str(problem)
    assert "event" in str(problem) and "periodic" in str(problem)


def test_fires_only_on_listed_values_of_its_unit():
    instance = _make({"unit": "iteration", "at": [2, 4]})
    assert instance.get_listening_event() == "iteration"
    fired = [n for n in range(1, 7) if instance.on_event("iteration", n)]
    assert fired == [2, 4]
    assert not instance.on_event("time", 2)
    results = instance.get_results()
    assert [r["triggered_by"]["value"] for r in results["results"]] == [2, 4]
    assert results["summary"] == {"success": 2}


def test_time_unit_fires_at_zero():
    instance = _make({"unit": "time", "at": [0, 2]})
    assert instance.get_listening_event() == "time"
    assert [t for t in range(4) if instance.on_event("time", t)] == [0, 2]


def test_at_most_once_per_value():
    instance = _make({"unit": "iteration", "at": [3]})
    instance._launch = instance._launch_locally  # standalone: the trigger's own dedupe
    instance.hook_cls = lambda task, config, triggered_by: _StartOnly(triggered_by)
    assert instance.on_event("iteration", 3)
    assert not instance.on_event("iteration", 3)
    assert len(instance.get_results()["results"]) == 1


class _StartOnly(_Handle):
    def run_async(self):
        pass


def test_planned_values_and_config_untouched():
    config = {"unit": "iteration", "at": [50, 5]}
    instance = _make(config)
    assert list(instance.planned_values()) == [5, 50]
    assert instance.get_results()["config"] == {
        "description": "",
        "action": {"sys_call": "true"},
        "trigger": {"event": {"unit": "iteration", "at": [50, 5]}},
    }
