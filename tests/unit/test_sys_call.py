"""Hook ``sys_call``: Rally's results, krally's fix for non-object JSON stdout, kill on timeout."""

import json
import os
import sys
import time

import pytest

from krally.task import hook

SysCall = hook.Hook.get("sys_call")
TRIGGERED = {"event_type": "iteration", "value": 5}


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def _run(command: str, mode: str = "sync") -> dict:
    action = SysCall(None, command, TRIGGERED)
    if mode == "sync":  # the hook pod's way
        action.run_sync()
    else:  # the local launcher's way: the process starts inside run_async()
        action.run_async()
    result = action.result(timeout=30)
    json.dumps(result, allow_nan=False)
    return result


def _text_area(result) -> dict:
    (item,) = result["output"]["complete"]
    assert item["title"] == "System call" and item["chart_plugin"] == "TextArea"
    return item


def test_echo_123_succeeds_with_text_output(mode):
    # Rally records this as failed (AttributeError: 'int' object has no attribute 'get').
    result = _run("/bin/echo 123", mode)
    assert result["status"] == "success"
    assert "error" not in result
    assert result["triggered_by"] == TRIGGERED
    assert _text_area(result) == {
        "title": "System call",
        "chart_plugin": "TextArea",
        "description": "Args: /bin/echo 123",
        "data": ["RetCode: 0", "StdOut: 123\n", "StdErr: (empty)"],
    }


@pytest.mark.parametrize("stdout", ["true", "null", '"text"', "[1, 2]", '{"other": 1}', "hello"])
def test_non_document_stdout_is_text_not_error(stdout):
    result = _run(f"printf %s {json.dumps(stdout)}")
    assert result["status"] == "success"
    assert _text_area(result)["data"][1] == f"StdOut: {stdout}"


def test_json_document_becomes_chart_output():
    document = {
        "additive": [{"title": "Stats", "chart_plugin": "StatsTable", "data": [["a", 1]]}],
        "complete": [
            {"title": "Lines", "chart_plugin": "Lines", "data": [["s", [[1, 2]]]], "label": "y"},
            {"title": "Pie", "chart_plugin": "Pie", "data": [["p", 3]]},
        ],
    }
    result = _run(f"printf %s {json.dumps(json.dumps(document))}")
    assert result["status"] == "success"
    assert result["output"] == document


def test_invalid_chart_keeps_earlier_items_and_adds_text():
    document = {
        "complete": [
            {"title": "ok", "chart_plugin": "Pie", "data": []},
            {"title": "bad", "chart_plugin": "Nope", "data": []},
        ]
    }
    result = _run(f"printf %s {json.dumps(json.dumps(document))}")
    assert result["status"] == "success"
    titles = [item["title"] for item in result["output"]["complete"]]
    assert titles == ["ok", "System call"]


def test_nonzero_exit_is_failed_with_stderr_details(mode):
    result = _run("sh -c 'echo out; echo err >&2; exit 3'", mode)
    assert result["status"] == "failed"
    assert result["error"] == {"etype": "n/a", "msg": "Subprocess returned 3", "details": "err\n"}
    assert _text_area(result)["data"] == ["RetCode: 3", "StdOut: out\n", "StdErr: err\n"]


def test_nonzero_exit_without_stderr_reports_stdout():
    assert _run("false")["error"] == {
        "etype": "n/a",
        "msg": "Subprocess returned 1",
        "details": "stdout: ",
    }
    assert _run("sh -c 'echo why; exit 2'")["error"]["details"] == "stdout: why\n"


def test_no_shell_unless_asked():
    result = _run("echo a | tr a b")
    assert _text_area(result)["data"][1] == "StdOut: a | tr a b\n"
    result = _run("sh -c 'echo a | tr a b'")
    assert _text_area(result)["data"][1] == "StdOut: b\n"


def test_command_not_found_names_the_command(mode):
    result = _run("no-such-command-krally --flag", mode)
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "FileNotFoundError"
    assert result["error"]["msg"] == "command not found: no-such-command-krally"


def test_not_executable(tmp_path, mode):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    result = _run(str(script), mode)
    assert result["error"]["etype"] == "PermissionError"
    assert str(script) in result["error"]["msg"]


@pytest.mark.parametrize(
    ("command", "message"), [("   ", "empty command"), ("echo 'open", "cannot parse command")]
)
def test_unrunnable_command_strings(command, message, mode):
    result = _run(command, mode)
    assert result["status"] == "failed"
    assert message in result["error"]["msg"]


def test_not_an_executable_format(tmp_path, mode):
    binary = tmp_path / "garbage"
    binary.write_bytes(b"\x00\x01\x02 not a program")
    binary.chmod(0o755)
    result = _run(str(binary), mode)
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "OSError"
    assert f"cannot run {binary}" in result["error"]["msg"]


def test_run_async_starts_the_process_before_returning():
    action = SysCall(None, "sleep 0.2", TRIGGERED)
    action.run_async()
    (proc,) = action._processes  # started in the caller's thread: no wait for the hook thread
    assert proc.pid > 0
    result = action.result(timeout=30)
    assert result["status"] == "success"
    assert result["finished_at"] - result["started_at"] >= 0.15


def test_environment_is_inherited(monkeypatch):
    monkeypatch.setenv("KRALLY_TEST_VALUE", "from-parent")
    result = _run("sh -c 'echo $KRALLY_TEST_VALUE'")
    assert _text_area(result)["data"][1] == "StdOut: from-parent\n"


def test_long_output_is_clipped():
    result = _run(f"{sys.executable} -c \"print('x' * 100000)\"")
    stdout_line = _text_area(result)["data"][1]
    assert len(stdout_line) < 70_000 and "more characters" in stdout_line


@pytest.mark.parametrize(
    ("config", "ok"), [("/bin/echo 123", True), ("", False), (42, False), (["ls"], False)]
)
def test_schema(config, ok):
    problems = hook.Hook.validate("sys_call", config, "hooks[0].action")
    assert (problems == []) is ok
    for problem in problems:
        assert str(problem).startswith("hooks[0].action: hook 'sys_call': ")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_timeout_kills_the_process_group(tmp_path):
    pid_file = tmp_path / "pid"
    action = SysCall(None, f"sh -c 'sleep 60 & echo $! > {pid_file}; wait'", TRIGGERED)
    action.timeout = 0.5
    began = time.monotonic()
    action.run_async()
    result = action.result(timeout=30)
    assert time.monotonic() - began < 20
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "Timeout"
    assert "output" not in result
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    (proc,) = action._processes
    assert proc.poll() is not None
    if _alive(grandchild):  # pragma: no cover - cleanup only
        os.kill(grandchild, 9)
