"""Plugins written exactly as Rally's plugin guide shows (only imports and names changed) must run
unchanged through krally's engine (reference/rally-hook-and-trigger-plugins.rst)."""

import json
import shlex
import subprocess

from krally import consts
from krally.task import hook, trigger
from krally.task.hook_executor import HookExecutor
from krally.task.spec import HookSpec

# ---- copied from the guide; only the imports and the registered names differ -----------------


@hook.configure(name="my_sys_call")
class SysCallHook(hook.Hook):
    """Performs system call."""

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "string",
    }

    def run(self):
        proc = subprocess.Popen(
            shlex.split(self.config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        proc.wait()
        if proc.returncode:
            self.set_error(
                exception_name="n/a",  # no exception class
                description="Subprocess returned {}".format(proc.returncode),  # noqa: UP032
                details=proc.stdout.read(),
            )


@trigger.configure(name="my_event")
class EventTrigger(trigger.Trigger):
    """Triggers hook on specified event and list of values."""

    CONFIG_SCHEMA = {
        "type": "object",
        "$schema": consts.JSON_SCHEMA,
        "oneOf": [
            {
                "properties": {
                    "unit": {"enum": ["time"]},
                    "at": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {
                            "type": "integer",
                            "minimum": 0,
                        },
                    },
                },
                "required": ["unit", "at"],
                "additionalProperties": False,
            },
            {
                "properties": {
                    "unit": {"enum": ["iteration"]},
                    "at": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {
                            "type": "integer",
                            "minimum": 1,
                        },
                    },
                },
                "required": ["unit", "at"],
                "additionalProperties": False,
            },
        ],
    }

    def get_listening_event(self):
        return self.config["unit"]

    def on_event(self, event_type, value=None):
        if not (event_type == self.get_listening_event() and value in self.config["at"]):
            # do nothing
            return
        super(EventTrigger, self).on_event(event_type, value)  # noqa: UP008


# ---- the guide's usage: sys_call "/bin/echo 123" at iterations 5, 50, 200, 1000 of 1500 -------


def _run(command: str, at: list[int], iterations: int = 1500) -> list[dict]:
    spec = HookSpec("my_sys_call", command, "my_event", {"unit": "iteration", "at": at})
    executor = HookExecutor([spec])
    for n in range(1, iterations + 1):
        executor.on_event("iteration", n)
    return executor.results()


def test_guide_plugins_are_registered_and_found():
    assert hook.Hook.get("my_sys_call") is SysCallHook
    assert trigger.Trigger.get("my_event") is EventTrigger
    assert hook.HookAction is hook.Hook


def test_guide_example_runs_four_successful_hooks():
    (result,) = _run("/bin/echo 123", [5, 50, 200, 1000])
    assert result["summary"] == {"success": 4}
    assert [r["triggered_by"] for r in result["results"]] == [
        {"event_type": "iteration", "value": v} for v in (5, 50, 200, 1000)
    ]
    for run in result["results"]:
        assert run["status"] == "success"
        assert 0 < run["started_at"] <= run["finished_at"]
        assert "error" not in run
    assert result["config"] == {
        "description": "",
        "action": {"my_sys_call": "/bin/echo 123"},
        "trigger": {"my_event": {"unit": "iteration", "at": [5, 50, 200, 1000]}},
    }
    assert "unreached" not in result
    json.dumps(result, allow_nan=False)


def test_guide_hook_failure_with_bytes_details_stays_json():
    (result,) = _run("sh -c 'echo broken; exit 4'", [2], iterations=3)
    assert result["summary"] == {"failed": 1}
    error = result["results"][0]["error"]
    assert error == {"etype": "n/a", "msg": "Subprocess returned 4", "details": "broken\n"}
    json.dumps(result, allow_nan=False)


def test_guide_trigger_never_reached_value_is_reported():
    (result,) = _run("true", [1, 10, 11], iterations=10)
    assert [r["triggered_by"]["value"] for r in result["results"]] == [1, 10]
    # The guide's trigger has no planned_values(): krally cannot know what it planned.
    assert "unreached" not in result


def test_guide_trigger_config_errors_name_the_path():
    problems = trigger.Trigger.validate("my_event", {"unit": "iteration", "at": []}, "hooks[0]")
    assert [str(p) for p in problems] == ["hooks[0].at: trigger 'my_event': [] should be non-empty"]
    problems = hook.Hook.validate("my_sys_call", 42, "hooks[0].action")
    assert len(problems) == 1 and "hooks[0].action" in str(problems[0])
