"""What only a real node shows: the image, the node's identity, pod networking and Services,
memory limits, the shipped install, and that the node leaks no traffic and leaves nothing behind.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster import Cluster, images, start
from tests.cluster.controlplane import kill_marked_processes
from tests.e2e.support import Operator, dummy_spec, sys_call, task_yaml, wait_phase

pytestmark = pytest.mark.cluster

RESTRICTED = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def pod(name: str, script: str, image: str = images.KRALLY_REF, **spec: Any) -> dict[str, Any]:
    """A restricted pod that runs `script` with sh in an image (no runAsUser: the image's)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": RESTRICTED,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "securityContext": CONTAINER_RESTRICTED,
                    **spec.pop("container", {}),
                }
            ],
            **spec,
        },
    }


def run_pod(cluster: Cluster, ns: str, body: dict[str, Any], wait_for: Any) -> tuple[str, str]:
    """Create a pod, wait until it ends; (phase, log)."""
    name = body["metadata"]["name"]
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body))

    def ended() -> str | None:
        phase = cluster.kubectl(
            "get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}"
        ).stdout
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(ended, timeout=90, message=f"pod {name} finished")
    return phase, cluster.pod_log(ns, name)


@pytest.fixture
def restricted(cluster: Cluster, namespace: str) -> str:
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    return namespace


# -- the image ---------------------------------------------------------------------------------


def test_image_runs_krally_and_kubectl_as_65532_on_a_read_only_root(
    cluster: Cluster, restricted: str, wait_for: Any
) -> None:
    script = (
        "krally --version; kubectl version --client; echo uid=$(id -u) gid=$(id -g); "
        "touch /probe 2>/dev/null && echo root-writable || echo root-read-only; "
        "touch /tmp/probe && echo tmp-writable"
    )
    body = pod(
        "smoke",
        script,
        container={"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]},
        volumes=[{"name": "tmp", "emptyDir": {}}],
    )
    phase, log = run_pod(cluster, restricted, body, wait_for)
    assert phase == "Succeeded", log
    assert "krally 0.1.0" in log
    assert f"Client Version: {cluster.version}" in log
    assert "uid=65532 gid=65532" in log
    assert "root-read-only" in log and "tmp-writable" in log


def test_pods_use_in_cluster_config_through_the_kubernetes_service(
    cluster: Cluster, restricted: str, wait_for: Any
) -> None:
    assert cluster.net is not None
    script = (
        'echo "service=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; python3 -c "'
        "from kubernetes import client, config; config.load_incluster_config(); "
        "print('server', client.VersionApi().get_code().git_version)\""
    )
    phase, log = run_pod(cluster, restricted, pod("incluster", script), wait_for)
    assert phase == "Succeeded", log
    assert f"service={cluster.net.kubernetes_service_ip}:443" in log
    assert f"server {cluster.version}" in log


# -- the node's identity -----------------------------------------------------------------------


def test_kubelet_acts_as_its_node_identity_restricted_by_node_authorizer(
    cluster: Cluster,
) -> None:
    kubeconfig = cluster.workdir / "node" / "kubelet.kubeconfig"

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(cluster.bindir / "kubectl"), f"--kubeconfig={kubeconfig}", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    who = kubectl("auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    user = json.loads(who.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:node:{cluster.node_name}"
    assert "system:nodes" in user["groups"]
    # Its own node: yes. Another node (NodeRestriction) and Secrets of no pod of its: no.
    cluster.kubectl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "someone-else"}}
    ))  # fmt: skip
    try:
        own = kubectl("label", "node", cluster.node_name, "krally.dev/probe=yes", "--overwrite")
        assert own.returncode == 0, own.stderr
        other = kubectl("label", "node", "someone-else", "krally.dev/probe=yes")
        assert other.returncode != 0 and "forbidden" in other.stderr.lower(), other.stderr
        secrets = kubectl("get", "secrets", "-A")
        assert secrets.returncode != 0 and "forbidden" in secrets.stderr.lower()
    finally:
        cluster.kubectl("delete", "node", "someone-else", "--wait=false", check=False)
        cluster.kubectl("label", "node", cluster.node_name, "krally.dev/probe-", check=False)


# -- networking --------------------------------------------------------------------------------


