"""The armed hook pod's watch against a real API server, with the reader Role krally creates.

The hook's identity may get and watch its own task, by name (resourceNames; a watch names it
with a field selector), and nothing else: another task of the same namespace, or one of another
namespace, is refused. Each status write reaches the watch within moments, and the armed pod's
wait ends on its own firing.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from krally.api import crd
from krally.kube import client
from krally.kube.operator import builders as kjobs
from krally.kube.pods import taskwatch
from krally.kube.pods.hook import armed as armedpod

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def crd_ready(cluster: Any) -> None:
    cluster.apply_crd(crd.render_yaml(), crd.NAME)


def make_task(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": name},
        "spec": {
            "scenario": {"name": "Dummy.dummy"},
            "hooks": [
                {
                    "name": "sys_call",
                    "args": "true",
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [7]}},
                }
            ],
        },
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body))
    return json.loads(cluster.kubectl("get", "bt", name, "-n", namespace, "-o", "json").stdout)


def endpoint(cluster: Any, token: str, tmp_path: Path) -> client.ApiEndpoint:
    url = urllib.parse.urlparse(cluster.server)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    return client.ApiEndpoint(
        str(url.hostname), int(url.port or 443), str(token_file), str(cluster.certs.ca_cert)
    )


def test_the_hook_identity_watches_its_own_task_and_nothing_else(
    cluster: Any, namespace: str, crd_ready: None, tmp_path: Path
) -> None:
    task = make_task(cluster, namespace, "armed")
    make_task(cluster, namespace, "other")
    account = kjobs.hook_service_account(task)
    for body in (account, kjobs.hook_reader_role(task), kjobs.hook_reader_binding(task)):
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body))
    token = cluster.token_for(namespace, account["metadata"]["name"])
    api = endpoint(cluster, token, tmp_path)

    connected = threading.Event()
    states = taskwatch.watch_task(namespace, "armed", api, on_connected=connected.set)
    first = next(states)
    assert first["metadata"]["uid"] == task["metadata"]["uid"]
    outcome: list[armedpod.Outcome] = []
    seen_at: list[float] = []

    def wait() -> None:
        def timed():
            for state in states:
                seen_at.append(time.time())
                yield state

        outcome.append(armedpod.wait_for_firing(timed(), 0, "iteration", 7))

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert connected.wait(10), "the watch did not open"

    def patch_firings(values: list[int]) -> float:
        firings = [
            {"hook": 0, "eventType": "iteration", "value": v, "firedAt": "2026-01-01T00:00:00Z"}
            for v in values
        ]
        patch = {"status": {"runner": {"state": "Running", "firings": firings}}}
        sent = time.time()
        cluster.kubectl(
            "patch", "bt", "armed", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(patch),
        )  # fmt: skip
        return sent

    patch_firings([3])  # another firing: the wait goes on
    time.sleep(1)
    assert waiter.is_alive() and not outcome
    sent = patch_firings([3, 7])
    waiter.join(10)
    assert outcome and outcome[0].firing is not None and outcome[0].firing["value"] == 7

    # Its own task only (the RBAC cache knows the binding by now: the watch above worked).
    for other_ns, other in ((namespace, "other"), ("default", "armed")):
        with pytest.raises(taskwatch.WatchRefused) as refused:
            next(iter(taskwatch.watch_task(other_ns, other, api, patience=1)))
        assert refused.value.status == 403
    assert seen_at[-1] >= sent  # seen from the watch, after the write (no timing asserted)
