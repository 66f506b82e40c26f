"""The CRD and the install manifests against a real API server (tests/cluster).

What only the API server can say: the schema is structural and accepted, the CEL rules keep
the spec immutable (abort aside) within their cost budget, status round-trips through the
status subresource without pruning, the printer columns and `kubectl explain` work, the
operator's Pod passes the `restricted` Pod Security level, and its ClusterRole is enough to
create a runner's Role but not to grant more.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from krally.api import crd

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "system:serviceaccount:krally-system:krally-operator"


def _install_docs(cluster) -> list[dict]:
    out = cluster.kubectl("kustomize", str(ROOT / "manifests")).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def installed(cluster):
    """The CRD applied for real (idempotent); the operator's namespace and RBAC too."""
    cluster.apply_crd(crd.render_yaml(), crd.NAME)
    docs = _install_docs(cluster)
    # Everything but the Deployment: a running operator here would compete with the tests'.
    wanted = [
        d
        for d in docs
        if d["kind"]
        in {
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
        }
    ]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wanted))
    return docs


def _task(name: str) -> dict:
    text = (ROOT / "manifests" / "examples" / "rally-hooks.yaml").read_text()
    task = yaml.safe_load(text)
    task["metadata"] = {"name": name}
    return task


def _refused(cluster, *args, input=None) -> str:
    proc = cluster.kubectl(*args, check=False, input=input)
    assert proc.returncode != 0, f"kubectl {' '.join(args)} was accepted: {proc.stdout}"
    return proc.stderr


def test_the_whole_install_passes_server_side_dry_run(cluster, installed):
    text = yaml.safe_dump_all(installed)
    proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=text)
    assert "deployment.apps/krally-operator" in proc.stdout


def test_the_operator_pod_is_admitted_as_restricted(cluster, installed):
    (deployment,) = [d for d in installed if d["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "krally-operator-probe", "namespace": "krally-system"},
        "spec": template["spec"],
    }
    # krally-system enforces `restricted`: a violation would be refused, not just warned.
    proc = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod))
    assert "created (server dry run)" in proc.stdout
    assert "would violate" not in proc.stderr


def test_spec_is_immutable_except_abort(cluster, installed, namespace):
    name = "immutable"
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(_task(name)))
    for patch in (
        {"spec": {"scenario": {"args": {"sleep": 1}}}},
        {"spec": {"runner": {"times": 1}}},
        {"spec": {"description": "changed"}},
        {"spec": {"hooks": []}},
        {"spec": {"runnerPod": {"timeoutSeconds": 5}}},
    ):
        error = _refused(
            cluster, "patch", "bt", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch)
        )
        assert crd.IMMUTABLE_MESSAGE in error, error
    # Metadata stays editable (kopf writes annotations), and abort may be set once.
    cluster.kubectl("label", "bt", name, "-n", namespace, "krally.dev/test=yes")
    cluster.kubectl(
        "patch", "bt", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"abort":true}}'
    )
    error = _refused(
        cluster,
        "patch",
        "bt",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"abort":false}}',
    )
    assert "spec.abort cannot be undone" in error


def test_schema_refuses_a_bad_spec_naming_the_field(cluster, installed, namespace):
    task = _task("bad")
    task["spec"]["hooks"][0]["job"] = {"timeoutSeconds": 0}
    error = _refused(cluster, "create", "-n", namespace, "-f", "-", input=json.dumps(task))
    assert "spec.hooks[0].job.timeoutSeconds" in error
    task = _task("typo")
    task["spec"]["hoks"] = []
    error = _refused(cluster, "create", "-n", namespace, "-f", "-", input=json.dumps(task))
    assert 'unknown field "spec.hoks"' in error


