"""``krally rbac``: the ServiceAccount, Roles and bindings a task's kube.* hooks need, printed
as YAML (parsed here), merged and deduplicated, with comments naming who needs what."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tests.cli import krally

from krally.kube import rbac


def task_file(tmp_path: Path, hooks: list[dict[str, Any]], **meta: Any) -> Path:
    body = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "chaos", **meta},
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "runner": {"type": "constant", "times": 100},
            "hooks": [
                {"trigger": {"name": "event", "args": {"unit": "iteration", "at": [i + 1]}}, **h}
                for i, h in enumerate(hooks)
            ],
        },
    }
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def run(*args: str) -> tuple[str, list[dict[str, Any]]]:
    proc = krally("rbac", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, rbac.documents(proc.stdout)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_namespaced_and_cluster_rules(tmp_path: Path) -> None:
    path = task_file(
        tmp_path,
        [
            {"name": "kube.pod_kill", "args": {"selector": "app=db", "wait_ready": True}},
            {"name": "kube.scale", "args": {"kind": "Deployment", "name": "web", "replicas": 0,
                                            "namespace": "web"}},
            {"name": "kube.node_drain", "args": {"node": "worker-1"}},
        ],
        namespace="shop",
    )  # fmt: skip
    text, docs = run(str(path))
    (account,) = by_kind(docs, "ServiceAccount")
    assert account["metadata"] == {
        "name": "chaos-disruptor",
        "namespace": "shop",
        "annotations": {"krally.dev/hooks": "allowed"},
    }
    roles = {r["metadata"]["namespace"]: r for r in by_kind(docs, "Role")}
    assert set(roles) == {"shop", "web"}
    shop = {(g, r): rule["verbs"] for rule in roles["shop"]["rules"]
            for g in rule["apiGroups"] for r in rule["resources"]}  # fmt: skip
    # pods list is granted cluster-wide by the drain's rule: not repeated in the Role.
    assert shop == {
        ("", "pods"): ["delete"],
        ("apps", "deployments"): ["get"],
        ("apps", "replicasets"): ["get"],
        ("apps", "statefulsets"): ["get"],
    }
    assert roles["web"]["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]}
    ]
    bindings = by_kind(docs, "RoleBinding")
    assert {b["metadata"]["namespace"] for b in bindings} == {"shop", "web"}
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "chaos-disruptor", "namespace": "shop"}
        ]
        assert binding["roleRef"]["name"] == "chaos-disruptor"
    (cluster_role,) = by_kind(docs, "ClusterRole")
    assert cluster_role["metadata"]["name"] == "krally:shop:chaos-disruptor"
    cluster = {(r, tuple(rule["verbs"])) for rule in cluster_role["rules"]
               for r in rule["resources"]}  # fmt: skip
    assert cluster == {
        ("nodes", ("get", "patch")),
        ("pods", ("list",)),
        ("pods/eviction", ("create",)),
    }
    (cluster_binding,) = by_kind(docs, "ClusterRoleBinding")
    assert cluster_binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "krally:shop:chaos-disruptor",
    }
    assert "serviceAccountName: chaos-disruptor" in text
    assert "# needed by chaos spec.hooks[2] (kube.node_drain): create" in text
    assert (
        "spec.hooks[0] (kube.pod_kill): list; chaos spec.hooks[2] (kube.node_drain): list" in text
    )


def test_flags_override_the_account_and_namespace(tmp_path: Path) -> None:
    path = task_file(tmp_path, [{"name": "kube.rollout_restart",
                                 "args": {"kind": "StatefulSet", "name": "db"}}])  # fmt: skip
    _, docs = run(str(path), "--service-account", "chaos-sa", "-n", "prod")
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding"]
    assert docs[0]["metadata"]["name"] == "chaos-sa" and docs[0]["metadata"]["namespace"] == "prod"
    assert docs[1]["metadata"] == {"name": "chaos-sa", "namespace": "prod"}
    assert docs[1]["rules"] == [
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["patch"]}
    ]


def test_a_hook_naming_its_account_keeps_it(tmp_path: Path) -> None:
    path = task_file(
        tmp_path,
        [{"name": "kube.node_cordon", "args": {"node": "n1"},
          "job": {"serviceAccountName": "ops"}}],
    )  # fmt: skip
    text, docs = run(str(path))
    assert [d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")] == ["ops"]
    assert "already set job.serviceAccountName: ops" in text
    assert by_kind(docs, "Role") == []


def test_no_kube_hooks_need_no_rights_and_unknown_plugins_are_named(tmp_path: Path) -> None:
    path = task_file(tmp_path, [{"name": "sys_call", "args": "true"}])
    text, docs = run(str(path))
    assert docs == []
    assert "spec.hooks[0] (sys_call): the plugin declares no rights" in text
    empty = task_file(tmp_path, [])
    text, docs = run(str(empty))
    assert docs == [] and "chaos: no kube.* hooks: no rights are needed" in text


def test_rally_files_work_too(tmp_path: Path) -> None:
    rally = {
        "Dummy.dummy": [
            {
                "runner": {"type": "constant", "times": 10},
                "hooks": [
                    {
                        "name": "kube.pod_kill",
                        "args": {"selector": "app=db"},
                        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [2]}},
                    }
                ],
            }
        ]
    }
    path = tmp_path / "rally.json"
    path.write_text(json.dumps(rally))
    _, docs = run(str(path), "-n", "shop")
    assert docs[0]["metadata"]["name"] == "dummy-dummy-disruptor"
    assert by_kind(docs, "Role")[0]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "list"]}
    ]


def test_invalid_hook_configs_fail_like_validate(tmp_path: Path) -> None:
    path = task_file(tmp_path, [{"name": "kube.pod_kill", "args": {"count": 2}}])
    proc = krally("rbac", str(path))
    assert proc.returncode == 2
    assert "spec.hooks[0].args.selector" in proc.stderr and "exactly one" in proc.stderr


def test_long_task_names_give_valid_account_names() -> None:
    name = rbac.service_account_name("t" * 70)
    assert len(name) <= 63 and name.endswith("-disruptor")