def test_no_traffic_can_leave_the_machine(cluster: Cluster, restricted: str, wait_for: Any) -> None:
    net = cluster.net
    assert net is not None
    # The node's namespace has no default route: nothing there can reach beyond the machine.
    node_routes = subprocess.run(
        ["ip", "-n", net.netns, "-4", "route"], capture_output=True, text=True, check=True
    ).stdout
    assert "default" not in node_routes, node_routes
    assert f"{net.service_cidr} dev cni0" in node_routes
    # The host sends the pod and Service CIDRs into the veth, never to its own default route.
    for cidr in (net.pod_cidr, net.service_cidr):
        route = subprocess.run(
            ["ip", "-4", "route", "show", cidr], capture_output=True, text=True, check=True
        ).stdout
        assert f"via {net.node_link_ip} dev {net.host_veth}" in route, route
    # From a pod: another address fails at once (no route, so no packet is sent); a ClusterIP
    # that kube-proxy does not translate fails on the bridge; there is no DNS server at all.
    unused_cluster_ip = net.service_cidr.replace("0/24", "250")
    script = f"""python3 - <<'EOF'
import errno, socket
def attempt(address):
    s = socket.socket(); s.settimeout(5)
    try:
        s.connect((address, 80)); return "connected"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))
print("outside", attempt("203.0.113.7"))
print("untranslated", attempt("{unused_cluster_ip}"))
print("nameservers", [l for l in open("/etc/resolv.conf") if l.startswith("nameserver")])
EOF"""
    phase, log = run_pod(cluster, restricted, pod("egress", script), wait_for)
    assert phase == "Succeeded", log
    assert "outside ENETUNREACH" in log
    assert any(f"untranslated {e}" in log for e in ("EHOSTUNREACH", "timed out")), log
    assert "nameservers []" in log


