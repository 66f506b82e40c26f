"""Faults (issue 10): untrusted hook results, refused creates, the status budget, abort and late
firings, a SIGKILLed runner. Pure functions and plain dicts only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from krally.kube import status as kstatus
from tests.unit.test_kube_status import NOW, firings, hook_job, make_task, runner_job


def garbage_pod(message: Any, exit_code: int = 0) -> dict[str, Any]:
    name = hook_job(5)["metadata"]["name"]
    return {
        "metadata": {
            "name": f"{name}-x",
            "labels": {"batch.kubernetes.io/job-name": name},
            "creationTimestamp": "2026-01-01T11:59:00Z",
        },
        "status": {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [
                {"state": {"terminated": {"exitCode": exit_code, "message": message}}}
            ],
        },
    }


MALFORMED = {
    "not-json": "hello, I am a custom image",
    "truncated-json": '{"status": "success", "started_at": 17',
    "json-list": "[1, 2, 3]",
    "json-number": "42",
    "json-string": '"success"',
    "no-status": json.dumps({"result": "ok"}),
    "status-unknown": json.dumps({"status": "great"}),
    "status-number": json.dumps({"status": 1}),
    "status-null": json.dumps({"status": None}),
    "status-object": json.dumps({"status": {"a": 1}}),
    "started-at-text": json.dumps({"status": "success", "started_at": "yesterday"}),
    "started-at-list": json.dumps({"status": "success", "started_at": [1]}),
    "started-at-bool": json.dumps({"status": "success", "started_at": True}),
    "finished-at-huge": json.dumps({"status": "success", "finished_at": 1e300}),
    "finished-at-negative": json.dumps({"status": "success", "finished_at": -5}),
    "error-number": json.dumps({"status": "failed", "error": 3}),
    "output-list": json.dumps({"status": "success", "output": [1, 2]}),
    "output-string": json.dumps({"status": "success", "output": "x"}),
    "output-bad-member": json.dumps({"status": "success", "output": {"additive": "x"}}),
    "output-huge": json.dumps({"status": "success", "output": {"additive": ["x" * 100_000]}}),
    "nested-deep": "[" * 100_000 + "]" * 100_000,
    "nested-deep-object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "binary": "\x00\x01\x02\xff",
    "huge-text": "x" * 1_000_000,
    "nan": '{"status": "success", "started_at": NaN}',
}


@pytest.mark.parametrize("message", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_termination_message_is_a_failed_invalid_result(message: str) -> None:
    task = make_task({"state": "Running", "firings": firings([5])})
    derived = kstatus.derive_status(
        task, [runner_job(), hook_job(5)], [garbage_pod(message)], NOW, created=[]
    )
    (result,) = derived["hooks"][0]["results"]
    assert result["status"] == "failed", result
    assert result["error"]["etype"] == "InvalidHookResult"
    assert result["error"]["msg"].startswith("the hook pod's termination message is not a hook")
    assert len(result["error"]["details"]) <= 500
    # The result is what the CRD accepts: strings where strings go, no unknown status.
    assert set(result) <= {"triggeredBy", "firedAt", "job", "status", "error"}
    assert len(json.dumps(derived)) < 10_000


def test_a_non_string_message_does_not_raise() -> None:
    for message in (None, 5, ["x"], {"status": "success"}):
        pod = garbage_pod(message)
        data, _ = kstatus.termination_message(pod)
        assert data is None


def test_a_failed_pod_with_log_lines_keeps_its_exit_code_error() -> None:
    # FallbackToLogsOnError: a failing hook's message is its log tail, not a claimed result.
    task = make_task({"state": "Running", "firings": firings([5])})
    derived = kstatus.derive_status(
        task,
        [runner_job(), hook_job(5, "failed")],
        [garbage_pod("Traceback...\nboom", exit_code=2)],
        NOW,
        created=[],
    )
    (result,) = derived["hooks"][0]["results"]
    assert result["error"]["etype"] == "ExitCode"


def test_a_well_formed_result_still_parses_with_string_times() -> None:
    message = json.dumps(
        {
            "status": "failed",
            "started_at": "2026-01-01T11:59:01Z",
            "finished_at": 1767268742.5,
            "error": {"etype": "CalledProcessError", "msg": "exit 1", "details": "d"},
            "output": {"additive": [], "complete": [{"title": "t"}]},
        }
    )
    task = make_task({"state": "Running", "firings": firings([5])})
    derived = kstatus.derive_status(
        task, [runner_job(), hook_job(5)], [garbage_pod(message)], NOW, created=[]
    )
    (result,) = derived["hooks"][0]["results"]
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "CalledProcessError"
    assert result["startedAt"] == "2026-01-01T11:59:01.000Z"
    assert result["output"] == {"additive": [], "complete": [{"title": "t"}]}


# -- 15. a SIGKILLed runner ---------------------------------------------------------------------


def runner_pod(exit_code: int, reason: str = "Error") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "t-runner-abcde",
            "labels": {"batch.kubernetes.io/job-name": "t-runner"},
            "creationTimestamp": "2026-01-01T11:58:00Z",
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"state": {"terminated": {"exitCode": exit_code, "reason": reason}}}
            ],
        },
    }


def test_a_sigkilled_runner_fails_the_task_as_killed_keeping_progress() -> None:
    runner = {"state": "Running", "progress": {"done": 750, "total": 1500, "failures": 0}}
    derived = kstatus.derive_status(
        make_task(runner), [runner_job("failed")], [runner_pod(137)], NOW, created=[]
    )
    assert derived["phase"] == "Failed"
    failed = next(c for c in derived["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "RunnerKilled"
    assert derived["message"] == (
        "the runner was killed (SIGKILL, exit code 137) at 750/1500 iterations; "
        "partial results kept"
    )
    assert derived["progress"] == {"done": 750, "total": 1500, "failures": 0}
    # Another exit code is an ordinary failure; the memory limit keeps its own reason.
    other = kstatus.derive_status(
        make_task(runner), [runner_job("failed")], [runner_pod(3)], NOW, created=[]
    )
    assert next(c for c in other["conditions"] if c["type"] == "Failed")["reason"] == (
        "RunnerFailed"
    )
    oom = kstatus.derive_status(
        make_task(runner), [runner_job("failed")], [runner_pod(137, "OOMKilled")], NOW, created=[]
    )
    assert next(c for c in oom["conditions"] if c["type"] == "Failed")["reason"] == "OOMKilled"
