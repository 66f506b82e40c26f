"""End-to-end: identity and trust (issue 10) on the real node, with the shipped RBAC.

Who hooks run as (the task's own rightless ServiceAccount, or one its namespace's admin opted
in), which images may run, which objects a task may adopt, names that never share state, a
status patched by hand that cannot skip admission, and the namespace-scoped install. The API
server runs OwnerReferencesPermissionEnforcement, so every child created here (all carry
blockOwnerDeletion) also proves the operator's rules cover it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster import images
from tests.e2e.support import (
    OPERATOR_SA,
    ROOT,
    Operator,
    condition,
    dummy_spec,
    get_status,
    get_task,
    jobs,
    sys_call,
    task_yaml,
    wait_phase,
)

pytestmark = pytest.mark.cluster

DONE = {"Succeeded", "Failed", "Aborted"}
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def apply_task(cluster: Any, ns: str, name: str, spec: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml(name, spec))


def one_hook(command: str, **job: Any) -> dict[str, Any]:
    hook = sys_call(command, "event", unit="iteration", at=[3])
    if job:
        hook["job"] = job
    return dummy_spec(10, 0.02, [hook])


def hook_pods(cluster: Any, ns: str, task: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", "pods", "-n", ns, "-l", f"krally.dev/task={task},krally.dev/role=hook", "-o", "json"
    ).stdout
    return list(json.loads(out)["items"])


def refused(cluster: Any, ns: str, name: str, wait_for: Any, reason: str) -> str:
    status = wait_phase(cluster, ns, name, DONE, wait_for, 60)
    assert status["phase"] == "Failed", status
    assert condition(status, "Failed")["reason"] == reason, status
    assert jobs(cluster, ns, f"krally.dev/task={name},krally.dev/role=runner") == []
    return str(status["message"])


# -- who hooks run as ---------------------------------------------------------------------------


def test_a_hook_naming_no_account_runs_as_the_tasks_own_without_rights(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    # Unarmed: no token at all. (Armed, below: a token that may only read this task.)
    spec = {**one_hook(f"sh -c 'test ! -e {TOKEN} && echo no-token'"), "arming": {"enabled": False}}
    apply_task(cluster, ns, "plain", spec)
    status = wait_phase(cluster, ns, "plain", DONE, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "success" and "no-token" in json.dumps(result["output"]), result
    (pod,) = hook_pods(cluster, ns, "plain")
    assert pod["spec"]["serviceAccountName"] == "krally-plain-hooks"  # not `default`
    account = json.loads(
        cluster.kubectl("get", "sa", "krally-plain-hooks", "-n", ns, "-o", "json").stdout
    )
    (owner,) = account["metadata"]["ownerReferences"]
    assert owner["uid"] == get_task(cluster, ns, "plain")["metadata"]["uid"]
    as_hooks = f"system:serviceaccount:{ns}:krally-plain-hooks"
    for verb, resource in [("get", "pods"), ("delete", "pods"), ("list", "secrets")]:
        answer = cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", ns, as_user=as_hooks, check=False
        ).stdout.strip()
        assert answer == "no", (verb, resource)


def test_an_armed_hook_may_read_its_own_task_and_nothing_else(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    apply_task(cluster, ns, "armed", one_hook(f"sh -c 'test -e {TOKEN} && echo token'"))
    apply_task(cluster, ns, "neighbour", {**one_hook("true"), "arming": {"enabled": False}})
    status = wait_phase(cluster, ns, "armed", DONE, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    (result,) = status["hooks"][0]["results"]
    assert result["armed"] is True and "token" in json.dumps(result["output"]), result
    as_hooks = f"system:serviceaccount:{ns}:krally-armed-hooks"
    for verb, resource, allowed in [
        ("get", "benchmarktasks/armed", "yes"),
        ("watch", "benchmarktasks/armed", "yes"),
        ("get", "benchmarktasks/neighbour", "no"),
        ("patch", "benchmarktasks/armed", "no"),
        ("list", "benchmarktasks", "no"),  # a list of all of them: no
        ("get", "pods", "no"),
        ("list", "secrets", "no"),
    ]:
        answer = cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", ns, as_user=as_hooks, check=False
        ).stdout.strip()
        assert answer == allowed, (verb, resource, answer)


def test_a_named_account_must_exist_and_be_opted_in_by_the_admin(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    # `plain` exists but its admin never opted it in; `chaos` is opted in and may list pods.
    cluster.kubectl("create", "serviceaccount", "plain", "-n", ns)
    cluster.kubectl("create", "serviceaccount", "chaos", "-n", ns)
    cluster.kubectl("annotate", "serviceaccount", "chaos", "-n", ns, "krally.dev/hooks=allowed")
    cluster.kubectl("create", "role", "chaos", "-n", ns, "--verb=list", "--resource=pods")
    cluster.kubectl(
        "create", "rolebinding", "chaos", "-n", ns, "--role=chaos",
        f"--serviceaccount={ns}:chaos",
    )  # fmt: skip
    listing = "kubectl get pods -o name"
    apply_task(cluster, ns, "missing", one_hook(listing, serviceAccountName="nobody"))
    apply_task(cluster, ns, "borrow", one_hook(listing, serviceAccountName="plain"))
    apply_task(cluster, ns, "granted", one_hook(listing, serviceAccountName="chaos"))

    message = refused(cluster, ns, "missing", wait_for, "InvalidSpec")
    assert "spec.hooks[0].job.serviceAccountName" in message and "not found" in message
    message = refused(cluster, ns, "borrow", wait_for, "InvalidSpec")
    assert "spec.hooks[0].job.serviceAccountName" in message and "not opted in" in message
    assert condition(get_status(cluster, ns, "borrow"), "Accepted")["status"] == "False"

    status = wait_phase(cluster, ns, "granted", DONE, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "success", result  # kubectl had the account's token and rights
    assert "pod/" in json.dumps(result["output"])
    (pod,) = hook_pods(cluster, ns, "granted")
    assert pod["spec"]["serviceAccountName"] == "chaos"


def test_an_image_outside_the_operators_allow_list_is_refused(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    apply_task(cluster, ns, "hook-image", one_hook("/bin/true", image="elsewhere/tools:1"))
    spec = one_hook("/bin/true")
    spec["runnerPod"] = {"image": "elsewhere/runner:1"}
    apply_task(cluster, ns, "runner-image", spec)
    message = refused(cluster, ns, "hook-image", wait_for, "InvalidSpec")
    assert "spec.hooks[0].job.image" in message and "'elsewhere/tools:1' is not allowed" in message
    message = refused(cluster, ns, "runner-image", wait_for, "InvalidSpec")
    assert "spec.runnerPod.image" in message
    assert jobs(cluster, ns, "app.kubernetes.io/managed-by=krally") == []


# -- adoption and names -------------------------------------------------------------------------


def test_only_children_the_task_controls_are_adopted(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    # A GitLab runner's account next to a task named `gitlab`: no clash any more.
    cluster.kubectl("create", "serviceaccount", "gitlab-runner", "-n", ns)
    apply_task(cluster, ns, "gitlab", dummy_spec(5, 0.0, []))
    # A name krally would use, taken by an object that is not the task's.
    cluster.kubectl("create", "serviceaccount", "krally-squat-runner", "-n", ns)
    apply_task(cluster, ns, "squat", dummy_spec(5, 0.0, []))
    # A hook Job's name taken by a (suspended, so pod-less) Job of someone else.
    stranger = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "hooked-h0-i3", "labels": {"app.kubernetes.io/managed-by": "krally"}},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "x", "image": images.KRALLY_REF, "command": ["true"]}],
                }
            },
        },
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(stranger))
    apply_task(cluster, ns, "hooked", one_hook("/bin/echo mine"))

    assert wait_phase(cluster, ns, "gitlab", DONE, wait_for, 90)["phase"] == "Succeeded"
    message = refused(cluster, ns, "squat", wait_for, "NameConflict")
    assert "ServiceAccount krally-squat-runner already exists" in message
    squatter = json.loads(
        cluster.kubectl("get", "sa", "krally-squat-runner", "-n", ns, "-o", "json").stdout
    )
    assert not squatter["metadata"].get("ownerReferences")  # left alone

    status = wait_phase(cluster, ns, "hooked", DONE, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")  # the load went on
    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "failed" and result["error"]["etype"] == "NameConflict", result
    job = json.loads(cluster.kubectl("get", "job", "hooked-h0-i3", "-n", ns, "-o", "json").stdout)
    assert job["metadata"]["uid"] and not job["metadata"].get("ownerReferences")


def test_long_names_sharing_63_characters_do_not_share_state(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    prefix = "long-" + "x" * 58
    first, second = prefix + "-first", prefix + "-second"
    assert first[:63] == second[:63]
    apply_task(cluster, ns, first, dummy_spec(20, 0.0, []))
    apply_task(cluster, ns, second, one_hook("/bin/echo second"))
    one = wait_phase(cluster, ns, first, DONE, wait_for, 120)
    two = wait_phase(cluster, ns, second, DONE, wait_for, 120)
    assert one["phase"] == two["phase"] == "Succeeded", (one.get("message"), two.get("message"))
    assert one["progress"]["done"] == 20 and two["progress"]["done"] == 10
    assert not one.get("hooks") and two["hooks"][0]["results"][0]["status"] == "success"
    assert one["runnerJob"] != two["runnerJob"]
    for name, status in ((first, one), (second, two)):
        uid = get_task(cluster, ns, name)["metadata"]["uid"]
        job = json.loads(
            cluster.kubectl("get", "job", status["runnerJob"], "-n", ns, "-o", "json").stdout
        )
        assert job["metadata"]["ownerReferences"][0]["uid"] == uid
        assert len(job["metadata"]["labels"]["krally.dev/task"]) <= 63


# -- admission cannot be skipped ----------------------------------------------------------------


def test_a_status_patched_to_accepted_is_validated_anyway(
    cluster: Any, ns: str, tmp_path: Path, wait_for: Any
) -> None:
    # No operator yet: the author applies a task the policy refuses and forges its acceptance.
    apply_task(cluster, ns, "forged", one_hook("/bin/true", serviceAccountName=OPERATOR_SA))
    forged = {
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Accepted",
                    "status": "True",
                    "reason": "Accepted",
                    "message": "trust me",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
    }
    cluster.kubectl(
        "patch", "bt", "forged", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps(forged),
    )  # fmt: skip
    assert condition(get_status(cluster, ns, "forged"), "Accepted")["status"] == "True"
    operator = Operator(cluster, ns, tmp_path).start()
    try:

        def rejected() -> dict[str, Any] | None:
            status = get_status(cluster, ns, "forged")
            return status if status.get("phase") == "Failed" else None

        status = wait_for(rejected, timeout=60, message="the forged task to be refused")
        accepted = condition(status, "Accepted")
        assert accepted["status"] == "False" and accepted["reason"] == "InvalidSpec"
        assert "spec.hooks[0].job.serviceAccountName" in accepted["message"]
        assert jobs(cluster, ns, "app.kubernetes.io/managed-by=krally") == []
    finally:
        operator.stop()
        print(f"--- operator log ---\n{operator.output(80)}")


# -- the namespace-scoped install ---------------------------------------------------------------


def test_namespaced_install_serves_its_namespaces_with_roles_only(
    cluster: Any, crd_installed: None, tmp_path: Path, wait_for: Any
) -> None:
    """The overlay's Roles and RoleBindings (moved to this test's namespaces), no ClusterRole
    binding at all: the operator watches both namespaces and runs a task in the second."""
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
    home = cluster.create_namespace(labels=restricted)
    other = cluster.create_namespace(labels=restricted)
    rename = {"team-a": home, "team-b": other, "krally-system": home}
    operator: Operator | None = None
    try:
        out = cluster.kubectl("kustomize", str(ROOT / "manifests" / "overlays" / "namespaced"))
        rbac = [
            d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] in ("Role", "RoleBinding")
        ]
        # The served namespaces, and the operator's own (the Lease of its two replicas).
        assert {d["metadata"]["namespace"] for d in rbac} == {"team-a", "team-b", "krally-system"}
        for doc in rbac:
            doc["metadata"]["namespace"] = rename[doc["metadata"]["namespace"]]
            for subject in doc.get("subjects") or []:
                subject["namespace"] = rename[subject["namespace"]]
        cluster.kubectl("create", "serviceaccount", OPERATOR_SA, "-n", home)
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
        operator = Operator(cluster, home, tmp_path, watch=(home, other)).start()
        apply_task(cluster, other, "served", one_hook("/bin/echo served"))
        status = wait_phase(cluster, other, "served", DONE, wait_for, 120)
        assert status["phase"] == "Succeeded", status.get("message")
        assert status["hooks"][0]["results"][0]["status"] == "success"
        as_operator = f"system:serviceaccount:{home}:{OPERATOR_SA}"
        answer = cluster.kubectl(
            "auth", "can-i", "create", "jobs", "-A", as_user=as_operator, check=False
        ).stdout.strip()
        assert answer == "no"  # nothing cluster-wide
    finally:
        if operator is not None:
            cluster.kubectl("delete", "bt", "--all", "-n", other, "--wait=false", check=False)
            operator.stop()
            print(f"--- operator log ---\n{operator.output(80)}")
        cluster.delete_namespace(home)
        cluster.delete_namespace(other)
