"""The operator's validating admission webhook against the real API server: every kind of bad
task of tests/bad_tasks.py's WEBHOOK_REFUSED (plugin configs, scenario argument types, unknown
plugins) is refused at `kubectl apply` naming the field; a good task passes.

The operator runs as a host process (the API server runs on the host too), as the shipped
ServiceAccount with the shipped RBAC, and is reached at
KRALLY_WEBHOOK_URL=https://127.0.0.1:PORT; its certificate goes to a Secret in krally-system
(KRALLY_WEBHOOK_SECRET) as in the Deployment.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests import bad_tasks
from tests.bad_tasks import GOOD_SPEC, WEBHOOK_REFUSED, Bad
from tests.cluster import wait_for

from krally.api import crd

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "krally-system"
SECRET = "krally-webhook-tls"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _configuration(cluster) -> dict | None:
    proc = cluster.kubectl(
        "get", "validatingwebhookconfiguration", "krally.dev", "-o", "json", check=False
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def webhook(cluster, tmp_path_factory) -> Iterator[dict]:
    cluster.apply_crd(crd.render_yaml(), crd.NAME)
    docs = yaml.safe_load_all(cluster.kubectl("kustomize", str(ROOT / "manifests")).stdout)
    # The RBAC and namespace of the install; the operator itself runs here as a process.
    wanted = [d for d in docs if d and d["kind"] not in {"Deployment", "CustomResourceDefinition"}]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wanted))
    work = tmp_path_factory.mktemp("webhook")
    kubeconfig = cluster.write_kubeconfig(
        work / "operator.kubeconfig", token=cluster.token_for(SYSTEM, "krally-operator")
    )
    port = _free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "KRALLY_NAMESPACE": SYSTEM,
        "KRALLY_WEBHOOK_PORT": str(port),
        "KRALLY_WEBHOOK_URL": f"https://127.0.0.1:{port}",
        "KRALLY_WEBHOOK_SECRET": SECRET,
        # The admin allows the good task's hook image (the image policy runs here too).
        "KRALLY_ALLOWED_IMAGES": "images.example.test:5000/team/*",
        "PYTHONUNBUFFERED": "1",
    }
    log = work / "operator.log"
    with log.open("ab") as handle:
        # Watches only krally-system: the tasks the tests apply elsewhere are never run.
        proc = subprocess.Popen(
            [sys.executable, "-m", "krally", "operator", "-n", SYSTEM, "--standalone", "--webhook"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        config = wait_for(
            lambda: (
                (c := _configuration(cluster))
                and c.get("webhooks")
                and c["webhooks"][0]["clientConfig"].get("caBundle")
                and c
            ),
            timeout=60,
            message="the managed ValidatingWebhookConfiguration krally.dev "
            + log.read_text(errors="replace")[-3000:],
        )
        yield {"config": config, "log": log, "port": port}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, "krally.dev", "--ignore-not-found")
        cluster.kubectl("delete", "secret", SECRET, "-n", SYSTEM, "--ignore-not-found")


def _apply(cluster, namespace: str, name: str, spec: dict, *extra: str):
    body = json.dumps(bad_tasks.task(name, spec))
    return cluster.kubectl("apply", "-n", namespace, *extra, "-f", "-", input=body, check=False)


def test_the_configuration_is_managed_and_fails_open(cluster, webhook):
    (hook,) = webhook["config"]["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["rules"][0]["operations"] == ["CREATE"]
    assert hook["rules"][0]["resources"] == ["benchmarktasks"]
    assert hook["clientConfig"]["url"].startswith(f"https://127.0.0.1:{webhook['port']}/")
    # The caBundle is the CA kept in the Secret (what every replica serves).
    secret = json.loads(cluster.kubectl("get", "secret", SECRET, "-n", SYSTEM, "-o", "json").stdout)
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert base64.b64decode(secret["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE")


def test_a_good_task_passes(cluster, webhook, namespace):
    # The hook's ServiceAccount exists and its admin opted it in.
    cluster.kubectl("create", "serviceaccount", "chaos.runner-1", "-n", namespace)
    cluster.kubectl(
        "annotate", "serviceaccount", "chaos.runner-1", "-n", namespace, "krally.dev/hooks=allowed"
    )
    proc = _apply(cluster, namespace, "good", GOOD_SPEC)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("bad", WEBHOOK_REFUSED, ids=lambda b: b.kind)
def test_the_webhook_refuses_naming_the_field(cluster, webhook, namespace, bad: Bad):
    proc = _apply(cluster, namespace, "bad", bad_tasks.bad_spec(bad))
    assert proc.returncode != 0, f"{bad.kind} was accepted: {proc.stdout}"
    assert 'admission webhook "spec.krally.dev" denied the request' in proc.stderr, proc.stderr
    assert bad.field in proc.stderr, proc.stderr


def test_a_string_sleep_is_refused_by_a_server_side_dry_run_too(cluster, webhook, namespace):
    spec = dict(GOOD_SPEC, scenario={"name": "Dummy.dummy", "args": {"sleep": "x"}})
    proc = _apply(cluster, namespace, "dry", spec, "--dry-run=server")
    assert proc.returncode != 0 and "spec.scenario.args.sleep" in proc.stderr, proc.stderr


def test_a_hook_account_its_admin_did_not_opt_in_is_refused_at_apply(cluster, webhook, namespace):
    """The webhook reads the ServiceAccount a hook names (as the operator's admission does): one
    without the opt-in annotation is refused at apply; once annotated, the same task passes."""
    cluster.kubectl("create", "serviceaccount", "chaos", "-n", namespace)
    hook = {
        "name": "sys_call",
        "args": "true",
        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [1]}},
        "job": {"serviceAccountName": "chaos"},
    }
    spec = dict(GOOD_SPEC, hooks=[hook])
    proc = _apply(cluster, namespace, "borrow", spec)
    assert proc.returncode != 0, proc.stdout
    assert "spec.hooks[0].job.serviceAccountName" in proc.stderr, proc.stderr
    assert "not opted in" in proc.stderr or "krally.dev/hooks" in proc.stderr, proc.stderr
    missing = dict(spec, hooks=[{**hook, "job": {"serviceAccountName": "nobody"}}])
    proc = _apply(cluster, namespace, "nobody", missing)
    assert proc.returncode != 0 and "spec.hooks[0].job.serviceAccountName" in proc.stderr
    cluster.kubectl(
        "annotate", "serviceaccount", "chaos", "-n", namespace, "krally.dev/hooks=allowed"
    )
    proc = _apply(cluster, namespace, "borrow", spec)
    assert proc.returncode == 0, proc.stderr


def test_an_image_outside_the_allow_list_is_refused_at_apply(cluster, webhook, namespace):
    """The operator's image allow-list at apply time (the fixture allows its own images and
    images.example.test:5000/team/*)."""
    spec = dict(GOOD_SPEC, hooks=[], runnerPod={"image": "elsewhere.example.test/krally:1"})
    proc = _apply(cluster, namespace, "foreign", spec)
    assert proc.returncode != 0, proc.stdout
    assert "spec.runnerPod.image" in proc.stderr and "not allowed" in proc.stderr, proc.stderr


def test_the_shipped_rbac_covers_everything_kopfs_managed_mode_does(cluster, webhook):
    """kopf's managed mode also keeps a MutatingWebhookConfiguration (empty); refused, its
    manager retries for ~5 minutes and then stops the operator (found by the demo's log)."""
    mutating = wait_for(
        lambda: (
            cluster.kubectl(
                "get", "mutatingwebhookconfiguration", "krally.dev", "-o", "json", check=False
            ).returncode
            == 0
        ),
        timeout=30,
        message="the managed MutatingWebhookConfiguration krally.dev",
    )
    assert mutating
    log = webhook["log"].read_text(errors="replace")
    assert "forbidden" not in log.lower(), log[-3000:]
