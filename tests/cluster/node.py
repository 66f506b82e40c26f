"""The process node: a small kubelet stand-in for the test control plane.

It registers a Ready Node, binds pending pods to itself (there is no scheduler), runs each
container's command and args as a local process and reports pod status the way a kubelet does.

Scheduling: a pod whose `spec.nodeSelector` does not match this node's labels is not bound; it
stays Pending with the condition PodScheduled=False, reason Unschedulable and the scheduler's
message, written once per pod (the labels never change). Affinity, tolerations (the node has no
taints), resources and other schedulers' pods (spec.schedulerName) are not considered.

What a pod gets, and what differs from a real node:
- Images are ignored: the command runs on this machine, so `krally ...` or `python -m krally`
  resolves on this machine's PATH. A container without `command` cannot run (StartError),
  except for an image named krally (any registry or tag), whose ENTRYPOINT `krally` is known.
- Environment: this process's own environment (the "image"), then KUBERNETES_SERVICE_HOST/PORT,
  KUBECONFIG (a per-pod kubeconfig with a TokenRequest token bound to the pod, for its service
  account: RBAC applies), HOSTNAME, `envFrom` and `env` (value with $(VAR) expansion, fieldRef,
  configMapKeyRef, secretKeyRef).
- Each container runs in its own process group inside `unshare -m --propagation private` (we
  are root): a private mount namespace where per-pod files are bind-mounted over its
  terminationMessagePath (default /dev/termination-log) and over
  /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt, namespace), so in-cluster
  configuration and termination messages work as in a real cluster. Empty mount points for those
  paths are created on the host once. Without a working `unshare` (not root), the pods run
  without those two mounts and a warning is logged.
- stdout/stderr go to <workdir>/pods/<namespace>/<pod>/<container>.log, which the node serves
  to `kubectl logs` (with --tls-cert/--tls-key; no exec, attach or port-forward).
- restartPolicy OnFailure/Always restart a container after 1, 2, 4 ... up to 10 s (a kubelet
  waits 10 s up to 5 min). activeDeadlineSeconds is enforced. Volumes, probes, resources,
  ports, securityContext (every process runs as this node's user: root) and sidecar init
  containers are ignored; all pods share the host's network (podIP 127.0.0.1).

Run: python -m tests.cluster.node --kubeconfig FILE --name NODE --workdir DIR
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.cluster.http import JSON, ApiError, KubeHTTP
from tests.cluster.logserver import LogServer

log = logging.getLogger("process-node")

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
MAX_TERMINATION_MESSAGE = 4096  # bytes per container, as the kubelet
FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES = 80, 2048
HEARTBEAT_SECONDS = 10
# What kube-scheduler says of a pod no node's labels match (there is one node).
UNSCHEDULABLE_MESSAGE = (
    "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
)
# Images are ignored, but a container giving only `args` relies on its image's ENTRYPOINT.
IMAGE_ENTRYPOINTS = {"krally": ["krally"]}
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
# Mounts the per-pod files in the private mount namespace, then becomes the container command.
MOUNT_SCRIPT = """set -e
t_src=$1 t_dst=$2 s_src=$3 s_dst=$4; shift 4
if [ -n "$t_dst" ]; then mount --bind "$t_src" "$t_dst"; fi
if [ -n "$s_src" ]; then mount --bind "$s_src" "$s_dst"; fi
exec "$@"
"""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exit_code(returncode: int) -> int:
    """A signal death as a shell reports it (SIGKILL -> 137)."""
    return 128 - returncode if returncode < 0 else returncode


def image_entrypoint(container: JSON) -> list[str]:
    """The ENTRYPOINT of the images this node knows (krally's own), for `args`-only containers."""
    image = str(container.get("image") or "")
    name = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return list(IMAGE_ENTRYPOINTS.get(name, []))


def unshare_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, timeout=10
    )
    return probe.returncode == 0


# -- environment --------------------------------------------------------------------------

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, others stay."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


