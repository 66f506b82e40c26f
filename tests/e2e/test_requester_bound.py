"""End-to-end (issue 25): nothing reaches past its author, and nothing grows without bound.

alice may create and read tasks in the namespace, and read one Secret (`shared`), not the other
(`db-password`). Her task echoing db-password from a hook is refused at apply by the requester
policy (in the API server; the operator runs but is not asked); the same task reading `shared`
runs, its hook output showing the value (what the attack would have leaked). A periodic trigger
over the operator's firing bound is refused at apply by its webhook; a task of 30 fast firings
never has more than the bound of hook Jobs in flight, and leaves none behind.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.support import ROOT, Operator, dummy_spec, sys_call, task_yaml, wait_phase

pytestmark = pytest.mark.cluster

ALICE = "alice"
DONE = {"Succeeded", "Failed", "Aborted"}


def _role(cluster: Any, ns: str, name: str, user: str, rules: list[dict[str, Any]]) -> None:
    docs = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": ns}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
    ]  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def _echo_task(secret: str, where: str = "hook") -> dict[str, Any]:
    ref = {"name": "P", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}
    hook = sys_call("sh -c 'echo leaked=$P'", "event", unit="iteration", at=[2])
    spec = dummy_spec(4, 0.05, [hook])
    if where == "hook":
        hook["job"] = {"env": [ref]}
    else:
        spec["runnerPod"] = {"env": [ref]}
    return spec


def test_the_attack_is_refused_and_the_same_users_control_task_runs(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    guarded, shared = f"guarded-{secrets.token_hex(8)}", f"shared-{secrets.token_hex(8)}"
    for name, value in (("db-password", guarded), ("shared", shared)):
        cluster.kubectl(
            "create", "secret", "generic", name, "-n", ns, f"--from-literal=password={value}"
        )
    _role(cluster, ns, "task-author", ALICE, [
        {"apiGroups": ["krally.dev"], "resources": ["benchmarktasks"],
         "verbs": ["get", "list", "watch", "create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["shared"],
         "verbs": ["get"]},
    ])  # fmt: skip

    def create(name: str, spec: dict[str, Any]) -> Any:
        return cluster.kubectl(
            "create", "-n", ns, "-f", "-", input=task_yaml(name, spec), as_user=ALICE, check=False
        )

    proc = create("attack", _echo_task("db-password"))
    assert proc.returncode != 0, proc.stdout
    assert (
        f"spec.hooks[0].job.env[0].valueFrom: alice may not get secrets/db-password in {ns}"
        in proc.stderr
    ), proc.stderr
    proc = create("attack-runner", _echo_task("db-password", where="runner"))
    assert proc.returncode != 0, proc.stdout
    assert "spec.runnerPod.env[0].valueFrom: alice may not get secrets/db-password" in proc.stderr
    listed = json.loads(cluster.kubectl("get", "bt", "-n", ns, "-o", "json").stdout)
    assert listed["items"] == []  # nothing admitted, nothing ran

    proc = create("control", _echo_task("shared"))
    assert proc.returncode == 0, proc.stderr
    status = wait_phase(cluster, ns, "control", DONE, wait_for, 180)
    assert status["phase"] == "Succeeded", status.get("message")
    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "success", result
    assert f"leaked={shared}" in json.dumps(result), result  # the path the attack would take
    assert guarded not in json.dumps(status)


# -- bounded objects -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def webhook_operator(cluster: Any, ns: str, tmp_path: Path, wait_for: Any) -> Iterator[Operator]:
    """The operator serving its webhook (as the shipped Deployment does) with a bound of 10
    firings per task, reached by the API server on the host side of the node's network."""
    docs = yaml.safe_load_all((ROOT / "manifests" / "webhook.yaml").read_text())
    (role,) = [d for d in docs if d and d["kind"] == "ClusterRole"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
    cluster.kubectl(
        "create", "clusterrolebinding", f"krally-webhook-{ns}"[:63],
        f"--clusterrole={role['metadata']['name']}", f"--serviceaccount={ns}:krally-operator",
    )  # fmt: skip
    port = _free_port()
    host = cluster.net.host_ip
    env = {
        "KRALLY_WEBHOOK_PORT": str(port),
        "KRALLY_WEBHOOK_URL": f"https://{host}:{port}",
        "KRALLY_NAMESPACE": ns,
        "KRALLY_MAX_FIRINGS": "10",
    }
    op = Operator(cluster, ns, tmp_path, args=("--standalone", "--webhook"), env=env).start()
    try:

        def served() -> bool:
            proc = cluster.kubectl(
                "get", "validatingwebhookconfiguration", "krally.dev", "-o", "json", check=False
            )
            hooks = json.loads(proc.stdout).get("webhooks") if proc.returncode == 0 else None
            return bool(hooks and hooks[0]["clientConfig"].get("caBundle"))

        wait_for(served, timeout=60, message="the webhook served " + op.output())
        yield op
    finally:
        op.stop()
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, "krally.dev", "--ignore-not-found")
        cluster.kubectl("delete", "clusterrolebinding", f"krally-webhook-{ns}"[:63], check=False)
        print(f"--- operator log ---\n{op.output(80)}")


