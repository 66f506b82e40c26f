"""Scenario base and every built-in scenario (Dummy.*, HttpRequests.*)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from krally.errors import KrallyError, PluginNotFound
from krally.task import scenario
from krally.task.runner import IterationExecutor
from krally.task.scenario import Scenario

DUMMIES = [
    "Dummy.dummy",
    "Dummy.failure",
    "Dummy.dummy_exception",
    "Dummy.dummy_exception_probability",
    "Dummy.dummy_output",
    "Dummy.dummy_with_scenario_output",
    "Dummy.dummy_random_fail_in_atomic",
    "Dummy.dummy_random_action",
    "Dummy.dummy_timed_atomic_actions",
]


def once(name: str, args: dict[str, Any] | None = None, iteration: int = 1) -> dict[str, Any]:
    return IterationExecutor(Scenario.get(name), args or {}, {})(iteration)


def test_all_builtin_scenarios_registered():
    known = Scenario.get_all()
    for name in [*DUMMIES, "HttpRequests.check_request", "HttpRequests.check_random_request"]:
        assert name in known
    with pytest.raises(PluginNotFound, match=r"Dummy\.dummy"):
        Scenario.get("Dummy.nope")


def test_dummy_sleep_is_duration_not_idle():
    record = once("Dummy.dummy", {"sleep": 0.05, "unknown_arg": 1})
    assert record["error"] == []
    assert record["duration"] >= 0.05
    assert record["idle_duration"] == 0
    (foo,) = record["atomic_actions"]
    assert foo["name"] == "foo" and foo["children"][0]["name"] == "bar"


def test_dummy_exception():
    record = once("Dummy.dummy_exception", {"sleep": 0, "size_of_message": 3})
    assert record["error"][:2] == ["DummyScenarioException", "MMM"]
    record = once("Dummy.dummy_exception", {"sleep": 0, "message": "custom"})
    assert record["error"][1] == "custom"


def test_dummy_exception_probability():
    assert (
        once("Dummy.dummy_exception_probability", {"exception_probability": 1})["error"][0]
        == "KeyError"
    )
    assert once("Dummy.dummy_exception_probability", {"exception_probability": 0})["error"] == []


def test_dummy_random_fail_in_atomic():
    record = once("Dummy.dummy_random_fail_in_atomic", {"exception_probability": 1})
    assert record["error"][0] == "KeyError"
    assert [(a["name"], a.get("failed")) for a in record["atomic_actions"]] == [
        ("dummy_fail_test", True)
    ]
    record = once("Dummy.dummy_random_fail_in_atomic", {"exception_probability": 0})
    assert record["error"] == []
    assert [a["name"] for a in record["atomic_actions"]] == ["dummy_fail_test"] * 2


def test_dummy_random_action_and_timed_atomic_actions():
    record = once("Dummy.dummy_random_action", {"actions_num": 3, "sleep_max": 0.01})
    assert [a["name"] for a in record["atomic_actions"]] == ["action_0", "action_1", "action_2"]
    record = once(
        "Dummy.dummy_timed_atomic_actions", {"number_of_actions": 3, "sleep_factor": 0.02}
    )
    actions = record["atomic_actions"]
    assert [a["name"] for a in actions] == ["action_0", "action_1", "action_2"]
    assert actions[2]["finished_at"] - actions[2]["started_at"] >= 0.04


@pytest.mark.parametrize("name", ["Dummy.dummy_output", "Dummy.dummy_with_scenario_output"])
def test_dummy_output_emits_every_chart_kind(name):
    record = once(name, {"random_range": 5})
    assert record["error"] == []
    additive, complete = record["output"]["additive"], record["output"]["complete"]
    assert {o["chart_plugin"] for o in additive} == {"StatsTable", "StackedArea", "Lines", "Pie"}
    assert {o["chart_plugin"] for o in complete} >= {
        "StackedArea",
        "Lines",
        "Pie",
        "Table",
        "TextArea",
    }
    for item in additive:
        assert all(1 <= value <= 5 for _, value in item["data"])


def test_failure_scenario_iteration_window():
    failed = [
        n
        for n in range(1, 10)
        if once(
            "Dummy.failure", {"sleep": 0, "from_iteration": 2, "to_iteration": 6, "each": 2}, n
        )["error"]
    ]
    assert failed == [2, 4, 6]
    assert not once(
        "Dummy.failure", {"sleep": 0, "from_iteration": 1, "to_iteration": 9, "each": 0}
    )["error"]


@scenario.configure(name="Test.scenario_api", context={"users": {}})
class ScenarioApi(scenario.Scenario):
    def run(self, bad_output: bool = False) -> None:
        assert self.context["iteration"] >= 1
        self.sleep_between(0.02, 0.03)
        if bad_output:
            self.add_output(additive={"title": "t", "chart_plugin": "Nope", "data": []})
        self.add_output(
            additive={"title": "a", "chart_plugin": "StatsTable", "data": [["x", 1]]},
            complete={"title": "c", "chart_plugin": "TextArea", "data": ["hello"]},
        )


def test_scenario_api_sleep_between_is_idle_and_output():
    record = once("Test.scenario_api", iteration=3)
    assert record["error"] == []
    assert 0.02 <= record["idle_duration"] < 1
    assert record["duration"] < record["idle_duration"] + 1
    assert record["output"] == {
        "additive": [{"title": "a", "chart_plugin": "StatsTable", "data": [["x", 1]]}],
        "complete": [{"title": "c", "chart_plugin": "TextArea", "data": ["hello"]}],
    }
    assert ScenarioApi.DEFAULT_CONTEXT == {"users": {}}
    assert ScenarioApi.get_name() == "Test.scenario_api"


def test_invalid_output_is_an_iteration_error():
    record = once("Test.scenario_api", {"bad_output": True})
    assert record["error"][0] == "InvalidOutput"
    assert "Nope" in record["error"][1]


def test_sleep_between_rejects_bad_bounds():
    with pytest.raises(KrallyError):
        Scenario().sleep_between(2, 1)
    with pytest.raises(KrallyError):
        Scenario().sleep_between(-1)


def test_base_run_is_not_implemented_and_random_names():
    record = IterationExecutor(Scenario, {}, {})(1)
    assert record["error"][0] == "NotImplementedError"
    name = Scenario().generate_random_name()
    assert name.startswith("s_rally_") and len(name) == len("s_rally_XXXXXXXX_XXXXXXXX")


# -- HttpRequests, against a local server on 127.0.0.1 ----------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def _reply(self) -> None:
        code = 404 if self.path.startswith("/missing") else 200
        self.server.seen.append((self.command, self.path))  # type: ignore[attr-defined]
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"ok")

    do_GET = do_POST = do_HEAD = _reply  # http.server's method naming

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd: http.server.ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def test_check_request_success_and_kwargs(server):
    record = once(
        "HttpRequests.check_request",
        {
            "url": url(server, "/ok"),
            "method": "POST",
            "status_code": 200,
            "data": "x",
            "timeout": 5,
        },
    )
    assert record["error"] == []
    assert [a["name"] for a in record["atomic_actions"]] == ["requests.check_request"]
    assert server.seen == [("POST", "/ok")]


def test_check_request_wrong_status(server):
    record = once(
        "HttpRequests.check_request",
        {"url": url(server, "/missing"), "method": "GET", "status_code": 200, "timeout": 5},
    )
    assert record["error"][:2] == ["ValueError", "Expected HTTP request code is `200` actual `404`"]
    assert record["atomic_actions"][0]["failed"] is True


def test_check_request_connection_error():
    record = once(
        "HttpRequests.check_request",
        {"url": "http://127.0.0.1:9/", "method": "GET", "status_code": 200, "timeout": 5},
    )
    assert record["error"][0] == "ConnectionError"


def test_check_random_request(server):
    requests = [
        {"url": url(server, "/a"), "method": "GET", "timeout": 5},
        {"url": url(server, "/missing"), "method": "HEAD", "status_code": 404, "timeout": 5},
    ]
    for _ in range(30):  # both chosen at least once but with probability 2**-29
        record = once(
            "HttpRequests.check_random_request", {"requests": requests, "status_code": 200}
        )
        assert record["error"] == []
    assert {path for _, path in server.seen} == {"/a", "/missing"}
    assert "status_code" not in requests[0]  # the task's own config is not modified
