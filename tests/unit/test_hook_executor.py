"""HookExecutor: event delivery, the absolute 1 Hz ticker, at-most-once, order, unreached
values, launchers and timeouts. Time is shortened with ``tick_interval``; bounds are generous."""

import json
import threading
import time

import pytest

from krally.errors import InvalidConfig
from krally.task import hook, trigger
from krally.task.hook_executor import HookExecutor, LocalLauncher
from krally.task.spec import HookSpec

TICK = 0.05


@hook.configure(name="test_exec_noop")
class NoopHook(hook.Hook):
    def run(self):
        pass


@hook.configure(name="test_exec_slow")
class SlowHook(hook.Hook):
    CONFIG_SCHEMA = {"type": "number"}

    def run(self):
        self.wait(self.config)


@trigger.configure(name="test_exec_recorder")
class RecorderTrigger(trigger.Trigger):
    """Listens to ``config["unit"]``, fires on everything, records when each value arrived."""

    CONFIG_SCHEMA = {"type": "object"}
    seen: list  # set per instance

    def __init__(self, context, task, hook_cls):
        super().__init__(context, task, hook_cls)
        self.seen = []
        RecorderTrigger.last = self

    def get_listening_event(self):
        return self.config["unit"]

    def on_event(self, event_type, value=None):
        self.seen.append((value, time.monotonic()))
        if self.config.get("stall_on") == value:
            time.sleep(self.config["stall"])
        return super().on_event(event_type, value)


@trigger.configure(name="test_exec_sloppy")
class SloppyTrigger(trigger.Trigger):
    """Fires on every event, twice: the executor must still fire once per value."""

    CONFIG_SCHEMA = {"type": "object"}

    def get_listening_event(self):
        return "iteration"

    def on_event(self, event_type, value=None):
        super().on_event(event_type, value)
        super().on_event(event_type, value)


def _spec(action, action_args, trigger_name, trigger_args, **kw) -> HookSpec:
    return HookSpec(action, action_args, trigger_name, trigger_args, **kw)


def _values(entry) -> list:
    return [r["triggered_by"]["value"] for r in entry["results"]]


def _wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_iteration_events_fire_listed_values():
    executor = HookExecutor(
        [_spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [1, 3]})]
    )
    for n in range(1, 6):
        executor.on_event("iteration", n)
    (entry,) = executor.results()
    assert _values(entry) == [1, 3]
    assert entry["summary"] == {"success": 2}
    assert executor.fired_count == 2


def test_no_ticker_without_time_triggers_and_unknown_events_ignored():
    executor = HookExecutor(
        [_spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [1]})],
        tick_interval=TICK,
    )
    assert executor.listens_to("iteration") and not executor.listens_to("time")
    executor.on_event("iteration", 1)
    executor.on_event("something", 1)
    assert executor._ticker is None
    assert _values(executor.results()[0]) == [1]


def test_time_ticks_start_at_iteration_one_and_follow_absolute_schedule():
    executor = HookExecutor(
        [_spec("test_exec_noop", None, "test_exec_recorder", {"unit": "time"})],
        tick_interval=TICK,
    )
    recorder = RecorderTrigger.last
    executor.on_event("iteration", 2)  # not iteration 1: no ticks yet
    time.sleep(3 * TICK)
    assert recorder.seen == []
    started = time.monotonic()
    executor.on_event("iteration", 1)
    assert _wait_until(lambda: len(recorder.seen) >= 12)
    executor.stop()
    values = [v for v, _ in recorder.seen]
    assert values == list(range(len(values)))  # 0, 1, 2, ... no skip, no repeat
    for value, at in recorder.seen:
        # Never early; lateness bounded generously (loaded CI machines), and not cumulative.
        assert at >= started + value * TICK - 0.005
        assert at <= started + value * TICK + 0.5
    count = len(recorder.seen)
    time.sleep(4 * TICK)
    assert len(recorder.seen) == count  # stop() ended the ticks
    (entry,) = executor.results()
    assert _values(entry) == values


