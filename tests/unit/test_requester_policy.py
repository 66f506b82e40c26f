"""The requester policy (manifests/requester-policy.yaml): generated, covering every place of
the spec schema that references a Secret, a ConfigMap or a ServiceAccount, failing closed.

What it decides is tested against the real API server
(tests/integration/test_requester_admission.py):
CEL's authorizer library only runs there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from krally.api.spec_schema import SPEC_SCHEMA
from krally.kube.operator import requester_policy

ROOT = Path(__file__).resolve().parents[2]


def test_committed_policy_matches_generator() -> None:
    committed = (ROOT / requester_policy.OUTPUT).read_text()
    assert committed == requester_policy.render_yaml(), (
        "regenerate: python -m krally.kube.operator.requester_policy --write"
    )


def _reference_paths(schema: dict[str, Any], path: str = "spec") -> list[str]:
    """Every schema path that names another object of the namespace."""
    found = []
    for name, sub in (schema.get("properties") or {}).items():
        here = f"{path}.{name}"
        if name in {"secretKeyRef", "configMapKeyRef", "serviceAccountName", "envFrom"}:
            found.append(here)
        if name == "volumes":
            found.append(here)
        found += _reference_paths(sub, here)
    items = schema.get("items")
    if isinstance(items, dict):
        found += _reference_paths(items, path + "[]")
    return found


def test_every_reference_the_spec_schema_allows_is_checked() -> None:
    """A new field naming a Secret, ConfigMap or ServiceAccount (envFrom, volumes) fails this
    test until the policy checks it against the requester."""
    assert sorted(_reference_paths(SPEC_SCHEMA)) == [
        "spec.hooks[].job.env[].valueFrom.configMapKeyRef",
        "spec.hooks[].job.env[].valueFrom.secretKeyRef",
        "spec.hooks[].job.serviceAccountName",
        "spec.runnerPod.env[].valueFrom.configMapKeyRef",
        "spec.runnerPod.env[].valueFrom.secretKeyRef",
    ]
    variables = dict(requester_policy.VARIABLES)
    assert "variables.spec.runnerPod.env" in variables["runnerEnv"]
    refs = variables["refs"]
    assert "variables.runnerEnv.transformList" in refs and "h.job.env.transformList" in refs
    assert "e.valueFrom.secretKeyRef.name" in refs and "e.valueFrom.configMapKeyRef.name" in refs
    assert "h.job.serviceAccountName" in variables["accountRefs"]


def test_the_policy_fails_closed_and_denies() -> None:
    policy, binding, role, role_binding = yaml.safe_load_all(
        (ROOT / requester_policy.OUTPUT).read_text()
    )
    # The operator may read these two objects, nothing else of admission's.
    assert role["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
            "resourceNames": [policy["metadata"]["name"]],
            "verbs": ["get"],
        }
    ]
    assert role_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "krally-operator", "namespace": "krally-system"}
    ]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    rule = policy["spec"]["matchConstraints"]["resourceRules"][0]
    assert rule["resources"] == ["benchmarktasks", "benchmarkschedules"]
    assert rule["operations"] == ["CREATE", "UPDATE"]


def test_one_authorization_check_per_validation() -> None:
    """The API server allows two checks per expression (350 000 of 1 000 000 each) and
    10 000 000 per policy: each object gets its own validation, all of them fit."""
    validations = requester_policy.policy()["spec"]["validations"]
    checks = [v["expression"].count(".check(") for v in validations]
    assert max(checks) == 1
    assert sum(checks) * 350_000 < 10_000_000
    assert sum(checks) == requester_policy.MAX_OBJECTS + requester_policy.MAX_ACCOUNTS + 1


def test_only_the_operator_named_is_exempt_and_only_for_tasks() -> None:
    spec = requester_policy.policy("system:serviceaccount:ops:krally-operator")["spec"]
    (exempt,) = [c for c in spec["matchConditions"] if c["name"] == "not-a-schedules-task"]
    assert "'system:serviceaccount:ops:krally-operator'" in exempt["expression"]
    assert "'benchmarktasks'" in exempt["expression"]
