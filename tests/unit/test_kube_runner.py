"""The runner pod's logic without a cluster: a fake patch function records every write."""

from __future__ import annotations

import threading
import time
from typing import Any

from krally.api import wire
from krally.kube.pods.runner import main, recorder, translate
from krally.kube.pods.runner import writer as status_writer
from krally.kube.pods.runner.settings import RunnerSettings


class Recorder:
    def __init__(self) -> None:
        self.writes: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.writes.append((time.monotonic(), state))


def spec(times: int = 60, sleep: float = 0.005) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": sleep}},
        "runner": {"type": "constant", "times": times, "concurrency": 1},
        "sla": {"failure_rate": {"max": 0}},
        "hooks": [
            {
                "name": "sys_call",
                "args": "/bin/echo 123",
                "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5, 50, 1000]}},
            }
        ],
    }


def test_runner_records_firings_progress_and_summary() -> None:
    rec = Recorder()
    assert main.main(RunnerSettings(spec(), "ns", "t", progress_period=0.2), patch_fn=rec) == 0
    final = rec.writes[-1][1]
    assert final["state"] == "Finished"
    assert [(f["hook"], f["eventType"], f["value"]) for f in final["firings"]] == [
        (0, "iteration", 5),
        (0, "iteration", 50),
    ]
    assert all(f["firedAt"].endswith("Z") for f in final["firings"])
    assert final["progress"]["done"] == 60 and final["progress"]["total"] == 60
    summary = final["summary"]
    assert summary["iterations"] == 60 and summary["passSLA"] is True
    assert summary["unreached"] == [{"hook": 0, "eventType": "iteration", "value": 1000}]
    assert set(summary["durations"]) >= {"min", "median", "p90", "p95", "max", "avg"}
    # Every write is the whole of status.runner (a merge patch of that part only).
    assert all("firings" in state for _, state in rec.writes)


def test_firing_is_written_at_once_and_progress_is_throttled() -> None:
    rec = Recorder()
    writer = status_writer.StatusWriter(rec, period=10.0)
    writer.start()
    writer.update(progress={"done": 1})
    writer.update(urgent=True)
    time.sleep(0.1)
    writer.update(progress={"done": 2})
    writer.update(progress={"done": 3})
    time.sleep(0.1)
    assert len(rec.writes) == 1  # progress waits for the period
    start = time.monotonic()
    writer.add_firing({"hook": 0, "eventType": "iteration", "value": 5})
    deadline = start + 5
    while len(rec.writes) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(rec.writes) == 2
    at, state = rec.writes[1]
    assert at - start < 5  # not held back for the 10 s progress period
    assert state["progress"] == {"done": 3} and len(state["firings"]) == 1
    writer.close(state="Finished")
    assert rec.writes[-1][1]["state"] == "Finished"


def test_progress_is_written_about_once_per_period() -> None:
    rec = Recorder()
    writer = status_writer.StatusWriter(rec, period=0.1)
    writer.start()
    start = time.monotonic()
    deadline = start + 0.55
    n = 0
    while time.monotonic() < deadline:
        n += 1
        writer.update(progress={"done": n})
        time.sleep(0.005)
    writer.close()
    elapsed = time.monotonic() - start
    # Throttled: at most one write per period (plus the final one), never one per update;
    # a loaded machine may write less often, never more.
    assert 2 <= len(rec.writes) <= elapsed / 0.1 + 2 < n, (len(rec.writes), n)
    assert rec.writes[-1][1]["progress"] == {"done": n}


def test_firings_past_the_limit_are_counted_not_recorded(monkeypatch: Any) -> None:
    monkeypatch.setattr(wire, "MAX_FIRINGS", 2)
    rec = Recorder()
    writer = status_writer.StatusWriter(rec, period=10.0)
    writer.start()
    launcher = recorder.RecordingLauncher(writer)
    handles = [launcher.launch(0, None, None, {"event_type": "time", "value": v}) for v in range(4)]
    writer.close()
    final = rec.writes[-1][1]
    assert [f["value"] for f in final["firings"]] == [0, 1]
    assert final["droppedFirings"] == 2
    assert [h.result()["status"] for h in handles] == ["launched", "launched", "failed", "failed"]
    assert handles[3].result()["error"]["etype"] == "FiringLimit"


def test_summarize_keeps_json_clean() -> None:
    result = {
        "total_iteration_count": 0,
        "failed_iteration_count": 0,
        "load_duration": float("nan"),
        "full_duration": 1.0,
        "statistics": {"durations": {"total": {"data": {"min": None, "90%ile": 1.0}}}},
        "sla_results": {"sla": [{"criterion": "failure_rate", "success": False, "detail": "x"}]},
        "pass_sla": False,
        "error": ["ValueError", "boom", "trace"],
    }
    summary = translate.summarize(result)
    assert summary["loadDuration"] is None
    assert summary["durations"] == {"min": None, "p90": 1.0}
    assert summary["error"] == "ValueError: boom"
    assert summary["passSLA"] is False


def test_summarize_keeps_each_failed_criterion_short_form() -> None:
    items = [
        {
            "criterion": "failure_rate",
            "success": False,
            "detail": "...",
            "short": "failure_rate 3% > 1%",
        },
        {"criterion": "outliers", "success": True, "detail": "Maximum number of outliers 0 <= 1"},
    ]
    summary = translate.summarize({"sla_results": {"sla": items}, "pass_sla": False})
    assert summary["sla"] == [
        {
            "criterion": "failure_rate",
            "success": False,
            "detail": "...",
            "short": "failure_rate 3% > 1%",
        },
        {"criterion": "outliers", "success": True, "detail": "Maximum number of outliers 0 <= 1"},
    ]
