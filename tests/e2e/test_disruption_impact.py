"""A real disruption and what it did, on the real node: the shipped example
(manifests/examples/pod-kill-impact) runs as is, but for the image (the one built here) and the
Service's address (pods here have no DNS): a 3-replica HTTP Deployment behind a Service, HTTP
load through the Service, `kube.pod_kill` of one replica at iteration 1500 with the example's
least-privilege ServiceAccount, and status.runner.impact shows the kill's errors or latency and a
measured recovery. Draining the node the runner itself runs on is refused.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from tests.cluster import Cluster, images
from tests.e2e.support import ROOT, Operator, get_task, task_yaml, wait_phase

pytestmark = pytest.mark.cluster

EXAMPLE = ROOT / "manifests" / "examples" / "pod-kill-impact"


def example(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLE / name).read_text()) if d]


def local_image(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The example's documents with the image built here, never pulled."""
    for doc in docs:
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                container["image"] = images.KRALLY_REF
                container["imagePullPolicy"] = "Never"
    return docs


def web_pods(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "json").stdout
    return {p["metadata"]["name"]: p for p in json.loads(out)["items"]}


def ready_replicas(cluster: Cluster, ns: str) -> int:
    out = cluster.kubectl(
        "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.status.readyReplicas}"
    ).stdout
    return int(out or 0)


