"""The Hook base (Rally's HookAction API), its timeout/stop mechanism, and chart validation."""

import json
import threading
import time

import pytest

from krally import consts
from krally.errors import KrallyError
from krally.task import charts, hook
from krally.task import hook as hook_mod

TRIGGERED = {"event_type": "iteration", "value": 3}
TEXT = {"title": "t", "chart_plugin": "TextArea", "data": ["x"]}


class _Plain(hook.Hook):
    """Not registered: behaviour is driven by ``config`` (a callable taking the hook)."""

    def run(self):
        self.config(self)


def _make(fn, triggered_by=TRIGGERED) -> _Plain:
    return _Plain(task=None, config=fn, triggered_by=triggered_by)


def test_success_result_shape():
    action = _make(lambda h: None)
    action.run_sync()
    result = action.result()
    assert result["status"] == "success"
    assert result["triggered_by"] == TRIGGERED
    assert isinstance(result["started_at"], float) and result["started_at"] > 1e9
    assert result["started_at"] <= result["finished_at"]
    assert "error" not in result and "output" not in result


def test_exception_becomes_failed_with_traceback():
    def boom(h):
        raise KeyError("nope")

    action = _make(boom)
    action.run_sync()
    result = action.result()
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "KeyError"
    assert result["error"]["msg"] == "'nope'"
    assert "Traceback" in result["error"]["details"]


def test_set_error_decodes_bytes_and_set_status():
    action = _make(lambda h: h.set_error("n/a", b"Subprocess returned 1", b"out\xff"))
    action.run_sync()
    result = action.result()
    assert result["error"] == {
        "etype": "n/a",
        "msg": "Subprocess returned 1",
        "details": "out\ufffd",
    }
    json.dumps(result, allow_nan=False)
    other = _make(lambda h: h.set_status(consts.HookStatus.VALIDATION_FAILED))
    other.run_sync()
    assert other.result()["status"] == "validation_failed"


def test_add_output_valid_and_invalid():
    additive = {"title": "a", "chart_plugin": "StatsTable", "data": [["x", 1.5]]}
    action = _make(lambda h: h.add_output(additive=additive, complete=TEXT))
    action.run_sync()
    assert action.result()["output"] == {"additive": [additive], "complete": [TEXT]}

    bad = _make(lambda h: h.add_output(complete={"title": "t", "chart_plugin": "Nope", "data": []}))
    bad.run_sync()
    result = bad.result()
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "InvalidOutput"
    assert "unknown chart_plugin 'Nope'" in result["error"]["msg"]
    assert "output" not in result


def test_run_async_and_result_timeout():
    gate = threading.Event()
    action = _make(lambda h: gate.wait(10))
    action.run_async()
    assert action.result(timeout=0.01) is None  # still running
    gate.set()
    assert action.result(timeout=10)["status"] == "success"


def test_result_is_a_copy():
    action = _make(lambda h: h.add_output(complete=TEXT))
    action.run_sync()
    action.result()["output"]["complete"].clear()
    assert action.result()["output"]["complete"] == [TEXT]


def test_timeout_stops_cooperative_hook():
    def patient(h):
        h.wait(30)  # returns at once when stop() is called

    action = _make(patient)
    action.timeout = 0.2
    began = time.monotonic()
    action.run_async()
    result = action.result(timeout=20)
    assert time.monotonic() - began < 15
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "Timeout"
    assert "0.2 s" in result["error"]["msg"]
    assert action.stopping


def test_timeout_abandons_uncooperative_hook(monkeypatch):
    monkeypatch.setattr(hook_mod, "STOP_GRACE_SECONDS", 0.1)
    release = threading.Event()

    def stubborn(h):
        release.wait(10)
        h.set_error("Late", "must not overwrite the timeout", "")

    action = _make(stubborn)
    action.timeout = 0.1
    action.run_async()
    result = action.result(timeout=20)
    assert result is not None and result["error"]["etype"] == "Timeout"
    release.set()
    action._thread.join(10)
    assert action.result()["error"]["etype"] == "Timeout"


def test_popen_after_stop_refuses():
    action = _make(lambda h: None)
    action.stop()
    with pytest.raises(hook.HookStopped):
        action.popen(["true"])


def test_configure_registers_and_get_finds():
    @hook.configure(name="test_hook_registered")
    class Registered(hook.Hook):
        def run(self):
            pass

    assert hook.Hook.get("test_hook_registered") is Registered
    assert Registered.get_name() == "test_hook_registered"
    assert hook.HookAction is hook.Hook
    with pytest.raises(KrallyError, match="unknown hook plugin 'no_such_hook'"):
        hook.Hook.get("no_such_hook")


def test_builtin_sys_call_is_registered():
    assert "sys_call" in hook.Hook.get_all()


# ---- charts.validate_output (Rally's rules) ----------------------------------------------------


def test_validate_output_accepts_every_chart_plugin_and_optional_keys():
    for plugin in charts.CHART_PLUGINS:
        item = {
            "title": "t",
            "chart_plugin": plugin,
            "data": {"cols": [], "rows": []},
            "description": "d",
            "label": "l",
            "axis_label": "a",
        }
        charts.validate_output("complete", item)
        charts.validate_output("additive", item)


@pytest.mark.parametrize(
    ("kind", "item", "message"),
    [
        ("sideways", TEXT, "output kind 'sideways' is not one of additive, complete"),
        ("complete", ["x"], "complete output must be a dict, got list"),
        ("complete", {"title": "t", "data": []}, "missing required key(s) chart_plugin"),
        ("additive", {**TEXT, "colour": "red"}, "unexpected key(s) colour"),
        ("complete", {**TEXT, "title": 3}, "title must be str, got int"),
        ("complete", {**TEXT, "data": "x"}, "data must be list or dict, got str"),
        ("complete", {**TEXT, "label": 1}, "label must be str, got int"),
        ("complete", {**TEXT, "chart_plugin": "Bars"}, "unknown chart_plugin 'Bars'"),
    ],
)
def test_validate_output_rejects(kind, item, message):
    with pytest.raises(charts.InvalidOutput) as caught:
        charts.validate_output(kind, item)
    assert message in str(caught.value)
    assert isinstance(caught.value, KrallyError)
    assert "\n" not in str(caught.value)
