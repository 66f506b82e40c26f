"""What the e2e tests share: the operator as a child process, and small task helpers."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from tests.cluster import images

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "benchmarktasks.krally.dev.yaml"
SCHEDULE_CRD = ROOT / "crds" / "benchmarkschedules.krally.dev.yaml"
CLUSTER_ROLE = ROOT / "manifests" / "clusterrole.yaml"
REQUESTER_POLICY = ROOT / "manifests" / "requester-policy.yaml"
RALLY_EXAMPLE = ROOT / "manifests" / "examples" / "rally-hooks.yaml"
OPERATOR_SA = "krally-operator"


class Operator:
    """`krally operator` as a child process, acting as the operator ServiceAccount."""

    def __init__(
        self,
        cluster: Any,
        namespace: str,
        workdir: Path,
        *,
        name: str = "operator",
        args: Sequence[str] = ("--standalone",),
        watch: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Runs as ``krally-operator`` of ``namespace``, watching it, or the ``watch`` list."""
        self.cluster, self.namespace, self.workdir = cluster, namespace, workdir
        self.watch = watch or (namespace,)
        # Several operators side by side (leader election) each get their own files.
        self.kubeconfig = workdir / f"{name}.kubeconfig"
        self.log = workdir / f"{name}.log"
        self.args, self.env = tuple(args), dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        token = cluster.token_for(namespace, OPERATOR_SA)
        cluster.write_kubeconfig(self.kubeconfig, token=token, namespace=namespace)

    def start(self, **extra_env: str) -> Operator:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KRALLY_HOOK_TIMEOUT": "60",
            # Runner and hook pods run the image built from Dockerfile, imported, never pulled.
            "KRALLY_IMAGE": images.KRALLY_REF,
            "KRALLY_IMAGE_PULL_POLICY": "Never",
            # The operator validates specs: it must know the alt image's test-only scenario.
            "KRALLY_PLUGIN_PATH": str(images.HERE / "plugins"),
            # Tasks may name the alt image too: allowed explicitly, as an admin would.
            "KRALLY_ALLOWED_IMAGES": images.ALT_REF,
            # The tests read finished hook Jobs and their pods (exactly once, annotations,
            # termination messages): kept, as an admin debugging would; test_requester_bound.py
            # runs the default (deleted once recorded).
            "KRALLY_KEEP_HOOK_JOBS": "1",
            "PYTHONUNBUFFERED": "1",
            **self.env,
            **extra_env,
        }
        handle = self.log.open("ab")
        watch = [arg for namespace in self.watch for arg in ("-n", namespace)]
        # Several host operators at once: no metrics unless a test asks for a port.
        metrics = (
            [] if any(a.startswith("--metrics-port") for a in self.args) else ["--metrics-port=0"]
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "krally", "operator", *watch, *metrics, *self.args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a crashed or evicted operator pod."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def output(self, lines: int = 60) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


LEADER_ELECTION = ROOT / "manifests" / "operator" / "leader-election.yaml"


def grant_lease_rights(cluster: Any, ns: str) -> None:
    """The shipped leader-election Role and RoleBinding, moved into the test's namespace (where
    the test's operator ServiceAccount lives and its Lease is kept)."""
    docs = [d for d in yaml.safe_load_all(LEADER_ELECTION.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = ns
        for subject in doc.get("subjects") or []:
            subject["namespace"] = ns
            subject["name"] = OPERATOR_SA
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def lease(cluster: Any, ns: str, name: str = "krally-operator") -> dict[str, Any]:
    proc = cluster.kubectl("get", "lease", name, "-n", ns, "-o", "json", check=False)
    return json.loads(proc.stdout).get("spec") or {} if proc.returncode == 0 else {}


def leader_operator(cluster: Any, ns: str, workdir: Path, name: str) -> Operator:
    """`krally operator --leader-elect` named ``name`` in the Lease of ``ns``."""
    return Operator(
        cluster,
        ns,
        workdir,
        name=name,
        args=("--leader-elect",),
        env={"KRALLY_POD_NAME": name, "KRALLY_LEADER_NAMESPACE": ns},
    )


# -- helpers -----------------------------------------------------------------------------------


def task_yaml(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "krally.dev/v1alpha1",
            "kind": "BenchmarkTask",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def get_task(cluster: Any, ns: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "bt", name, "-n", ns, "-o", "json").stdout)


def get_status(cluster: Any, ns: str, name: str) -> dict[str, Any]:
    return get_task(cluster, ns, name).get("status") or {}


def wait_phase(
    cluster: Any,
    ns: str,
    name: str,
    phases: set[str],
    wait_for: Callable[..., Any],
    timeout: float = 120,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = get_status(cluster, ns, name)
        return status if status.get("phase") in phases else None

    return wait_for(reached, timeout=timeout, message=f"bt/{name} phase in {sorted(phases)}")


def jobs(cluster: Any, ns: str, selector: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "jobs", "-n", ns, "-l", selector, "-o", "json").stdout
    return json.loads(out)["items"]


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == ctype)


def triggered(results: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(r["triggeredBy"]["eventType"], r["triggeredBy"]["value"]) for r in results]


def dummy_spec(times: int, sleep: float, hooks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": sleep}},
        "runner": {"type": "constant", "times": times, "concurrency": 1},
        "sla": {"failure_rate": {"max": 0}},
        "hooks": hooks,
    }


def sys_call(command: str, trigger: str, **args: Any) -> dict[str, Any]:
    return {"name": "sys_call", "args": command, "trigger": {"name": trigger, "args": args}}


def wait_requester_policy(cluster: Any) -> None:
    """The operator runs a referencing task only if it was created after the requester
    policy's binding (creationTimestamp: whole seconds): wait until that second is over, and
    a moment for the API server to load the policy."""
    binding = json.loads(
        cluster.kubectl(
            "get", "validatingadmissionpolicybinding", "requester.krally.dev", "-o", "json"
        ).stdout
    )
    created = datetime.datetime.fromisoformat(
        binding["metadata"]["creationTimestamp"].replace("Z", "+00:00")
    )
    wait = (created - datetime.datetime.now(datetime.UTC)).total_seconds() + 2
    if wait > 0:
        time.sleep(wait)
