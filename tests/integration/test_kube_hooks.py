"""The kube.* hooks against a real API server, each run in-process with exactly the rights
`krally rbac` prints for a task using it (a kubeconfig holding that ServiceAccount's token): the
effect shows in the API; without the bindings the hook fails Forbidden naming the verb and the
resource. Pods run on the process node (Deployments become Ready); drained nodes are plain Node
objects whose pods never start (the Eviction API and PDBs are the API server's own)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from krally.api.wire import task_label
from krally.kube import rbac
from krally.task.hook import Hook
from krally.task.loader import load_task

pytestmark = pytest.mark.cluster

TRIGGER = {"name": "event", "args": {"unit": "iteration", "at": [1]}}


class Identity:
    """The ServiceAccount, Roles and bindings `krally rbac` prints for a one-hook task."""

    def __init__(self, cluster: Any, namespace: str, tmp_path: Path, monkeypatch: Any) -> None:
        self.cluster, self.namespace, self.tmp_path = cluster, namespace, tmp_path
        self.monkeypatch = monkeypatch
        self.cluster_objects: list[str] = []

    def grant(self, name: str, args: Any, bind: bool = True, account: str = "") -> str:
        """Apply what `krally rbac` prints (without the bindings unless ``bind``); point
        KUBECONFIG at the account's token. Returns the printed text."""
        task = {
            "apiVersion": "krally.dev/v1alpha1",
            "kind": "BenchmarkTask",
            "metadata": {"name": "chaos", "namespace": self.namespace},
            "spec": {
                "scenario": {"name": "Dummy.dummy"},
                "hooks": [{"name": name, "args": args, "trigger": TRIGGER}],
            },
        }
        path = self.tmp_path / f"task-{account or 'default'}.yaml"
        path.write_text(yaml.safe_dump(task))
        text = rbac.render_file(path, load_task(path), account or None)
        docs = rbac.documents(text)
        for doc in docs:
            if not bind and doc["kind"].endswith("Binding"):
                continue
            if doc["kind"].startswith("Cluster"):
                self.cluster_objects.append(f"{doc['kind'].lower()}/{doc['metadata']['name']}")
            self.cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))
        sa = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
        token = self.cluster.token_for(self.namespace, sa)
        kubeconfig = self.cluster.write_kubeconfig(
            self.tmp_path / f"kubeconfig-{sa}", token=token, namespace=self.namespace
        )
        self.monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        return text

    def cleanup(self) -> None:
        for obj in self.cluster_objects:
            self.cluster.kubectl("delete", obj, "--ignore-not-found", check=False)


@pytest.fixture
def identity(
    cluster: Any, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Identity]:
    for var in ("KUBERNETES_SERVICE_HOST", "KRALLY_TASK_NAMESPACE", "KRALLY_TASK_NAME"):
        monkeypatch.delenv(var, raising=False)
    made = Identity(cluster, namespace, tmp_path, monkeypatch)
    yield made
    made.cleanup()


def fire(name: str, config: Any) -> dict[str, Any]:
    cls = Hook.get(name)
    assert cls.validate_config(config) == []
    hook = cls(None, config, {"event_type": "iteration", "value": 1})
    hook.run_sync()
    result = hook.result()
    assert result is not None
    return result


def table(result: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = result["output"]["complete"][0]["data"]["rows"]
    return rows


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["status"] == "success", result.get("error")
    return result


def failed(result: dict[str, Any], etype: str, *words: str) -> str:
    assert result["status"] == "failed", result
    error = result["error"]
    assert error["etype"] == etype, error
    for word in words:
        assert word in error["msg"], error
    return str(error["msg"])


def get(cluster: Any, namespace: str | None, *what: str) -> Any:
    args = ["get", *what, "-o", "json"] + (["-n", namespace] if namespace else [])
    return json.loads(cluster.kubectl(*args).stdout)


def deployment(cluster: Any, namespace: str, name: str, replicas: int, wait_for: Any) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "x", "command": ["sleep", "3600"]}],
                },
            },
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    ready(cluster, namespace, f"deployment/{name}", replicas, wait_for)


