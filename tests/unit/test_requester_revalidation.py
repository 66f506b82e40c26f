"""The operator's re-validation of a task's or schedule's author (kube/operator/requester.py):
nothing referenced runs unless the requester policy was in force when the object was created."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from krally.kube.operator import requester
from krally.kube.operator.requester_policy import BINDING, POLICY

SECRET_ENV = {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}


def _task(created: str = "2026-12-07T10:00:05Z", **spec: Any) -> dict[str, Any]:
    return {"kind": "BenchmarkTask", "metadata": {"creationTimestamp": created}, "spec": spec}


def _policy(failure: str = "Fail") -> dict[str, Any]:
    return {"metadata": {"name": POLICY}, "spec": {"failurePolicy": failure}}


def _binding(
    created: str = "2026-12-07T10:00:00Z", actions: tuple[str, ...] = ("Deny",)
) -> dict[str, Any]:
    return {
        "metadata": {"name": BINDING, "creationTimestamp": created},
        "spec": {"policyName": POLICY, "validationActions": list(actions)},
    }


def test_references_are_every_valuefrom_and_hook_account() -> None:
    spec = {
        "runnerPod": {"env": [{"name": "A", "value": "x"}, SECRET_ENV]},
        "hooks": [{"job": {"env": [SECRET_ENV]}}, {"job": {"serviceAccountName": "chaos"}}, {}],
    }
    assert requester.references(spec) == [
        "spec.hooks[1].job.serviceAccountName",
        "spec.runnerPod.env[1].valueFrom",
        "spec.hooks[0].job.env[0].valueFrom",
    ]
    assert requester.references({"runnerPod": {"env": [{"name": "A", "value": "x"}]}}) == []


def test_a_task_created_after_a_denying_fail_closed_policy_passes() -> None:
    assert requester.problems(_task(), _policy(), _binding()) == []


@pytest.mark.parametrize(
    ("policy", "binding", "says"),
    [
        (None, _binding(), "ValidatingAdmissionPolicy requester.krally.dev not found"),
        (_policy(), None, "ValidatingAdmissionPolicyBinding requester.krally.dev not found"),
        (_policy("Ignore"), _binding(), "fails open"),
        (_policy(), _binding(actions=("Audit",)), "does not deny"),
        (
            _policy(),
            _binding(created="2026-12-07T10:00:05Z"),
            "created before the requester policy",
        ),
        (_policy(), _binding(created="2026-12-07T11:00:00Z"), "create it again"),
    ],
)
def test_a_policy_that_could_have_been_skipped_refuses(
    policy: Any, binding: Any, says: str
) -> None:
    (problem,) = requester.problems(_task(), policy, binding)
    assert says in problem and "could not have been checked at BenchmarkTask creation" in problem


class FakeAdmission:
    def __init__(self, objects: dict[str, Any] | None = None, status: int | None = None) -> None:
        self.objects, self.status, self.reads = objects or {}, status, 0
        self.admission = self

    def _read(self, key: str) -> Any:
        self.reads += 1
        if self.status:
            raise ApiException(status=self.status)
        if key not in self.objects:
            raise ApiException(status=404)
        return self.objects[key]

    def read_validating_admission_policy(self, name: str) -> Any:
        return self._read("policy")

    def read_validating_admission_policy_binding(self, name: str) -> Any:
        return self._read("binding")

    def to_dict(self, obj: Any) -> Any:
        return obj


def test_a_task_referencing_nothing_needs_no_policy() -> None:
    api = FakeAdmission()
    assert asyncio.run(requester.task_problems(api, _task(hooks=[{"name": "sys_call"}]))) == []
    assert api.reads == 0


def test_a_task_referencing_a_secret_needs_the_policy_naming_the_field() -> None:
    task = _task(hooks=[{"job": {"env": [SECRET_ENV]}}])
    (problem,) = asyncio.run(requester.task_problems(FakeAdmission(), task))
    assert problem.startswith("spec.hooks[0].job.env[0].valueFrom: the requester policy is not")
    installed = FakeAdmission({"policy": _policy(), "binding": _binding()})
    assert asyncio.run(requester.task_problems(installed, task)) == []


def test_a_policy_the_operator_may_not_read_refuses_and_other_errors_are_retried() -> None:
    task = _task(hooks=[{"job": {"serviceAccountName": "chaos"}}])
    (problem,) = asyncio.run(requester.task_problems(FakeAdmission(status=403), task))
    assert "may not read the requester policy" in problem
    with pytest.raises(ApiException):
        asyncio.run(requester.task_problems(FakeAdmission(status=500), task))
