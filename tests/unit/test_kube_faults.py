"""Faults (issue 10): untrusted hook results, refused creates, the status budget, abort and late
firings, a SIGKILLed runner. Pure functions and plain dicts only."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from tests.unit.test_kube_controller import KEY, FakeApi
from tests.unit.test_kube_controller import make_task as make_controller_task
from tests.unit.test_kube_planner import NOW as PNOW
from tests.unit.test_kube_planner import SETTINGS, accepted_memory, job, running
from tests.unit.test_kube_planner import make_task as planner_task
from tests.unit.test_kube_status import NOW, firings, hook_job, make_task, runner_job

from krally.kube.operator import builders as kjobs
from krally.kube.operator.controller import Controller
from krally.kube.operator.planner import (
    Abort,
    CreateJob,
    Memory,
    Observed,
    StopHooks,
    WriteStatus,
    plan,
    plan_firings,
)
from krally.kube.operator.retry import RetryPolicy, refusal
from krally.kube.operator.settings import Settings
from krally.kube.operator.status.budget import fit_budget, json_size
from krally.kube.operator.status.derive import derive_status
from krally.kube.operator.status.observed import termination_message
from krally.kube.operator.store import Store
from krally.kube.pods.hook import pod as hookpod
from krally.kube.pods.runner import writer as status_writer


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
    derived = derive_status(
        task, [runner_job(), hook_job(5)], [garbage_pod(message)], NOW, created=[]
    )
    (result,) = derived["hooks"][0]["results"]
    assert result["status"] == "failed", result
    assert result["error"]["etype"] == "InvalidHookResult"
    assert result["error"]["msg"].startswith("the hook pod's termination message is not a hook")
    assert len(result["error"]["details"]) <= 500
    # The result is what the CRD accepts: strings where strings go, no unknown status.
    assert set(result) <= {"triggeredBy", "firedAt", "job", "armed", "status", "error"}
    assert len(json.dumps(derived)) < 10_000


def test_a_non_string_message_does_not_raise() -> None:
    for message in (None, 5, ["x"], {"status": "success"}):
        pod = garbage_pod(message)
        data, _ = termination_message(pod)
        assert data is None


def test_a_failed_pod_with_log_lines_keeps_its_exit_code_error() -> None:
    # FallbackToLogsOnError: a failing hook's message is its log tail, not a claimed result.
    task = make_task({"state": "Running", "firings": firings([5])})
    derived = derive_status(
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
    derived = derive_status(
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
            "labels": {"batch.kubernetes.io/job-name": "krally-t-runner"},
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
    derived = derive_status(
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
    other = derive_status(
        make_task(runner), [runner_job("failed")], [runner_pod(3)], NOW, created=[]
    )
    assert next(c for c in other["conditions"] if c["type"] == "Failed")["reason"] == (
        "RunnerFailed"
    )
    oom = derive_status(
        make_task(runner), [runner_job("failed")], [runner_pod(137, "OOMKilled")], NOW, created=[]
    )
    assert next(c for c in oom["conditions"] if c["type"] == "Failed")["reason"] == "OOMKilled"


# -- 12. abort stops hooks; late firings ---------------------------------------------------------


def fired(task: dict[str, Any], **at: str) -> dict[str, Any]:
    for firing in task["status"]["runner"]["firings"]:
        firing["firedAt"] = at.get(f"i{firing['value']}", "2026-01-01T12:00:00.000Z")
    return task


def results(actions: list[Any]) -> dict[str, dict[str, Any]]:
    write = next(a for a in actions if isinstance(a, WriteStatus))
    return {r["job"]: r for r in write.patch["hooks"][0]["results"]}


def test_abort_stops_running_hook_jobs_once_and_starts_no_firing() -> None:
    # i5 runs, i50 is done, i200 was fired but has no Job yet.
    task = fired(planner_task(running(5, 50, 200), abort=True))
    observed = Observed(jobs=(job("krally-t-runner"), job("t-h0-i5"), job("t-h0-i50", "complete")))
    memory = accepted_memory()
    actions = plan(task, observed, memory, SETTINGS, now=PNOW, clock=100.0)
    assert Abort("krally-t-runner", "uid-krally-t-runner") in actions
    assert StopHooks(("t-h0-i5",), ("uid-t-h0-i5",)) in actions
    assert not [a for a in actions if isinstance(a, CreateJob)]
    assert plan_firings(task, observed, memory, SETTINGS, now=PNOW.timestamp()) == []
    by_job = results(actions)
    assert by_job["t-h0-i5"]["status"] == "failed"
    assert by_job["t-h0-i5"]["error"]["etype"] == "Aborted"
    assert by_job["t-h0-i5"]["error"]["msg"] == "hook Job stopped by spec.abort"
    assert by_job["t-h0-i200"]["status"] == "failed"
    assert by_job["t-h0-i200"]["error"]["etype"] == "Aborted"
    assert "not run" in by_job["t-h0-i200"]["error"]["msg"]
    assert by_job["t-h0-i50"]["status"] == "success"
    # Once deleted, not again (the watch may still show it for a moment).
    memory.stopped.add("t-h0-i5")
    memory.abort_sent = True
    again = plan(task, observed, memory, SETTINGS, now=PNOW, clock=100.0)
    assert not [a for a in again if isinstance(a, StopHooks | Abort | CreateJob)]
    # Without abort nothing is stopped.
    calm = fired(planner_task(running(5)))
    assert not [
        a
        for a in plan(calm, observed, accepted_memory(), SETTINGS, now=PNOW, clock=100.0)
        if isinstance(a, StopHooks)
    ]


def test_a_late_firing_is_not_run_but_recorded_failed_late() -> None:
    # i5 fired 61 s ago (default maxDelaySeconds 60), i50 30 s ago.
    task = fired(
        planner_task(running(5, 50)),
        i5="2026-01-01T11:58:59.000Z",
        i50="2026-01-01T11:59:30.000Z",
    )
    observed = Observed(jobs=(job("krally-t-runner"),))
    actions = plan(task, observed, accepted_memory(), SETTINGS, now=PNOW, clock=100.0)
    assert [a.name for a in actions if isinstance(a, CreateJob)] == ["t-h0-i50"]
    by_job = results(actions)
    assert by_job["t-h0-i5"]["status"] == "failed"
    assert by_job["t-h0-i5"]["error"] == {
        "etype": "Late",
        "msg": "not run: the operator saw this firing 61 s after it happened (maxDelaySeconds: 60)",
        "details": "",
    }
    assert by_job["t-h0-i50"]["status"] == "pending"
    # The status remembers it: once recorded, it is never created later.
    status = dict(task["status"], hooks=[{"index": 0, "results": list(by_job.values())}])
    recorded = dict(task, status=status)
    assert [a.name for a in plan_firings(recorded, observed, accepted_memory(), SETTINGS,
                                          now=PNOW.timestamp() - 100)] == ["t-h0-i50"]  # fmt: skip
    # maxDelaySeconds per hook.
    task["spec"]["hooks"][0]["maxDelaySeconds"] = 120
    actions = plan(task, observed, accepted_memory(), SETTINGS, now=PNOW, clock=100.0)
    assert [a.name for a in actions if isinstance(a, CreateJob)] == ["t-h0-i5", "t-h0-i50"]


def test_a_job_already_created_is_never_called_late() -> None:
    task = fired(planner_task(running(5)), i5="2026-01-01T11:50:00.000Z")
    observed = Observed(jobs=(job("krally-t-runner"), job("t-h0-i5")))
    by_job = results(plan(task, observed, accepted_memory(), SETTINGS, now=PNOW, clock=100.0))
    assert by_job["t-h0-i5"]["status"] == "pending"  # active Job, no pod yet
    memory = Memory(uid="uid-1", problems=[], created={"t-h0-i5": {"metadata": {"name": "x"}}})
    in_flight = plan(task, Observed(jobs=(job("krally-t-runner"),)), memory, SETTINGS, now=PNOW,
                     clock=100.0)  # fmt: skip
    assert results(in_flight)["t-h0-i5"]["status"] == "pending"


# -- 10. the status byte budget -----------------------------------------------------------------


def printing_hook_pod(job_name: str, value: int, printed: str) -> dict[str, Any]:
    """A hook pod whose sys_call printed ``printed``: its result as `krally hook run` writes it."""
    result = {
        "status": "success",
        "started_at": 1767268800.0 + value,
        "finished_at": 1767268800.5 + value,
        "triggered_by": {"event_type": "iteration", "value": value},
        "output": {
            "additive": [],
            "complete": [
                {"title": "sys_call", "widget": "TextArea", "data": {"rows": [[printed]]}}
            ],
        },
    }
    message = hookpod.fit(result)
    return {
        "metadata": {
            "name": f"{job_name}-p",
            "labels": {"batch.kubernetes.io/job-name": job_name},
            "creationTimestamp": "2026-01-01T11:59:00Z",
        },
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": message}}}],
        },
    }


def test_500_firings_printing_4kb_each_stay_under_the_status_budget() -> None:
    values = list(range(1, 501))
    status = running(*values)
    for n, firing in enumerate(status["runner"]["firings"]):
        firing["firedAt"] = f"2026-01-01T11:59:{n // 10:02d}.{n % 10}00Z"
    task = planner_task(status)
    names = [kjobs.hook_job_name("t", 0, "iteration", v) for v in values]
    observed = Observed(
        jobs=(job("krally-t-runner"), *(job(n, "complete") for n in names)),
        # 3.6 KB printed: about the most a result carries (the termination message is 4 KiB).
        pods=tuple(printing_hook_pod(n, v, "x" * 3600) for n, v in zip(names, values, strict=True)),
    )
    assert len(observed.pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
               ["message"]) > 3600  # fmt: skip
    actions = plan(task, observed, accepted_memory(), SETTINGS, now=PNOW, clock=100.0)
    write = next(a for a in actions if isinstance(a, WriteStatus))
    new_status = {**task["status"], **{k: v for k, v in write.patch.items() if v is not None}}
    size = json_size(new_status)
    assert SETTINGS.status_max_bytes == 262144
    assert 200_000 < size <= SETTINGS.status_max_bytes, size
    (hook,) = new_status["hooks"]
    assert hook["summary"] == {"success": 500}
    assert [r["status"] for r in hook["results"]] == ["success"] * 500
    assert all(r.get("startedAt") and r.get("finishedAt") for r in hook["results"])
    # Oldest first: the first results lost their output (and say so), the newest kept theirs.
    trimmed = [bool(r.get("trimmed")) for r in hook["results"]]
    assert trimmed[0] and not trimmed[-1]
    assert trimmed == sorted(trimmed, reverse=True)
    assert all("output" not in r for r in hook["results"] if r.get("trimmed"))
    assert "x" * 1000 in json.dumps(hook["results"][-1]["output"])


def test_the_budget_trims_error_details_and_then_the_timeline() -> None:
    results = [
        {"status": "failed", "firedAt": f"2026-01-01T11:00:{n:02d}Z",
         "error": {"etype": "E", "msg": "m" * 500, "details": "d" * 2000}}
        for n in range(50)
    ]  # fmt: skip
    derived = {
        "hooks": [{"index": 0, "summary": {"failed": 50}, "results": results}],
        "result": {"timeline": [{"t": n, "pad": "p" * 100} for n in range(600)]},
    }
    original = copy.deepcopy(derived)
    runners_timeline = derived["result"]["timeline"]  # shared with the task's status.runner
    fitted = fit_budget(derived, 20_000)
    assert len(runners_timeline) == 600  # cut in the copy only
    assert len(fitted["result"]["timeline"]) < 600
    assert json_size(fitted) <= 20_000
    kept = fitted["hooks"][0]["results"]
    assert [r["error"]["etype"] for r in kept] == ["E"] * 50
    assert all(r["error"]["details"] == "" and len(r["error"]["msg"]) == 200 for r in kept)
    assert fitted["result"]["timeline"][-1]["t"] == 599  # the newest kept
    # Under budget: untouched.
    assert fit_budget(copy.deepcopy(original), 10**7) == original


def test_the_status_budget_is_a_setting() -> None:
    assert Settings.from_env({"KRALLY_STATUS_MAX_BYTES": "1000"}).status_max_bytes == 1000
    assert Settings.from_env({}).status_max_bytes == 256 * 1024


# -- 9. refused creates, back-off ---------------------------------------------------------------


def api_error(status: int, reason: str, message: str) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "reason": reason, "message": message})
    return exc


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_refusal_is_permanent(status: int) -> None:
    exc = api_error(status, "Invalid", "no")
    assert RetryPolicy.permanent(exc) and not RetryPolicy.transient(exc)


@pytest.mark.parametrize("status", [401, 403])
def test_forbidden_is_permanent_only_when_it_lasts(status: int) -> None:
    # A restarted API server answers 403 until its authorizer caught up; a quota may free up.
    exc = api_error(status, "Forbidden", "no")
    assert not RetryPolicy.transient(exc)
    assert [RetryPolicy.permanent(exc, n) for n in range(1, 8)] == [False] * 5 + [True] * 2


@pytest.mark.parametrize(
    "exc",
    [
        api_error(429, "TooManyRequests", "slow down"),
        api_error(500, "InternalError", "etcd"),
        api_error(503, "ServiceUnavailable", "x"),
        ApiException(status=0, reason="connection refused"),  # the client's own, no response
        ConnectionRefusedError(),
        TimeoutError(),
        urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
        urllib3.exceptions.MaxRetryError(None, "/"),  # type: ignore[arg-type]
    ],
)
def test_overload_outage_and_timeouts_are_transient(exc: BaseException) -> None:
    assert RetryPolicy.transient(exc) and not RetryPolicy.permanent(exc)


def test_a_conflict_is_neither() -> None:
    exc = api_error(409, "AlreadyExists", "x")
    assert not RetryPolicy.transient(exc) and not RetryPolicy.permanent(exc)


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(base=0.5, max_backoff=30.0, rng=random.Random(7))
    delays = [policy.backoff(n) for n in range(1, 13)]
    ceilings = [min(0.5 * 2 ** (n - 1), 30.0) for n in range(1, 13)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert max(delays) <= 30.0 and delays[-1] >= 15.0  # capped, and stays near the cap
    assert len(set(delays)) == len(delays)  # jittered: no two alike
    again = RetryPolicy(base=0.5, max_backoff=30.0, rng=random.Random(7))
    assert [again.backoff(n) for n in range(1, 13)] == delays  # seeded: reproducible
    assert policy.backoff(10**6) <= 30.0  # no overflow


def test_refusal_reads_the_api_servers_status() -> None:
    exc = api_error(403, "Forbidden", 'jobs "t-h0-i5" is forbidden: denied by policy')
    assert refusal(exc) == (
        "Forbidden",
        '403 Forbidden: jobs "t-h0-i5" is forbidden: denied by policy',
    )
    bare = ApiException(status=422, reason="Unprocessable Entity")
    assert refusal(bare)[1].startswith("422 Unprocessable Entity: ")


class RefusingApi(FakeApi):
    """Refuses to create some objects for good; counts every attempt."""

    def __init__(self, refuse: set[tuple[str, str]], exc: ApiException) -> None:
        super().__init__()
        self.refuse, self.exc = refuse, exc
        self.attempts: list[tuple[str, str]] = []

    def _create(self, kind: str) -> Any:
        create = super()._create(kind)

        def refusing(namespace: str, body: dict[str, Any], **kw: Any) -> Any:
            key = (kind, body["metadata"]["name"])
            self.attempts.append(key)
            if key in self.refuse:
                raise self.exc
            return create(namespace, body, **kw)

        return refusing


def _controller(api: FakeApi, task: dict[str, Any], jobs: list[dict[str, Any]]) -> Controller:
    store = Store({"task_index": {KEY: [task]}, "job_index": {KEY: jobs}, "pod_index": {}})
    return Controller(Settings(status_write_period=0), api, store=store)


def test_a_refused_hook_job_fails_its_firing_once_with_the_api_message() -> None:
    task = make_controller_task()
    task["status"] = {
        "runnerJob": "krally-t-runner",
        "phase": "Running",
        "runner": {"state": "Running", "firings": [{"hook": 0, "eventType": "iteration",
                                                     "value": 5, "firedAt": "x"}]},
        "conditions": [{"type": "Accepted", "status": "True"}],
    }  # fmt: skip
    runner = {"metadata": {"name": "krally-t-runner", "uid": "j1",
                           "ownerReferences": [{"uid": "uid-1"}], "labels": {}},
              "status": {"active": 1}}  # fmt: skip
    api = RefusingApi({("Job", "t-h0-i5")}, api_error(400, "BadRequest", "denied by policy"))

    async def scenario() -> None:
        op = _controller(api, task, [runner])
        for _ in range(5):
            op.kick(KEY)
            await op.queue.idle()

    asyncio.run(scenario())
    assert api.attempts == [("Job", "t-h0-i5")]  # once: no retry of a refusal
    result = api.patches[-1]["hooks"][0]["results"][0]
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "JobCreateFailed"
    assert "denied by policy" in result["error"]["msg"]
    assert result["error"]["details"] == "BadRequest"


def test_a_refused_runner_job_fails_the_task_once() -> None:
    refused = api_error(422, "Invalid", "spec.x: Invalid value")
    api = RefusingApi({("Job", "krally-t-runner")}, refused)

    async def scenario() -> None:
        op = _controller(api, make_controller_task(), [])
        for _ in range(3):
            op.kick(KEY)
            await op.queue.idle()

    asyncio.run(scenario())
    assert api.attempts.count(("Job", "krally-t-runner")) == 1
    final = api.patches[-1]
    assert final["phase"] == "Failed"
    failed = next(c for c in final["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "RunnerCreateFailed"
    assert "spec.x: Invalid value" in final["message"]
    # A refused identity too (e.g. RBAC forbids creating the Role: after 6 attempts in a row).
    forbidden = api_error(403, "Forbidden", "cannot create roles")
    api = RefusingApi({("Role", "krally-t-runner")}, forbidden)
    fast = RetryPolicy(delays=(0.001,), base=0.001, max_backoff=0.01, rng=random.Random(1))

    async def identity() -> None:
        store = Store({"task_index": {KEY: [make_controller_task()]}, "job_index": {KEY: []},
                       "pod_index": {}})  # fmt: skip
        op = Controller(Settings(status_write_period=0), api, store=store, policy=fast)
        op.kick(KEY)
        for _ in range(300):
            await asyncio.sleep(0.01)
            if op.memory[KEY].runner_refused:
                break
        await op.queue.idle()

    asyncio.run(identity())
    assert api.attempts.count(("Role", "krally-t-runner")) == 6
    assert ("Job", "krally-t-runner") not in api.attempts
    assert "Role krally-t-runner" in api.patches[-1]["message"]
    assert api.patches[-1]["phase"] == "Failed"


# -- 11. the runner rides out an API outage -----------------------------------------------------


class Outage:
    """A status patch that fails ``down`` times (the API server is away), then works."""

    def __init__(self, down: int, exc: BaseException | None = None) -> None:
        self.down, self.exc = down, exc or ConnectionRefusedError("connection refused")
        self.calls = 0
        self.written: list[dict[str, Any]] = []

    def __call__(self, state: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls <= self.down:
            raise self.exc
        self.written.append(state)


def test_the_final_write_is_retried_through_an_outage_keeping_every_firing() -> None:
    patch = Outage(down=10**9)
    writer = status_writer.StatusWriter(patch, period=0.01)
    writer.start()
    for value in (5, 50):
        writer.add_firing({"hook": 0, "eventType": "iteration", "value": value, "firedAt": "x"})
    # The load ends while the API server is still away; it comes back after 3 more attempts.
    patch.down = patch.calls + 3
    assert writer.close(time.monotonic() + 3600, state="Finished", summary={"iterations": 9})
    final = patch.written[-1]
    assert final["state"] == "Finished" and final["summary"] == {"iterations": 9}
    assert [f["value"] for f in final["firings"]] == [5, 50]


def test_the_final_write_gives_up_at_the_deadline_or_when_the_task_is_gone() -> None:
    patch = Outage(down=10**9)
    writer = status_writer.StatusWriter(patch, period=0.01)
    writer.start()
    assert not writer.close(time.monotonic() - 1, state="Finished")  # past its deadline: once
    gone = Outage(down=10**9, exc=api_error(404, "NotFound", "benchmarktasks t not found"))
    writer = status_writer.StatusWriter(gone, period=0.01)
    writer.start()
    calls = gone.calls
    assert not writer.close(time.monotonic() + 3600, state="Finished")
    assert gone.calls == calls + 1


def test_the_final_write_deadline_is_the_runner_jobs_own() -> None:
    assert (
        status_writer.final_write_deadline({"runnerPod": {"timeoutSeconds": 90}}, 1000.0) == 1090.0
    )
    before = time.monotonic()
    assert (
        status_writer.final_write_deadline({}, 0.0) >= before + status_writer.FINAL_WRITE_PATIENCE
    )


class FlakyApi(RefusingApi):
    """Answers 503 to the first ``n`` attempts at creating one object, then works."""

    def __init__(self, key: tuple[str, str], n: int) -> None:
        super().__init__({key}, api_error(503, "ServiceUnavailable", "etcd is away"))
        self.key, self.n = key, n

    def _create(self, kind: str) -> Any:
        refusing = super()._create(kind)
        plain = FakeApi._create(self, kind)

        def create(namespace: str, body: dict[str, Any], **kw: Any) -> Any:
            if (kind, body["metadata"]["name"]) == self.key and self.attempts.count(self.key) >= (
                self.n
            ):
                self.attempts.append(self.key)
                return plain(namespace, body, **kw)
            return refusing(namespace, body, **kw)

        return create


def test_a_hook_job_failing_transiently_is_retried_until_created_once() -> None:
    task = make_controller_task()
    task["status"] = {
        "runnerJob": "krally-t-runner",
        "phase": "Running",
        "runner": {"state": "Running", "firings": [{"hook": 0, "eventType": "iteration",
                                                     "value": 5, "firedAt": "x"}]},
        "conditions": [{"type": "Accepted", "status": "True"}],
    }  # fmt: skip
    runner_job = {"metadata": {"name": "krally-t-runner", "uid": "j1",
                               "ownerReferences": [{"uid": "uid-1"}], "labels": {}},
                  "status": {"active": 1}}  # fmt: skip
    api = FlakyApi(("Job", "t-h0-i5"), n=7)
    fast = RetryPolicy(delays=(0.001,), base=0.001, max_backoff=0.01, rng=random.Random(1))

    async def scenario() -> None:
        store = Store({"task_index": {KEY: [task]}, "job_index": {KEY: [runner_job]},
                       "pod_index": {}})  # fmt: skip
        op = Controller(Settings(status_write_period=0), api, store=store, policy=fast)
        op.kick(KEY)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if ("Job", "t-h0-i5") in api.created:
                break
        await op.queue.idle()
        assert op.memory[KEY].failures == {}

    asyncio.run(scenario())
    assert api.created == [("Job", "t-h0-i5")]
    assert api.attempts.count(("Job", "t-h0-i5")) == 8  # 7 refused, then created


def test_a_hook_that_finished_as_the_abort_came_keeps_its_result() -> None:
    task = make_task({"state": "Running", "firings": firings([5])})
    task["spec"]["abort"] = True
    done = hook_pod_with(5, json.dumps({"status": "success", "started_at": 1767268800.0}))
    active = dict(hook_job(5), status={"active": 1})
    derived = derive_status(task, [runner_job(), active], [done], NOW, created=[])
    assert derived["hooks"][0]["results"][0]["status"] == "success"
    # Still running: stopped.
    derived = derive_status(task, [runner_job(), active], [], NOW, created=[])
    assert derived["hooks"][0]["results"][0]["error"]["etype"] == "Aborted"


def hook_pod_with(value: int, message: str) -> dict[str, Any]:
    pod = garbage_pod(message)
    assert hook_job(value)["metadata"]["name"] in pod["metadata"]["name"]
    return pod