def ready(cluster: Any, namespace: str, what: str, replicas: int, wait_for: Any) -> None:
    def done() -> bool:
        status = get(cluster, namespace, what).get("status") or {}
        return (status.get("readyReplicas") or 0) == replicas == (status.get("replicas") or 0)

    wait_for(done, timeout=60, message=f"{what} has {replicas} Ready replicas")


def pod_uids(cluster: Any, namespace: str, selector: str) -> set[str]:
    pods = get(cluster, namespace, "pods", "-l", selector)["items"]
    return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}


# -- kube.pod_kill -----------------------------------------------------------------------------


def test_pod_kill_deletes_a_pod_and_measures_the_recovery(
    cluster: Any, namespace: str, identity: Identity, wait_for: Any
) -> None:
    deployment(cluster, namespace, "web", 2, wait_for)
    before = pod_uids(cluster, namespace, "app=web")
    config = {"selector": "app=web", "wait_ready": True, "wait_timeout_seconds": 60}
    identity.grant("kube.pod_kill", config)
    result = ok(fire("kube.pod_kill", config))
    (row,) = table(result)
    pod, ns, _node, owner, action, _at, recovery = row
    assert (ns, owner, action) == (namespace, "Deployment/web", "deleted")
    assert isinstance(recovery, float) and 0 < recovery < 60
    assert result["output"]["additive"][0]["data"] == [["Deployment/web recovery (s)", recovery]]
    after = pod_uids(cluster, namespace, "app=web")
    assert len(before - after) == 1 and len(after) == 2  # one replaced, both Ready again
    assert pod not in {
        p["metadata"]["name"] for p in get(cluster, namespace, "pods", "-l", "app=web")["items"]
    }


def test_pod_kill_refuses_bad_inputs_before_deleting_anything(
    cluster: Any, namespace: str, identity: Identity, wait_for: Any
) -> None:
    deployment(cluster, namespace, "web", 2, wait_for)
    before = pod_uids(cluster, namespace, "app=web")
    identity.grant("kube.pod_kill", {"selector": "app=web"})
    failed(
        fire("kube.pod_kill", {"selector": "app=nothing"}),
        "NoPodsMatch",
        f"no pods match selector 'app=nothing' in namespace {namespace}",
    )
    failed(
        fire("kube.pod_kill", {"selector": "app=web", "count": 3}),
        "NotEnoughPods",
        "3 pod(s) to delete but only 2",
        "nothing deleted",
    )
    failed(
        fire("kube.pod_kill", {"names": ["web-nope"]}),
        "Forbidden",  # the Role of a selector config grants list, not get
        f"cannot get pods in namespace {namespace}",
    )
    failed(
        fire("kube.pod_kill", {"selector": "app=web", "namespace": "default"}),
        "Forbidden",
        "cannot list pods in namespace default",
        "krally rbac TASK.yaml",
    )
    assert pod_uids(cluster, namespace, "app=web") == before


def test_pod_kill_without_the_binding_is_forbidden(
    cluster: Any, namespace: str, identity: Identity, wait_for: Any
) -> None:
    deployment(cluster, namespace, "web", 1, wait_for)
    identity.grant("kube.pod_kill", {"names": ["x"]}, bind=False)
    failed(
        fire("kube.pod_kill", {"names": ["x"]}),
        "Forbidden",
        f"forbidden: cannot get pods in namespace {namespace} (x)",
    )


def test_pod_kill_of_a_missing_named_pod_names_it(
    cluster: Any, namespace: str, identity: Identity
) -> None:
    identity.grant("kube.pod_kill", {"names": ["ghost"]})
    failed(
        fire("kube.pod_kill", {"names": ["ghost"]}),
        "NotFound",
        f"pods ghost not found in namespace {namespace}",
    )


