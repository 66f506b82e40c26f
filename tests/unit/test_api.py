"""krally.api: the resource's types and its schemas agree, and the builders made once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_type_hints

import pytest

from krally.api import names, types
from krally.api.spec_schema import SPEC_SCHEMA
from krally.api.status_schema import STATUS_SCHEMA
from krally.api.times import format_time, parse_time, rfc3339

SPEC = SPEC_SCHEMA["properties"]
STATUS = STATUS_SCHEMA["properties"]
HOOK_STATUS = STATUS["hooks"]["items"]["properties"]
RUNNER = STATUS["runner"]["properties"]


@pytest.mark.parametrize(
    ("typed", "schema"),
    [
        (types.TaskSpec, SPEC_SCHEMA),
        (types.PluginRef, SPEC["scenario"]),
        (types.HookSpec, SPEC["hooks"]["items"]),
        (types.HookJob, SPEC["hooks"]["items"]["properties"]["job"]),
        (types.RunnerPod, SPEC["runnerPod"]),
        (types.TaskStatus, STATUS_SCHEMA),
        (types.Condition, STATUS["conditions"]["items"]),
        (types.HookResult, HOOK_STATUS["results"]["items"]),
        (types.HookError, HOOK_STATUS["results"]["items"]["properties"]["error"]),
        (types.TriggerPoint, HOOK_STATUS["results"]["items"]["properties"]["triggeredBy"]),
        (types.RunnerReport, STATUS["runner"]),
        (types.Firing, RUNNER["firings"]["items"]),
        (types.Progress, RUNNER["progress"]),
        (types.Display, STATUS["display"]),
        (types.SLAResult, STATUS["sla"]["items"]),
    ],
)
def test_every_typed_dict_matches_its_schema(typed: Any, schema: dict[str, Any]) -> None:
    assert set(get_type_hints(typed)) == set(schema["properties"])


def test_the_vocabulary_is_the_schemas() -> None:
    assert STATUS["phase"]["enum"] == list(types.PHASES)
    assert HOOK_STATUS["results"]["items"]["properties"]["status"]["enum"] == list(
        types.HOOK_STATUSES
    )
    assert RUNNER["state"]["enum"] == list(types.RUNNER_STATES)
    assert {"Succeeded", "Failed", "Aborted"} == types.TERMINAL
    assert {"success", "failed", "validation_failed"} == types.HOOK_FINAL
    assert (types.PENDING, types.HOOK_PENDING) == ("Pending", "pending")


def test_names_are_defined_once() -> None:
    assert names.API_VERSION == "krally.dev/v1alpha1"
    assert names.CRD_NAME == "benchmarktasks.krally.dev"
    assert (names.KIND, names.SHORT_NAMES) == ("BenchmarkTask", ("bt",))


def test_hook_results_carry_only_what_is_known() -> None:
    assert types.hook_result("pending") == {"status": "pending"}
    error = types.hook_error("Timeout", "too slow")
    assert error == {"etype": "Timeout", "msg": "too slow", "details": ""}
    full = types.hook_result(
        "failed", started_at="a", finished_at="b", error=error, output={"additive": [1]}
    )
    assert full == {
        "status": "failed",
        "startedAt": "a",
        "finishedAt": "b",
        "error": error,
        "output": {"additive": [1]},
    }
    rally = types.failed_now({"event_type": "iteration", "value": 5}, error)
    assert rally["status"] == "failed" and rally["started_at"] == rally["finished_at"]
    assert rally["triggered_by"] == {"event_type": "iteration", "value": 5}


def test_one_time_format() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert rfc3339(moment) == "2026-01-02T03:04:05.678Z"
    assert format_time(moment, digits=0) == "2026-01-02T03:04:05Z"
    assert format_time(moment, digits=0, zone=False) == "2026-01-02T03:04:05"
    assert format_time(moment, digits=6) == "2026-01-02T03:04:05.678901Z"
    assert rfc3339(None) is None and rfc3339(0) is None
    assert parse_time(rfc3339(moment.timestamp())) == pytest.approx(moment.timestamp(), abs=1e-3)
