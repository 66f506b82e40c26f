"""The runner pod learns the hook results the operator recorded (for the impact analysis), and
turns the engine's impact into status.impact. No cluster: the task's status is a plain dict."""

from __future__ import annotations

import threading
import time
from typing import Any

from krally.api.times import parse_time, rfc3339
from krally.kube.pods.runner import recorder, translate
from krally.kube.pods.runner import writer as status_writer

T0 = 1_780_000_000.0


def launched(value: int, unit: str = "iteration") -> dict[str, Any]:
    by = {"event_type": unit, "value": value}
    return {"status": "launched", "started_at": T0, "finished_at": T0, "triggered_by": by}


def recorded(value: int, status: str, started: float, finished: float | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "triggeredBy": {"eventType": "iteration", "value": value},
        "status": status,
        "firedAt": rfc3339(T0),
        "startedAt": rfc3339(started),
    }
    if finished is not None:
        item["finishedAt"] = rfc3339(finished)
    return item


def engine_hooks() -> list[dict[str, Any]]:
    return [
        {"config": {}, "results": [launched(5), launched(50)], "summary": {}},
        {"config": {}, "results": [launched(5)], "summary": {}},
    ]


def test_recorded_results_replace_the_placeholders_with_their_real_times() -> None:
    status = {
        "hooks": [
            {
                "index": 0,
                "results": [
                    recorded(5, "success", T0 + 0.2, T0 + 1.5),
                    recorded(50, "running", T0 + 3.0, None),
                ],
            },
            {"index": 1, "results": [recorded(5, "failed", T0 + 0.3, T0 + 0.4)]},
        ]
    }
    settled, unfinished = translate.settled_results(engine_hooks(), status)
    assert unfinished == 1  # iteration 50 of hook 0 is still running
    first, second = settled[0]["results"]
    assert first["status"] == "success"
    assert first["started_at"] == parse_time(rfc3339(T0 + 0.2))
    assert first["finished_at"] == parse_time(rfc3339(T0 + 1.5))
    assert second["status"] == "running" and second["finished_at"] is None
    assert settled[1]["results"][0]["status"] == "failed"
    # The same value of another hook is not confused with this one's.
    assert settled[1]["results"][0]["finished_at"] == parse_time(rfc3339(T0 + 0.4))


def test_a_firing_the_operator_has_not_recorded_yet_is_pending() -> None:
    settled, unfinished = translate.settled_results(engine_hooks(), {})
    assert unfinished == 3
    assert {r["status"] for h in settled for r in h["results"]} == {"pending"}
    assert all(r["started_at"] is None for h in settled for r in h["results"])


def test_a_firing_that_was_never_launched_is_kept_as_it_was() -> None:
    hooks = [{"config": {}, "results": [{**launched(5), "status": "failed"}], "summary": {}}]
    settled, unfinished = translate.settled_results(hooks, {})
    assert unfinished == 0 and settled == hooks


class Task:
    """A task whose status gains its hook results after ``delay`` seconds of reads."""

    def __init__(self, delay: float) -> None:
        self.ready_at = time.monotonic() + delay
        self.reads = 0

    def __call__(self) -> dict[str, Any]:
        self.reads += 1
        if time.monotonic() < self.ready_at:
            return {"status": {}}
        results = [recorded(5, "success", T0, T0 + 1), recorded(50, "success", T0, T0 + 2)]
        return {
            "status": {
                "hooks": [
                    {"index": 0, "results": results},
                    {"index": 1, "results": [recorded(5, "success", T0, T0 + 1)]},
                ]
            }
        }


def test_settle_polls_until_every_firing_finished() -> None:
    task = Task(delay=0.6)
    launcher = recorder.RecordingLauncher(
        status_writer.StatusWriter(lambda _: None), read_task=task
    )
    settled = launcher.settle(engine_hooks(), T0)
    assert task.reads >= 2
    assert all(r["status"] == "success" for h in settled for r in h["results"])


def test_settle_gives_up_after_its_patience_and_at_once_when_aborted() -> None:
    task = Task(delay=60)
    launcher = recorder.RecordingLauncher(
        status_writer.StatusWriter(lambda _: None), read_task=task, patience=0.6
    )
    started = time.monotonic()
    settled = launcher.settle(engine_hooks(), T0)
    assert time.monotonic() - started < 5
    assert {r["status"] for h in settled for r in h["results"]} == {"pending"}

    abort = threading.Event()
    abort.set()
    stopped = recorder.RecordingLauncher(
        status_writer.StatusWriter(lambda _: None), read_task=Task(60), patience=60, abort=abort
    )
    started = time.monotonic()
    stopped.settle(engine_hooks(), T0)
    assert time.monotonic() - started < 1


def test_a_failing_read_counts_the_firings_as_unfinished() -> None:
    def broken() -> dict[str, Any]:
        raise OSError("connection refused")

    launcher = recorder.RecordingLauncher(
        status_writer.StatusWriter(lambda _: None), read_task=broken, patience=0.1
    )
    settled = launcher.settle(engine_hooks(), T0)
    assert {r["status"] for h in settled for r in h["results"]} == {"pending"}


def test_status_impact_counts_windows_from_the_hook_start_in_rfc3339() -> None:
    window = {"iterations": 200, "failures": 3, "errorRate": 0.015, "p95": 0.0213}
    entry = {
        "hook": 0,
        "name": "kube.pod_kill",
        "triggeredBy": {"eventType": "iteration", "value": 400},
        "status": "success",
        "startedAt": T0,
        "finishedAt": T0 + 0.4,
        "baseline": {"start": T0 - 10, "end": T0, **window},
        "during": {"start": T0, "end": T0 + 0.4, **window, "p99": float("nan")},
        "recovered": True,
        "recoverySeconds": 1.23456789,
        "degraded": True,
        "tolerance": {"errorRate": 0.05, "p95Ratio": 2.0, "throughputRatio": float("nan")},
        "note": "an edge case",
    }
    (item,) = translate.status_impact([entry, "not a dict"])
    # The tolerances the verdict was judged by reach the status (the HTML report's cell).
    assert item["tolerance"] == {"errorRate": 0.05, "p95Ratio": 2.0}
    assert item["startedAt"] == rfc3339(T0) and item["finishedAt"] == rfc3339(T0 + 0.4)
    assert item["baseline"]["fromSeconds"] == -10 and item["baseline"]["toSeconds"] == 0
    assert item["during"]["toSeconds"] == 0.4
    assert "p99" not in item["during"]  # NaN is not JSON: dropped rather than refused by the API
    assert item["recoverySeconds"] == 1.2346
    assert item["notes"] == ["an edge case"]
    assert (
        len(translate.status_impact([entry] * (translate.MAX_IMPACT + 5))) == translate.MAX_IMPACT
    )


def test_the_recovery_column_shows_the_slowest_recovery() -> None:
    from krally.kube.operator.status.display import recovery_text

    assert recovery_text(None) == "" and recovery_text([{"notes": ["no baseline"]}]) == ""
    fine = {"recovered": True, "recoverySeconds": 0}
    slow = {"recovered": True, "recoverySeconds": 2.44}
    assert recovery_text([fine, slow, {"notes": ["no baseline"]}]) == "2.4s"
    assert recovery_text([slow, {"recovered": False}]) == "not recovered"
