"""The pure builders of krally.kube.operator.builders: names, labels, owners, security, RBAC."""

from __future__ import annotations

import json

import pytest

from krally.api import names
from krally.kube.operator import builders as kjobs
from krally.kube.operator.settings import Settings

SETTINGS = Settings(runner_image="img/runner:1", hook_image="img/hook:1")


def make_task(name: str = "rally-hooks", **spec: object) -> dict:
    base = {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
        "runner": {"type": "constant", "times": 10},
        "hooks": [
            {
                "name": "sys_call",
                "args": "/bin/echo 123",
                "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5]}},
            }
        ],
    }
    base.update(spec)
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": name, "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": base,
    }


def env_of(job: dict) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_names_are_deterministic_and_short() -> None:
    assert kjobs.runner_name("t") == "krally-t-runner"
    assert kjobs.hook_job_name("t", 0, "iteration", 1000) == "t-h0-i1000"
    assert kjobs.hook_job_name("t", 2, "time", 30) == "t-h2-t30"
    assert kjobs.hook_job_name("t", 0, "iteration", 5) == kjobs.hook_job_name(
        "t", 0, "iteration", 5
    )
    long = "x" * 250
    for name in (
        kjobs.runner_name(long),
        kjobs.hook_job_name(long, 99, "iteration", 123456789),
    ):
        assert len(name) <= 63
        assert name[0].isalnum() and name[-1].isalnum()
    # Two long names with the same prefix stay distinct.
    assert kjobs.runner_name("a" * 70 + "1") != kjobs.runner_name("a" * 70 + "2")
    assert kjobs.hook_job_name(long, 0, "iteration", 1) != kjobs.hook_job_name(
        long, 0, "iteration", 2
    )


def test_runner_job_shape() -> None:
    task = make_task(runnerPod={"image": "custom:2", "timeoutSeconds": 900})
    job = kjobs.runner_job(task, SETTINGS)
    meta = job["metadata"]
    assert meta["name"] == "krally-rally-hooks-runner" and meta["namespace"] == "ns"
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "krally",
        "krally.dev/task": "rally-hooks",
        "krally.dev/role": "runner",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "krally.dev/v1alpha1",
            "kind": "BenchmarkTask",
            "name": "rally-hooks",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 900
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "krally-rally-hooks-runner"
    container = pod["containers"][0]
    assert container["image"] == "custom:2"
    assert container["command"] == ["krally", "runner"]
    env = env_of(job)
    assert json.loads(env["KRALLY_SPEC"]) == task["spec"]
    assert env["KRALLY_TASK_NAME"] == "rally-hooks" and env["KRALLY_TASK_NAMESPACE"] == "ns"
    assert spec["template"]["metadata"]["labels"] == meta["labels"]