def test_late_tick_is_delivered_late_then_schedule_catches_up():
    executor = HookExecutor(
        [
            _spec(
                "test_exec_noop",
                None,
                "test_exec_recorder",
                {"unit": "time", "stall_on": 1, "stall": 4 * TICK},
            )
        ],
        tick_interval=TICK,
    )
    recorder = RecorderTrigger.last
    started = time.monotonic()
    executor.on_event("iteration", 1)
    assert _wait_until(lambda: len(recorder.seen) >= 12)
    executor.stop()
    values = [v for v, _ in recorder.seen]
    assert values == list(range(len(values)))
    # Ticks 2..5 were due during the stall and come at once after it; tick 11 is on schedule,
    # not 4 ticks late (an interval-based timer would have drifted).
    tick_11 = dict(recorder.seen)[11]
    assert started + 11 * TICK - 0.005 <= tick_11 <= started + 11 * TICK + 0.5


def test_concurrent_iteration_start_starts_one_ticker():
    executor = HookExecutor(
        [_spec("test_exec_noop", None, "test_exec_recorder", {"unit": "time"})],
        tick_interval=TICK,
    )
    recorder = RecorderTrigger.last
    threads = [threading.Thread(target=executor.on_event, args=("iteration", 1)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _wait_until(lambda: len(recorder.seen) >= 3)
    executor.stop()
    values = [v for v, _ in recorder.seen]
    assert values == list(range(len(values)))


def test_at_most_once_even_with_sloppy_trigger_and_repeated_events():
    executor = HookExecutor(
        [
            _spec("test_exec_noop", None, "test_exec_sloppy", {}),
            _spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [2]}),
        ]
    )
    for n in (1, 2, 2, 3, 1):
        executor.on_event("iteration", n)
    sloppy, event = executor.results()
    assert _values(sloppy) == [1, 2, 3]
    assert _values(event) == [2]


def test_many_threads_deliver_each_value_once():
    executor = HookExecutor([_spec("test_exec_noop", None, "test_exec_sloppy", {})])

    def feed():
        for n in range(1, 201):
            executor.on_event("iteration", n)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (entry,) = executor.results()
    assert sorted(_values(entry)) == list(range(1, 201))


def test_results_keep_task_hook_order():
    hooks = [
        _spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [1]}, description="A"),
        _spec("test_exec_noop", None, "event", {"unit": "time", "at": [0]}, description="B"),
        _spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [2]}, description="C"),
    ]
    executor = HookExecutor(hooks, tick_interval=TICK)
    executor.on_event("iteration", 1)
    executor.on_event("iteration", 2)
    assert _wait_until(lambda: executor.fired_count == 3)
    results = executor.results()
    assert [r["config"]["description"] for r in results] == ["A", "B", "C"]
    assert [_values(r) for r in results] == [[1], [0], [2]]
    assert [r["config"] for r in results] == [h.rally_config() for h in hooks]


def test_unreached_values_are_reported_and_bounded():
    hooks = [
        _spec("test_exec_noop", None, "event", {"unit": "time", "at": [0, 100]}),
        _spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [1, 10, 11]}),
        _spec("test_exec_noop", None, "periodic", {"unit": "iteration", "step": 2, "end": 8}),
        _spec("test_exec_noop", None, "periodic", {"unit": "iteration", "step": 1, "end": 10**9}),
        _spec("test_exec_noop", None, "periodic", {"unit": "iteration", "step": 1}),
        _spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [3]}),
    ]
    executor = HookExecutor(hooks, tick_interval=10.0)
    for n in range(1, 6):
        executor.on_event("iteration", n)
    assert _wait_until(lambda: executor.fired_count >= 1 + 1 + 3 + 5 + 5 + 1)
    time_event, iteration_event, periodic, huge, endless, complete = executor.results()
    assert _values(time_event) == [0]
    assert time_event["unreached"] == [{"event_type": "time", "value": 100}]
    assert time_event["unreached_count"] == 1
    assert iteration_event["unreached"] == [
        {"event_type": "iteration", "value": 10},
        {"event_type": "iteration", "value": 11},
    ]
    assert _values(periodic) == [1, 3, 5]
    assert periodic["unreached"] == [{"event_type": "iteration", "value": 7}]
    assert len(huge["unreached"]) == 100
    assert huge["unreached"][0] == {"event_type": "iteration", "value": 6}
    assert huge["unreached_count"] == 10**9 - 5
    assert "unreached" not in endless and "unreached" not in complete
    json.dumps([time_event, iteration_event, periodic, huge, endless], allow_nan=False)


def test_events_after_stop_are_ignored():
    executor = HookExecutor(
        [_spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [1, 2]})]
    )
    executor.on_event("iteration", 1)
    executor.stop()
    executor.on_event("iteration", 2)
    (entry,) = executor.results()
    assert _values(entry) == [1]
    assert entry["unreached"] == [{"event_type": "iteration", "value": 2}]


