"""The kube.* hooks as they run for real: hook Jobs on the real node, acting through the API as
a ServiceAccount with exactly the rights `krally rbac` prints for the task; the same task as an
account without them fails every hook cleanly, naming the verb and the resource it lacked.
(tests/integration/test_kube_hooks.py covers each plugin's behaviour in depth, in-process.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster import Cluster, images
from tests.e2e.support import Operator, wait_phase

pytestmark = pytest.mark.cluster


def deployment(name: str) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": images.KRALLY_REF,
        "imagePullPolicy": "Never",
        "command": ["krally", "demo-server", "--port=8080"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }


POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "krally-test-policy"},
    "spec": {"podSelector": {"matchLabels": {"app": "nothing"}}, "policyTypes": ["Ingress"]},
}


def hook(name: str, args: dict[str, Any], at: int, account: str) -> dict[str, Any]:
    return {
        "name": name,
        "args": args,
        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [at]}},
        "job": {"serviceAccountName": account, "timeoutSeconds": 90},
    }


def task(name: str, ns: str, account: str, node: str) -> dict[str, Any]:
    hooks = [
        hook("kube.scale", {"kind": "Deployment", "name": "web", "replicas": 2}, 10, account),
        hook("kube.rollout_restart", {"kind": "Deployment", "name": "api"}, 20, account),
        hook("kube.pod_kill", {"selector": "app=db", "wait_ready": True}, 30, account),
        hook("kube.exec", {"selector": "app=web", "command": ["krally", "--version"]}, 40, account),
        hook("kube.apply", {"manifest": POLICY}, 50, account),
        hook("kube.delete", {"manifest": POLICY}, 120, account),
        hook("kube.node_cordon", {"node": node, "uncordon_after_seconds": 1}, 140, account),
    ]
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.05}},
            "runner": {"type": "constant", "times": 200, "concurrency": 1},
            "hooks": hooks,
        },
    }


def krally_rbac(path: Path, ns: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "krally", "rbac", str(path), "-n", ns],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_every_kube_hook_runs_with_exactly_the_rights_krally_rbac_prints(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any, tmp_path: Path
) -> None:
    node = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]
    node_name = node["metadata"]["name"]
    targets = [deployment(name) for name in ("web", "api", "db")]
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(targets))
    for name in ("web", "api", "db"):
        cluster.kubectl(
            "rollout", "status", f"deployment/{name}", "-n", ns, "--timeout=90s"
        )  # fmt: skip

    granted = task("granted", ns, "disruptor", node_name)
    path = tmp_path / "granted.yaml"
    path.write_text(yaml.safe_dump(granted))
    rights = krally_rbac(path, ns)
    kinds = sorted(d["kind"] for d in rights)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"]
    # The same rights for an account bound to nothing: only its ServiceAccount is created.
    (account,) = [d for d in rights if d["kind"] == "ServiceAccount"]
    bare = {**account, "metadata": {**account["metadata"], "name": "bare"}}
    cluster_scoped = [d for d in rights if d["kind"].startswith("Cluster")]
    try:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([*rights, bare]))
        refused = task("refused", ns, "bare", node_name)
        for body in (granted, refused):
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        status = wait_phase(cluster, ns, "granted", {"Succeeded", "Failed"}, wait_for, 240)
        denied = wait_phase(cluster, ns, "refused", {"Succeeded", "Failed"}, wait_for, 240)
    finally:
        cluster.kubectl("uncordon", node_name, check=False)
        for doc in cluster_scoped:
            cluster.kubectl(
                "delete", doc["kind"].lower(), doc["metadata"]["name"], check=False
            )  # fmt: skip

    names = [h["name"] for h in granted["spec"]["hooks"]]
    results = {name: h["results"][0] for name, h in zip(names, status["hooks"], strict=True)}
    failed = {n: r.get("error") for n, r in results.items() if r["status"] != "success"}
    assert not failed, failed
    deployed = json.loads(cluster.kubectl("get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    assert deployed["spec"]["replicas"] == 2
    assert "krally" in json.dumps(results["kube.exec"].get("output"))
    policies = cluster.kubectl("get", "networkpolicy", "-n", ns, "-o", "name").stdout
    assert policies.strip() == ""  # applied, then deleted
    node = json.loads(cluster.kubectl("get", "node", node_name, "-o", "json").stdout)
    assert not node["spec"].get("unschedulable")  # cordoned, then uncordoned

    for name, entry in zip(names, denied["hooks"], strict=True):
        (result,) = entry["results"]
        assert result["status"] == "failed", (name, result)
        error = result["error"]
        assert error["etype"] == "Forbidden", (name, error)
        # The missing right, by verb and resource, and where to get the Role.
        said = re.search(
            r"cannot (\w+) ([\w./-]+) (in namespace \S+|at cluster scope)", error["msg"]
        )
        assert said and "krally rbac" in error["msg"], (name, error)
