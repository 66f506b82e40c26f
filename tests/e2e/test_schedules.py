"""BenchmarkSchedule on the real node, `@every 5s`: tasks at their slots with slot-derived names,
history limits honoured, Forbid skips while a task runs, Replace aborts the running one, the
operator killed across slots makes exactly one task for the latest (the others counted, no
burst), `krally.dev/run-now` reruns once per value, and bad schedules are refused at apply or
by a condition naming the field.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
import yaml
from tests.cluster import Cluster
from tests.e2e.support import Operator

pytestmark = pytest.mark.cluster

QUICK = {  # a runner pod's start and 3 short iterations: a few seconds
    "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
    "runner": {"type": "constant", "times": 3, "concurrency": 1},
}
SLOW = {  # ~30 s of load: still running at the next slots
    "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.1}},
    "runner": {"type": "constant", "times": 300, "concurrency": 1},
}


def apply_schedule(cluster: Cluster, ns: str, name: str, spec: dict[str, Any], **meta: Any) -> None:
    body = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkSchedule",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body))


def schedule(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "bs", name, "-n", ns, "-o", "json").stdout)


def tasks_of(cluster: Cluster, ns: str, name: str) -> dict[str, dict[str, Any]]:
    out = cluster.kubectl(
        "get", "bt", "-n", ns, "-l", f"krally.dev/schedule={name}", "-o", "json"
    ).stdout
    return {t["metadata"]["name"]: t for t in json.loads(out)["items"]}


def phase(task: dict[str, Any]) -> str | None:
    return (task.get("status") or {}).get("phase")


def created_at(obj: dict[str, Any]) -> float:
    return datetime.fromisoformat(obj["metadata"]["creationTimestamp"]).timestamp()


def slot_seconds(task: str) -> int:
    return int(task.rsplit("-", 1)[1])


def test_tasks_at_their_slots_and_the_history_kept(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    apply_schedule(
        cluster, ns, "quick",
        {"schedule": "@every 5s", "concurrencyPolicy": "Allow", "successfulRunsHistoryLimit": 1,
         "taskTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": QUICK}},
    )  # fmt: skip
    made = created_at(schedule(cluster, ns, "quick"))
    seen: set[str] = set()

    def enough() -> bool:
        seen.update(tasks_of(cluster, ns, "quick"))
        return len(seen) >= 4

    wait_for(enough, timeout=90, message="4 tasks of @every 5s", interval=0.5)
    cluster.kubectl(
        "patch", "bs", "quick", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    # Each task is its slot's: creation + k x 5 s (k >= 1: nothing at creation), one per slot.
    slots = sorted(slot_seconds(n) for n in seen)
    assert all((s - round(made)) % 5 == 0 and s > made for s in slots), (made, slots)
    assert len(set(slots)) == len(slots)
    some = tasks_of(cluster, ns, "quick")
    for task in some.values():
        assert task["metadata"]["labels"]["team"] == "a"
        (owner,) = task["metadata"]["ownerReferences"]
        assert owner["kind"] == "BenchmarkSchedule" and owner["name"] == "quick"

    # Once they finish: one Succeeded task kept (successfulRunsHistoryLimit 1), the newest.
    def pruned() -> dict[str, Any] | None:
        now = tasks_of(cluster, ns, "quick")
        done = [t for t in now.values() if phase(t) == "Succeeded"]
        return now if len(now) == 1 and len(done) == 1 else None

    left = wait_for(pruned, timeout=120, message="history pruned to 1", interval=1)
    status = schedule(cluster, ns, "quick")["status"]
    (kept,) = left
    assert slot_seconds(kept) >= max(slots)  # the newest: the oldest went first
    assert status["lastResult"] == "Succeeded" and status["lastSuccessfulTime"]
    assert status["activeCount"] == 0 and status["active"] == []
    assert any(c["type"] == "Suspended" and c["status"] == "True" for c in status["conditions"])
    wide = cluster.kubectl("get", "bs", "quick", "-n", ns).stdout
    print(wide)
    assert "@every 5s" in wide and "Succeeded" in wide, wide


def test_forbid_skips_while_a_task_runs_and_replace_aborts_it(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    for name, policy in (("forbid", "Forbid"), ("replace", "Replace")):
        apply_schedule(
            cluster, ns, name,
            {"schedule": "@every 5s", "concurrencyPolicy": policy, "taskTemplate": {"spec": SLOW}},
        )  # fmt: skip

    def skipped() -> dict[str, Any] | None:
        status = schedule(cluster, ns, "forbid").get("status") or {}
        return status if (status.get("skippedSlots") or 0) >= 2 else None

    status = wait_for(skipped, timeout=90, message="Forbid skipped 2 slots", interval=0.5)
    assert len(tasks_of(cluster, ns, "forbid")) == 1, "Forbid started a second task"
    assert status["activeCount"] == 1

    def replaced() -> list[dict[str, Any]] | None:
        now = sorted(tasks_of(cluster, ns, "replace").values(), key=lambda t: t["metadata"]["name"])
        return now if len(now) >= 2 else None

    first, second, *_ = wait_for(replaced, timeout=90, message="Replace made a 2nd task")
    assert first["spec"].get("abort") is True and not second["spec"].get("abort")
    aborted = wait_for(
        lambda: (
            (t := tasks_of(cluster, ns, "replace").get(first["metadata"]["name"]))
            and phase(t) == "Aborted"
            and t
        ),
        timeout=90,
        message="the replaced task aborted",
    )
    assert aborted["status"]["phase"] == "Aborted"
    for name in ("forbid", "replace"):
        cluster.kubectl(
            "patch", "bs", name, "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}'
        )


def test_the_operator_down_across_slots_makes_one_task_for_the_latest(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    apply_schedule(
        cluster, ns, "outage",
        {"schedule": "@every 5s", "concurrencyPolicy": "Allow", "startingDeadlineSeconds": 4,
         "successfulRunsHistoryLimit": 10, "taskTemplate": {"spec": QUICK}},
    )  # fmt: skip
    wait_for(lambda: tasks_of(cluster, ns, "outage"), timeout=60, message="a first task")
    operator.kill()
    before = set(tasks_of(cluster, ns, "outage"))
    down_since = time.time()
    time.sleep(17)  # 3 or 4 slots pass with no operator
    restart = time.time()
    operator.start()

    def after_restart() -> set[str] | None:
        new = set(tasks_of(cluster, ns, "outage")) - before
        return new or None

    wait_for(after_restart, timeout=30, message="a task after the restart", interval=0.2)
    time.sleep(2)
    status = schedule(cluster, ns, "outage")["status"]
    later = set(tasks_of(cluster, ns, "outage")) - before
    slots = sorted(slot_seconds(n) for n in later)
    # The slots that passed while it was down: at most one started (the latest, if still within
    # its 4 s deadline), the others counted as missed; never a burst.
    while_down = [s for s in slots if down_since - 5 < s < restart]
    assert len(while_down) <= 1, (down_since, restart, slots)
    assert len(while_down) + status["missedSlots"] >= 3, (while_down, status)
    events = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.name=outage", "-o", "json"
    ).stdout
    assert "MissedSlots" in events
    cluster.kubectl(
        "patch", "bs", "outage", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )


def test_run_now_starts_one_task_per_value(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = {"schedule": "0 0 1 1 *", "taskTemplate": {"spec": QUICK}}  # once a year
    apply_schedule(cluster, ns, "rerun", spec, annotations={"krally.dev/run-now": "v1"})
    # The value it was created with is recorded, not run.
    wait_for(
        lambda: (schedule(cluster, ns, "rerun").get("status") or {}).get("lastRunNow"),
        timeout=30,
        message="run-now recorded",
    )
    assert tasks_of(cluster, ns, "rerun") == {}
    for value in ("v2", "v3"):
        cluster.kubectl(
            "annotate", "bs", "rerun", "-n", ns, f"krally.dev/run-now={value}", "--overwrite"
        )
        wait_for(
            lambda value=value: (
                (schedule(cluster, ns, "rerun")["status"].get("lastRunNow") or {}).get("value")
                == value
            ),
            timeout=30,
            message=f"run-now {value}",
        )
        time.sleep(1)
    names = set(tasks_of(cluster, ns, "rerun"))
    assert len(names) == 2 and all(n.startswith("rerun-run-") for n in names), names


def test_bad_schedules_are_refused_naming_the_field(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    body = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkSchedule",
        "metadata": {"name": "bad"},
        "spec": {"schedule": "every five seconds", "taskTemplate": {"spec": QUICK}},
    }
    done = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert done.returncode != 0 and "spec.schedule" in done.stderr, done.stderr
    # What CEL cannot know (a time zone), the operator says in a condition, without a loop.
    apply_schedule(
        cluster, ns, "mars",
        {"schedule": "@hourly", "timeZone": "Mars/Olympus", "taskTemplate": {"spec": QUICK}},
    )  # fmt: skip

    def refused() -> dict[str, Any] | None:
        status = schedule(cluster, ns, "mars").get("status") or {}
        accepted = [c for c in status.get("conditions") or [] if c["type"] == "Accepted"]
        return accepted[0] if accepted and accepted[0]["status"] == "False" else None

    condition = wait_for(refused, timeout=30, message="Accepted=False")
    assert "spec.timeZone" in condition["message"], condition
    assert tasks_of(cluster, ns, "mars") == {}
