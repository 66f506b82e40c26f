"""blockOwnerDeletion against a real API server running OwnerReferencesPermissionEnforcement.

Every child krally creates points at its task with ``blockOwnerDeletion: true``; under that
admission plugin (common in production clusters, on in tests/cluster) setting it needs
``update`` on ``benchmarktasks/finalizers``. The shipped ClusterRole must have it: a create as
the operator's account passes, and the same rules without it are refused.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from krally.api import crd
from krally.kube.operator import builders as kjobs
from krally.kube.operator.settings import Settings

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "system:serviceaccount:krally-system:krally-operator"


@pytest.fixture(scope="module")
def cluster_role(cluster) -> dict:
    """The CRD and the shipped ClusterRole, bound to the operator's account as installed."""
    cluster.apply_crd(crd.render_yaml(), crd.NAME)
    docs = [
        d
        for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(ROOT / "manifests")).stdout)
        if d
    ]
    wanted = [
        d
        for d in docs
        if d["kind"] in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wanted))
    return next(d for d in wanted if d["kind"] == "ClusterRole")


def _create(cluster, namespace: str, body: dict, user: str):
    # A Job as a server-side dry run: admission (the plugin included) runs, no pod starts. The
    # rest for real: the RoleBinding's escalation check needs the Role to exist.
    dry_run = ["--dry-run=server"] if body["kind"] == "Job" else []
    return cluster.kubectl(
        "create", *dry_run, "-n", namespace, "-f", "-",
        input=json.dumps(body), as_user=user, check=False,
    )  # fmt: skip


def test_block_owner_deletion_needs_the_finalizers_rule_the_cluster_role_has(
    cluster, cluster_role, namespace
):
    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "owner"},
        "spec": {
            "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0}},
            "runner": {"type": "constant", "times": 1},
        },
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(task))
    task = json.loads(cluster.kubectl("get", "bt", "owner", "-n", namespace, "-o", "json").stdout)
    # Exactly what the operator creates: the runner's Job and identity, the hooks' account.
    job = kjobs.runner_job(task, Settings())
    assert job["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
    children = [
        job,
        kjobs.runner_service_account(task),
        kjobs.runner_role(task),
        kjobs.runner_role_binding(task),
        kjobs.hook_service_account(task),
    ]
    for body in children:
        proc = _create(cluster, namespace, body, OPERATOR)
        assert proc.returncode == 0, (body["kind"], proc.stderr)

    # The same rules without the finalizers one, for another user: the plugin refuses.
    lesser = copy.deepcopy(cluster_role)
    lesser["metadata"] = {"name": "krally-operator-without-finalizers"}
    lesser["rules"] = [
        r for r in lesser["rules"] if "benchmarktasks/finalizers" not in r["resources"]
    ]
    assert len(lesser["rules"]) == len(cluster_role["rules"]) - 1
    cluster.kubectl("apply", "-f", "-", input=json.dumps(lesser))
    cluster.kubectl(
        "create", "rolebinding", "lesser", "-n", namespace,
        "--clusterrole=krally-operator-without-finalizers", "--user=lesser",
    )  # fmt: skip
    proc = _create(cluster, namespace, job, "lesser")
    assert proc.returncode != 0
    assert "cannot set blockOwnerDeletion" in proc.stderr, proc.stderr
    # Without blockOwnerDeletion the same user may: the rule is what makes the difference.
    plain = copy.deepcopy(job)
    plain["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = False
    proc = _create(cluster, namespace, plain, "lesser")
    assert proc.returncode == 0, proc.stderr
