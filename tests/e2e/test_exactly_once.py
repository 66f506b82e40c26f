"""End-to-end: exactly-once firing under 20 SIGKILLs of the operator (issue 10, item 14).

A periodic task runs for about 100 s while the operator is SIGKILLed 20 times at random moments
(seeded) and restarted at once. Every hook execution leaves its own mark, not just a Job: the
hook creates a ConfigMap named after its pod (``mark-<pod hostname>``) holding its trigger value,
with a hook ServiceAccount allowed to create ConfigMaps. Two executions of one firing would be two
pods, so two marks; a lost one, none. The test counts both and wants 0 of each.
"""

from __future__ import annotations

import json
import random
import shlex
import statistics
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.support import (
    Operator,
    dummy_spec,
    get_status,
    jobs,
    sys_call,
    task_yaml,
    wait_phase,
)

pytestmark = pytest.mark.cluster

KILLS = 20
SEED = 10014
HOOK_SA = "mark-writer"
MARK_LABEL = "krally-test/mark"
HOOK_JOBS = "krally.dev/task=once,krally.dev/role=hook"

# Run in the hook pod (the krally image has Python and the kubernetes client): one ConfigMap per
# execution, named by the pod's host name (unique per pod), holding the firing's trigger value.
MARK = """
import json, os, socket
from kubernetes import client, config
config.load_incluster_config()
value = json.loads(os.environ["KRALLY_HOOK"])["triggeredBy"]["value"]
host = socket.gethostname()
client.CoreV1Api().create_namespaced_config_map(os.environ["KRALLY_TASK_NAMESPACE"], {
    "metadata": {"name": "mark-" + host, "labels": {"krally-test/mark": "yes"}},
    "data": {"value": json.dumps(value), "pod": host},
})
print("marked", value, host)
"""


def _hook_identity(cluster: Any, ns: str) -> None:
    """A ServiceAccount the namespace's admin lets hooks use (the annotation), allowed to create
    ConfigMaps and nothing else."""
    docs = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": HOOK_SA,
                "namespace": ns,
                "annotations": {"krally.dev/hooks": "allowed"},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": HOOK_SA, "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": HOOK_SA, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": HOOK_SA},
            "subjects": [{"kind": "ServiceAccount", "name": HOOK_SA, "namespace": ns}],
        },
    ]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                          "items": docs}))  # fmt: skip


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _marks(cluster: Any, ns: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "configmaps", "-n", ns, "-l", MARK_LABEL, "-o", "json").stdout
    return json.loads(out)["items"]


def test_twenty_operator_kills_lose_and_duplicate_no_firing(
    cluster: Any, ns: str, tmp_path: Path, wait_for: Any
) -> None:
    _hook_identity(cluster, ns)
    hook = sys_call(f"python3 -c {shlex.quote(MARK)}", "periodic", unit="time", step=3)
    # A long deadline: a burst of hook pods after a restart may start slowly on a busy machine,
    # and a hook killed by its deadline would leave no mark for a reason other than the kills.
    hook["job"] = {"serviceAccountName": HOOK_SA, "timeoutSeconds": 300}
    spec = dummy_spec(times=1000, sleep=0.1, hooks=[hook])  # about 100 s, a firing every 3 s
    operator = Operator(cluster, ns, tmp_path).start()
    rng = random.Random(SEED)
    kills: list[tuple[float, int]] = []  # (seconds the operator lived, Jobs it created)
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("once", spec))
        wait_for(
            lambda: (get_status(cluster, ns, "once").get("runner") or {}).get("firings"),
            timeout=120,
            message="the first firing",
        )
        for _ in range(KILLS):
            lived = rng.uniform(2.0, 5.0)
            before = len(jobs(cluster, ns, HOOK_JOBS))
            time.sleep(lived)
            operator.kill()
            # The Jobs this incarnation created (read after its death: none is in flight).
            kills.append((lived, len(jobs(cluster, ns, HOOK_JOBS)) - before))
            operator.start()
        runner = get_status(cluster, ns, "once").get("runner") or {}
        assert runner.get("state") != "Finished" and not runner.get("finishedAt"), (
            "the load ended before the last kill: make the task longer"
        )
        status = wait_phase(cluster, ns, "once", {"Succeeded", "Failed"}, wait_for, 300)
    finally:
        operator.stop()
        print(f"--- operator log ---\n{operator.output(80)}")
    assert status["phase"] == "Succeeded", status.get("message")

    firings = [f["value"] for f in status["runner"]["firings"]]
    assert len(firings) == len(set(firings)) >= 25, firings
    (hook_status,) = status["hooks"]
    results = Counter(r["triggeredBy"]["value"] for r in hook_status["results"])
    not_success = [r for r in hook_status["results"] if r["status"] != "success"]
    # Each mark is one execution: its pod's name, its trigger value.
    marks = Counter(json.loads(m["data"]["value"]) for m in _marks(cluster, ns))
    all_jobs = jobs(cluster, ns, HOOK_JOBS)
    fired_at = {str(f["value"]): _epoch(f["firedAt"]) for f in status["runner"]["firings"]}
    value_of = {j["metadata"]["name"]: j["metadata"]["labels"]["krally.dev/trigger-value"]
                for j in all_jobs}  # fmt: skip
    hook_jobs = Counter(value_of[j["metadata"]["name"]] for j in all_jobs
                        if value_of[j["metadata"]["name"]] in fired_at)  # fmt: skip
    # Armed Jobs whose firing the load never reached end without running their hook.
    never_fired = [j for j in all_jobs if value_of[j["metadata"]["name"]] not in fired_at]
    assert all(
        j["metadata"]["annotations"].get("krally.dev/armed") == "true"
        and not j["status"].get("failed")
        for j in never_fired
    ), never_fired[:2]
    # How the kills affected the hooks: from the runner's firedAt to the Job's creation
    # (negative: armed ahead of its firing).
    delays = [
        _epoch(j["metadata"]["creationTimestamp"]) - fired_at[value_of[j["metadata"]["name"]]]
        for j in all_jobs
        if value_of[j["metadata"]["name"]] in fired_at
    ]
    lost = [v for v in firings if marks[v] == 0]
    duplicated = {v: n for v, n in marks.items() if n > 1}
    unfired = [v for v in marks if v not in firings]
    print(
        f"kills: {len(kills)} (each after {min(k[0] for k in kills):.1f}-"
        f"{max(k[0] for k in kills):.1f} s of life; {sum(1 for k in kills if k[1])} of the "
        f"killed operators had created hook Jobs, {sum(k[1] for k in kills)} in all), "
        f"firings: {len(firings)}, marks: {sum(marks.values())}, results: "
        f"{sum(results.values())}, hook Jobs: {sum(hook_jobs.values())}, lost: {len(lost)}, "
        f"duplicated: {len(duplicated)}; firing to Job: median {statistics.median(delays):.1f} s, "
        f"max {max(delays):.1f} s"
    )
    print("hook results by status:", dict(Counter(r["status"] for r in hook_status["results"])))
    assert not_success == [], not_success[:3]
    assert lost == [], f"firings without an execution: {lost}"
    assert duplicated == {}, f"firings executed more than once: {duplicated}"
    assert unfired == [], f"executions of no recorded firing: {unfired}"
    assert results == Counter(firings), "each firing has exactly one result"
    assert hook_jobs == Counter(str(v) for v in firings), "one Job per firing"
    assert sum(1 for k in kills if k[1]) >= 3, "too few killed operators had been creating Jobs"