# -- kube.scale, kube.rollout_restart ------------------------------------------------------------


def test_scale_down_and_restore(
    cluster: Any, namespace: str, identity: Identity, wait_for: Any
) -> None:
    deployment(cluster, namespace, "web", 2, wait_for)
    config = {
        "kind": "Deployment",
        "name": "web",
        "replicas": 0,
        "restore_after_seconds": 0.5,
        "wait_ready": True,
        "wait_timeout_seconds": 60,
    }
    identity.grant("kube.scale", config)
    result = ok(fire("kube.scale", config))
    rows = table(result)
    assert [r[2] for r in rows] == ["scaled 2 -> 0", "scaled 0 -> 2"]
    assert all(isinstance(r[4], float) for r in rows)
    status = get(cluster, namespace, "deployment/web")["status"]
    assert status["readyReplicas"] == 2


def test_scale_a_statefulset(
    cluster: Any, namespace: str, identity: Identity, wait_for: Any
) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 1,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "x", "command": ["sleep", "3600"]}],
                },
            },
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    ready(cluster, namespace, "statefulset/db", 1, wait_for)
    config = {"kind": "StatefulSet", "name": "db", "replicas": 2, "wait_ready": True}
    identity.grant("kube.scale", config)
    ok(fire("kube.scale", config))
    assert get(cluster, namespace, "statefulset/db")["status"]["readyReplicas"] == 2


def test_scale_without_the_binding_is_forbidden(
    cluster: Any, namespace: str, identity: Identity, wait_for: Any
) -> None:
    deployment(cluster, namespace, "web", 1, wait_for)
    config = {"kind": "Deployment", "name": "web", "replicas": 0}
    identity.grant("kube.scale", config, bind=False)
    failed(
        fire("kube.scale", config),
        "Forbidden",
        f"cannot get deployments.apps/scale in namespace {namespace}",
    )
    assert get(cluster, namespace, "deployment/web")["spec"]["replicas"] == 1


def test_rollout_restart(cluster: Any, namespace: str, identity: Identity, wait_for: Any) -> None:
    deployment(cluster, namespace, "web", 2, wait_for)
    before = pod_uids(cluster, namespace, "app=web")
    config = {"kind": "Deployment", "name": "web", "wait_ready": True}
    identity.grant("kube.rollout_restart", config)
    result = ok(fire("kube.rollout_restart", config))
    ((obj, ns, action, at, seconds),) = table(result)
    assert (obj, ns, action) == ("Deployment/web", namespace, "rollout restart")
    template = get(cluster, namespace, "deployment/web")["spec"]["template"]
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == at
    assert isinstance(seconds, float)
    wait_for(
        lambda: not (pod_uids(cluster, namespace, "app=web") & before),
        timeout=30,
        message="every pod replaced",
    )


def test_rollout_restart_without_the_binding_is_forbidden(
    cluster: Any, namespace: str, identity: Identity
) -> None:
    config = {"kind": "Deployment", "name": "web"}
    identity.grant("kube.rollout_restart", config, bind=False)
    failed(
        fire("kube.rollout_restart", config),
        "Forbidden",
        f"cannot patch deployments.apps in namespace {namespace} (web)",
    )


# -- nodes -------------------------------------------------------------------------------------


@pytest.fixture
def make_node(cluster: Any, namespace: str) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(suffix: str) -> str:
        name = f"{namespace}-{suffix}"[:63]
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
        cluster.kubectl("create", "-f", "-", input=json.dumps(body))
        made.append(name)
        return name

    yield make
    for name in made:
        cluster.kubectl("delete", "node", name, "--ignore-not-found", check=False)


def unschedulable(cluster: Any, node: str) -> bool:
    return bool(get(cluster, None, "node", node)["spec"].get("unschedulable"))


