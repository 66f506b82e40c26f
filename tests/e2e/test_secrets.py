"""Secrets reach hook and runner pods through `valueFrom` and nowhere else (real node).

A hook's sys_call checks a Secret-provided variable inside its pod (against a second key of the
same Secret, so the command itself never holds the value) and a ConfigMap-provided one; the
runner pod takes a variable from the Secret too (it would not start if the reference failed).
The secret value then appears nowhere in the task (spec, status), its Events, its Jobs or the
operator's log.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from tests.e2e.support import Operator, dummy_spec, jobs, task_yaml, wait_phase


def test_env_from_secret_reaches_the_hook_and_is_echoed_nowhere(
    cluster: Any, ns: str, operator: Operator, wait_for: Any
) -> None:
    value = f"s3cr3t-{secrets.token_hex(8)}"
    cluster.kubectl(
        "create", "secret", "generic", "chaos-creds", "-n", ns,
        f"--from-literal=token={value}", f"--from-literal=token-copy={value}",
    )  # fmt: skip
    cluster.kubectl("create", "configmap", "chaos-conf", "-n", ns, "--from-literal=mode=fast")
    secret_ref = {"secretKeyRef": {"name": "chaos-creds", "key": "token"}}
    check = (
        'sh -c \'test -n "$CHAOS_TOKEN" && test "$CHAOS_TOKEN" = "$CHAOS_TOKEN_COPY" '
        '&& test "$MODE" = fast\''
    )
    hook = {
        "name": "sys_call",
        "args": check,
        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [2]}},
        "job": {
            "env": [
                {"name": "CHAOS_TOKEN", "valueFrom": secret_ref},
                {
                    "name": "CHAOS_TOKEN_COPY",
                    "valueFrom": {"secretKeyRef": {"name": "chaos-creds", "key": "token-copy"}},
                },
                {
                    "name": "MODE",
                    "valueFrom": {"configMapKeyRef": {"name": "chaos-conf", "key": "mode"}},
                },
            ]
        },
    }
    spec = dummy_spec(times=4, sleep=0.05, hooks=[hook])
    spec["runnerPod"] = {"env": [{"name": "RUNNER_TOKEN", "valueFrom": secret_ref}]}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("secrets", spec))
    status = wait_phase(cluster, ns, "secrets", {"Succeeded", "Failed"}, wait_for, 180)
    assert status["phase"] == "Succeeded", status.get("message")
    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "success", result

    task = cluster.kubectl("get", "bt", "secrets", "-n", ns, "-o", "json").stdout
    events = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.name=secrets",
        "-o", "json",
    ).stdout  # fmt: skip
    assert json.loads(events)["items"], "the task posted no Events"
    children = json.dumps(jobs(cluster, ns, "krally.dev/task=secrets"))
    for where, text in {
        "task (spec and status)": task,
        "Events": events,
        "Jobs": children,
        "operator log": operator.log.read_text(errors="replace"),
    }.items():
        assert value not in text, f"the secret value appears in the {where}"