def test_a_hook_reaches_a_service(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    web = pod(
        "web", "cd /tmp && echo hello-from-web > index.html && exec python3 -m http.server 8080"
    )
    web["spec"]["restartPolicy"] = "Always"
    web["spec"]["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    web["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all([web, service]))
    cluster.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/web", "--timeout=60s")
    ip = cluster.kubectl("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    fetch = f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{ip}/').read().decode())\""
    spec = dummy_spec(20, 0.05, [sys_call(fetch, "event", unit="iteration", at=[5])])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("fetch", spec))
    status = wait_phase(cluster, ns, "fetch", {"Succeeded", "Failed"}, wait_for, 120)
    result = status["hooks"][0]["results"][0]
    assert result["status"] == "success", result
    assert "hello-from-web" in json.dumps(result.get("output")), result


# -- images and limits -------------------------------------------------------------------------


def test_a_hook_runs_in_the_image_it_names(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    marker = "cat /usr/share/krally-alt/marker"
    alt = sys_call(marker, "event", unit="iteration", at=[3])
    alt["job"] = {"image": images.ALT_REF}
    default = sys_call(marker, "event", unit="iteration", at=[3])
    spec = dummy_spec(10, 0.05, [alt, default])
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("images", spec))
    status = wait_phase(cluster, ns, "images", {"Succeeded", "Failed"}, wait_for, 120)
    in_alt, in_default = (h["results"][0] for h in status["hooks"])
    assert in_alt["status"] == "success", in_alt
    assert "alt image" in json.dumps(in_alt.get("output"))
    assert in_default["status"] == "failed", in_default  # the default image has no such file
    pods = cluster.kubectl("get", "pods", "-n", ns, "-l", "krally.dev/role=hook", "-o", "json")
    hook_images = {p["spec"]["containers"][0]["image"] for p in json.loads(pods.stdout)["items"]}
    assert hook_images == {images.ALT_REF, images.KRALLY_REF}


def test_runner_oom_killed_by_its_memory_limit_fails_keeping_progress(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    spec = {
        "scenario": {"name": "KrallyTest.keep_memory", "args": {"megabytes": 2, "sleep": 0.1}},
        "runner": {"type": "constant", "times": 100000, "concurrency": 1},
        # The alt image carries the test-only scenario plugin (KRALLY_PLUGIN_PATH).
        "runnerPod": {
            "image": images.ALT_REF,
            "resources": {"limits": {"memory": "160Mi"}, "requests": {"memory": "160Mi"}},
        },
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("hungry", spec))
    status = wait_phase(cluster, ns, "hungry", {"Succeeded", "Failed", "Aborted"}, wait_for, 180)
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "OOMKilled", failed
    assert "memory limit" in status["message"] and "160Mi" in status["message"]
    done = status["progress"]["done"]
    assert 0 < done < 100000, status["progress"]


# -- the shipped install -----------------------------------------------------------------------


def test_shipped_install_runs_a_task_from_its_deployment(
    cluster: Cluster, crd_installed: None, namespace: str, wait_for: Any
) -> None:
    # The shipped manifests, with the image set to the one built here (kustomize images).
    cluster.kubectl("apply", "-k", str(cluster.install_overlay()))
    try:
        cluster.kubectl(
            "rollout", "status", "-n", "krally-system", "deployment/krally-operator",
            "--timeout=120s",
        )  # fmt: skip
        cluster.kubectl(
            "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
        )
        # The webhook through its Service, in the cluster: a bad scenario argument is refused at
        # apply. Six tries, so a replica not serving it (fail-open) would let some through.
        bad = dummy_spec(1, 0, [])
        bad["scenario"]["args"] = {"sleep": -1}

        answers: list[str] = []

        def refused() -> bool:
            proc = cluster.kubectl(
                "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                input=task_yaml("bad", bad), check=False,
            )  # fmt: skip
            answers.append(proc.stderr or proc.stdout)
            return proc.returncode != 0 and "spec.scenario.args.sleep" in proc.stderr

        def operator_logs() -> str:
            return cluster.kubectl(
                "logs", "-n", "krally-system", "-l", "app.kubernetes.io/component=operator",
                "--tail=30", "--prefix", check=False,
            ).stdout  # fmt: skip

        try:
            wait_for(refused, timeout=60, message="the webhook refuses sleep: -1")
        except Exception as exc:
            raise AssertionError(f"{exc}; last answer {answers[-1:]}\n{operator_logs()}") from exc
        assert all(refused() for _ in range(6)), "some replica does not serve the webhook"
        spec = dummy_spec(30, 0.02, [sys_call("/bin/echo 123", "event", unit="iteration", at=[5])])
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=task_yaml("shipped", spec))
        status = wait_phase(cluster, namespace, "shipped", {"Succeeded", "Failed"}, wait_for, 150)
        assert status["phase"] == "Succeeded", status.get("message")
        assert status["hooks"][0]["summary"] == {"success": 1}
        # The probes held: both operator pods (leader and follower) are Ready, never restarted.
        operator_pods = json.loads(
            cluster.kubectl(
                "get",
                "pods",
                "-n",
                "krally-system",
                "-l",
                "app.kubernetes.io/component=operator",
                "-o",
                "json",
            ).stdout
        )["items"]
        assert len(operator_pods) == 2
        for pod_ in operator_pods:
            container = pod_["status"]["containerStatuses"][0]
            assert container["ready"] and container["restartCount"] == 0, container
        # One of them holds the Lease, under its pod name (downward API), with the shipped Role.
        lease = json.loads(
            cluster.kubectl(
                "get", "lease", "krally-operator", "-n", "krally-system", "-o", "json"
            ).stdout
        )["spec"]
        holder = lease["holderIdentity"].rsplit("_", 1)[0]
        assert holder in {p["metadata"]["name"] for p in operator_pods}, lease
        operator_pod = operator_pods[0]
        spec = operator_pod["spec"]["containers"][0]
        assert spec["image"] == images.KRALLY_REF
        env = {e["name"]: e.get("value") for e in spec["env"]}
        # kustomize's replacements carry the set image into the runner and hook defaults.
        assert env["KRALLY_RUNNER_IMAGE"] == env["KRALLY_HOOK_IMAGE"] == images.KRALLY_REF
    finally:
        # The all-namespaces operator must not outlive this test (others run their own).
        cluster.kubectl("delete", "bt", "--all", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "namespace", "krally-system", "--timeout=60s", check=False)
        # Persistent (kept when an operator stops): it goes with the install.
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, "krally.dev", "--ignore-not-found", check=False)


# -- tear-down -----------------------------------------------------------------------------------


def test_tear_down_leaves_nothing_on_the_host(wait_for: Any) -> None:
    # A second, private real node (another slot), with a running pod when it is stopped.
    doomed = start(node="real", node_name="doomed-node")
    try:
        net, workdir = doomed.net, doomed.workdir
        assert net is not None
        body = pod("sleeper", "sleep 300")
        doomed.kubectl("apply", "-f", "-", input=json.dumps(body))
        doomed.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=60s")
        assert doomed.host_leftovers(), "a running node shows up in the leftovers check"
    finally:
        doomed.stop()
    time.sleep(0.2)
    from tests.cluster import realnode

    assert realnode.host_leftovers(net, workdir) == []
    assert not workdir.exists()
    assert kill_marked_processes(doomed.id) == [], "processes left after stop()"
    assert realnode.pids_in_netns(net.netns_path) == []
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    assert forward == HOST_IP_FORWARD, "the host's ip_forward changed"


HOST_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