def test_a_periodic_trigger_over_the_firing_bound_is_refused_at_apply(
    cluster: Any, ns: str, webhook_operator: Operator
) -> None:
    over = dummy_spec(30, 0.01, [sys_call("true", "periodic", unit="iteration", step=1)])
    proc = cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("many", over), check=False)
    assert proc.returncode != 0, proc.stdout
    assert (
        "spec.hooks[0].trigger: periodic fires 30 times over the runner's 30 iterations, more "
        "than the operator's bound of 10 firings per task"
    ) in proc.stderr, proc.stderr
    assert cluster.kubectl("get", "bt", "many", "-n", ns, check=False).returncode != 0
    within = dummy_spec(30, 0.01, [sys_call("true", "periodic", unit="iteration", step=3)])
    proc = cluster.kubectl(
        "apply", "--dry-run=server", "-n", ns, "-f", "-", input=task_yaml("ten", within),
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def _unfinished_hook_jobs(cluster: Any, ns: str) -> int:
    out = cluster.kubectl(
        "get", "jobs", "-n", ns, "-l", "krally.dev/task=fast,krally.dev/role=hook", "-o", "json"
    ).stdout
    count = 0
    for job in json.loads(out)["items"]:
        conditions = (job.get("status") or {}).get("conditions") or []
        done = any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions
        )
        count += not done
    return count


def test_many_fast_firings_never_have_more_than_the_bound_in_flight(
    cluster: Any, ns: str, tmp_path: Path, wait_for: Any
) -> None:
    bound, firings = 3, 30
    env = {"KRALLY_MAX_HOOK_JOBS": str(bound), "KRALLY_KEEP_HOOK_JOBS": "0"}
    op = Operator(cluster, ns, tmp_path, env=env).start()
    try:
        hook = sys_call("true", "periodic", unit="iteration", step=1)
        hook["maxDelaySeconds"] = 600  # queued firings must not turn Late on a slow node
        spec = dummy_spec(firings, 0.02, [hook])
        spec["arming"] = {"enabled": False}  # every firing's Job is created as it fires
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("fast", spec))
        seen: list[int] = []
        deadline = time.monotonic() + 300
        phase = ""
        while time.monotonic() < deadline:
            seen.append(_unfinished_hook_jobs(cluster, ns))
            status = (
                json.loads(cluster.kubectl("get", "bt", "fast", "-n", ns, "-o", "json").stdout).get(
                    "status"
                )
                or {}
            )
            phase = status.get("phase", "")
            if phase in DONE:
                break
            time.sleep(0.2)
        assert phase == "Succeeded", op.output()
        assert max(seen) <= bound, seen
        assert max(seen) == bound, seen  # the bound was reached: firings did queue
        results = status["hooks"][0]["results"]
        assert len(results) == firings
        assert all(r["status"] == "success" for r in results), results
        queued = [r["queuedSeconds"] for r in results if "queuedSeconds" in r]
        assert queued and all(q >= 1 for q in queued), results
        print(
            f"{firings} firings, bound {bound}: at most {max(seen)} hook Jobs in flight over "
            f"{len(seen)} samples; {len(queued)} queued, {min(queued):.1f}-{max(queued):.1f} s"
        )
        # Finished hook Jobs are deleted once their result is recorded.
        wait_for(
            lambda: _count_hook_jobs(cluster, ns) == 0, timeout=60, message="hook Jobs removed"
        )
    finally:
        cluster.kubectl("delete", "bt", "--all", "-n", ns, "--wait=false", check=False)
        op.stop()
        print(f"--- operator log ---\n{op.output(120)}")


def _count_hook_jobs(cluster: Any, ns: str) -> int:
    out = cluster.kubectl(
        "get", "jobs", "-n", ns, "-l", "krally.dev/task=fast,krally.dev/role=hook", "-o", "json"
    ).stdout
    return len(json.loads(out)["items"])