def field_value(pod: JSON, path: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    values = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.hostIP": "127.0.0.1",
        "status.podIP": "127.0.0.1",
    }
    if path not in values:
        raise ValueError(f"fieldRef {path} is not supported by the process node")
    return str(values[path])


# -- per-pod state --------------------------------------------------------------------------


@dataclass
class Container:
    spec: JSON
    init: bool
    log: Path
    termination_file: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    restart_count: int = 0
    terminated: JSON | None = None  # the state.terminated of the last run
    last_terminated: JSON | None = None
    waiting: JSON | None = None  # {"reason", "message"} while not running
    restart_at: float | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> JSON:
        state: JSON = {"waiting": None, "running": None, "terminated": None}
        if self.running:
            state["running"] = {"startedAt": self.started_at}
        elif self.terminated is not None and self.restart_at is None:
            state["terminated"] = self.terminated
        else:
            state["waiting"] = self.waiting or {"reason": "ContainerCreating"}
        result: JSON = {
            "name": self.name,
            "image": self.spec.get("image") or "none",
            "imageID": "",
            "ready": self.running and not self.init,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": state,
        }
        if self.proc is not None:
            result["containerID"] = f"process://{self.proc.pid}"
        if self.last_terminated is not None:
            result["lastState"] = {"terminated": self.last_terminated}
        return result


