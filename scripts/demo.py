#!/usr/bin/env python3
"""The demo's steps, on the local control plane of tests/cluster (run it through scripts/demo)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster import Cluster, ClusterError  # noqa: E402

from krally.api.times import parse_time  # noqa: E402

EXAMPLE = ROOT / "manifests" / "examples" / "rally-hooks.yaml"
NAMESPACE = "krally-demo"


def say(text: str) -> None:
    print(f"\n### {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", type=Path, default=EXAMPLE, help="BenchmarkTask file to apply")
    parser.add_argument("--timeout", type=int, default=600, help="seconds to wait for the task")
    parser.add_argument("--operator-log", action="store_true", help="print the operator log")
    args = parser.parse_args()
    task_name = _task_name(args.task)

    say("starting the local control plane")
    try:
        cluster = Cluster().start()
    except ClusterError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    try:
        kubectl = cluster.kubectl
        print(f"kube-apiserver {cluster.version} at {cluster.server}")
        print(kubectl("get", "nodes", "-o", "wide").stdout, end="")

        say("kubectl apply -k manifests  (CRD, RBAC, operator Deployment; the local image)")
        print(kubectl("apply", "-k", str(cluster.install_overlay())).stdout, end="")
        kubectl("wait", "--for=condition=Established", "crd/benchmarktasks.krally.dev")
        kubectl(
            "-n",
            "krally-system",
            "rollout",
            "status",
            "deployment/krally-operator",
            "--timeout=120s",
        )

        say(f"kubectl apply -f {args.task.relative_to(ROOT)}  (namespace {NAMESPACE})")
        kubectl("create", "namespace", NAMESPACE)
        _wait_default_service_account(cluster)
        print(kubectl("-n", NAMESPACE, "apply", "-f", str(args.task)).stdout, end="")

        say(f"kubectl get benchmarktasks -w  (until {task_name} has finished)")
        watch = subprocess.Popen(
            [
                str(cluster.bindir / "kubectl"),
                "--kubeconfig",
                str(cluster.kubeconfig),
                "-n",
                NAMESPACE,
                "get",
                "benchmarktasks",
                "-w",
            ],
        )
        try:
            phase = _wait_finished(cluster, task_name, args.timeout)
        finally:
            time.sleep(0.5)  # let the watch print the final row
            watch.terminate()
            watch.wait()

        say(f"kubectl get benchmarktask {task_name}: hook results")
        status = json.loads(
            kubectl("-n", NAMESPACE, "get", "benchmarktask", task_name, "-o", "json").stdout
        )["status"]
        for hook in status.get("hooks", []):
            print(f"hook #{hook['index']} {hook['name']}: summary {hook.get('summary', {})}")
            for result in hook.get("results", []):
                by = result["triggeredBy"]
                lag = ""
                fired, started = result.get("firedAt"), result.get("startedAt")
                if fired and started:
                    ms = (parse_time(started) or 0) - (parse_time(fired) or 0)
                    lag = f", started {ms * 1000:.0f} ms after its iteration"
                armed = "armed" if result.get("armed") else "created on fire"
                print(
                    f"  {by['eventType']} {by['value']}: {result['status']} "
                    f"(job {result['job']}, {armed}{lag})"
                )
        arming = status.get("arming") or {}
        if arming.get("message"):
            print(f"arming: {arming['message']}")
        print(f"SLA: {status.get('display', {}).get('sla', '')}   phase: {phase}")
        print(kubectl("-n", NAMESPACE, "get", "jobs", "-L", "krally.dev/role").stdout, end="")
        if args.operator_log:
            # Both replicas (the leader's lines show the work; the follower's its waiting).
            print(
                kubectl(
                    "-n", "krally-system", "logs", "-l", "app.kubernetes.io/component=operator",
                    "--prefix", "--tail=-1",
                ).stdout
            )  # fmt: skip
        return 0 if phase == "Succeeded" else 1
    finally:
        say("stopping the local control plane")
        cluster.stop()


def _task_name(path: Path) -> str:
    import yaml

    return yaml.safe_load(path.read_text())["metadata"]["name"]


def _wait_default_service_account(cluster: Cluster) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cluster.kubectl("-n", NAMESPACE, "get", "sa", "default", check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit("demo: the namespace's default ServiceAccount never appeared")


def _wait_finished(cluster: Cluster, name: str, timeout: int) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = cluster.kubectl(
            "-n",
            NAMESPACE,
            "get",
            "benchmarktask",
            name,
            "-o",
            "jsonpath={.status.phase}",
            check=False,
        )
        if proc.stdout in ("Succeeded", "Failed", "Aborted"):
            return proc.stdout
        time.sleep(0.5)
    return "timed out"


if __name__ == "__main__":
    raise SystemExit(main())
