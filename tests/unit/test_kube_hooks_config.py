"""The kube.* hooks without a cluster: their configs (accepted or refused, naming the field),
the pure selection logic, the rules each declares, outputs, and no kubernetes import."""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import pytest

from krally.kube import client
from krally.plugins.kube import api, base, objects
from krally.plugins.kube.node_drain import drain_plan
from krally.task.hook import Hook

NAMES = [
    "kube.pod_kill",
    "kube.scale",
    "kube.rollout_restart",
    "kube.node_cordon",
    "kube.node_drain",
    "kube.exec",
    "kube.apply",
    "kube.delete",
]
POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny"},
    "spec": {"podSelector": {}},
}


def problems(name: str, config: Any) -> list[str]:
    return [str(p) for p in Hook.get(name).validate_config(config, "spec.hooks[0].args")]


def test_every_kube_hook_is_a_builtin_plugin() -> None:
    assert set(NAMES) <= set(Hook.get_all())


def test_loading_and_validating_never_imports_kubernetes() -> None:
    code = (
        "import sys\n"
        "from krally.task.hook import Hook\n"
        "Hook.get('kube.pod_kill').validate_config({'selector': 'a=b'})\n"
        "from krally.kube import rbac\n"
        "print('kubernetes' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("kube.pod_kill", {"selector": "app=db"}),
        ("kube.pod_kill", {"names": ["db-0", "db-1"], "pick": "oldest", "count": 1}),
        ("kube.pod_kill", {"selector": "a", "percent": 50, "wait_ready": True,
                           "wait_timeout_seconds": 60, "grace_period_seconds": 0}),
        ("kube.scale", {"kind": "StatefulSet", "name": "db", "replicas": 0,
                        "restore_after_seconds": 5, "wait_ready": True}),
        ("kube.rollout_restart", {"kind": "DaemonSet", "name": "agent", "wait_ready": True}),
        ("kube.node_cordon", {"node": "n1", "uncordon_after_seconds": 10}),
        ("kube.node_cordon", {"selector": "zone=a"}),
        ("kube.node_drain", {"node": "n1", "timeout_seconds": 30, "allow_runner_node": True}),
        ("kube.exec", {"pod": "db-0", "command": ["sh", "-c", "true"], "container": "db"}),
        ("kube.exec", {"selector": "app=db", "command": ["true"]}),
        ("kube.apply", {"manifest": POLICY, "delete_after_seconds": 5}),
        ("kube.apply", {"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}),
        ("kube.delete", {"manifest": [POLICY], "ignore_missing": True}),
    ],
)  # fmt: skip
def test_valid_configs(name: str, config: Any) -> None:
    assert problems(name, config) == []


@pytest.mark.parametrize(
    ("name", "config", "field", "words"),
    [
        ("kube.pod_kill", {}, "selector", "exactly one of selector and names"),
        ("kube.pod_kill", {"selector": "a", "names": ["b"]}, "selector", "exactly one"),
        ("kube.pod_kill", {"selector": "a", "count": 0}, "count", "minimum of 1"),
        ("kube.pod_kill", {"selector": "a", "percent": 101}, "percent", "maximum of 100"),
        ("kube.pod_kill", {"selector": "a", "count": 1, "percent": 5}, "percent", "not both"),
        ("kube.pod_kill", {"selector": "a", "pick": "first"}, "pick", "'first' is not one of"),
        ("kube.pod_kill", {"selector": "a", "grace_period_seconds": -1}, "grace_period_seconds",
         "minimum of 0"),
        ("kube.pod_kill", {"selector": "a", "wait_timeout_seconds": 5}, "wait_timeout_seconds",
         "wait_ready"),
        ("kube.pod_kill", {"selector": "a", "nmespace": "x"}, "", "'nmespace' was unexpected"),
        ("kube.scale", {"kind": "Job", "name": "x", "replicas": 1}, "kind", "is not one of"),
        ("kube.scale", {"kind": "Deployment", "name": "x", "replicas": -1}, "replicas", "minimum"),
        ("kube.scale", {"kind": "Deployment", "name": "x"}, "", "'replicas' is a required"),
        ("kube.rollout_restart", {"kind": "ReplicaSet", "name": "x"}, "kind", "is not one of"),
        ("kube.node_cordon", {"node": "a", "selector": "b"}, "node", "exactly one"),
        ("kube.node_drain", {}, "", "'node' is a required"),
        ("kube.node_drain", {"node": "n", "uncordon_after": False, "uncordon_after_seconds": 3},
         "uncordon_after_seconds", "conflicts"),
        ("kube.exec", {"pod": "p", "command": []}, "command", "should be non-empty"),
        ("kube.exec", {"pod": "p", "command": "ls"}, "command", "is not of type 'array'"),
        ("kube.apply", {"manifest": {"kind": "ConfigMap"}}, "manifest", "has no apiVersion"),
        ("kube.apply", {"manifest": "a: [b"}, "manifest", "not valid YAML"),
        ("kube.delete", {"manifest": {"apiVersion": "v1", "kind": "ConfigMap"}}, "manifest",
         "has no metadata.name"),
    ],
)  # fmt: skip
def test_invalid_configs_name_the_field(name: str, config: Any, field: str, words: str) -> None:
    found = problems(name, config)
    assert found, f"{config} accepted"
    where = "spec.hooks[0].args" + (f".{field}" if field else "")
    assert found[0].startswith(f"{where}: "), found
    assert name in found[0] and words in found[0], found


# -- selection ---------------------------------------------------------------------------------


def pod(name: str, created: str, deleting: bool = False, **meta: Any) -> dict[str, Any]:
    metadata = {"name": name, "uid": f"uid-{name}", "creationTimestamp": created, **meta}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:10:00Z"
    return {"metadata": metadata, "spec": {}, "status": {}}


PODS = [
    pod("b", "2026-01-01T00:00:02Z"),
    pod("a", "2026-01-01T00:00:01Z"),
    pod("c", "2026-01-01T00:00:03Z"),
    pod("d", "2026-01-01T00:00:00Z", deleting=True),
]


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_terminating_pods_are_no_candidates() -> None:
    assert names(objects.live(PODS)) == ["b", "a", "c"]


def test_oldest_and_newest() -> None:
    live = objects.live(PODS)
    assert names(objects.choose(live, 2, "oldest")) == ["a", "b"]
    assert names(objects.choose(live, 1, "newest")) == ["c"]


def test_random_picks_distinct_pods() -> None:
    live = objects.live(PODS)
    seen = set()
    for seed in range(30):
        chosen = names(objects.choose(live, 2, "random", random.Random(seed)))
        assert len(set(chosen)) == 2 and set(chosen) <= {"a", "b", "c"}
        seen.add(tuple(sorted(chosen)))
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("matched", "count", "percent", "default", "wanted"),
    [(3, None, None, 1, 1), (3, 2, None, 1, 2), (3, None, 50, 1, 2), (10, None, 1, 1, 1),
     (4, None, 100, 1, 4), (2, None, None, 2, 2)],
)  # fmt: skip
def test_how_many(matched: int, count: Any, percent: Any, default: int, wanted: int) -> None:
    assert objects.how_many(matched, count, percent, default) == wanted