def test_node_cordon_and_uncordon(cluster: Any, identity: Identity, make_node: Any) -> None:
    node = make_node("cordon")
    identity.grant("kube.node_cordon", {"node": node})
    result = ok(fire("kube.node_cordon", {"node": node}))
    assert [r[1] for r in table(result)] == ["cordoned"]
    assert unschedulable(cluster, node)
    again = ok(fire("kube.node_cordon", {"node": node, "uncordon_after_seconds": 0.2}))
    assert [r[1] for r in table(again)] == ["already cordoned (left as is)"]
    assert unschedulable(cluster, node)  # not ours to uncordon
    cluster.kubectl("uncordon", node)
    timed = ok(fire("kube.node_cordon", {"node": node, "uncordon_after_seconds": 0.2}))
    assert [r[1] for r in table(timed)] == ["cordoned", "uncordoned"]
    assert not unschedulable(cluster, node)
    failed(fire("kube.node_cordon", {"node": "no-such-node"}), "NotFound", "nodes no-such-node")


def test_node_cordon_without_the_binding_is_forbidden(
    cluster: Any, identity: Identity, make_node: Any
) -> None:
    node = make_node("cordon-nobind")
    identity.grant("kube.node_cordon", {"node": node}, bind=False)
    failed(
        fire("kube.node_cordon", {"node": node}),
        "Forbidden",
        "cannot get nodes at cluster scope",
    )
    assert not unschedulable(cluster, node)


def node_pod(
    cluster: Any, namespace: str, name: str, node: str, labels: dict[str, str] | None = None,
    owner: dict[str, Any] | None = None, running: bool = False,
) -> None:  # fmt: skip
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "drained"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,  # no kubelet here: deleted at once
            "containers": [{"name": "main", "image": "x", "command": ["sleep", "3600"]}],
        },
    }
    if owner:
        body["metadata"]["ownerReferences"] = [owner]
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body))
    if running:  # what a kubelet would report: a PDB counts Ready pods only
        status = {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        }
        cluster.kubectl(
            "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(status),
        )  # fmt: skip


def pod_names(cluster: Any, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p in get(cluster, namespace, "pods")["items"]}


def test_node_drain_evicts_all_but_daemonset_pods_then_uncordons(
    cluster: Any, namespace: str, identity: Identity, make_node: Any
) -> None:
    node = make_node("drain")
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "nodeSelector": {"no-such-label": "x"},
                    "containers": [{"name": "main", "image": "x"}],
                },
            },
        },
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(daemonset))
    uid = get(cluster, namespace, "daemonset/agent")["metadata"]["uid"]
    owner = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": uid,
             "controller": True}  # fmt: skip
    node_pod(cluster, namespace, "app-1", node)
    node_pod(cluster, namespace, "app-2", node, running=True)
    node_pod(cluster, namespace, "agent-x", node, labels={"app": "agent"}, owner=owner)
    config = {"node": node, "timeout_seconds": 30}
    identity.grant("kube.node_drain", config)
    result = ok(fire("kube.node_drain", config))
    actions = {r[0]: r[3] for r in table(result) if r[0].startswith("Pod/")}
    assert actions == {
        "Pod/app-1": "evicted",
        "Pod/app-2": "evicted",
        "Pod/agent-x": "skipped: DaemonSet pod",
    }
    node_rows = [r[3] for r in table(result) if r[0] == f"Node/{node}"]
    assert node_rows == ["cordoned", "uncordoned"]
    assert pod_names(cluster, namespace) == {"agent-x"}
    assert not unschedulable(cluster, node)


