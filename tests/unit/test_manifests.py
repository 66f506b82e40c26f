"""The install manifests render, are hardened, grant little, and the examples are valid tasks."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from krally.api import crd, schedule_crd

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
EXAMPLES = MANIFESTS / "examples"


@cache
def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found:
        return found
    # CI builds kubectl with the control plane; it serves `kustomize` just as well.
    from tests.cluster.controlplane import binary_dir

    built = binary_dir() / "kubectl"
    if built.is_file():
        return str(built)
    pytest.fail("kubectl not found on PATH nor built: run scripts/build-control-plane.sh")


@cache
def _kustomize(directory: Path) -> tuple[dict, ...]:
    proc = subprocess.run(
        [_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed: {proc.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def _one(docs, kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def _operator_container(docs) -> dict:
    (container,) = _one(docs, "Deployment", "krally-operator")["spec"]["template"]["spec"][
        "containers"
    ]
    return container


def test_kustomize_renders_the_install():
    docs = _kustomize(MANIFESTS)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [
        ("ClusterRole", "krally-operator"),
        ("ClusterRole", "krally-operator-requester"),
        ("ClusterRole", "krally-operator-webhook"),
        ("ClusterRoleBinding", "krally-operator"),
        ("ClusterRoleBinding", "krally-operator-requester"),
        ("ClusterRoleBinding", "krally-operator-webhook"),
        ("CustomResourceDefinition", "benchmarkschedules.krally.dev"),
        ("CustomResourceDefinition", "benchmarktasks.krally.dev"),
        ("Deployment", "krally-operator"),
        ("Namespace", "krally-system"),
        ("Role", "krally-operator-leader"),
        ("Role", "krally-operator-webhook"),
        ("RoleBinding", "krally-operator-leader"),
        ("RoleBinding", "krally-operator-webhook"),
        ("Service", "krally-operator-metrics"),
        ("Service", "krally-webhook"),
        ("ServiceAccount", "krally-operator"),
        ("ValidatingAdmissionPolicy", "requester.krally.dev"),
        ("ValidatingAdmissionPolicyBinding", "requester.krally.dev"),
    ]
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "krally"


@pytest.mark.parametrize("generator", [crd, schedule_crd], ids=["tasks", "schedules"])
def test_installed_crd_is_the_generated_one(generator):
    expected = generator.render_crd()
    installed = _one(
        _kustomize(MANIFESTS), "CustomResourceDefinition", expected["metadata"]["name"]
    )
    # kustomize adds the common label; everything else is the generator's.
    installed["metadata"]["labels"].pop("app.kubernetes.io/part-of")
    expected["metadata"]["labels"].pop("app.kubernetes.io/part-of")
    assert installed == expected


def test_deployment_is_two_leader_elected_replicas():
    docs = _kustomize(MANIFESTS)
    deployment = _one(docs, "Deployment", "krally-operator")
    assert deployment["metadata"]["namespace"] == "krally-system"
    # Safe only because of leader election: one replica handles tasks, a rolling update's new
    # pod waits for the old one to release the Lease.
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "krally-operator"
    container = _operator_container(docs)
    assert "--leader-elect" in container["args"] and "--standalone" not in container["args"]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["KRALLY_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["KRALLY_LEADER_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_lease_rights_stop_at_the_operators_namespace_and_lease():
    docs = _kustomize(MANIFESTS)
    role = _one(docs, "Role", "krally-operator-leader")
    assert role["metadata"]["namespace"] == "krally-system"
    from krally.kube.operator.settings import Settings

    assert role["rules"] == [
        # create cannot name its object; get/update only the operator's Lease.
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [Settings().leader_lease],
            "verbs": ["get", "update"],
        },
    ]
    binding = _one(docs, "RoleBinding", "krally-operator-leader")
    assert binding["metadata"]["namespace"] == "krally-system"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "krally-operator-leader",
    }
    account = _one(docs, "ServiceAccount", "krally-operator")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


def test_deployment_is_hardened():
    docs = _kustomize(MANIFESTS)
    pod = _one(docs, "Deployment", "krally-operator")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _operator_container(docs)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security.get("privileged", False) is False
    assert "add" not in security["capabilities"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod.get("hostNetwork", False) is False and pod.get("hostPID", False) is False
    assert "memory" in container["resources"]["limits"]
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    # The only writable path is an emptyDir, where HOME points.
    (mount,) = container["volumeMounts"]
    (volume,) = pod["volumes"]
    assert (mount["name"], volume["name"]) == ("tmp", "tmp") and "emptyDir" in volume
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HOME"] == mount["mountPath"]


def test_deployment_runs_as_the_image_user():
    pod = _one(_kustomize(MANIFESTS), "Deployment", "krally-operator")["spec"]["template"]["spec"]
    users = re.findall(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users == [(str(pod["securityContext"]["runAsUser"]),) * 2]
    assert pod["securityContext"]["runAsGroup"] == pod["securityContext"]["runAsUser"]


def test_no_service_link_env_can_shadow_a_setting():
    """Kubernetes puts <SERVICE>_PORT=tcp://... into pods for every Service of the namespace:
    the install's own Service krally-webhook would override KRALLY_WEBHOOK_PORT (found on the
    real node: the operator crashed at start)."""
    docs = _kustomize(MANIFESTS)
    pod = _one(docs, "Deployment", "krally-operator")["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False


def test_liveness_probe_polls_kopfs_endpoint():
    container = _operator_container(_kustomize(MANIFESTS))
    assert container["command"] == ["krally"]
    assert container["args"][:2] == ["operator", "--all-namespaces"]
    (liveness,) = [a for a in container["args"] if a.startswith("--liveness=")]
    match = re.fullmatch(r"--liveness=http://0\.0\.0\.0:(\d+)(/\S*)", liveness)
    assert match, liveness
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[probe["port"]] == int(match.group(1))
    assert probe["path"] == match.group(2)


def test_runner_and_hook_images_default_to_the_operator_image():
    container = _operator_container(_kustomize(MANIFESTS))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["image"] == "krally:0.1.0"
    assert env["KRALLY_RUNNER_IMAGE"] == env["KRALLY_HOOK_IMAGE"] == container["image"]


def _rules(docs) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in _one(docs, "ClusterRole", "krally-operator")["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


def test_cluster_role_is_minimal():
    rules = _rules(_kustomize(MANIFESTS))
    for (group, resource), verbs in rules.items():
        assert "*" not in (group, resource) and "*" not in verbs, (group, resource, verbs)
        # Never a way to grant more than it holds, nor to read secrets.
        assert not verbs & {"escalate", "bind", "impersonate"}, (group, resource)
        assert resource != "secrets"
    assert rules == {
        # create/patch/delete: a BenchmarkSchedule's tasks (created, aborted, pruned).
        ("krally.dev", "benchmarktasks"): {"get", "list", "watch", "create", "patch", "delete"},
        ("krally.dev", "benchmarktasks/status"): {"get", "patch"},
        ("krally.dev", "benchmarkschedules"): {"get", "list", "watch"},
        ("krally.dev", "benchmarkschedules/status"): {"get", "patch"},
        ("krally.dev", "benchmarkschedules/finalizers"): {"update"},
        # blockOwnerDeletion on children (OwnerReferencesPermissionEnforcement).
        ("krally.dev", "benchmarktasks/finalizers"): {"update"},
        ("batch", "jobs"): {"create", "get", "list", "watch", "patch", "delete"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "serviceaccounts"): {"create", "get"},
        ("rbac.authorization.k8s.io", "roles"): {"create", "get"},
        ("rbac.authorization.k8s.io", "rolebindings"): {"create", "get"},
        ("", "events"): {"create"},
    }


def test_cluster_role_covers_the_runner_role_it_grants():
    # RBAC refuses to create a Role granting rights its creator lacks (without `escalate`).
    rules = _rules(_kustomize(MANIFESTS))
    assert {"get", "patch"} <= rules[("krally.dev", "benchmarktasks/status")]


def test_binding_grants_the_role_to_the_deployments_account():
    docs = _kustomize(MANIFESTS)
    binding = _one(docs, "ClusterRoleBinding", "krally-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "krally-operator",
    }
    account = _one(docs, "ServiceAccount", "krally-operator")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


NAMESPACED = MANIFESTS / "overlays" / "namespaced"


def test_namespaced_overlay_grants_roles_in_the_namespaces_it_watches():
    docs = _kustomize(NAMESPACED)
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}  # no cluster-wide rights
    served = [d for d in docs if d["metadata"].get("namespace") != "krally-system"]
    roles = {d["metadata"]["namespace"]: d for d in served if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in served if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    # The operator's own namespace: only the Lease rights of its two leader-elected replicas.
    own = [d for d in docs if d["kind"] == "Role" and d not in served]
    assert [d["metadata"]["name"] for d in own] == ["krally-operator-leader"]
    # The same rights as the cluster-wide install, namespace by namespace.
    cluster_rules = _one(_kustomize(MANIFESTS), "ClusterRole", "krally-operator")["rules"]
    account = _one(docs, "ServiceAccount", "krally-operator")["metadata"]
    for namespace, role in roles.items():
        assert role["rules"] == cluster_rules, namespace
        binding = bindings[namespace]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]
    container = _operator_container(docs)
    args = container["args"]
    assert "--all-namespaces" not in args and "-A" not in args
    watched = [args[i + 1] for i, arg in enumerate(args) if arg == "-n"]
    assert sorted(watched) == sorted(roles)
    # Two replicas: leader-elected, never two acting (--standalone would make both act).
    assert "--leader-elect" in args and "--standalone" not in args
    # No webhook: its configuration is cluster-scoped (refused, kopf would stop the operator).
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KRALLY_WEBHOOK"] == "0"
    # The rest is the cluster-wide install's operator: same image defaults, same Deployment.
    assert env["KRALLY_RUNNER_IMAGE"] == env["KRALLY_HOOK_IMAGE"] == container["image"]
    base = _operator_container(_kustomize(MANIFESTS))
    unchanged = {
        **container,
        "args": None,
        "env": [e for e in container["env"] if e["name"] != "KRALLY_WEBHOOK"],
    }
    assert unchanged == {
        **base,
        "args": None,
        "env": [e for e in base["env"] if e["name"] != "KRALLY_WEBHOOK"],
    }
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "krally" for d in docs)


def test_operator_namespace_enforces_restricted_pod_security():
    labels = _one(_kustomize(MANIFESTS), "Namespace", "krally-system")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# --- examples ----------------------------------------------------------------------------------


def _example_documents() -> list[tuple[str, dict]]:
    """Every document of manifests/examples: plain files, and kustomizations rendered."""
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        found += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    for kustomization in sorted(EXAMPLES.glob("*/kustomization.yaml")):
        directory = kustomization.parent
        found += [(f"{directory.name}/ (kustomize)", d) for d in _kustomize(directory)]
    return found


def _example_tasks() -> list[tuple[str, dict]]:
    return [(where, d) for where, d in _example_documents() if d["kind"] == "BenchmarkTask"]


def test_examples_are_there():
    names = {d["metadata"]["name"] for _, d in _example_tasks()}
    assert names == {
        "rally-hooks",
        "time-trigger",
        "periodic-trigger",
        "db-pod-kill",
        "web-pod-kill",
        "spread",
    }


def _task_id(value) -> str:
    return value["metadata"]["name"] if isinstance(value, dict) else str(value)


@pytest.mark.parametrize("where,task", _example_tasks(), ids=_task_id)
def test_example_loads_with_krallys_loader(where, task):
    from krally.task.loader import load_task

    # `where` only names the source in errors; the text is the (rendered) document.
    loaded = load_task(where, text=yaml.safe_dump(task))
    (workload,) = loaded.workloads
    assert workload.scenario_name == task["spec"]["scenario"]["name"]
    assert len(workload.hooks) == len(task["spec"].get("hooks", []))
    assert task["apiVersion"] == f"{crd.GROUP}/{crd.VERSION}"


def test_rally_hooks_example_is_rallys():
    (task,) = [d for _, d in _example_tasks() if d["metadata"]["name"] == "rally-hooks"]
    spec = task["spec"]
    assert spec["scenario"] == {"name": "Dummy.dummy", "args": {"sleep": 0.01}}
    assert spec["runner"] == {"type": "constant", "times": 1500, "concurrency": 1}
    (hook,) = spec["hooks"]
    assert (hook["name"], hook["args"]) == ("sys_call", "/bin/echo 123")
    assert hook["trigger"] == {
        "name": "event",
        "args": {"unit": "iteration", "at": [5, 50, 200, 1000]},
    }


def test_trigger_examples_use_their_trigger():
    tasks = {d["metadata"]["name"]: d["spec"] for _, d in _example_tasks()}
    time_triggers = [h["trigger"] for h in tasks["time-trigger"]["hooks"]]
    assert time_triggers and all(
        t["name"] == "event" and t["args"]["unit"] == "time" for t in time_triggers
    )
    assert {h["trigger"]["name"] for h in tasks["periodic-trigger"]["hooks"]} == {"periodic"}


def test_disruption_example_grants_its_hook_what_the_command_needs():
    docs = _kustomize(EXAMPLES / "disruption")
    task = _one(docs, "BenchmarkTask")
    (hook,) = task["spec"]["hooks"]
    account = hook["job"]["serviceAccountName"]
    # Opted in by the namespace's admin: the operator refuses any other named account.
    annotations = _one(docs, "ServiceAccount", account)["metadata"]["annotations"]
    assert annotations == {"krally.dev/hooks": "allowed"}
    binding = _one(docs, "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]
    role = _one(docs, "Role", binding["roleRef"]["name"])
    (rule,) = role["rules"]
    assert (rule["apiGroups"], rule["resources"]) == ([""], ["pods"])
    assert set(rule["verbs"]) == {"get", "list", "delete"}
    assert "kubectl delete" in hook["args"] and "-l app=db" in hook["args"]
    # No namespace is baked in: `kubectl apply -n NS -k` puts all of it in one namespace.
    assert all("namespace" not in d["metadata"] for d in docs)


def test_image_kubectl_matches_the_tested_kubernetes_version():
    # kubectl in the image (for sys_call hooks) is the release the e2e tests run against.
    pinned = re.findall(r"^ARG KUBERNETES_VERSION=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    tested = (ROOT / "tests" / "cluster" / "KUBERNETES_VERSION").read_text().strip()
    assert pinned == [tested]


def test_pod_kill_example_grants_exactly_what_krally_rbac_prints():
    from krally.kube import rbac
    from krally.task import plugin
    from krally.task.loader import load_task

    plugin.load_builtin_plugins()
    path = EXAMPLES / "pod-kill-impact" / "benchmarktask.yaml"
    printed = rbac.documents(rbac.render_file(path, load_task(str(path))))
    docs = _kustomize(EXAMPLES / "pod-kill-impact")
    task = _one(docs, "BenchmarkTask")
    (hook,) = task["spec"]["hooks"]
    assert hook["name"] == "kube.pod_kill"
    account = hook["job"]["serviceAccountName"]
    assert _one(printed, "ServiceAccount")["metadata"]["name"] == account
    annotations = _one(docs, "ServiceAccount", account)["metadata"]["annotations"]
    assert annotations == {"krally.dev/hooks": "allowed"}
    binding = _one(docs, "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]
    role = _one(docs, "Role", binding["roleRef"]["name"])
    assert role["rules"] == _one(printed, "Role")["rules"]
    assert not [d for d in printed if d["kind"].startswith("Cluster")]
    # The target: 3 replicas of krally's image behind a Service, a PDB keeping 2.
    deployment = _one(docs, "Deployment", "web")
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["krally", "demo-server"]
    assert _one(docs, "PodDisruptionBudget", "web")["spec"]["minAvailable"] == 2
    assert "web" in task["spec"]["scenario"]["args"]["url"]
    assert all("namespace" not in d["metadata"] for d in docs)


def test_schedule_example_is_valid():
    import jsonschema

    from krally.api.schedule_schema import SCHEDULE_SPEC_SCHEMA
    from krally.schedule import parse_schedule
    from krally.task.loader import load_task

    (doc,) = [d for _, d in _example_documents() if d["kind"] == "BenchmarkSchedule"]
    spec = doc["spec"]
    jsonschema.validate(spec, SCHEDULE_SPEC_SCHEMA)
    parse_schedule(spec["schedule"], spec["timeZone"])
    task = {"apiVersion": doc["apiVersion"], "kind": "BenchmarkTask",
            "metadata": {"name": "x"}, "spec": spec["taskTemplate"]["spec"]}  # fmt: skip
    (workload,) = load_task("nightly-schedule.yaml", text=yaml.safe_dump(task)).workloads
    assert [h.action_name for h in workload.hooks] == ["kube.pod_kill"]