def test_more_asked_than_matched_is_refused() -> None:
    with pytest.raises(objects.SelectionError, match="3 asked, 2 matched"):
        objects.how_many(2, 3, None)
    with pytest.raises(objects.SelectionError):
        objects.choose(objects.live(PODS), 4)


def test_selector_string() -> None:
    selector = {
        "matchLabels": {"app": "db", "tier": "x"},
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a", "b"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ],
    }
    assert objects.selector_string(selector) == "app=db,tier=x,zone in (a,b),!gone"


def test_rollout_state() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 2,
                   "replicas": 2},
    }  # fmt: skip
    assert objects.rollout_state(deployment) == (True, "")
    deployment["status"]["observedGeneration"] = 1
    assert objects.rollout_state(deployment)[0] is False
    deployment["status"].update(observedGeneration=2, replicas=3)
    assert "3 existing of 2" in objects.rollout_state(deployment)[1]


def test_drain_plan_skips_daemonset_mirror_and_own_hook_pods_and_finds_the_runner() -> None:
    ds = {"kind": "DaemonSet", "name": "agent", "controller": True, "uid": "x", "apiVersion": "v"}
    runner_labels = {"krally.dev/task": "t", "krally.dev/role": "runner"}
    pods = [
        pod("app", "t0", namespace="n"),
        pod("agent", "t0", namespace="n", ownerReferences=[ds]),
        pod("static", "t0", namespace="n", annotations={"kubernetes.io/config.mirror": "h"}),
        pod("runner", "t0", namespace="n", labels=runner_labels),
        pod("hook", "t0", namespace="n", labels={**runner_labels, "krally.dev/role": "hook"}),
        pod("old", "t0", deleting=True, namespace="n"),
    ]
    evict, skipped, runners = drain_plan(pods, "t")
    assert names(evict) == ["app", "runner"]
    assert {p["metadata"]["name"]: why for p, why in skipped} == {
        "agent": "DaemonSet pod",
        "static": "mirror pod",
        "hook": "this task's hook pod",
        "old": "already terminating",
    }
    assert names(runners) == ["runner"]
    # Outside a task (krally run): no runner to protect.
    assert drain_plan(pods, None)[2] == []


def test_manifest_objects() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n"
    )
    assert [o["kind"] for o in objects.manifest_objects(text)] == ["ConfigMap", "Secret"]
    with pytest.raises(ValueError, match="holds no object"):
        objects.manifest_objects("")