def test_node_drain_respects_a_pod_disruption_budget(
    cluster: Any, namespace: str, identity: Identity, make_node: Any, wait_for: Any
) -> None:
    node = make_node("pdb")
    for name in ("db-1", "db-2"):
        node_pod(cluster, namespace, name, node, labels={"app": "db"}, running=True)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "db"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}},
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pdb))
    wait_for(
        lambda: (get(cluster, namespace, "pdb/db").get("status") or {}).get("currentHealthy") == 2,
        timeout=30,
        message="the disruption controller counted the PDB's pods",
    )
    config = {"node": node, "timeout_seconds": 3}
    identity.grant("kube.node_drain", config)
    result = fire("kube.node_drain", config)
    message = failed(result, "EvictionBlocked", f"drain of node {node}", "within 3 s")
    assert f"pod {namespace}/db-" in message and "disruption budget" in message
    assert pod_names(cluster, namespace) == {"db-1", "db-2"}
    assert not unschedulable(cluster, node)  # uncordoned again (uncordon_after defaults true)


def test_node_drain_refuses_the_runner_node_unless_allowed(
    cluster: Any,
    namespace: str,
    identity: Identity,
    make_node: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = make_node("runner")
    monkeypatch.setenv("KRALLY_TASK_NAME", "chaos")
    runner = {"krally.dev/task": task_label("chaos"), "krally.dev/role": "runner"}
    node_pod(cluster, namespace, "krally-chaos-runner-abc", node, labels=runner)
    node_pod(cluster, namespace, "app", node)
    identity.grant("kube.node_drain", {"node": node})
    failed(
        fire("kube.node_drain", {"node": node}),
        "RunnerNode",
        f"refusing to drain node {node}",
        f"{namespace}/krally-chaos-runner-abc",
        "allow_runner_node: true",
    )
    assert not unschedulable(cluster, node)
    assert pod_names(cluster, namespace) == {"krally-chaos-runner-abc", "app"}
    ok(fire("kube.node_drain", {"node": node, "allow_runner_node": True}))
    assert pod_names(cluster, namespace) == set()


def test_node_drain_without_the_binding_is_forbidden(
    cluster: Any, identity: Identity, make_node: Any
) -> None:
    node = make_node("drain-nobind")
    identity.grant("kube.node_drain", {"node": node}, bind=False)
    failed(fire("kube.node_drain", {"node": node}), "Forbidden", "cannot get nodes")


# -- kube.apply, kube.delete -------------------------------------------------------------------

POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-all"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}


def policies(cluster: Any, namespace: str) -> list[str]:
    return [p["metadata"]["name"] for p in get(cluster, namespace, "networkpolicy")["items"]]


def test_apply_then_delete_a_network_policy(
    cluster: Any, namespace: str, identity: Identity
) -> None:
    identity.grant("kube.apply", {"manifest": POLICY, "delete_after_seconds": 1})
    ok(fire("kube.apply", {"manifest": yaml.safe_dump(POLICY)}))
    assert policies(cluster, namespace) == ["deny-all"]
    ok(fire("kube.apply", {"manifest": POLICY}))  # again: an update, still fine
    timed = ok(fire("kube.apply", {"manifest": [POLICY], "delete_after_seconds": 0.2}))
    assert [r[2] for r in table(timed)] == ["applied", "deleted"]
    assert policies(cluster, namespace) == []


def test_delete_names_missing_objects(cluster: Any, namespace: str, identity: Identity) -> None:
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(POLICY))
    identity.grant("kube.delete", {"manifest": POLICY})
    ok(fire("kube.delete", {"manifest": POLICY}))
    assert policies(cluster, namespace) == []
    failed(
        fire("kube.delete", {"manifest": POLICY}),
        "NotFound",
        f"networkpolicies.networking.k8s.io deny-all not found in namespace {namespace}",
    )
    result = ok(fire("kube.delete", {"manifest": POLICY, "ignore_missing": True}))
    assert table(result)[0][2] == "was missing"


def test_apply_without_the_binding_is_forbidden(
    cluster: Any, namespace: str, identity: Identity
) -> None:
    identity.grant("kube.apply", {"manifest": POLICY}, bind=False)
    failed(
        fire("kube.apply", {"manifest": POLICY}),
        "Forbidden",
        f"cannot patch networkpolicies.networking.k8s.io in namespace {namespace} (deny-all)",
    )
    assert policies(cluster, namespace) == []
