"""Proofs that the test control plane is the real thing (issue 3), and that the process node
behaves like a kubelet where krally depends on it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.cluster import Cluster, ClusterError, start
from tests.cluster import wait_for as wait_until
from tests.cluster.controlplane import kill_marked_processes

pytestmark = pytest.mark.cluster

Apply = Callable[..., str]
WaitFor = Callable[..., Any]


def get(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    args = ["get", kind, name, "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    return json.loads(cluster.kubectl(*args).stdout)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == "True":
            return dict(cond)
    return None


def job_pod(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "json")
    pods = json.loads(out.stdout)["items"]
    assert len(pods) == 1, f"expected one pod of job {job}, got {len(pods)}"
    return dict(pods[0])


def job_yaml(name: str, script: str, backoff: int = 0) -> str:
    return f"""
        apiVersion: batch/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          backoffLimit: {backoff}
          template:
            spec:
              restartPolicy: Never
              containers:
              - name: main
                image: ignored-by-the-process-node
                command: ["sh", "-c", {json.dumps(script)}]
        """


CRD = """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.proofs.krally.test}
    spec:
      group: proofs.krally.test
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
      - name: v1
        served: true
        storage: true
        subresources: {status: {}}
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                required: [times]
                properties:
                  times: {type: integer, minimum: 1}
              status:
                type: object
                properties:
                  phase: {type: string}
    """


def test_crd_established_validated_with_status_subresource(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml(CRD)
    try:
        wait_for(
            lambda: condition(get(cluster, "crd", "widgets.proofs.krally.test"), "Established"),
            message="CRD widgets.proofs.krally.test Established",
        )
        widget = "apiVersion: proofs.krally.test/v1\nkind: Widget\nmetadata: {name: w}\n"
        apply_yaml(widget + "spec: {times: 2}\n", namespace)

        bad = cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", input=widget + "spec: {times: 0}\n", check=False
        )
        assert bad.returncode != 0
        assert "spec.times" in bad.stderr and "greater than or equal to 1" in bad.stderr

        patch = '{"status": {"phase": "Done"}}'
        cluster.kubectl(
            "patch", "widget", "w", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", patch,
        )  # fmt: skip
        assert get(cluster, "widget", "w", namespace)["status"] == {"phase": "Done"}
        # With a status subresource, a write to the main resource leaves status alone.
        cluster.kubectl(
            "patch", "widget", "w", "-n", namespace, "--type=merge",
            "-p", '{"spec": {"times": 3}, "status": {"phase": "Ignored"}}',
        )  # fmt: skip
        current = get(cluster, "widget", "w", namespace)
        assert current["spec"]["times"] == 3
        assert current["status"] == {"phase": "Done"}
    finally:
        cluster.kubectl("delete", "crd", "widgets.proofs.krally.test", "--wait=false")


def test_job_pod_runs_on_process_node_and_job_completes(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml(job_yaml("ok", "echo hello from $HOSTNAME; printf done > /dev/termination-log"),
               namespace)  # fmt: skip
    job = wait_for(
        lambda: (
            condition(get(cluster, "job", "ok", namespace), "Complete")
            and get(cluster, "job", "ok", namespace)
        ),
        message="Job ok Complete",
    )
    assert job["status"]["succeeded"] == 1
    pod = job_pod(cluster, namespace, "ok")
    assert pod["spec"]["nodeName"] == cluster.node_name
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["startTime"]
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    assert terminated["message"] == "done"
    assert terminated["startedAt"] <= terminated["finishedAt"]
    hello = f"hello from {pod['metadata']['name']}"
    assert hello in cluster.pod_log(namespace, pod["metadata"]["name"])
    # The node serves the kubelet's containerLogs endpoint, so `kubectl logs` works.
    assert cluster.kubectl("logs", "job/ok", "-n", namespace).stdout.strip() == hello


def test_failing_command_fails_job_with_exit_code_and_message(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml(job_yaml("bad", "echo 'disk full' > /dev/termination-log; exit 3"), namespace)
    failed = wait_for(
        lambda: condition(get(cluster, "job", "bad", namespace), "Failed"),
        message="Job bad Failed",
    )
    assert failed["reason"] == "BackoffLimitExceeded"
    pod = job_pod(cluster, namespace, "bad")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"
    assert terminated["message"].strip() == "disk full"


def test_deleting_owner_garbage_collects_owned_job(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owner}\n", namespace)
    owner_uid = get(cluster, "configmap", "owner", namespace)["metadata"]["uid"]
    owned = job_yaml("owned", "sleep 60").replace(
        "metadata: {name: owned}",
        "metadata:\n          name: owned\n          ownerReferences: "
        f"[{{apiVersion: v1, kind: ConfigMap, name: owner, uid: {owner_uid}}}]",
    )
    apply_yaml(owned, namespace)
    wait_for(lambda: job_pod(cluster, namespace, "owned"), message="the owned Job's pod")
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)

    def job_gone() -> bool:
        out = cluster.kubectl("get", "job", "owned", "-n", namespace, check=False)
        return out.returncode != 0 and "NotFound" in out.stderr

    wait_for(job_gone, timeout=60, message="the garbage collector to delete Job owned")

    def pods_gone() -> bool:
        out = cluster.kubectl("get", "pods", "-n", namespace, "-o", "name")
        return out.stdout.strip() == ""

    wait_for(pods_gone, timeout=60, message="the owned Job's pod to be deleted")


def test_service_account_rbac_is_enforced(
    cluster: Cluster, namespace: str, apply_yaml: Apply
) -> None:
    apply_yaml(
        f"""
        apiVersion: v1
        kind: ServiceAccount
        metadata: {{name: reader}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {{name: read-configmaps}}
        rules:
        - {{apiGroups: [""], resources: [configmaps], verbs: [get, list]}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {{name: reader}}
        roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-configmaps}}
        subjects: [{{kind: ServiceAccount, name: reader, namespace: {namespace}}}]
        """,
        namespace,
    )
    token = cluster.token_for(namespace, "reader")

    def can_i(*args: str) -> str:
        out = cluster.kubectl("auth", "can-i", *args, "-n", namespace, token=token, check=False)
        return out.stdout.strip()

    assert can_i("list", "configmaps") == "yes"
    assert can_i("create", "jobs.batch") == "no"
    user = f"system:serviceaccount:{namespace}:reader"
    assert cluster.kubectl("auth", "whoami", "-o", "json", token=token).stdout.count(user) == 1

    import kubernetes.client
    from kubernetes.client.exceptions import ApiException

    with cluster.api_client(token) as client:
        core = kubernetes.client.CoreV1Api(client)
        names = [cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items]
        assert "kube-root-ca.crt" in names
        with pytest.raises(ApiException) as denied:
            core.list_namespaced_secret(namespace)
    assert denied.value.status == 403


def test_restricted_namespace_rejects_privileged_pod(cluster: Cluster, apply_yaml: Apply) -> None:
    namespace = cluster.create_namespace(
        labels={"pod-security.kubernetes.io/enforce": "restricted"}
    )
    try:
        pod = """
            apiVersion: v1
            kind: Pod
            metadata: {name: privileged}
            spec:
              containers:
              - name: main
                image: none
                command: ["true"]
                securityContext: {privileged: true}
            """
        out = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=pod, check=False)
        assert out.returncode != 0
        assert 'violates PodSecurity "restricted:latest"' in out.stderr
        assert "privileged" in out.stderr
    finally:
        cluster.delete_namespace(namespace)


def pod_yaml(
    name: str, command: list[str], account: str = "default", extra: str = "", container: str = ""
) -> str:
    return f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}, labels: {{app: proof}}}}
        spec:
          serviceAccountName: {account}
          restartPolicy: Never
          {extra}
          containers:
          - name: main
            image: none
            terminationMessagePolicy: FallbackToLogsOnError
            command: {json.dumps(command)}
            {container}
        """