def test_api_failure_messages() -> None:
    forbidden = api.api_failure(
        403, {"message": "no"}, "patch", "deployments.apps/scale", "shop", "web"
    )
    assert forbidden.etype == "Forbidden"
    assert "cannot patch deployments.apps/scale in namespace shop" in forbidden.msg
    assert "krally rbac TASK.yaml" in forbidden.msg
    said = 'User "x" cannot get resource "pods/exec" in API group "" in the namespace "shop"'
    exec_refused = api.api_failure(403, {"message": said}, "create", "pods/exec", "shop", "db-0")
    assert "cannot get pods/exec in namespace shop (db-0)" in exec_refused.msg
    missing = api.api_failure(404, {}, "get", "nodes", None, "n1")
    assert (missing.etype, missing.msg) == ("NotFound", "nodes n1 not found at cluster scope")
    assert api.resource_name("apps", "deployments/scale") == "deployments.apps/scale"
    assert api.resource_name("", "pods/eviction") == "pods/eviction"


# -- rules -------------------------------------------------------------------------------------


def rules(name: str, config: dict[str, Any], namespace: str = "shop") -> set[tuple]:
    out = set()
    for scope, rule in Hook.get(name).rbac_rules(config, namespace):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((scope, group, resource, verb))
    return out


def test_declared_rules() -> None:
    assert rules("kube.pod_kill", {"selector": "a"}) == {
        ("shop", "", "pods", "list"),
        ("shop", "", "pods", "delete"),
    }
    assert rules("kube.pod_kill", {"names": ["a"], "namespace": "db"}) == {
        ("db", "", "pods", "get"),
        ("db", "", "pods", "delete"),
    }
    waiting = rules("kube.pod_kill", {"names": ["a"], "wait_ready": True})
    assert {("shop", "apps", r, "get") for r in ("replicasets", "deployments", "statefulsets")} <= (
        waiting
    )
    assert rules("kube.scale", {"kind": "StatefulSet", "name": "x", "replicas": 0}) == {
        ("shop", "apps", "statefulsets/scale", "get"),
        ("shop", "apps", "statefulsets/scale", "patch"),
    }
    assert rules("kube.rollout_restart", {"kind": "Deployment", "name": "x"}) == {
        ("shop", "apps", "deployments", "patch")
    }
    assert rules("kube.node_cordon", {"node": "n"}) == {
        (None, "", "nodes", "get"),
        (None, "", "nodes", "patch"),
    }
    assert rules("kube.node_drain", {"node": "n"}) == {
        (None, "", "nodes", "get"),
        (None, "", "nodes", "patch"),
        (None, "", "pods", "list"),
        (None, "", "pods/eviction", "create"),
    }
    assert rules("kube.exec", {"selector": "a", "command": ["x"]}) == {
        ("shop", "", "pods", "list"),
        ("shop", "", "pods/exec", "create"),
        ("shop", "", "pods/exec", "get"),
    }
    assert rules("kube.apply", {"manifest": POLICY}) == {
        ("shop", "networking.k8s.io", "networkpolicies", "create"),
        ("shop", "networking.k8s.io", "networkpolicies", "patch"),
    }
    namespaced = {**POLICY, "metadata": {"name": "deny", "namespace": "web"}}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}
    assert rules("kube.delete", {"manifest": [namespaced, node]}) == {
        ("web", "networking.k8s.io", "networkpolicies", "delete"),
        (None, "", "nodes", "delete"),
    }


def test_output_is_a_valid_small_table() -> None:
    from krally.kube.pods.hook import pod as hookpod

    cls = Hook.get("kube.pod_kill")
    hook = cls(None, {"selector": "a"}, {"event_type": "iteration", "value": 1})
    for i in range(40):
        hook.record(f"pod-{i:03d}-" + "x" * 40, "namespace", "node-1", "Deployment/web",
                    "deleted", base.now_iso(), 1.234)  # fmt: skip
    hook.timings.append(["Deployment/web recovery (s)", 1.5])
    hook.emit_output()
    result = hook.result()
    assert result is not None
    table = result["output"]["complete"][0]
    assert table["chart_plugin"] == "Table" and table["data"]["cols"][0] == "pod"
    assert len(table["data"]["rows"]) == api.MAX_ROWS + 1
    assert result["output"]["additive"][0]["data"] == [["Deployment/web recovery (s)", 1.5]]
    assert "truncated" not in hookpod.fit(result)


def test_no_credentials_at_all_fails_saying_what_to_set(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("KUBERNETES_SERVICE_HOST", "KRALLY_TASK_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    cls = Hook.get("kube.pod_kill")
    hook = cls(None, {"selector": "app=db"}, {"event_type": "iteration", "value": 1})
    hook.run_sync()
    result = hook.result()
    assert result is not None and result["status"] == "failed"
    assert result["error"]["etype"] == "NoCredentials"
    assert "hooks[].job.serviceAccountName" in result["error"]["msg"]
    assert "krally rbac" in result["error"]["msg"]


def test_default_namespace(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRALLY_TASK_NAMESPACE", "task-ns")
    assert api.default_namespace() == "task-ns"
    monkeypatch.delenv("KRALLY_TASK_NAMESPACE")
    monkeypatch.setattr(client, "SERVICE_ACCOUNT_DIR", str(tmp_path / "none"))
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: ctx-ns}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert api.default_namespace() == "ctx-ns"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert api.default_namespace() == "default"