STATUS = {
    "observedGeneration": 1,
    "phase": "Running",
    "message": "running",
    "startedAt": "2026-01-01T00:00:00Z",
    "runnerJob": "t-runner",
    "conditions": [
        {
            "type": "Accepted",
            "status": "True",
            "reason": "Valid",
            "message": "spec is valid",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
        }
    ],
    "progress": {"done": 750, "total": 1500, "failures": 0},
    "display": {"progress": "750/1500", "hooks": "1/2", "sla": "Passed", "recovery": "1.2s"},
    "hooks": [
        {
            "index": 0,
            "name": "sys_call",
            "description": "",
            "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5, 50]}},
            "summary": {"success": 1, "failed": 1},
            "results": [
                {
                    "triggeredBy": {"eventType": "iteration", "value": 5},
                    "status": "success",
                    "firedAt": "2026-01-01T00:00:01Z",
                    "startedAt": "2026-01-01T00:00:01Z",
                    "finishedAt": "2026-01-01T00:00:02Z",
                    "job": "t-hook-0-iteration-5",
                    "output": {"additive": [{"title": "x", "data": [["a", 1.5]]}], "complete": []},
                },
                {
                    "triggeredBy": {"eventType": "iteration", "value": 50},
                    "status": "failed",
                    "job": "t-hook-0-iteration-50",
                    "error": {"etype": "CalledProcessError", "msg": "exit 1", "details": "..."},
                },
            ],
            "unreached": [{"eventType": "iteration", "value": 1000}],
        }
    ],
    "sla": [{"criterion": "failure_rate", "success": True, "detail": "0% <= 0%"}],
    "passSLA": True,
    "result": {
        "iterations": 1500,
        "failures": 0,
        "loadDuration": 15.2,
        "fullDuration": 15.4,
        "durations": {
            "min": 0.01,
            "median": 0.01,
            "p90": 0.011,
            "p95": 0.012,
            "max": 0.02,
            "avg": 0.0101,
        },
        "atomics": [{"name": "a", "count": 3}],
        "timeline": [{"second": 0, "iterations": 99}],
    },
    "runner": {
        "startedAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:05Z",
        "state": "Running",
        "progress": {"done": 750, "total": 1500, "failures": 0, "elapsedSeconds": 7.5},
        "firings": [
            {"hook": 0, "eventType": "iteration", "value": 5, "firedAt": "2026-01-01T00:00:01Z"}
        ],
        "summary": {"anything": {"nested": [1, "a", None]}},
        # Every field of an impact entry is declared: none is pruned on the way through the API.
        "impact": [
            {
                "hook": 0,
                "name": "sys_call",
                "triggeredBy": {"eventType": "iteration", "value": 5},
                "status": "success",
                "startedAt": "2026-01-01T00:00:01.000Z",
                "finishedAt": "2026-01-01T00:00:02.000Z",
                "baseline": {
                    "fromSeconds": -10,
                    "toSeconds": 0,
                    "iterations": 1000,
                    "failures": 0,
                    "errorRate": 0,
                    "p50": 0.01,
                    "p95": 0.02,
                    "p99": 0.03,
                    "throughput": 100,
                },
                "during": {"fromSeconds": 0, "toSeconds": 1, "iterations": 90, "failures": 9},
                "after": {"fromSeconds": 1, "toSeconds": 11, "iterations": 1000, "errorRate": 0},
                "p95Ratio": 1.8,
                "throughputRatio": 0.9,
                "degraded": True,
                "recovered": True,
                "recoverySeconds": 1.2,
                "notes": ["a note"],
            }
        ],
        "error": "",
    },
}


def test_status_round_trips_and_columns_show(cluster, installed, namespace):
    name = "status"
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(_task(name)))
    cluster.kubectl(
        "patch",
        "bt",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": STATUS}),
    )
    got = json.loads(cluster.kubectl("get", "bt", name, "-n", namespace, "-o", "json").stdout)
    # Nothing pruned, nothing reformatted; and a status write does not bump generation.
    status = {k: v for k, v in got["status"].items() if k != "kopf"}
    assert status == STATUS
    assert got["metadata"]["generation"] == 1
    table = cluster.kubectl("get", "bt", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "HOOKS", "SLA", "RECOVERY", "AGE"]
    row = next(line.split() for line in table if line.startswith(name))
    assert row[1:6] == ["Running", "750/1500", "1/2", "Passed", "1.2s"]
    # Short name and category.
    assert name in cluster.kubectl("get", "krally", "-n", namespace).stdout


def test_kubectl_explain_describes_fields(cluster, installed):
    out = cluster.kubectl("explain", "benchmarktask.spec.hooks.trigger").stdout
    assert "When the hook fires" in out and "args" in out and "name" in out
    out = cluster.kubectl("explain", "benchmarktask.status.hooks.results.triggeredBy").stdout
    assert "eventType" in out


def _create_as_operator(cluster, namespace: str, role: dict) -> subprocess.CompletedProcess:
    return cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(role),
        as_user=OPERATOR,
        check=False,
    )


def test_operator_can_create_a_runner_role_but_not_escalate(cluster, installed, namespace):
    runner_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "runner"},
        "rules": [
            {
                "apiGroups": ["krally.dev"],
                "resources": ["benchmarktasks/status"],
                "resourceNames": ["some-task"],
                "verbs": ["get", "patch"],
            }
        ],
    }
    proc = _create_as_operator(cluster, namespace, runner_role)
    assert proc.returncode == 0, proc.stderr
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "runner"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner"},
        "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": namespace}],
    }
    proc = _create_as_operator(cluster, namespace, binding)
    assert proc.returncode == 0, proc.stderr
    greedy = dict(runner_role, metadata={"name": "greedy"})
    greedy["rules"] = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    proc = _create_as_operator(cluster, namespace, greedy)
    assert proc.returncode != 0 and "not currently held" in proc.stderr, proc.stderr
    for verb, resource in [("get", "secrets"), ("create", "pods"), ("update", "benchmarktasks")]:
        answer = cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace, as_user=OPERATOR, check=False
        ).stdout.strip()
        assert answer == "no", (verb, resource)
