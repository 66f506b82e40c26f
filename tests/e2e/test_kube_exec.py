"""``kube.exec`` needs a kubelet: on the real node, the hook (in-process, with exactly the rights
`krally rbac` prints: get pods, get and create pods/exec) runs commands in a restricted pod
through the API's exec subresource; a non-zero exit fails the hook with the command's stdout
and stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster import Cluster, images

from krally.kube import rbac
from krally.task.hook import Hook
from krally.task.loader import load_task

pytestmark = pytest.mark.cluster

TARGET = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "target", "labels": {"app": "target"}},
    "spec": {
        "terminationGracePeriodSeconds": 1,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "main",
                "image": images.KRALLY_REF,
                "imagePullPolicy": "Never",
                "command": ["sleep", "3600"],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    },
}


def grant(cluster: Cluster, ns: str, tmp_path: Path, config: dict[str, Any], bind: bool) -> Path:
    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "exec", "namespace": ns},
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "hooks": [
                {
                    "name": "kube.exec",
                    "args": config,
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1]}},
                }
            ],
        },
    }
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(task))
    account = "exec-disruptor" if bind else "exec-unbound"
    docs = rbac.documents(rbac.render_file(path, load_task(path), account))
    for doc in docs:
        if bind or not doc["kind"].endswith("Binding"):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))
    token = cluster.token_for(ns, account)
    return cluster.write_kubeconfig(tmp_path / f"kubeconfig-{account}", token=token, namespace=ns)


def fire(config: dict[str, Any]) -> dict[str, Any]:
    hook = Hook.get("kube.exec")(None, config, {"event_type": "iteration", "value": 1})
    hook.run_sync()
    result = hook.result()
    assert result is not None
    return result


def test_exec_runs_a_command_in_a_pod(
    cluster: Cluster, namespace: str, tmp_path: Path, wait_for: Any, monkeypatch: Any
) -> None:
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(TARGET))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/target", "--timeout=90s")
    for var in ("KUBERNETES_SERVICE_HOST", "KRALLY_TASK_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    failing = {"pod": "target", "command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}
    monkeypatch.setenv("KUBECONFIG", str(grant(cluster, namespace, tmp_path, failing, True)))

    result = fire({"pod": "target", "command": ["sh", "-c", "echo hello from $(id -u)"]})
    assert result["status"] == "success", result.get("error")
    ((pod, ns, container, _command, code, _at, seconds),) = result["output"]["complete"][0]["data"][
        "rows"
    ]
    assert (pod, ns, container, code) == ("target", namespace, "main", 0)
    assert isinstance(seconds, float)

    result = fire(failing)
    assert result["status"] == "failed"
    error = result["error"]
    assert error["etype"] == "CommandFailed" and "exited 3" in error["msg"]
    assert "stdout: out" in error["details"] and "stderr: err" in error["details"]

    unbound = grant(cluster, namespace, tmp_path, failing, False)
    monkeypatch.setenv("KUBECONFIG", str(unbound))
    result = fire(failing)
    assert result["error"]["etype"] == "Forbidden"
    assert f"cannot get pods in namespace {namespace}" in result["error"]["msg"]
