"""The requester policy (manifests/requester-policy.yaml) on the real API server, no operator
running: what a BenchmarkTask or BenchmarkSchedule references must be within the rights of the
user who writes it. Users are impersonated (`kubectl --as`) and hold exactly the Roles a
namespace admin grants (README "Identity and trust"): task authors (create/get tasks), and, per
object, get on one Secret or ConfigMap and use on one ServiceAccount.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from tests.cluster import wait_for

from krally.api import crd, schedule_crd
from krally.kube.operator import requester_policy

pytestmark = pytest.mark.cluster

ALICE = "alice"
OPERATOR = requester_policy.OPERATOR_USER


def _secret_hook(secret: str = "db-password") -> dict[str, Any]:
    return {
        "name": "sys_call",
        "args": "sh -c 'echo leaked=$P'",
        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1]}},
        "job": {
            "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}]
        },
    }


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy"},
        "runner": {"type": "constant", "times": 2},
        **extra,
    }


def _task(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": name},
        "spec": spec,
    }


def _schedule(name: str, spec: dict[str, Any], suspend: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkSchedule",
        "metadata": {"name": name},
        "spec": {"schedule": "@daily", "suspend": suspend, "taskTemplate": {"spec": spec}},
    }


def _create(cluster: Any, ns: str, body: dict[str, Any], user: str = ALICE) -> Any:
    return cluster.kubectl(
        "create", "-n", ns, "-f", "-", input=json.dumps(body), as_user=user, check=False
    )


def _grant(cluster: Any, ns: str, user: str, verb: str, resource: str, name: str = "") -> None:
    """A Role of one rule (kubectl create role refuses verbs like `use`) bound to ``user``."""
    role = f"{user}-{verb}-{resource}-{name or 'all'}".replace(".", "-").replace(":", "-")[:63]
    plural, _, group = resource.partition(".")
    rule: dict[str, Any] = {"apiGroups": [group], "resources": [plural], "verbs": [verb]}
    if name:
        rule["resourceNames"] = [name]
    docs = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": role, "namespace": ns}, "rules": [rule]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": role, "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
    ]  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


@pytest.fixture(scope="module")
def policy(cluster: Any) -> Iterator[None]:
    cluster.apply_crd(crd.render_yaml(), crd.NAME)
    cluster.apply_crd(schedule_crd.render_yaml(), schedule_crd.NAME)
    cluster.kubectl("apply", "-f", "-", input=requester_policy.render_yaml())
    # The API server picks a new policy up within a moment: wait until it refuses.
    probe = cluster.create_namespace(f"t-requester-probe-{secrets.token_hex(2)}")
    _grant(cluster, probe, ALICE, "create", "benchmarktasks.krally.dev")
    body = _task("probe", _spec(hooks=[_secret_hook()]))
    wait_for(
        lambda: _dry_run_refused(cluster, probe, body),
        timeout=30,
        message="the requester policy in force",
    )
    cluster.delete_namespace(probe)
    yield
    # Left installed: it is part of the shipped install (test_webhook applies it too).


def _dry_run_refused(cluster: Any, ns: str, body: dict[str, Any]) -> bool:
    proc = cluster.kubectl(
        "create", "--dry-run=server", "-n", ns, "-f", "-",
        input=json.dumps(body), as_user=ALICE, check=False,
    )  # fmt: skip
    return proc.returncode != 0 and "requester.krally.dev" in proc.stderr


@pytest.fixture
def ns(cluster: Any, namespace: str, policy: None) -> str:
    """A namespace with a Secret, a ConfigMap and an opted-in ServiceAccount; alice may create
    and read tasks and schedules there (the task-author Role), nothing else."""
    cluster.kubectl(
        "create", "secret", "generic", "db-password", "-n", namespace, "--from-literal=k=v"
    )
    cluster.kubectl("create", "secret", "generic", "other", "-n", namespace, "--from-literal=k=v")
    cluster.kubectl("create", "configmap", "conf", "-n", namespace, "--from-literal=k=v")
    cluster.kubectl("create", "serviceaccount", "chaos", "-n", namespace)
    cluster.kubectl(
        "annotate", "serviceaccount", "chaos", "-n", namespace, "krally.dev/hooks=allowed"
    )
    for verb in ("create", "get"):
        _grant(cluster, namespace, ALICE, verb, "benchmarktasks.krally.dev")
    return namespace


def test_a_hook_env_from_a_secret_the_author_may_not_read_is_refused(cluster, ns):
    proc = _create(cluster, ns, _task("leak", _spec(hooks=[_secret_hook()])))
    assert proc.returncode != 0, proc.stdout
    assert (
        f"spec.hooks[0].job.env[0].valueFrom: alice may not get secrets/db-password in {ns}"
        in proc.stderr
    ), proc.stderr
    assert "requester.krally.dev" in proc.stderr


def test_the_runner_pods_env_and_configmaps_are_checked_too(cluster, ns):
    runner = {
        "env": [
            {"name": "A", "value": "plain"},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "k"}}},
        ]
    }
    proc = _create(cluster, ns, _task("runner-leak", _spec(runnerPod=runner)))
    assert proc.returncode != 0, proc.stdout
    assert (
        f"spec.runnerPod.env[1].valueFrom: alice may not get configmaps/conf in {ns}" in proc.stderr
    )
    _grant(cluster, ns, ALICE, "get", "configmaps", "conf")
    assert _create(cluster, ns, _task("runner-leak", _spec(runnerPod=runner))).returncode == 0


def test_get_on_that_secret_admits_it_and_only_that_secret(cluster, ns):
    _grant(cluster, ns, ALICE, "get", "secrets", "db-password")
    proc = _create(cluster, ns, _task("allowed", _spec(hooks=[_secret_hook()])))
    assert proc.returncode == 0, proc.stderr
    two = _spec(hooks=[_secret_hook(), _secret_hook("other")])
    proc = _create(cluster, ns, _task("other", two))
    assert proc.returncode != 0
    assert (
        f"spec.hooks[1].job.env[0].valueFrom: alice may not get secrets/other in {ns}"
        in proc.stderr
    )
    assert "db-password" not in proc.stderr, proc.stderr


def test_a_hook_service_account_needs_use_on_it(cluster, ns):
    hook = {
        "name": "sys_call",
        "args": "true",
        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1]}},
        "job": {"serviceAccountName": "chaos"},
    }
    proc = _create(cluster, ns, _task("borrow", _spec(hooks=[hook])))
    assert proc.returncode != 0, proc.stdout
    assert (
        f"spec.hooks[0].job.serviceAccountName: alice may not use serviceaccounts/chaos in {ns}"
        in proc.stderr
    ), proc.stderr
    _grant(cluster, ns, ALICE, "use", "serviceaccounts", "chaos")
    assert _create(cluster, ns, _task("borrow", _spec(hooks=[hook]))).returncode == 0


def test_a_user_who_holds_the_rights_passes_and_a_plain_task_needs_none(cluster, ns):
    assert _create(cluster, ns, _task("plain", _spec())).returncode == 0
    # The admin (system:masters) may read everything: the policy lets it through.
    admin = cluster.kubectl(
        "create",
        "-n",
        ns,
        "-f",
        "-",
        input=json.dumps(_task("admin", _spec(hooks=[_secret_hook()]))),
        check=False,
    )
    assert admin.returncode == 0, admin.stderr


def test_a_schedule_is_checked_against_its_author_at_create_and_at_template_changes(cluster, ns):
    bob = "bob"
    for verb in ("create", "get", "update", "patch"):
        _grant(cluster, ns, bob, verb, "benchmarkschedules.krally.dev")
    # bob may create schedules but not tasks: a schedule would make tasks on his behalf.
    proc = _create(cluster, ns, _schedule("nightly", _spec(), suspend=True), user=bob)
    assert proc.returncode != 0
    assert f"spec.taskTemplate: bob may not create benchmarktasks in {ns}" in proc.stderr
    _grant(cluster, ns, bob, "create", "benchmarktasks.krally.dev")
    leak = _schedule("nightly", _spec(hooks=[_secret_hook()]), suspend=True)
    proc = _create(cluster, ns, leak, user=bob)
    assert proc.returncode != 0
    assert (
        "spec.taskTemplate.spec.hooks[0].job.env[0].valueFrom: bob may not get "
        f"secrets/db-password in {ns}"
    ) in proc.stderr, proc.stderr
    assert (
        _create(cluster, ns, _schedule("nightly", _spec(), suspend=True), user=bob).returncode == 0
    )
    # Changing the template is checked against whoever changes it...
    patch = {"spec": {"taskTemplate": {"spec": _spec(hooks=[_secret_hook()])}}}
    proc = cluster.kubectl(
        "patch", "bs", "nightly", "-n", ns, "--type=merge", "-p", json.dumps(patch),
        as_user=bob, check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "bob may not get secrets/db-password" in proc.stderr
    # ...other changes are not (suspend, run-now), whoever wrote the template.
    cluster.kubectl("patch", "bs", "nightly", "-n", ns, "--type=merge", "-p", json.dumps(patch))
    proc = cluster.kubectl(
        "patch", "bs", "nightly", "-n", ns, "--type=merge", "-p", '{"spec": {"suspend": false}}',
        as_user=bob, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_only_the_operators_own_account_creates_a_schedules_tasks_unchecked(cluster, ns):
    """The operator creates a schedule's tasks (their template passed at the schedule's
    admission); a namesake account of another namespace is checked like anyone."""
    body = _task("from-schedule", _spec(hooks=[_secret_hook()]))
    namesake = OPERATOR.replace(":krally-system:", f":{ns}:")
    _grant(cluster, ns, namesake, "create", "benchmarktasks.krally.dev")
    proc = _create(cluster, ns, body, user=namesake)
    assert proc.returncode != 0 and "may not get secrets/db-password" in proc.stderr
    # The operator's own: RBAC first (it may create tasks), then the policy lets it through.
    cluster.kubectl(
        "create", "rolebinding", "operator-tasks", "-n", ns,
        "--clusterrole=cluster-admin", f"--user={OPERATOR}",
    )  # fmt: skip
    proc = _create(cluster, ns, body, user=OPERATOR)
    assert proc.returncode == 0, proc.stderr


def test_the_policy_type_checks_cleanly(cluster, policy):
    def checked() -> dict[str, Any] | None:
        vap = json.loads(
            cluster.kubectl(
                "get", "validatingadmissionpolicy", requester_policy.POLICY, "-o", "json"
            ).stdout
        )
        status = vap.get("status") or {}
        done = status.get("observedGeneration") == vap["metadata"]["generation"]
        return status if done and "typeChecking" in status else None

    status = wait_for(checked, timeout=30, message="the policy's type checking")
    warnings = status["typeChecking"].get("expressionWarnings") or []
    assert warnings == [], yaml.safe_dump(warnings)
