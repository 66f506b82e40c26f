"""The operator's controller (queue, planner, applier) against a watched store of plain data
and a recording fake API, injected (no cluster, no patched module globals).

What matters here is idempotency: the same state reconciled again, or kicked twice at once,
creates nothing twice; a bad spec creates nothing at all. The planner's own decisions are
tested in test_kube_planner.py.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from krally.kube.operator import admission
from krally.kube.operator import builders as kjobs
from krally.kube.operator.controller import Controller
from krally.kube.operator.settings import Settings, parse_allowed
from krally.kube.operator.store import Store


class FakeApi:
    """Stands in for the official client's APIs; records every call."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []
        self.patches: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.events: list[str] = []
        self.existing: set[tuple[str, str]] = set()
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    def _create(self, kind: str) -> Any:
        def create(namespace: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
            key = (kind, body["metadata"]["name"])
            if key in self.existing:
                raise ApiException(status=409, reason="AlreadyExists")
            self.existing.add(key)
            self.created.append(key)
            self.objects[key] = {**copy.deepcopy(body), "status": {}}
            return self.objects[key]

        return create

    def _read(self, kind: str) -> Any:
        def read(name: str, namespace: str, **_: Any) -> dict[str, Any]:
            if (kind, name) not in self.objects:
                raise ApiException(status=404, reason="NotFound")
            return self.objects[(kind, name)]

        return read

    # The attributes apply.Clients exposes.
    @property
    def batch(self) -> Any:
        return self

    core = rbac = custom = batch

    def to_dict(self, obj: Any) -> Any:
        return obj

    def __getattr__(self, name: str) -> Any:
        kinds = {
            "create_namespaced_job": "Job",
            "create_namespaced_service_account": "ServiceAccount",
            "create_namespaced_role": "Role",
            "create_namespaced_role_binding": "RoleBinding",
        }
        if name in kinds:
            return self._create(kinds[name])
        if name.replace("read_", "create_", 1) in kinds:
            return self._read(kinds[name.replace("read_", "create_", 1)])
        raise AttributeError(name)

    def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> dict[str, Any]:
        self.patches.append(args[-1]["status"])
        return {}

    def delete_namespaced_job(self, name: str, namespace: str, **_: Any) -> None:
        self.deleted.append(name)

    def create_namespaced_event(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self.events.append(body["reason"])


def make_task(hooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {
            "name": "t",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "10",
        },
        "spec": {
            "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
            "runner": {"type": "constant", "times": 100},
            "arming": {"enabled": False},
            "hooks": hooks
            if hooks is not None
            else [
                {
                    "name": "sys_call",
                    "args": "/bin/echo 1",
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5]}},
                }
            ],
        },
        "status": {},
    }


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


KEY = ("ns", "t")


def controller(
    api: FakeApi, task: dict[str, Any], jobs: list[dict[str, Any]] | None = None
) -> Controller:
    store = Store({"task_index": {KEY: [task]}, "job_index": {KEY: jobs or []}, "pod_index": {}})
    return Controller(Settings(), api, store=store)


def run(coro_fn: Any) -> None:
    asyncio.run(coro_fn())


def test_new_task_gets_identity_and_runner_job_once(api: FakeApi) -> None:
    task = make_task()

    async def scenario() -> None:
        op = controller(api, task)
        op.kick(KEY)
        op.kick(KEY)  # a burst of events coalesces
        await op.queue.idle()
        op.kick(KEY)
        await op.queue.idle()

    run(scenario)
    assert api.created == [
        ("ServiceAccount", "krally-t-runner"),
        ("Role", "krally-t-runner"),
        ("RoleBinding", "krally-t-runner"),
        ("ServiceAccount", "krally-t-hooks"),
        ("Job", "krally-t-runner"),
    ]
    assert api.patches and api.patches[0]["phase"] == "Pending"
    assert any(c["type"] == "Accepted" and c["status"] == "True" for c in api.patches[0][
        "conditions"
    ])  # fmt: skip


