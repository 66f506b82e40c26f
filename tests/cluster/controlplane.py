"""Start and stop etcd, kube-apiserver, kube-controller-manager and a node.

Two kinds of node: the real one (`node="real"`: kube-scheduler, containerd, kubelet and
kube-proxy in namespaces of their own, pods from locally built images; see realnode.py) and the
process node (`node="process"`: pod commands as host processes; see node.py).

Every component logs to a file in the cluster's temporary directory and carries a marker in its
environment, so that stop() can find and kill anything left behind, whatever happened. With the
process node everything listens on loopback; with the real node the API server listens on the
host end of the node's veth pair (an address of this machine, like loopback).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import certs, images, realnode
from tests.cluster.http import ApiError, KubeHTTP

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION_FILE = Path(__file__).with_name("KUBERNETES_VERSION")
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-control-plane.sh"
MARKER_ENV = "KRALLY_TEST_CLUSTER_ID"

CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "serviceaccount-token-controller",
    "serviceaccount-controller",
    "namespace-controller",
    "ttl-after-finished-controller",
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    # Beyond the Job world: the operator's Deployment runs in the demo, and the built-in
    # admin/edit/view ClusterRoles only get their rules through aggregation.
    "deployment-controller",
    "replicaset-controller",
    "clusterrole-aggregation-controller",
    # The kube.* disruption hooks' tests: PodDisruptionBudget status (evictions) and
    # StatefulSets (kube.scale, kube.pod_kill's wait_ready).
    "disruption-controller",
    "statefulset-controller",
    # A ValidatingAdmissionPolicy's type checking (status.typeChecking): the requester policy's.
    "validatingadmissionpolicy-status-controller",
)
# A real node also needs its taints managed and its Services' endpoints.
REAL_NODE_CONTROLLERS = (
    "node-lifecycle-controller",
    "endpoints-controller",
    "endpointslice-controller",
)
NODE_KINDS = ("real", "process")


class ClusterError(RuntimeError):
    """The control plane could not start or a component died; the message holds the logs."""


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        cmd = " ".join(self.cmd[3:]) if isinstance(self.cmd, list) else str(self.cmd)
        return (
            f"kubectl {cmd} exited {self.returncode}\n"
            f"stdout: {(self.stdout or '').strip()}\nstderr: {(self.stderr or '').strip()}"
        )


def kubernetes_version() -> str:
    return os.environ.get("KRALLY_KUBERNETES_VERSION") or VERSION_FILE.read_text().strip()


def binary_dir(version: str | None = None) -> Path:
    return images.cache_dir() / f"kubernetes-{version or kubernetes_version()}" / "bin"


def ensure_binaries(build: bool = True) -> Path:
    """The cached binaries' directory; builds them (minutes, first time only) when missing."""
    bindir = binary_dir()
    names = (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "kubelet",
        "kubectl",
    )
    if all((bindir / n).is_file() for n in names):
        return bindir
    if not build:
        raise ClusterError(f"control plane binaries missing in {bindir}: run {BUILD_SCRIPT}")
    # Progress goes to the real stderr: a first build takes minutes and must not look hung.
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=sys.__stderr__, stderr=sys.__stderr__)
    if proc.returncode != 0 or not all((bindir / n).is_file() for n in names):
        raise ClusterError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); see its output above")
    return bindir