def finished_pod(cluster: Cluster, namespace: str, name: str, wait_for: WaitFor) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        pod = get(cluster, "pod", name, namespace)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    return dict(wait_for(done, message=f"pod {name} to finish"))


def test_pod_process_acts_as_its_service_account(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml(
        f"""
        apiVersion: v1
        kind: ServiceAccount
        metadata: {{name: reader}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {{name: read-configmaps}}
        rules:
        - {{apiGroups: [""], resources: [configmaps], verbs: [list]}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {{name: reader}}
        roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-configmaps}}
        subjects: [{{kind: ServiceAccount, name: reader, namespace: {namespace}}}]
        """,
        namespace,
    )
    kubectl = str(cluster.bindir / "kubectl")
    apply_yaml(pod_yaml("allowed", [kubectl, "get", "configmaps", "-o", "name"], "reader"),
               namespace)  # fmt: skip
    apply_yaml(pod_yaml("denied", [kubectl, "get", "configmaps"]), namespace)
    # The ordinary in-cluster configuration works too (token and CA mounted at the usual path).
    incluster = (
        "from kubernetes import client, config; config.load_incluster_config(); "
        f"print([c.metadata.name for c in client.CoreV1Api().list_namespaced_config_map("
        f"{namespace!r}).items])"
    )
    apply_yaml(pod_yaml("incluster", ["python3", "-c", incluster], "reader"), namespace)

    allowed = finished_pod(cluster, namespace, "allowed", wait_for)
    assert allowed["status"]["phase"] == "Succeeded", cluster.pod_log(namespace, "allowed")
    assert "configmap/kube-root-ca.crt" in cluster.pod_log(namespace, "allowed")

    denied = finished_pod(cluster, namespace, "denied", wait_for)
    assert denied["status"]["phase"] == "Failed"
    message = denied["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert f'"system:serviceaccount:{namespace}:default" cannot list resource' in message

    pod = finished_pod(cluster, namespace, "incluster", wait_for)
    assert pod["status"]["phase"] == "Succeeded", cluster.pod_log(namespace, "incluster")
    assert "kube-root-ca.crt" in cluster.pod_log(namespace, "incluster")


def test_pod_env_fields_and_variable_expansion(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    script = 'printf "%s|%s|%s|%s" "$GREETING" "$POD" "$NS" "$KUBERNETES_SERVICE_HOST" ' \
             "> /dev/termination-log"  # fmt: skip
    pod = f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: env}}
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: none
            command: ["sh", "-c", {json.dumps(script)}]
            env:
            - {{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
            - {{name: NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
            - {{name: GREETING, value: "hi $(POD)"}}
        """
    apply_yaml(pod, namespace)
    done = finished_pod(cluster, namespace, "env", wait_for)
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["message"] == f"hi env|env|{namespace}|127.0.0.1"
    conditions = {c["type"]: c for c in done["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "PodCompleted"
    assert conditions["PodScheduled"]["status"] == "True"


def test_pod_starts_promptly_and_deletion_kills_its_process_group(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    # A shell with a background child: the whole process group must go.
    script = "sleep 300 & echo $! > child.pid; wait"
    created = time.monotonic()
    apply_yaml(pod_yaml("sleeper", ["sh", "-c", script]), namespace)

    def running() -> dict[str, Any] | None:
        pod = get(cluster, "pod", "sleeper", namespace)
        return pod if pod["status"].get("phase") == "Running" else None

    pod = wait_for(running, message="pod sleeper Running", interval=0.05)
    assert time.monotonic() - created < 10
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True and "running" in status["state"]
    assert condition(pod, "Ready") and condition(pod, "ContainersReady")
    pid = int(status["containerID"].removeprefix("process://"))
    child_file = cluster.workdir / "node" / "pods" / namespace / "sleeper" / "child.pid"
    child = int(wait_for(lambda: child_file.read_text().strip(), message="child pid written"))
    assert os.getpgid(child) == pid

    cluster.kubectl("delete", "pod", "sleeper", "-n", namespace, "--timeout=60s")
    for gone in (pid, child):
        wait_for(lambda p=gone: not os.path.exists(f"/proc/{p}"), timeout=10,
                 message=f"process {gone} to end")  # fmt: skip


def test_active_deadline_fails_pod(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml(pod_yaml("slow", ["sleep", "60"], extra="activeDeadlineSeconds: 1"), namespace)
    pod = finished_pod(cluster, namespace, "slow", wait_for)
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143


def test_bad_pods_are_start_errors_and_do_not_stop_the_node(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml(pod_yaml("missing", ["no-such-command"]), namespace)
    env = "env: [{name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}]"
    unsupported = pod_yaml("unsupported", ["true"], container=env)
    apply_yaml(unsupported, namespace)
    for name, text in (
        ("missing", 'exec: "no-such-command": executable file not found'),
        ("unsupported", "valueFrom ['resourceFieldRef'] is not supported"),
    ):
        pod = finished_pod(cluster, namespace, name, wait_for)
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert pod["status"]["phase"] == "Failed"
        assert terminated["reason"] == "StartError"
        assert text in terminated["message"]
    apply_yaml(pod_yaml("fine", ["true"]), namespace)
    assert finished_pod(cluster, namespace, "fine", wait_for)["status"]["phase"] == "Succeeded"
    cluster.check()


def test_pod_not_matching_the_node_selector_stays_pending_unschedulable(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    nowhere = pod_yaml("nowhere", ["true"], extra='nodeSelector: {krally.dev/nowhere: "true"}')
    apply_yaml(nowhere, namespace)
    # A selector the node's labels match is bound and runs as before.
    here = pod_yaml("here", ["true"], extra="nodeSelector: {kubernetes.io/os: linux}")
    apply_yaml(here, namespace)

    def unschedulable() -> dict[str, Any] | None:
        pod = get(cluster, "pod", "nowhere", namespace)
        conditions = {c["type"]: c for c in pod["status"].get("conditions") or []}
        scheduled = conditions.get("PodScheduled") or {}
        return pod if scheduled.get("status") == "False" else None

    pod = wait_for(unschedulable, message="pod nowhere PodScheduled=False")
    assert finished_pod(cluster, namespace, "here", wait_for)["status"]["phase"] == "Succeeded"
    (scheduled,) = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled["reason"] == "Unschedulable"
    assert scheduled["message"] == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    )
    assert scheduled["lastTransitionTime"]
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")
    assert not pod["status"].get("containerStatuses")
    # Written once: the node does not patch it again on its own status change (or ever).
    time.sleep(1.5)
    later = get(cluster, "pod", "nowhere", namespace)
    assert later["metadata"]["resourceVersion"] == pod["metadata"]["resourceVersion"]
    assert not later["spec"].get("nodeName")
    # An unbound pod is deleted at once (no kubelet to wait for).
    cluster.kubectl("delete", "pod", "nowhere", "-n", namespace, "--timeout=30s")
    cluster.check()


def test_deployment_pod_runs_and_becomes_available(
    cluster: Cluster, namespace: str, apply_yaml: Apply, wait_for: WaitFor
) -> None:
    apply_yaml(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          replicas: 1
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - {name: main, image: none, command: [sleep, "300"]}
        """,
        namespace,
    )

    def available() -> bool:
        status = get(cluster, "deployment", "web", namespace).get("status", {})
        return status.get("availableReplicas") == 1

    wait_for(available, message="Deployment web available")
    # The aggregated built-in roles have their rules (clusterrole-aggregation-controller).
    view = get(cluster, "clusterrole", "view")
    assert view.get("rules"), "ClusterRole view has no aggregated rules"


def test_harness_reports_a_dead_component_and_leaves_nothing_behind() -> None:
    # A second, private cluster: this one is broken on purpose.
    with start(node="process", node_name="doomed-node") as doomed:
        doomed.kubectl("run", "sleeper", "--image=none", "--command", "--", "sh", "-c",
                       "sleep 300 & wait")  # fmt: skip
        wait_until(
            lambda: "Running" in doomed.kubectl("get", "pod", "sleeper").stdout,
            message="pod sleeper Running on the doomed cluster",
        )
        kcm = next(c for c in doomed.components if c.name == "kube-controller-manager")
        assert kcm.proc is not None
        kcm.proc.kill()
        kcm.proc.wait()
        with pytest.raises(ClusterError) as died:
            doomed.check()
        report = str(died.value)
        assert "kube-controller-manager (exited with -9)" in report
        assert "----- kube-apiserver (pid" in report  # every component's log tail follows
        workdir = doomed.workdir
    assert not workdir.exists()
    assert kill_marked_processes(doomed.id) == [], "processes left after stop()"