@dataclass
class PodWorker:
    """Runs one pod to its end in its own thread."""

    node: ProcessNode
    pod: JSON
    delete_requested: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    grace: float = 30.0
    containers: list[Container] = field(default_factory=list)
    start_time: str = ""
    reported: str = ""  # the last status patch sent, to skip identical ones
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)
    deadline: float | None = None

    @property
    def key(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.pod['metadata']['name']}"

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    def request_delete(self, grace: float) -> None:
        self.grace = min(self.grace, grace) if self.delete_requested.is_set() else grace
        self.delete_requested.set()
        self.wake.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            log.exception("pod %s: process node error", self.key)
            self._kill_all(grace=2)
            with contextlib.suppress(Exception):
                self._report("Failed", reason="NodeError", message=f"process node: {exc}")
        finally:
            self.node.finished(self)

    # The pod's lifetime: prepare, init containers in order, then all containers together.
    def _run(self) -> None:
        spec = self.pod["spec"]
        meta = self.pod["metadata"]
        self.start_time = now()
        poddir = self.node.workdir / "pods" / meta["namespace"] / meta["name"]
        shutil.rmtree(poddir, ignore_errors=True)
        poddir.mkdir(parents=True)
        for c in spec.get("initContainers") or []:
            self.containers.append(self._container(c, True, poddir))
        for c in spec.get("containers") or []:
            self.containers.append(self._container(c, False, poddir))
        deadline = spec.get("activeDeadlineSeconds")
        self.deadline = time.monotonic() + float(deadline) if deadline else None

        env = self._base_env(poddir)
        inits = [c for c in self.containers if c.init]
        mains = [c for c in self.containers if not c.init]
        if inits:
            self._report("Pending")
            for container in inits:
                if not self._supervise([container], poddir, env):
                    return
        self._supervise(mains, poddir, env)

    def _container(self, spec: JSON, init: bool, poddir: Path) -> Container:
        termination = poddir / f"{spec['name']}.termination-log"
        termination.touch()
        return Container(spec, init, poddir / f"{spec['name']}.log", termination)

    def _supervise(self, group: list[Container], poddir: Path, env: dict[str, str]) -> bool:
        """Run `group` to completion; True when every container succeeded."""
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for container in group:
            self._start(container, poddir, env)
        self._report_current()
        while True:
            self.wake.clear()  # before looking: an exit from now on wakes the wait below
            stop = self._stop_reason()
            if stop:
                pod_grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
                self._kill_all(self.grace if stop == "deleted" else float(pod_grace))
                if stop == "deleted":
                    self._report(self._terminal_phase(), reason=None, message=None)
                else:
                    self._report(
                        "Failed",
                        reason="DeadlineExceeded",
                        message="Pod was active on the node longer than the specified deadline",
                    )
                return False
            changed = False
            for container in group:
                proc = container.proc
                if proc is not None and container.terminated is None and proc.poll() is not None:
                    self._collect(container)
                    changed = True
                if container.restart_at is not None and time.monotonic() >= container.restart_at:
                    container.restart_at = None
                    container.restart_count += 1
                    self._start(container, poddir, env)
                    changed = True
                elif container.terminated is not None and container.restart_at is None:
                    code = container.terminated["exitCode"]
                    again = (policy == "Always" and not container.init) or (
                        policy in ("Always", "OnFailure") and code != 0
                    )
                    if again and container.proc is not None:
                        backoff = min(10.0, 2.0 ** min(container.restart_count, 4))
                        container.restart_at = time.monotonic() + backoff
                        container.last_terminated = container.terminated
                        container.waiting = {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off {backoff:g}s restarting failed container",
                        }
                        changed = True
            if changed:
                self._report_current()
            if all(c.terminated is not None and c.restart_at is None for c in group):
                ok = all(c.terminated["exitCode"] == 0 for c in group)  # type: ignore[index]
                if not ok or not group[0].init:
                    self._report(self._terminal_phase())
                return ok
            self.wake.wait(self._next_wakeup(group))

    def _next_wakeup(self, group: list[Container]) -> float:
        timeout = 1.0
        if self.deadline is not None:
            timeout = min(timeout, max(0.0, self.deadline - time.monotonic()))
        for c in group:
            if c.restart_at is not None:
                timeout = min(timeout, max(0.0, c.restart_at - time.monotonic()))
        return timeout

    def _stop_reason(self) -> str | None:
        if self.delete_requested.is_set():
            return "deleted"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "deadline"
        return None

    def _start(self, container: Container, poddir: Path, base_env: dict[str, str]) -> None:
        container.terminated = None
        container.termination_file.write_bytes(b"")
        try:
            env = self._container_env(container.spec, base_env)
            command = container.spec.get("command") or image_entrypoint(container.spec)
            if not command:
                raise StartError("the process node needs a container command (images are ignored)")
            argv = [expand(a, env) for a in command]
            argv += [expand(a, env) for a in container.spec.get("args") or []]
            if not shutil.which(argv[0], path=env.get("PATH")):
                raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
            cwd = Path(container.spec.get("workingDir") or poddir)
            cwd.mkdir(parents=True, exist_ok=True)
            termination_path = container.spec.get(
                "terminationMessagePath", DEFAULT_TERMINATION_PATH
            )
            if self.node.mounts:
                self.node.ensure_mount_point(termination_path, directory=False)
                sa = poddir / "serviceaccount"
                argv = [
                    "unshare", "-m", "--propagation", "private", "--",
                    "/bin/sh", "-c", MOUNT_SCRIPT, "sh",
                    str(container.termination_file), termination_path,
                    str(sa) if sa.is_dir() else "", SA_DIR,
                    *argv,
                ]  # fmt: skip
            if self.node.pdeathsig:
                argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
            with container.log.open("ab") as out:
                container.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,  # its own process group, killed as a whole
                )
            container.started_at = now()
            container.waiting = None
            threading.Thread(target=self._wait_exit, args=(container.proc,), daemon=True).start()
            log.info("pod %s: started %s (pid %d)", self.key, container.name, container.proc.pid)
        except (StartError, ValueError, OSError, ApiError) as exc:
            log.warning("pod %s: container %s cannot start: %s", self.key, container.name, exc)
            container.proc = None
            container.started_at = container.started_at or now()
            container.terminated = {
                "exitCode": 128,
                "reason": "StartError",
                "message": str(exc),
                "startedAt": container.started_at,
                "finishedAt": now(),
            }

    def _wait_exit(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self.wake.set()

    def _collect(self, container: Container) -> None:
        assert container.proc is not None
        code = exit_code(container.proc.returncode)
        # Like a container's cgroup, whatever the command left behind in its group ends with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(container.proc.pid, signal.SIGKILL)
        message = container.termination_file.read_bytes()[:MAX_TERMINATION_MESSAGE]
        text = message.decode("utf-8", "replace")
        policy = container.spec.get("terminationMessagePolicy", "File")
        if not text and code != 0 and policy == "FallbackToLogsOnError":
            with contextlib.suppress(OSError):
                lines = container.log.read_bytes().splitlines()[-FALLBACK_LOG_LINES:]
                text = b"\n".join(lines)[-FALLBACK_LOG_BYTES:].decode("utf-8", "replace")
        terminated: JSON = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": container.started_at,
            "finishedAt": now(),
            "containerID": f"process://{container.proc.pid}",
        }
        if container.proc.returncode < 0:
            terminated["signal"] = -container.proc.returncode
        if text:
            terminated["message"] = text
        container.terminated = terminated
        log.info("pod %s: %s exited %d", self.key, container.name, code)

    def _kill_all(self, grace: float) -> None:
        running = [c for c in self.containers if c.running]
        for c in running:
            assert c.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.proc.pid, signal.SIGTERM)
        end = time.monotonic() + grace
        for c in running:
            assert c.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.proc.wait(max(0.0, end - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.proc.pid, signal.SIGKILL)
            c.proc.wait()
        for c in self.containers:
            if c.proc is not None and c.terminated is None:
                self._collect(c)
            c.restart_at = None

    def _terminal_phase(self) -> str:
        """Succeeded only when every main container ran and exited 0 (restartPolicy aside)."""
        mains = [c for c in self.containers if not c.init]
        ok = all(c.terminated is not None and c.terminated["exitCode"] == 0 for c in mains)
        return "Succeeded" if ok else "Failed"

    # -- environment -----------------------------------------------------------------------

    def _base_env(self, poddir: Path) -> dict[str, str]:
        spec, meta = self.pod["spec"], self.pod["metadata"]
        env = {
            k: v
            for k, v in os.environ.items()
            if k != "KUBECONFIG" and not k.startswith("KUBERNETES_")
        }
        host, port = self.node.api_host, self.node.api_port
        env.update(
            {
                "HOSTNAME": meta["name"],
                "KUBERNETES_SERVICE_HOST": host,
                "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port,
                "KUBERNETES_PORT": f"tcp://{host}:{port}",
            }
        )
        token = None
        if spec.get("automountServiceAccountToken", True) is not False:
            token = self.node.pod_token(self.pod)
            sa = poddir / "serviceaccount"
            sa.mkdir()
            (sa / "token").write_text(token)
            (sa / "ca.crt").write_bytes(self.node.ca_pem)
            (sa / "namespace").write_text(meta["namespace"])
        kubeconfig = poddir / "kubeconfig"
        kubeconfig.write_text(self.node.pod_kubeconfig(token, meta["namespace"]))
        env["KUBECONFIG"] = str(kubeconfig)
        return env

    def _container_env(self, spec: JSON, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        namespace = self.pod["metadata"]["namespace"]
        for source in spec.get("envFrom") or []:
            prefix = source.get("prefix", "")
            ref = source.get("configMapRef") or source.get("secretRef")
            if not ref:
                continue
            kind = "configmaps" if "configMapRef" in source else "secrets"
            data = self.node.read_data(namespace, kind, ref["name"], ref.get("optional", False))
            env.update({prefix + k: v for k, v in data.items()})
        for var in spec.get("env") or []:
            name = var["name"]
            if "valueFrom" not in var:
                env[name] = expand(var.get("value", ""), env)
                continue
            source = var["valueFrom"]
            if "fieldRef" in source:
                env[name] = field_value(self.pod, source["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in source or "secretKeyRef" in source:
                kind = "configmaps" if "configMapKeyRef" in source else "secrets"
                ref = source.get("configMapKeyRef") or source["secretKeyRef"]
                optional = ref.get("optional", False)
                data = self.node.read_data(namespace, kind, ref["name"], optional)
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
                elif not optional:
                    raise StartError(f"couldn't find key {ref['key']} in {kind} {ref['name']}")
            else:
                raise StartError(f"env {name}: valueFrom {sorted(source)} is not supported")
        return env

    # -- status ----------------------------------------------------------------------------

    def _report_current(self) -> None:
        # Like a kubelet: Running from the first main container start until the pod ends,
        # restarts and back-offs included.
        started = any(c.started_at for c in self.containers if not c.init)
        self._report("Running" if started else "Pending")

    def _report(self, phase: str, reason: str | None = None, message: str | None = None) -> None:
        mains = [c for c in self.containers if not c.init]
        inits = [c for c in self.containers if c.init]
        terminal = phase in ("Succeeded", "Failed")
        initialized = not inits or all(
            c.terminated is not None and c.terminated["exitCode"] == 0 for c in inits
        )
        ready = not terminal and bool(mains) and all(c.running for c in mains)
        stamp = now()

        def condition(kind: str, ok: bool, why: str | None = None) -> JSON:
            cond: JSON = {"type": kind, "status": "True" if ok else "False"}
            cond["lastTransitionTime"] = stamp
            cond["reason"] = why
            return cond

        why_not_ready = "PodCompleted" if terminal else "ContainersNotReady"
        status: JSON = {
            "phase": phase,
            "reason": reason,
            "message": message,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "conditions": [
                condition("PodReadyToStartContainers", not terminal),
                condition(
                    "Initialized", initialized, None if initialized else "ContainersNotInitialized"
                ),
                condition("Ready", ready, None if ready else why_not_ready),
                condition("ContainersReady", ready, None if ready else why_not_ready),
                condition("PodScheduled", True),
            ],
            "containerStatuses": [c.status() for c in mains],
        }
        if inits:
            status["initContainerStatuses"] = [c.status() for c in inits]
        fingerprint = repr(
            {**status, "conditions": [(c["type"], c["status"]) for c in status["conditions"]]}
        )
        if fingerprint == self.reported:
            return
        # A condition's lastTransitionTime changes only when its status does.
        for cond in status["conditions"]:
            prev = self.transitions.get(cond["type"])
            if prev and prev[0] == cond["status"]:
                cond["lastTransitionTime"] = prev[1]
            self.transitions[cond["type"]] = (cond["status"], cond["lastTransitionTime"])
        self.node.patch_status(self.pod, status)
        self.reported = fingerprint


class StartError(Exception):
    """A container cannot be started (reported as state.terminated reason StartError)."""


# -- the node -------------------------------------------------------------------------------


class ProcessNode:
    def __init__(self, kubeconfig: Path, name: str, workdir: Path, version: str) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = str(cluster["server"])
        self.ca_pem = base64.b64decode(cluster["certificate-authority-data"])
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca_file = self.workdir / "ca.crt"
        ca_file.write_bytes(self.ca_pem)
        token = config["users"][0]["user"]["token"]
        self.api = KubeHTTP(self.server, str(ca_file), token)
        hostport = self.server.split("://", 1)[1]
        self.api_host, self.api_port = hostport.rsplit(":", 1)
        self.name = name
        self.version = version
        self.mounts = unshare_works()
        # A pod process dies with the thread that started it, even if this node is SIGKILLed.
        self.pdeathsig = shutil.which("setpriv") is not None
        if not self.mounts:
            log.warning(
                "unshare -m is not usable (not root?): pods run without "
                "%s and the termination-log bind mounts",
                SA_DIR,
            )
        self.labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "krally.dev/process-node": "true",
        }
        self.workers: dict[str, PodWorker] = {}
        self.done: set[str] = set()  # uids run to their end, never started again
        # uid → the nodeSelector found unschedulable (and so reported): reported once only.
        self.unschedulable: dict[str, str] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._mount_points: set[str] = set()
        self.logs_port = 0

    def serve_logs(self, cert: Path, key: Path) -> None:
        server = LogServer(self.workdir / "pods", cert, key, self.container_running)
        server.start()
        self.logs_port = server.port

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            meta = worker.pod["metadata"]
            if (meta["namespace"], meta["name"]) == (namespace, pod):
                mine = [c for c in worker.containers if c.name == container]
                return any(c.running or c.restart_at is not None for c in mine)
        return False

    # -- node object -----------------------------------------------------------------------

    def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": self.labels},
        }
        try:
            self.api.request("POST", "/api/v1/nodes", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        self.heartbeat()
        # Nothing else removes the not-ready taint added at creation (no node lifecycle controller).
        self.api.request(
            "PATCH", f"/api/v1/nodes/{self.name}", {"spec": {"taints": None}}, content_type=MERGE
        )

    def heartbeat(self) -> None:
        stamp = now()
        conditions = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True", "KubeletReady"),
        ]
        capacity = {"cpu": str(os.cpu_count() or 1), "memory": "8Gi", "pods": "110"}
        status = {
            "conditions": [
                {
                    "type": kind,
                    "status": value,
                    "reason": reason,
                    "message": "process node",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": getattr(self, "_started", stamp),
                }
                for kind, value, reason in conditions
            ],
            "capacity": capacity,
            "allocatable": capacity,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.logs_port}},
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.name},
            ],
            "nodeInfo": {
                "kubeletVersion": self.version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "process://0",
                "osImage": "krally process node",
                "kernelVersion": os.uname().release,
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
        self._started = getattr(self, "_started", stamp)
        self.api.request(
            "PATCH", f"/api/v1/nodes/{self.name}/status", {"status": status}, content_type=SMP
        )

    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
            except Exception:
                log.exception("heartbeat failed")

    # -- pods ------------------------------------------------------------------------------

    def run(self) -> None:
        self.register()
        log.info("node %s registered and Ready (api %s)", self.name, self.server)
        threading.Thread(target=self._heartbeat_loop, daemon=True).start()
        while not self.stopping.is_set():
            try:
                listing = self.api.get("/api/v1/pods")
                for pod in listing["items"]:
                    self.handle("ADDED", pod)
                version = listing["metadata"]["resourceVersion"]
                for event in self.api.watch("/api/v1/pods", version):
                    if self.stopping.is_set():
                        break
                    kind = event.get("type")
                    if kind == "ERROR":
                        log.info("watch ended: %s", event.get("object", {}).get("message"))
                        break
                    if kind == "BOOKMARK":
                        continue
                    self.handle(str(kind), event["object"])
            except Exception as exc:
                if self.stopping.is_set():
                    break
                log.warning("pod watch failed, listing again: %s", exc)
                time.sleep(0.5)

    def handle(self, kind: str, pod: JSON) -> None:
        """One pod event; an error here is logged and never stops the node."""
        try:
            self._handle(kind, pod)
        except Exception:
            meta = pod.get("metadata", {})
            log.exception(
                "pod %s/%s: event %s failed", meta.get("namespace"), meta.get("name"), kind
            )

    def _handle(self, kind: str, pod: JSON) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        deleting = meta.get("deletionTimestamp") is not None
        with self.lock:
            worker = self.workers.get(uid)
            done = uid in self.done
        if kind == "DELETED":
            self.unschedulable.pop(uid, None)
            if worker is not None:
                worker.request_delete(0)
            return
        node_name = spec.get("nodeName")
        if not node_name:
            if (
                not deleting
                and not spec.get("schedulingGates")
                and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
            ):
                if self.fits(spec):
                    self.bind(pod)
                else:
                    self.mark_unschedulable(pod)
            return
        self.unschedulable.pop(uid, None)
        if node_name != self.name:
            return
        phase = pod.get("status", {}).get("phase")
        if worker is not None:
            if deleting:
                worker.request_delete(float(meta.get("deletionGracePeriodSeconds") or 0))
            return
        if done or phase in ("Succeeded", "Failed") or deleting:
            if deleting:
                self.delete_now(pod)
            return
        worker = PodWorker(self, pod)
        with self.lock:
            self.workers[uid] = worker
        threading.Thread(target=worker.run, name=f"pod-{meta['name']}", daemon=True).start()

    def finished(self, worker: PodWorker) -> None:
        with self.lock:
            self.workers.pop(worker.uid, None)
            self.done.add(worker.uid)
        if worker.delete_requested.is_set():
            self.delete_now(worker.pod)

    def fits(self, spec: JSON) -> bool:
        """Whether the pod's nodeSelector matches this node's labels (all pairs, exactly)."""
        selector = spec.get("nodeSelector") or {}
        return all(self.labels.get(key) == value for key, value in selector.items())

    def mark_unschedulable(self, pod: JSON) -> None:
        """PodScheduled=False/Unschedulable, as kube-scheduler writes it; once per pod."""
        meta = pod["metadata"]
        uid = meta["uid"]
        selector = repr(sorted((pod["spec"].get("nodeSelector") or {}).items()))
        if self.unschedulable.get(uid) == selector:
            return  # reported already (this event may be our own status write)
        conditions = (pod.get("status") or {}).get("conditions") or []
        reported = any(
            c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
            and c.get("message") == UNSCHEDULABLE_MESSAGE
            for c in conditions
        )
        if not reported:  # e.g. by an earlier run of this node
            condition = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": UNSCHEDULABLE_MESSAGE,
                "lastProbeTime": None,
                "lastTransitionTime": now(),
            }
            self.patch_status(pod, {"phase": "Pending", "conditions": [condition]})
            log.info(
                "pod %s/%s: unschedulable (nodeSelector %s)",
                meta["namespace"], meta["name"], selector,
            )  # fmt: skip
        self.unschedulable[uid] = selector

    def bind(self, pod: JSON) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding"
        try:
            self.api.request("POST", path, body)
        except ApiError as exc:
            if exc.status not in (404, 409):  # gone, or bound by an earlier event
                raise
            return
        log.info("pod %s/%s: bound", meta["namespace"], meta["name"])

    def delete_now(self, pod: JSON) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            self.api.request("DELETE", path, body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def patch_status(self, pod: JSON, status: JSON) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        try:
            self.api.request(
                "PATCH",
                path,
                {"metadata": {"uid": meta["uid"]}, "status": status},
                content_type=SMP,
            )
        except ApiError as exc:
            if exc.status != 404:  # a pod already gone has no status to write
                raise

    def pod_token(self, pod: JSON) -> str:
        meta, spec = pod["metadata"], pod["spec"]
        account = spec.get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 86400,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        return str(self.api.request("POST", path, body)["status"]["token"])

    def pod_kubeconfig(self, token: str | None, namespace: str) -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": "pod", "user": {"token": token} if token else {}}],
            "contexts": [
                {
                    "name": "in-cluster",
                    "context": {"cluster": "in-cluster", "user": "pod", "namespace": namespace},
                }
            ],
            "current-context": "in-cluster",
        }
        return yaml.safe_dump(config, sort_keys=False)

    def read_data(self, namespace: str, kind: str, name: str, optional: bool) -> dict[str, str]:
        try:
            obj = self.api.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
        except ApiError as exc:
            if exc.status == 404 and optional:
                return {}
            raise StartError(f"{kind} {name}: {exc.message}") from exc
        data = dict(obj.get("data") or {})
        if kind == "secrets":
            return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}
        return {k: str(v) for k, v in data.items()}

    def ensure_mount_point(self, path: str, directory: bool) -> None:
        """Bind mounts need an existing target: an empty file (or directory) on the host."""
        if path in self._mount_points:
            return
        target = Path(path)
        if directory:
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        self._mount_points.add(path)

    def shutdown(self) -> None:
        """Kill every pod's process group (the cluster is going away: no status is written)."""
        self.stopping.set()
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker._kill_all(grace=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="krally's process node (kubelet stand-in)")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--name", default="krally-node")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--version", default="v0.0.0")
    parser.add_argument("--tls-cert", type=Path, help="serving certificate for `kubectl logs`")
    parser.add_argument("--tls-key", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(threadName)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    node = ProcessNode(args.kubeconfig, args.name, args.workdir, args.version)
    if node.mounts:
        node.ensure_mount_point(SA_DIR, directory=True)
    if args.tls_cert and args.tls_key:
        node.serve_logs(args.tls_cert, args.tls_key)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping, killing pod processes", signum)
        node.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