def etcd_binary() -> str:
    found = os.environ.get("KRALLY_ETCD") or shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(found, os.X_OK):
        raise ClusterError("etcd not found: apt-get install -y etcd-server (or set KRALLY_ETCD)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * lines))
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<{exc}>"
    return "\n".join(text.splitlines()[-lines:])


class Component:
    """One child process with its log file."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = self.argv
        if shutil.which("setpriv"):
            # Dies with its parent even when that is SIGKILLed (a cancelled CI job). The
            # "parent" is the starting thread: start a cluster from a thread that outlives it.
            argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not them
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        if self.proc is None:
            return "not started"
        rc = self.proc.poll()
        return f"pid {self.proc.pid}, running" if rc is None else f"exited with {rc}"

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class Cluster:
    """A running control plane plus a node. Use start() or `with Cluster() as c`.

    `node="real"` (the default) runs pods in containers from locally built images;
    `node="process"` runs them as host processes (fast, no images; see node.py)."""

    def __init__(
        self,
        *,
        node: str = "real",
        node_name: str = "krally-node",
        workdir: Path | None = None,
        keep_workdir: bool = False,
        build: bool = True,
    ) -> None:
        if node not in NODE_KINDS:
            raise ClusterError(f"node must be one of {', '.join(NODE_KINDS)}, not {node!r}")
        self.node_kind = node
        self.node_name = node_name
        self.version = kubernetes_version()
        self._build = build
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="krally-cluster-"))
        self.keep_workdir = keep_workdir
        self.logdir = self.workdir / "logs"
        self.id = uuid.uuid4().hex
        self.admin_token = secrets.token_hex(16)
        self.components: list[Component] = []
        self.timings: dict[str, float] = {}
        self.server = ""
        self.kubeconfig = self.workdir / "kubeconfig"
        self.bindir = binary_dir()
        self._http: KubeHTTP | None = None
        self.certs: certs.Certificates | None = None
        # The real node's parts (None with the process node).
        self.images: list[images.Archive] = []
        self.net: realnode.NodeNetwork | None = None
        self.node: realnode.RealNode | None = None
        self._slot = realnode.SlotLock()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        if not self.components:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> Cluster:
        t0 = time.monotonic()
        try:
            self._start(timeout)
        except BaseException as exc:
            report = self.logs()
            kept = self._keep_logs()
            self.stop()
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ClusterError(
                f"cluster failed to start: {exc} (component logs: {kept})\n{report}"
            ) from exc
        self.timings["total"] = time.monotonic() - t0
        return self

    @property
    def real(self) -> bool:
        return self.node_kind == "real"

    def _start(self, timeout: float) -> None:
        self.bindir = ensure_binaries(self._build)
        self.logdir.mkdir(parents=True, exist_ok=True)
        bind_ip = "127.0.0.1"
        service_cidr = "10.0.0.0/24"
        sans: tuple[str, ...] = ()
        if self.real:
            realnode.ensure_tools()
            mark = time.monotonic()
            try:
                self.images = images.Builder(self.bindir / "kubectl").archives()
            except images.ImageError as exc:
                raise ClusterError(f"images: {exc}") from exc
            self.timings["images"] = time.monotonic() - mark
            mark = time.monotonic()
            self.net = net = realnode.NodeNetwork(self._slot.acquire())
            realnode.cleanup(net, self.logdir / "node-network.log")  # a killed run's leftovers
            net.create(self.logdir / "node-network.log")
            self.timings["network"] = time.monotonic() - mark
            bind_ip, service_cidr = net.host_ip, net.service_cidr
            sans = (net.host_ip, net.kubernetes_service_ip, net.node_ip)
        mark = time.monotonic()
        self.certs = c = certs.generate(self.workdir / "pki", sans)
        self.timings["certs"] = time.monotonic() - mark

        env = dict(os.environ)
        env[MARKER_ENV] = self.id
        env.pop("KUBECONFIG", None)

        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        etcd = self._add(
            "etcd",
            [
                etcd_binary(),
                "--name=krally",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=krally={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            env,
        )
        mark = time.monotonic()
        etcd.start()
        self._wait_http(etcd, f"{etcd_url}/health", timeout)
        self.timings["etcd"] = time.monotonic() - mark

        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)
        self.server = f"https://{bind_ip}:{api_port}"
        # Setting blockOwnerDeletion needs `update` on the owner's finalizers subresource, as in
        # production clusters that enable it: the operator's RBAC is proven against it.
        owner_refs = "OwnerReferencesPermissionEnforcement"
        apiserver_extra = [
            # `kubectl logs` reaches the process node by its InternalIP (127.0.0.1).
            "--kubelet-preferred-address-types=InternalIP",
            f"--enable-admission-plugins={owner_refs}",
        ]
        if self.real:
            kubelet_crt, kubelet_key = certs.client(
                self.workdir / "pki", c, "apiserver-kubelet", "kube-apiserver-kubelet-client",
                "system:masters",
            )  # fmt: skip
            apiserver_extra = [
                f"--advertise-address={bind_ip}",
                f"--kubelet-client-certificate={kubelet_crt}",
                f"--kubelet-client-key={kubelet_key}",
                # Without Hostname last it tries DNS for the node name and `kubectl logs` fails.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                # The kubelet acts as system:node:NAME: it may touch only its own node and pods.
                f"--enable-admission-plugins=NodeRestriction,{owner_refs}",
            ]
        apiserver = self._add(
            "kube-apiserver",
            [
                str(self.bindir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={bind_ip}",
                f"--secure-port={api_port}",
                f"--cert-dir={self.workdir / 'pki'}",
                f"--tls-cert-file={c.serving_cert}",
                f"--tls-private-key-file={c.serving_key}",
                f"--client-ca-file={c.ca_cert}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={c.sa_public_key}",
                f"--service-account-signing-key-file={c.sa_private_key}",
                f"--service-cluster-ip-range={service_cidr}",
                "--allow-privileged=true",
                *apiserver_extra,
                "--profiling=false",
                "--v=1",
            ],
            env,
        )
        mark = time.monotonic()
        apiserver.start()
        self._http = KubeHTTP(self.server, str(c.ca_cert), self.admin_token, timeout=10)
        self._wait_readyz(apiserver, timeout)
        self.timings["apiserver"] = time.monotonic() - mark
        self.write_kubeconfig(self.kubeconfig)

        controllers = CONTROLLERS + (REAL_NODE_CONTROLLERS if self.real else ())
        kcm = self._add(
            "kube-controller-manager",
            [
                *self._admin_component_argv("kube-controller-manager"),
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={c.sa_private_key}",
                f"--root-ca-file={c.ca_cert}",
                f"--controllers={','.join(controllers)}",
                "--concurrent-gc-syncs=5",
                "--v=1",
            ],
            env,
        )
        mark = time.monotonic()
        kcm.start()
        self._wait(
            lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
            timeout,
            "namespace default and its ServiceAccount",
        )
        self.timings["default-namespace"] = time.monotonic() - mark

        if self.real:
            self._start_real_node(env, timeout)
            return
        node = self._add(
            "process-node",
            [
                sys.executable,
                "-m",
                "tests.cluster.node",
                f"--kubeconfig={self.kubeconfig}",
                f"--name={self.node_name}",
                f"--workdir={self.workdir / 'node'}",
                f"--version={self.version}",
                f"--tls-cert={c.serving_cert}",
                f"--tls-key={c.serving_key}",
            ],
            {
                **env,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])
                ),
                "PYTHONUNBUFFERED": "1",
            },
        )
        mark = time.monotonic()
        node.start()
        self._wait(self._node_ready, timeout, f"node {self.node_name} Ready")
        self.timings["node"] = time.monotonic() - mark

    def _start_real_node(self, env: dict[str, str], timeout: float) -> None:
        assert self.net is not None and self.certs is not None
        c, net = self.certs, self.net
        pki = self.workdir / "pki"
        mark = time.monotonic()
        scheduler = self._add(
            "kube-scheduler",
            [*self._admin_component_argv("kube-scheduler"), "--v=1"],
            env,
        )
        scheduler.start()
        # Node identities: the kubelet as system:node:NAME (Node authorizer, NodeRestriction),
        # kube-proxy as system:kube-proxy (the built-in system:node-proxier binding).
        kubelet_cfg = self.workdir / "node" / "kubelet.kubeconfig"
        proxy_cfg = self.workdir / "node" / "kube-proxy.kubeconfig"
        crt, key = certs.client(pki, c, "kubelet", f"system:node:{self.node_name}", "system:nodes")
        self.write_cert_kubeconfig(kubelet_cfg, crt, key)
        crt, key = certs.client(pki, c, "kube-proxy", "system:kube-proxy", "system:node-proxier")
        self.write_cert_kubeconfig(proxy_cfg, crt, key)

        def launch(name: str, argv: list[str]) -> Component:
            component = self._add(name, argv, env)
            component.start()
            return component

        self.node = node = realnode.RealNode(
            name=self.node_name,
            work=self.workdir / "node",
            bindir=self.bindir,
            net=net,
            ca_cert=c.ca_cert,
            kubelet_kubeconfig=kubelet_cfg,
            proxy_kubeconfig=proxy_cfg,
            launch=launch,
            log=self.logdir / "node.log",
            image_root=images.cache_dir() / f"node-{net.slot}" / "containerd",
        )
        node.prepare()
        node.write_configs(images.PAUSE_REF)
        node.start_containerd()
        self._wait(node.containerd_ready, timeout, "containerd to answer")
        node.kill_containers()  # a killed run's, if any: the image store outlives nodes
        self.timings["containerd"] = time.monotonic() - mark
        mark = time.monotonic()
        try:
            for archive in self.images:
                node.import_image(archive.path, archive.ref)
        except realnode.NodeError as exc:
            raise ClusterError(f"image import: {exc}") from exc
        self.timings["image-import"] = time.monotonic() - mark
        mark = time.monotonic()
        node.start_kubelet()
        node.start_kube_proxy()
        self._wait(self._node_ready, timeout, f"node {self.node_name} Ready")
        self._wait(self._node_untainted, timeout, f"node {self.node_name} without taints")
        self._wait(node.proxy_synced, timeout, "kube-proxy rules for the kubernetes Service")
        self.timings["node"] = time.monotonic() - mark

    def stop(self) -> None:
        """Stop everything, newest first; then kill anything still carrying our marker.

        A real node goes first and in order: kubelet and kube-proxy, then every container
        (while containerd still answers), then containerd and the rest; then the node's
        namespaces, cgroups and routes are removed whatever state they were left in."""
        if self.node is not None:
            for component in reversed(self.components):
                if component.name in ("kube-proxy", "kubelet"):
                    component.stop()
            self.node.kill_containers()
        for component in reversed(self.components):
            component.stop()
        kill_marked_processes(self.id)
        if self.net is not None:
            realnode.cleanup(self.net, self.logdir / "node-network.log")
            self._slot.release()
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._http = None

    def install_overlay(self) -> Path:
        """A kustomization of the shipped `manifests/` with the image set to the one built
        here, as a user does (`kustomize edit set image`): `kubectl apply -k` it."""
        overlay = self.workdir / "install"
        overlay.mkdir(parents=True, exist_ok=True)
        repo, tag = images.KRALLY_REF.rsplit(":", 1)
        base = yaml.safe_load((REPO_ROOT / "manifests" / "kustomization.yaml").read_text())
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(REPO_ROOT / "manifests", overlay)],
            "images": [{"name": "krally", "newName": repo, "newTag": tag}],
            # A base's replacements ran before this overlay's image: repeat them, so that the
            # runner and hook defaults follow the image here too (README, Install).
            "replacements": base["replacements"],
        }
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return overlay

    def _admin_component_argv(self, binary: str) -> list[str]:
        """A control-plane component acting as admin, serving nothing, one instance."""
        return [
            str(self.bindir / binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
        ]

    def _keep_logs(self) -> Path:
        """A copy of the component logs that outlives the cluster (the error names it)."""
        kept = images.cache_dir() / "logs" / "last-failed-cluster"
        shutil.rmtree(kept, ignore_errors=True)
        if self.logdir.is_dir():
            shutil.copytree(self.logdir, kept)
        return kept

    def host_leftovers(self) -> list[str]:
        """What this cluster's real node left on the host (after stop(): nothing)."""
        if self.net is None:
            return []
        return realnode.host_leftovers(self.net, self.workdir)

    def restart_component(self, name: str, down_for: float = 0.0, timeout: float = 60.0) -> float:
        """An outage of one component: stop it, keep it down ``down_for`` seconds, start it
        again with the same argv, environment and log (same ports, same etcd); for
        kube-apiserver, wait until it is ready. Returns the seconds it was down."""
        component = next(c for c in self.components if c.name == name)
        mark = time.monotonic()
        component.stop()
        time.sleep(max(0.0, down_for - (time.monotonic() - mark)))
        component.start()
        if name == "kube-apiserver":
            self._wait_readyz(component, timeout)
        return time.monotonic() - mark

    # -- diagnostics -----------------------------------------------------------------------

    def check(self) -> None:
        """Raise ClusterError with the logs if a component has died."""
        dead = [c for c in self.components if not c.alive()]
        if dead:
            names = ", ".join(f"{c.name} ({c.describe()})" for c in dead)
            raise ClusterError(f"cluster component died: {names}\n{self.logs()}")

    def logs(self, lines: int = 40) -> str:
        """Each component's state and last log lines, for failure messages."""
        parts = [f"(component logs: {self.logdir})"] if self.keep_workdir else []
        for component in self.components:
            parts.append(
                f"----- {component.name} ({component.describe()}) -----\n"
                f"{tail(component.log, lines)}"
            )
        return "\n".join(parts) or "(no component started)"

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """What a pod's containers printed (stdout+stderr)."""
        if self.real:
            which = ["-c", container] if container else ["--all-containers"]
            return self.kubectl("logs", "-n", namespace, pod, *which, check=False).stdout
        poddir = self.workdir / "node" / "pods" / namespace / pod
        logs = sorted(poddir.glob(f"{container or '*'}.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)

    # -- clients ---------------------------------------------------------------------------

    @property
    def http(self) -> KubeHTTP:
        if self._http is None:
            raise ClusterError("cluster is not running")
        return self._http

    def apply_crd(self, text: str, *names: str) -> None:
        """Apply CRD YAML (server-side, idempotent) and wait until ``names`` are Established.
        Right after a create, `kubectl wait` can find no conditions yet and fail at once
        ("accessor error"): it is asked again until the timeout."""
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)
        deadline = time.monotonic() + 60
        while True:
            waited = self.kubectl(
                "wait", "--for=condition=Established", *(f"crd/{n}" for n in names),
                "--timeout=60s", check=False,
            )  # fmt: skip
            if waited.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"CRDs {', '.join(names)} not Established: {waited.stderr}")
            time.sleep(0.5)

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        as_user: str | None = None,
        token: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl as admin (impersonating `as_user`, or with a bearer `token`)."""
        argv = [str(self.bindir / "kubectl"), f"--kubeconfig={self.kubeconfig}"]
        if as_user:
            argv.append(f"--as={as_user}")
        if token:
            argv.append(f"--token={token}")
        argv.extend(args)
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, env=env
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def api_client(self, token: str | None = None) -> Any:
        """A kubernetes.client.ApiClient acting as admin (or as the bearer of `token`)."""
        import kubernetes.client

        assert self.certs is not None
        config = kubernetes.client.Configuration()
        config.host = self.server
        config.ssl_ca_cert = str(self.certs.ca_cert)
        config.api_key = {"BearerToken": token or self.admin_token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        return kubernetes.client.ApiClient(config)

    def token_for(self, namespace: str, service_account: str, expiration: int = 3600) -> str:
        """A token for a service account from the TokenRequest API (the SA must exist)."""
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration},
        }
        return str(self.http.request("POST", path, body)["status"]["token"])

    def kubeconfig_text(self, token: str | None = None, namespace: str | None = None) -> str:
        """A self-contained kubeconfig (CA embedded) for the admin or a token's bearer."""
        assert self.certs is not None
        context: dict[str, str] = {"cluster": "krally", "user": "user"}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "krally",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(
                            self.certs.ca_cert.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": "user", "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": "krally", "context": context}],
            "current-context": "krally",
        }
        return yaml.safe_dump(config, sort_keys=False)

    def write_cert_kubeconfig(self, path: Path, cert: Path, key: Path) -> Path:
        """A kubeconfig that authenticates with a client certificate (the node's components)."""
        config = yaml.safe_load(self.kubeconfig_text())
        config["users"] = [
            {"name": "user", "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def write_kubeconfig(
        self, path: Path | str, token: str | None = None, namespace: str | None = None
    ) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.kubeconfig_text(token, namespace))
        tmp.chmod(0o600)
        tmp.replace(path)  # atomic: a script waiting for the file never reads half of it
        return path

    # -- namespaces ------------------------------------------------------------------------

    def create_namespace(
        self, name: str | None = None, labels: dict[str, str] | None = None, timeout: float = 90
    ) -> str:
        """Create a namespace (a generated name when None) and wait for its default SA (made by
        the controller manager, which takes a while to catch up after an API server restart)."""
        name = name or f"t-{secrets.token_hex(4)}"
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if labels:
            body["metadata"]["labels"] = labels
        self.http.request("POST", "/api/v1/namespaces", body)
        self._wait(
            lambda: self._exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
            timeout,
            f"ServiceAccount default in namespace {name}",
        )
        return name

    def delete_namespace(self, name: str) -> None:
        with contextlib.suppress(ApiError):
            self.http.request("DELETE", f"/api/v1/namespaces/{name}")

    # -- internals -------------------------------------------------------------------------

    def _add(self, name: str, argv: list[str], env: dict[str, str]) -> Component:
        component = Component(name, argv, self.logdir / f"{name}.log", env)
        self.components.append(component)
        return component

    def _alive_or_raise(self) -> bool:
        for component in self.components:
            if not component.alive():
                raise ClusterError(f"{component.name} {component.describe()}")
        return True

    def _wait(self, predicate: Any, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._alive_or_raise()
            try:
                if predicate():
                    return
            except Exception as exc:  # not ready yet
                last = f": {exc}"
            time.sleep(0.05)
        raise ClusterError(f"timed out after {timeout:g}s waiting for {message}{last}")

    def _wait_http(self, component: Component, url: str, timeout: float) -> None:
        import urllib3

        pool = urllib3.PoolManager()

        def healthy() -> bool:
            return pool.request("GET", url, timeout=1, retries=False).status == 200

        self._wait(healthy, timeout, f"{component.name} at {url}")

    def _wait_readyz(self, component: Component, timeout: float) -> None:
        def ready() -> bool:
            self.http.request("GET", "/readyz")
            return True

        self._wait(ready, timeout, f"{component.name} /readyz")

    def _exists(self, path: str) -> bool:
        try:
            self.http.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _node_untainted(self) -> bool:
        node = self.http.get(f"/api/v1/nodes/{self.node_name}")
        return not (node.get("spec", {}).get("taints") or [])

    def _node_ready(self) -> bool:
        node = self.http.get(f"/api/v1/nodes/{self.node_name}")
        conditions = node.get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def start(**kwargs: Any) -> Cluster:
    """Start a cluster; use the result as a context manager to stop it: `with start() as c:`."""
    return Cluster(**kwargs).start()


def kill_marked_processes(cluster_id: str) -> list[int]:
    """SIGKILL every process whose environment carries this cluster's marker."""
    needle = f"{MARKER_ENV}={cluster_id}".encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


_NAME_RE = re.compile(r"[^a-z0-9-]+")


def dns_label(text: str, limit: int = 40) -> str:
    """A lowercase DNS-label fragment of `text` (for namespace names from test names)."""
    return _NAME_RE.sub("-", text.lower()).strip("-")[:limit].strip("-") or "x"