@pytest.fixture
def web(cluster: Cluster, ns: str, wait_for: Any) -> str:
    """The example's target, Ready and reachable through its Service; its ClusterIP."""
    target = local_image(example("target.yaml"))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(target))
    wait_for(lambda: ready_replicas(cluster, ns) == 3, timeout=90, message="3 web replicas Ready")
    ip = cluster.kubectl("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    assert ip
    return ip


def test_a_killed_replica_shows_in_the_impact_and_the_load_recovers(
    cluster: Cluster, ns: str, operator: Operator, web: str, wait_for: Any, tmp_path: Path
) -> None:
    before = set(web_pods(cluster, ns))
    cluster.kubectl("apply", "-n", ns, "-f", str(EXAMPLE / "rbac.yaml"))
    (task,) = example("benchmarktask.yaml")
    task["spec"]["scenario"]["args"]["url"] = f"http://{web}/"
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(task))
    name = task["metadata"]["name"]
    status = wait_phase(cluster, ns, name, {"Succeeded", "Failed"}, wait_for, 300)
    (tmp_path / "status.json").write_text(json.dumps(status, indent=2))
    print(json.dumps(status["runner"].get("impact"), indent=2))

    (result,) = status["hooks"][0]["results"]
    assert result["status"] == "success", result
    assert result.get("armed") is True, result  # predictable: the kill came within moments
    # Exactly one replica was killed (by its own account), and the Deployment replaced it.
    after = web_pods(cluster, ns)
    assert len(before - set(after)) == 1, (before, set(after))
    assert ready_replicas(cluster, ns) == 3
    killed = (before - set(after)).pop()
    assert killed in json.dumps(result.get("output")), result

    (impact,) = status["runner"]["impact"]
    assert impact["hook"] == 0 and impact["name"] == "kube.pod_kill"
    assert impact["triggeredBy"] == {"eventType": "iteration", "value": 1500}
    baseline, during, after_window = impact["baseline"], impact["during"], impact["after"]
    assert baseline["iterations"] > 100 and baseline["errorRate"] < 0.01, impact
    # Windows follow the analysis' bucket grid (spec.impact.resolutionSeconds, 0.25 s).
    assert -0.25 <= baseline["toSeconds"] <= 0 and baseline["fromSeconds"] < -4
    assert during["fromSeconds"] == baseline["toSeconds"]
    assert during["iterations"] > 0 and after_window["iterations"] > 0, impact
    # What the kill did: requests routed to the stopped replica before its endpoint went away
    # failed, or the two left served slower (a replica serves 2 at a time).
    assert during["failures"] > 0 or impact["p95Ratio"] > 1.2, impact
    assert impact["degraded"] is True, impact
    assert impact["recovered"] is True, impact
    assert 0 < impact["recoverySeconds"] < 30, impact
    assert after_window["errorRate"] < 0.05, impact

    sla = {item["criterion"]: item for item in status["sla"]}
    assert sla["disruption_impact"]["success"] is True, sla
    assert status["phase"] == "Succeeded", status.get("message")
    # What `kubectl get bt` shows: the slowest recovery.
    assert status["display"]["recovery"] == f"{impact['recoverySeconds']:.1f}s"
    assert get_task(cluster, ns, name)["status"]["runner"]["impact"] == [impact]

    # The reports from the task in the cluster: the firing marked, its windows on the load's
    # axis, a JUnit testcase per SLA criterion and firing, the Markdown summary.
    html, junit = tmp_path / "report.html", tmp_path / "report.xml"
    done = subprocess.run(
        [sys.executable, "-m", "krally", "report", "-n", ns, f"bt/{name}", "--html", str(html),
         "--junit", str(junit), "--markdown", "-"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # Markdown on stdout, alone (the "written to" lines on stderr); `_` escaped in text.
    assert done.stdout.startswith("## ") and "HTML report written" in done.stderr
    markdown = done.stdout.replace("\\_", "_")
    assert "disruption_impact" in markdown and "#1 kube.pod_kill" in markdown
    page = html.read_text()
    data = json.loads(re.search(r'id="krally-data">(.*?)</script>', page).group(1))
    (workload,) = data["tasks"][0]["workloads"]
    (firing,) = workload["firings"]
    (entry,) = workload["impact"]
    assert 0 < firing["offset"] <= entry["offset"] < workload["loadDuration"]
    assert entry["during"]["from"] == pytest.approx(
        entry["offset"] + during["fromSeconds"], abs=0.01
    )
    assert sum(workload["timeline"]["count"]) == status["result"]["iterations"]
    assert sum(b[2] for b in workload["histogram"]) == status["result"]["iterations"]
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    names = [case.get("name") or "" for case in cases]
    assert any("disruption_impact" in n for n in names), names
    assert any("kube.pod_kill" in n for n in names), names


def test_draining_the_runners_own_node_is_refused(
    cluster: Cluster, ns: str, operator: Operator, wait_for: Any
) -> None:
    node = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]
    node_name = node["metadata"]["name"]
    account = "drainer"
    cluster.kubectl("create", "serviceaccount", account, "-n", ns)
    cluster.kubectl("annotate", "serviceaccount", account, "-n", ns, "krally.dev/hooks=allowed")
    # Every right a drain needs: what refuses it is the runner's presence, not RBAC.
    cluster.kubectl(
        "create", "clusterrolebinding", f"{ns}-drainer", "--clusterrole=cluster-admin",
        f"--serviceaccount={ns}:{account}",
    )  # fmt: skip
    try:
        spec = {
            "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.05}},
            "runner": {"type": "constant", "times": 60, "concurrency": 1},
            "hooks": [
                {
                    "name": "kube.node_drain",
                    "args": {"node": node_name},
                    "trigger": {"name": "event", "args": {"unit": "iteration", "at": [10]}},
                    "job": {"serviceAccountName": account, "timeoutSeconds": 60},
                }
            ],
        }
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("drain", spec))
        status = wait_phase(cluster, ns, "drain", {"Succeeded", "Failed"}, wait_for, 180)
        (result,) = status["hooks"][0]["results"]
        assert result["status"] == "failed", result
        assert "runner" in result["error"]["msg"] and node_name in result["error"]["msg"], result
        # Refused before touching anything: the node was never cordoned.
        node = json.loads(cluster.kubectl("get", "node", node_name, "-o", "json").stdout)
        assert not node["spec"].get("unschedulable"), node["spec"]
    finally:
        cluster.kubectl("delete", "clusterrolebinding", f"{ns}-drainer", check=False)