def test_results_wait_for_running_hooks():
    executor = HookExecutor(
        [_spec("test_exec_slow", 0.3, "event", {"unit": "iteration", "at": [1]})]
    )
    executor.on_event("iteration", 1)
    (entry,) = executor.results()
    run = entry["results"][0]
    assert run["status"] == "success"
    assert run["finished_at"] - run["started_at"] >= 0.25


def test_hook_timeout_fails_with_timeout():
    executor = HookExecutor(
        [
            _spec(
                "test_exec_slow",
                30,
                "event",
                {"unit": "iteration", "at": [1]},
                job={"timeoutSeconds": 0.2},
            )
        ]
    )
    began = time.monotonic()
    executor.on_event("iteration", 1)
    (entry,) = executor.results()
    assert time.monotonic() - began < 15
    assert entry["summary"] == {"failed": 1}
    assert entry["results"][0]["error"]["etype"] == "Timeout"


class _RecordingLauncher:
    def __init__(self, fail_on=None):
        self.launched = []
        self.fail_on = fail_on

    def launch(self, index, hook_spec, hook_cls, triggered_by):
        if triggered_by["value"] == self.fail_on:
            raise RuntimeError("status write refused")
        self.launched.append((index, hook_spec.action_name, hook_cls, triggered_by))
        return _Fired(triggered_by)


class _Fired:
    def __init__(self, triggered_by):
        self.triggered_by = triggered_by

    def result(self, timeout=None):
        return {"status": "success", "triggered_by": self.triggered_by, "fired": True}


def test_custom_launcher_receives_index_spec_class_and_trigger():
    launcher = _RecordingLauncher(fail_on=3)
    hooks = [
        _spec("test_exec_noop", None, "event", {"unit": "iteration", "at": [9]}),
        _spec("sys_call", "true", "event", {"unit": "iteration", "at": [2, 3]}),
    ]
    executor = HookExecutor(hooks, launcher=launcher)
    for n in range(1, 4):
        executor.on_event("iteration", n)
    assert launcher.launched == [
        (1, "sys_call", hook.Hook.get("sys_call"), {"event_type": "iteration", "value": 2})
    ]
    _, entry = executor.results()
    assert entry["summary"] == {"success": 1, "failed": 1}
    assert entry["results"][1]["error"]["etype"] == "RuntimeError"
    assert "status write refused" in entry["results"][1]["error"]["msg"]


def test_local_launcher_passes_task_and_timeout():
    launcher = LocalLauncher(task="the-task")
    spec = _spec(
        "test_exec_noop", None, "event", {"unit": "iteration", "at": [1]}, job={"timeoutSeconds": 7}
    )
    action = launcher.launch(0, spec, NoopHook, {"event_type": "iteration", "value": 1})
    assert action.task == "the-task" and action.timeout == 7.0
    assert action.result(timeout=10)["status"] == "success"


def test_broken_trigger_does_not_break_the_load():
    @trigger.configure(name="test_exec_broken")
    class Broken(trigger.Trigger):
        CONFIG_SCHEMA = {"type": "object"}

        def get_listening_event(self):
            return "iteration"

        def on_event(self, event_type, value=None):
            raise ValueError("bug")

    executor = HookExecutor([_spec("test_exec_noop", None, "test_exec_broken", {})])
    for n in range(1, 4):
        executor.on_event("iteration", n)
    (entry,) = executor.results()
    assert entry["results"] == []
    assert "ValueError: bug" in entry["trigger_error"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            HookSpec("sys_call", "true", "event", {"unit": "iteration", "at": []}),
            "hooks[0].trigger.at: trigger 'event': [] should be non-empty",
        ),
        (
            HookSpec("sys_call", 5, "event", {"unit": "iteration", "at": [1]}),
            "hooks[0].action: hook 'sys_call': 5 is not of type 'string'",
        ),
    ],
)
def test_invalid_config_raises_with_path(spec, message):
    with pytest.raises(InvalidConfig) as caught:
        HookExecutor([spec])
    assert str(caught.value) == message


def test_unknown_plugins_raise():
    with pytest.raises(Exception, match="unknown trigger plugin 'nope'"):
        HookExecutor([HookSpec("sys_call", "true", "nope", {})])
    with pytest.raises(Exception, match="unknown hook plugin 'nope'"):
        HookExecutor([HookSpec("nope", "true", "event", {"unit": "iteration", "at": [1]})])
