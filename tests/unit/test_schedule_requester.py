"""A schedule makes tasks only if the requester policy was in force when it was created
(kube/operator/schedules.py with requester.py): else its slot's task is refused, said on the
schedule, and never created."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes.client.exceptions import ApiException

from krally.kube.operator.requester_policy import BINDING, POLICY
from krally.kube.operator.schedules import ScheduleController

CREATED = "2026-12-07T10:00:05Z"


class FakeApi:
    """The CustomObjectsApi and AdmissionregistrationV1Api calls a schedule pass makes."""

    def __init__(self, bound_at: str | None) -> None:
        self.created: list[str] = []
        self.statuses: list[dict[str, Any]] = []
        self.bound_at = bound_at
        self.custom = self.admission = self.core = self

    def list_namespaced_custom_object(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"items": []}

    def create_namespaced_custom_object(self, *args: Any, **_: Any) -> dict[str, Any]:
        self.created.append(args[-1]["metadata"]["name"])
        return args[-1]

    def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> dict[str, Any]:
        self.statuses.append(args[-1]["status"])
        return {}

    def read_validating_admission_policy(self, name: str) -> dict[str, Any]:
        if self.bound_at is None:
            raise ApiException(status=404)
        return {"metadata": {"name": POLICY}, "spec": {"failurePolicy": "Fail"}}

    def read_validating_admission_policy_binding(self, name: str) -> dict[str, Any]:
        if self.bound_at is None:
            raise ApiException(status=404)
        return {
            "metadata": {"name": BINDING, "creationTimestamp": self.bound_at},
            "spec": {"policyName": POLICY, "validationActions": ["Deny"]},
        }

    def create_namespaced_event(self, *_: Any, **__: Any) -> None:
        return None

    def to_dict(self, obj: Any) -> Any:
        return obj


def _schedule() -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkSchedule",
        "metadata": {
            "name": "nightly",
            "namespace": "ns",
            "uid": "uid-s",
            "creationTimestamp": CREATED,
            "annotations": {"krally.dev/run-now": "1"},
        },
        "spec": {
            "schedule": "@every 1s",
            "taskTemplate": {"spec": {"scenario": {"name": "Dummy.dummy"}}},
        },
        # The run-now value was seen before, slots passed: the latest missed one is due.
        "status": {},
    }


def _pass(api: FakeApi) -> None:
    async def run() -> None:
        controller = ScheduleController(api)
        controller.schedules[("ns", "nightly")] = _schedule()
        await controller.reconcile(("ns", "nightly"))

    asyncio.run(run())


def test_a_schedule_from_before_the_policy_makes_no_task() -> None:
    api = FakeApi(bound_at="2026-12-07T11:00:00Z")
    _pass(api)
    assert api.created == []
    (status,) = api.statuses
    assert "created before the requester policy was in force" in status["message"]
    (condition,) = [c for c in status["conditions"] if c["type"] == "TaskCreated"]
    assert condition["status"] == "False" and condition["reason"] == "TaskRefused"


def test_without_the_policy_no_task_either_and_with_it_the_task_is_made() -> None:
    missing = FakeApi(bound_at=None)
    _pass(missing)
    assert missing.created == [] and "is not installed" in missing.statuses[0]["message"]
    installed = FakeApi(bound_at="2026-12-07T09:00:00Z")
    _pass(installed)
    assert len(installed.created) == 1