def test_runner_job_defaults() -> None:
    job = kjobs.runner_job(make_task(), SETTINGS)
    assert "activeDeadlineSeconds" not in job["spec"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "img/runner:1"


@pytest.mark.parametrize("builder", [kjobs.runner_job, None])
def test_pods_pass_restricted_pod_security(builder: object) -> None:
    task = make_task()
    job = (
        kjobs.runner_job(task, SETTINGS)
        if builder
        else kjobs.hook_job(task, 0, {"eventType": "iteration", "value": 5}, SETTINGS)
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
    # restricted allows only these volume types
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= {"emptyDir", "configMap", "secret", "projected"}
    assert "hostNetwork" not in pod and "hostPID" not in pod


def test_hook_job_shape() -> None:
    task = make_task()
    task["spec"]["hooks"][0]["job"] = {
        "image": "tools:1",
        "serviceAccountName": "chaos",
        "timeoutSeconds": 30,
        "env": [{"name": "X", "value": "y"}],
    }
    firing = {"hook": 0, "eventType": "iteration", "value": 5, "firedAt": "2026-01-01T00:00:00Z"}
    job = kjobs.hook_job(task, 0, firing, SETTINGS, created_at="2026-01-01T00:00:00.010Z")
    meta = job["metadata"]
    assert meta["name"] == "rally-hooks-h0-i5"
    assert meta["labels"]["krally.dev/role"] == "hook"
    assert meta["labels"]["krally.dev/hook-index"] == "0"
    assert meta["labels"]["krally.dev/trigger-unit"] == "iteration"
    assert meta["labels"]["krally.dev/trigger-value"] == "5"
    assert meta["annotations"][names.ANNOTATION_CREATED_AT] == "2026-01-01T00:00:00.010Z"
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 30
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "chaos"
    container = pod["containers"][0]
    assert container["image"] == "tools:1"
    assert container["command"] == ["krally", "hook", "run"]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    env = env_of(job)
    payload = json.loads(env["KRALLY_HOOK"])
    assert payload["name"] == "sys_call" and payload["args"] == "/bin/echo 123"
    assert payload["triggeredBy"] == {"event_type": "iteration", "value": 5}
    assert env["X"] == "y"


def test_hook_job_defaults_from_operator_settings() -> None:
    settings = Settings.from_env({"KRALLY_IMAGE": "all:3", "KRALLY_HOOK_TIMEOUT": "42"})
    job = kjobs.hook_job(make_task(), 0, {"eventType": "time", "value": 0}, settings)
    assert job["spec"]["activeDeadlineSeconds"] == 42
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "all:3"
    # Not the namespace's default SA: the task's own, with no RoleBinding and no token.
    assert pod["serviceAccountName"] == "krally-rally-hooks-hooks"
    assert pod["automountServiceAccountToken"] is False


def test_runner_rbac_is_limited_to_its_own_task() -> None:
    task = make_task()
    role = kjobs.runner_role(task)
    assert role["rules"] == [
        {
            "apiGroups": ["krally.dev"],
            "resources": ["benchmarktasks/status"],
            "resourceNames": ["rally-hooks"],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": ["krally.dev"],
            "resources": ["benchmarktasks"],
            "resourceNames": ["rally-hooks"],
            "verbs": ["get"],
        },
    ]
    binding = kjobs.runner_role_binding(task)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "krally-rally-hooks-runner", "namespace": "ns"}
    ]
    sa = kjobs.runner_service_account(task)
    assert sa["metadata"]["name"] == "krally-rally-hooks-runner"
    for obj in (role, binding, sa):
        assert obj["metadata"]["ownerReferences"][0]["controller"] is True


def test_label_value() -> None:
    assert kjobs.label_value(1.5) == "1.5"
    assert kjobs.label_value("a b/c") == "a_b_c"
    assert len(kjobs.label_value("x" * 100)) == 63


# -- env from Secrets and ConfigMaps (valueFrom) ----------------------------------------------

SECRET_REF = {"secretKeyRef": {"name": "chaos-creds", "key": "token"}}
CONFIG_REF = {"configMapKeyRef": {"name": "chaos-conf", "key": "mode", "optional": True}}


def _user_env(container: dict) -> list[dict]:
    return [e for e in container["env"] if not e["name"].startswith(("KRALLY_", "PYTHON"))]


def test_hook_env_passes_value_from_through() -> None:
    task = make_task()
    task["spec"]["hooks"][0]["job"] = {
        "env": [
            {"name": "PLAIN", "value": "v"},
            {"name": "TOKEN", "valueFrom": SECRET_REF},
            {"name": "MODE", "valueFrom": CONFIG_REF},
        ]
    }
    job = kjobs.hook_job(task, 0, {"eventType": "iteration", "value": 5}, Settings())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert _user_env(container) == [
        {"name": "PLAIN", "value": "v"},
        {"name": "TOKEN", "valueFrom": SECRET_REF},
        {"name": "MODE", "valueFrom": CONFIG_REF},
    ]
    # The hook's payload carries no env (the hook pod logs and reports its payload's fields).
    (payload_text,) = [e["value"] for e in container["env"] if e["name"] == "KRALLY_HOOK"]
    payload = json.loads(payload_text)
    assert "env" not in json.dumps(payload) and "chaos-creds" not in json.dumps(payload)


def test_runner_env_from_runner_pod() -> None:
    task = make_task(runnerPod={"env": [{"name": "TOKEN", "valueFrom": SECRET_REF}]})
    job = kjobs.runner_job(task, Settings())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert _user_env(container) == [{"name": "TOKEN", "valueFrom": SECRET_REF}]
