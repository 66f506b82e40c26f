"""The API server itself refuses every kind of bad task of tests/bad_tasks.py's CRD_REFUSED at
`kubectl apply`, naming the field: the CRD's schema and CEL rules (no operator running)."""

from __future__ import annotations

import json

import pytest
from tests import bad_tasks
from tests.bad_tasks import CRD_REFUSED, GOOD_SPEC, WEBHOOK_REFUSED, Bad

pytestmark = pytest.mark.cluster


def _apply(cluster, namespace: str, name: str, spec: dict):
    body = json.dumps(bad_tasks.task(name, spec))
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=body, check=False)


def test_the_good_task_is_accepted(cluster, crd_installed, namespace):
    proc = _apply(cluster, namespace, "good", GOOD_SPEC)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("bad", CRD_REFUSED, ids=lambda b: b.kind)
def test_the_api_server_refuses_naming_the_field(cluster, crd_installed, namespace, bad: Bad):
    proc = _apply(cluster, namespace, "bad", bad_tasks.bad_spec(bad))
    assert proc.returncode != 0, f"{bad.kind} was accepted: {proc.stdout}"
    assert bad.field in proc.stderr, proc.stderr


def test_plugin_configs_need_the_webhook(cluster, crd_installed, namespace):
    # Without the operator's webhook the API server cannot know the plugins: accepted here,
    # refused by tests/integration/test_webhook.py when the webhook is registered.
    proc = _apply(cluster, namespace, "plugin", bad_tasks.bad_spec(WEBHOOK_REFUSED[1]))
    assert proc.returncode == 0, proc.stderr
