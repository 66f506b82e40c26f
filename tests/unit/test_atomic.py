"""Atomic actions: nesting, failures, the decorator."""

from __future__ import annotations

import pytest

from krally.task import atomic, scenario


class Plain(scenario.Scenario):
    @atomic.action_timer("decorated")
    def decorated(self, fail: bool = False) -> str:
        if fail:
            raise ValueError("nope")
        return "ok"


def test_nested_actions_tree():
    s = Plain()
    with atomic.ActionTimer(s, "outer"):
        with atomic.ActionTimer(s, "inner1"):
            pass
        with atomic.ActionTimer(s, "inner2"), atomic.ActionTimer(s, "deepest"):
            pass
    with atomic.ActionTimer(s, "second"):
        pass
    (outer, second) = s.atomic_actions()
    assert outer["name"] == "outer" and second["name"] == "second"
    assert [c["name"] for c in outer["children"]] == ["inner1", "inner2"]
    assert outer["children"][1]["children"][0]["name"] == "deepest"
    for action in (outer, second, *outer["children"]):
        assert action["started_at"] <= action["finished_at"]
        assert "failed" not in action
    assert outer["started_at"] <= outer["children"][0]["started_at"]
    assert outer["children"][1]["finished_at"] <= outer["finished_at"]
    assert atomic.action_duration(outer) >= 0


def test_failed_action_is_marked_and_exception_propagates():
    s = Plain()
    with pytest.raises(KeyError), atomic.ActionTimer(s, "outer"), atomic.ActionTimer(s, "inner"):
        raise KeyError("x")
    (outer,) = s.atomic_actions()
    assert outer["failed"] is True
    assert outer["children"][0]["failed"] is True
    assert outer["finished_at"] is not None


def test_decorator_records_and_can_be_skipped():
    s = Plain()
    assert s.decorated() == "ok"
    assert s.decorated(atomic_action=False) == "ok"
    with pytest.raises(ValueError):
        s.decorated(fail=True)
    names = [(a["name"], a.get("failed", False)) for a in s.atomic_actions()]
    assert names == [("decorated", False), ("decorated", True)]
    assert Plain.decorated.__name__ == "decorated"


def test_works_on_any_object():
    class Thing:
        pass

    thing = Thing()
    with atomic.ActionTimer(thing, "a"):
        pass
    assert thing._atomic_actions[0]["name"] == "a"