def test_each_firing_creates_one_job_even_when_kicked_repeatedly(api: FakeApi) -> None:
    task = make_task()
    task["status"] = {
        "runnerJob": "krally-t-runner",
        "runner": {
            "state": "Running",
            "firings": [{"hook": 0, "eventType": "iteration", "value": 5, "firedAt": "x"}],
        },
        "conditions": [{"type": "Accepted", "status": "True"}],
    }
    runner = {
        "metadata": {
            "name": "krally-t-runner",
            "uid": "j1",
            "ownerReferences": [{"uid": "uid-1"}],
            "labels": {},
        },
        "status": {"active": 1},
    }

    async def scenario() -> None:
        op = controller(api, task, [runner])
        for _ in range(5):
            op.kick(KEY)
        await op.queue.idle()
        op.kick(KEY)
        await op.queue.idle()

    run(scenario)
    assert api.created == [("Job", "t-h0-i5")]


def test_operator_restart_after_job_exists_creates_nothing(api: FakeApi) -> None:
    task = make_task()
    task["status"] = {
        "runnerJob": "krally-t-runner",
        "runner": {
            "state": "Running",
            "firings": [{"hook": 0, "eventType": "iteration", "value": 5}],
        },
        "conditions": [{"type": "Accepted", "status": "True"}],
    }
    owned = {"ownerReferences": [{"uid": "uid-1"}], "labels": {}}
    jobs = [
        {"metadata": {"name": "krally-t-runner", "uid": "j1", **owned}, "status": {"active": 1}},
        {"metadata": {"name": "t-h0-i5", "uid": "j2", **owned}, "status": {"active": 1}},
    ]

    async def scenario() -> None:
        op = controller(api, task, jobs)
        op.kick(KEY)
        await op.queue.idle()

    run(scenario)
    assert api.created == []


def test_bad_spec_creates_nothing_and_says_which_field(api: FakeApi) -> None:
    bad = make_task(
        [
            {
                "name": "sys_call",
                "args": "/bin/true",
                "trigger": {"name": "event", "args": {"unit": "iteration", "at": []}},
            }
        ]
    )

    async def scenario() -> None:
        op = controller(api, bad)
        op.kick(KEY)
        await op.queue.idle()

    run(scenario)
    assert api.created == []
    (patch,) = api.patches
    assert patch["phase"] == "Failed"
    accepted = next(c for c in patch["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False" and "spec.hooks[0].trigger" in accepted["message"]


def test_abort_deletes_the_runner_job(api: FakeApi) -> None:
    task = make_task([])
    task["spec"]["abort"] = True
    task["status"] = {
        "runnerJob": "krally-t-runner",
        "runner": {"state": "Running"},
        "conditions": [{"type": "Accepted", "status": "True"}],
    }
    runner = {
        "metadata": {"name": "krally-t-runner", "uid": "j1", "ownerReferences": [{"uid": "uid-1"}]},
        "status": {"active": 1},
    }

    async def scenario() -> None:
        op = controller(api, task, [runner])
        op.kick(KEY)
        await op.queue.idle()

    run(scenario)
    assert api.deleted == ["krally-t-runner"]
    assert api.created == []


def test_hook_service_accounts_can_be_restricted() -> None:
    spec = {"hooks": [{"job": {"serviceAccountName": "cluster-admin-ish"}}]}
    opted_in = {"metadata": {"annotations": {"krally.dev/hooks": "allowed"}}}
    accounts = {"cluster-admin-ish": opted_in}
    (problem,) = admission.service_account_problems(spec, parse_allowed("chaos"), accounts)
    assert problem.startswith("spec.hooks[0].job.serviceAccountName")
    assert "KRALLY_HOOK_SERVICE_ACCOUNTS" in problem
    assert admission.service_account_problems(spec, parse_allowed(None), accounts) == []
    assert admission.service_account_problems(spec, parse_allowed("*"), accounts) == []
    # The policy comes from the settings object, read once from the environment.
    restricted = Settings.from_env({"KRALLY_HOOK_SERVICE_ACCOUNTS": "chaos, other"})
    assert restricted.hook_service_accounts == {"chaos", "other"}
    assert kjobs.runner_name("t") == "krally-t-runner"


def test_the_kopf_wiring_names_the_indices_the_store_reads() -> None:
    """kopf hands each index to the handlers as a keyword named by the index's id."""
    import kopf

    from krally.kube.operator import handlers, store

    registry = kopf.OperatorRegistry()
    handlers.register(Settings(), registry)
    indices = [h.id for h in registry._indexing.get_all_handlers()]
    assert tuple(indices) == store.INDEX_NAMES
    watchers = {h.id for h in registry._watching.get_all_handlers()}
    assert watchers == {"task_event", "job_event", "pod_event", "schedule_event"}
