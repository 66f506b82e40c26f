"""The real node: containerd + runc + CNI bridge, kubelet and kube-proxy, in namespaces of its own.

The node lives in a network namespace of its own (``krally-<slot>``), joined to the host by one
veth pair, and its processes share one private mount namespace. So everything a node changes
stays inside what tear-down deletes: the CNI bridge, kube-proxy's iptables chains, ``ip_forward``
and every route are the network namespace's; containerd's, the kubelet's and CNI's mounts and
files under /run, /var/lib and /var/log are the mount namespace's (tmpfs there). The host keeps
nothing: deleting the network namespace removes the veth pair and the host routes through it.

Addresses, per slot k (a lock file makes two clusters on one machine take different slots):

    host end of the veth      10.87.k.1   the API server binds here (and the tests dial it)
    node end of the veth      10.87.k.2
    pod CIDR, bridge cni0     10.88.k.0/24, node IP 10.88.k.1
    Service CIDR              10.89.k.0/24, the `kubernetes` Service 10.89.k.1

No traffic can leave the machine (kubernetes-real-node.md, network rules): the node's namespace
has no default route at all; pods route only to the pod and Service CIDRs (CNI `routes`, no
masquerade); the Service CIDR is routed onto the bridge, so a ClusterIP that kube-proxy has not
translated fails here ("No route to host"); pods get an empty resolv.conf (no DNS anywhere); the
host routes the pod and Service CIDRs into the veth, never to eth0.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SLOTS = 64
LOCK_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Mounted as tmpfs in the node's private mount namespace: where containerd, runc, CNI and the
# kubelet write outside their configured directories.
PRIVATE_DIRS = ("/run", "/var/lib", "/var/log")
NETNS_DIR = Path("/run/netns")


class NodeError(RuntimeError):
    """A node step failed; the message names the step and its log."""


def run(argv: Sequence[str], step: str, log: Path | None = None, check: bool = True) -> str:
    """Run a short command; on failure raise NodeError naming the step (and the log)."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    except FileNotFoundError as exc:
        raise NodeError(f"{step}: {exc.filename} is not installed") from exc
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}# exit {proc.returncode}\n")
    if check and proc.returncode != 0:
        where = f"; log: {log}" if log else ""
        raise NodeError(f"{step} failed (exit {proc.returncode}): {proc.stderr.strip()}{where}")
    return proc.stdout


# -- the network ------------------------------------------------------------------------------


class NodeNetwork:
    """The names and addresses of slot k's node (see the module's table)."""

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.netns = self.cgroup_name = f"krally-{slot}"
        self.netns_path = NETNS_DIR / self.netns
        self.host_veth, self.node_veth = f"krally{slot}h", f"krally{slot}n"
        self.host_ip, self.node_link_ip = f"10.87.{slot}.1", f"10.87.{slot}.2"
        self.pod_cidr, self.node_ip = f"10.88.{slot}.0/24", f"10.88.{slot}.1"
        self.service_cidr = f"10.89.{slot}.0/24"
        self.kubernetes_service_ip = f"10.89.{slot}.1"
        # Every host route a node of this slot may own starts with one of these.
        self.route_prefixes = (f"10.87.{slot}.", f"10.88.{slot}.", f"10.89.{slot}.")

    def in_netns(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def create(self, log: Path) -> None:
        """The namespace, the veth pair, the bridge and the routes (nothing else routes)."""
        ip = ["ip"]
        nsip = ["ip", "-n", self.netns]
        steps = [
            [*ip, "netns", "add", self.netns],
            [*ip, "link", "add", self.host_veth, "type", "veth", "peer", "name", self.node_veth],
            [*ip, "link", "set", self.node_veth, "netns", self.netns],
            [*ip, "addr", "add", f"{self.host_ip}/30", "dev", self.host_veth],
            [*ip, "link", "set", self.host_veth, "up"],
            [*nsip, "link", "set", "lo", "up"],
            [*nsip, "addr", "add", f"{self.node_link_ip}/30", "dev", self.node_veth],
            [*nsip, "link", "set", self.node_veth, "up"],
            # The bridge first: the kubelet refuses a loopback node IP, and everything uses it.
            [*nsip, "link", "add", "cni0", "type", "bridge"],
            [*nsip, "addr", "add", f"{self.node_ip}/24", "dev", "cni0"],
            [*nsip, "link", "set", "cni0", "up"],
            # An untranslated ClusterIP fails on the bridge instead of going anywhere.
            [*nsip, "route", "add", self.service_cidr, "dev", "cni0"],
            # The host reaches pods, Services and the kubelet through the veth, never eth0.
            [*ip, "route", "add", self.pod_cidr, "via", self.node_link_ip],
            [*ip, "route", "add", self.service_cidr, "via", self.node_link_ip],
            # Pods talk to Services on their own bridge: conntrack must see bridged traffic.
            self.in_netns("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"),
            self.in_netns("sysctl", "-qw", "net.ipv4.ip_forward=1"),
        ]
        for argv in steps:
            run(argv, "node network", log)

    def delete(self, log: Path | None = None) -> None:
        """Deleting the namespace deletes its links, the veth peer and the host routes via it."""
        if self.netns_path.exists():
            run(["ip", "netns", "delete", self.netns], "node network delete", log, check=False)
        if Path(f"/sys/class/net/{self.host_veth}").exists():
            run(["ip", "link", "delete", self.host_veth], "veth delete", log, check=False)


class SlotLock:
    """One slot per running real node on this machine: an flock held for the cluster's life."""

    def __init__(self) -> None:
        self.slot: int | None = None
        self._file: IO[str] | None = None

    def acquire(self) -> int:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        reclaim_stale()
        for slot in range(SLOTS):
            handle = (LOCK_DIR / f"krally-node-{slot}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            if _routes_overlap(slot):
                handle.close()
                continue
            self.slot, self._file = slot, handle
            return slot
        raise NodeError(f"no free node slot: {SLOTS} real nodes run, or their addresses are taken")

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def reclaim_stale(log: Path | None = None) -> list[int]:
    """Clean up every slot whose node outlived its harness (a SIGKILLed test run): its lock is
    free but its network namespace is still there. Returns the slots cleaned."""
    cleaned = []
    for slot in range(SLOTS):
        net = NodeNetwork(slot)
        if not net.netns_path.exists():
            continue
        with (LOCK_DIR / f"krally-node-{slot}.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live cluster's
            cleanup(net, log)
            cleaned.append(slot)
    return cleaned


def _routes_overlap(slot: int) -> bool:
    """True when the host already routes one of the slot's networks (someone else's)."""
    net = NodeNetwork(slot)
    if net.netns_path.exists():
        return False  # our own leftover from a killed run: reclaimed by cleanup()
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    return any(line.startswith(net.route_prefixes) for line in routes.splitlines())


# -- processes in the node's namespaces -------------------------------------------------------


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def pids_in_netns(netns_path: Path) -> list[int]:
    try:
        target = os.stat(netns_path).st_ino
    except OSError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _netns_inode(int(entry.name)) == target:
            found.append(int(entry.name))
    return found


def pids_in_cgroup(name: str) -> list[int]:
    found: set[int] = set()
    for hierarchy in _hierarchies():
        root = hierarchy / name
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    text = Path(dirpath, "cgroup.procs").read_text()
                    found.update(int(p) for p in text.split())
    return sorted(found)


def _hierarchies() -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    return [p for p in sorted(CGROUP_ROOT.iterdir()) if p.is_dir() and not p.is_symlink()]


def create_cgroup(name: str) -> None:
    """The kubelet's cgroupRoot, in every hierarchy (it must exist before the kubelet starts)."""
    for hierarchy in _hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        # A new cpuset cgroup has no CPUs or memory nodes: inherit the parent's.
        for knob in ("cpuset.cpus", "cpuset.mems"):
            parent = hierarchy / knob
            if parent.exists():
                with contextlib.suppress(OSError):
                    (path / knob).write_text(parent.read_text())


def remove_cgroup(name: str) -> list[str]:
    """rmdir the tree bottom-up; returns what could not be removed."""
    left = []
    for hierarchy in _hierarchies():
        root = hierarchy / name
        if not root.is_dir():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                left.append(dirpath)
    return left


def kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# -- configuration ---------------------------------------------------------------------------


def containerd_config(work: Path, root: Path, pause_ref: str) -> str:
    c = work / "containerd"
    return f"""version = 2
root = "{root}"
state = "{c / "state"}"
[grpc]
  address = "{c / "containerd.sock"}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_ref}"
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE: a negative oom_score_adj would kill runc.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{work / "cni" / "net.d"}"
"""


def cni_config(work: Path, net: NodeNetwork) -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "krally-node",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    # Pods reach nothing but pods and Services: no masquerade, no default route.
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": net.pod_cidr, "gateway": net.node_ip}]],
                        "routes": [{"dst": net.service_cidr}],
                        "dataDir": str(work / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
            ],
        },
        indent=2,
    )


def kubelet_config(work: Path, net: NodeNetwork, ca: Path) -> str:
    k = work / "kubelet"
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (hybrid); 1.35 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{net.cgroup_name}
containerRuntimeEndpoint: unix://{work / "containerd" / "containerd.sock"}
address: {net.node_ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
podLogsDir: {k / "pod-logs"}
# No DNS for pods: nothing to resolve names against, and nothing outside to ask.
resolvConf: {work / "resolv.conf"}
failSwapOn: false
rotateCertificates: false
serializeImagePulls: false
nodeStatusUpdateFrequency: 5s
# The images are imported, never pulled: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}}
"""


# -- the node ----------------------------------------------------------------------------------


@dataclass
class NodeProcess:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None


class RealNode:
    """containerd, kubelet and kube-proxy for one cluster; `start()` then `stop()`.

    `launch(name, argv, log)` is the cluster's way of starting a component (its marker
    environment, death with its parent); the node only prefixes the namespaces.
    """

    def __init__(
        self,
        *,
        name: str,
        work: Path,
        bindir: Path,
        net: NodeNetwork,
        ca_cert: Path,
        kubelet_kubeconfig: Path,
        proxy_kubeconfig: Path,
        launch: Callable[[str, list[str]], object],
        log: Path,
        image_root: Path,
    ) -> None:
        self.name = name
        self.work = work
        self.bindir = bindir
        self.net = net
        self.ca_cert = ca_cert
        self.kubelet_kubeconfig = kubelet_kubeconfig
        self.proxy_kubeconfig = proxy_kubeconfig
        self.launch = launch
        self.log = log
        self.holder: subprocess.Popen[bytes] | None = None
        self.socket = work / "containerd" / "containerd.sock"
        # containerd's root (content store, unpacked images) outlives the node, per slot: an
        # image imported once is not imported again. Containers never outlive it (stop()).
        self.image_root = image_root
        self._imported = image_root / "krally-imported.json"

    # -- start -----------------------------------------------------------------------------

    def prepare(self) -> None:
        self.image_root.mkdir(parents=True, exist_ok=True)
        for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet/root", "kubelet/pod-logs"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        (self.work / "resolv.conf").write_text("# no DNS on the krally test node\n")
        create_cgroup(self.net.cgroup_name)
        self._start_holder()

    def _start_holder(self) -> None:
        """A process whose only job is to own the node's private mount namespace."""
        mounts = " && ".join(f"mount -t tmpfs -o mode=755 krally-node {d}" for d in PRIVATE_DIRS)
        # containerd copies the node's /etc/resolv.conf into pods the kubelet gives no DNS
        # server: here that file names none either.
        resolv = f"mount --bind {self.work / 'resolv.conf'} /etc/resolv.conf"
        script = f"{mounts} && {resolv} && mkdir -p /run/lock /run/netns && exec sleep infinity"
        argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]
        self.holder = self.launch("node-namespace", argv)  # type: ignore[assignment]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._holder_ready():
                return
            time.sleep(0.02)
        raise NodeError(f"node mount namespace: tmpfs mounts did not appear; log: {self.log}")

    def _holder_ready(self) -> bool:
        pid = self.holder_pid
        if pid is None:
            return False
        with contextlib.suppress(OSError):
            own = os.stat("/proc/self/ns/mnt").st_ino
            if os.stat(f"/proc/{pid}/ns/mnt").st_ino == own:
                return False
            mounts = Path(f"/proc/{pid}/mountinfo").read_text()
            return all(f" {d} " in mounts for d in PRIVATE_DIRS) and _is_sleep(pid)
        return False

    @property
    def holder_pid(self) -> int | None:
        proc = getattr(self.holder, "proc", None)
        return None if proc is None else proc.pid

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """argv run inside the node's network and mount namespaces."""
        return [
            "nsenter",
            f"--net={self.net.netns_path}",
            f"--mount=/proc/{self.holder_pid}/ns/mnt",
            "--",
            *argv,
        ]

    def write_configs(self, pause_ref: str) -> None:
        (self.work / "containerd" / "config.toml").write_text(
            containerd_config(self.work, self.image_root, pause_ref)
        )
        (self.work / "cni" / "net.d" / "10-krally.conflist").write_text(
            cni_config(self.work, self.net)
        )
        (self.work / "kubelet" / "config.yaml").write_text(
            kubelet_config(self.work, self.net, self.ca_cert)
        )

    def start_containerd(self) -> None:
        config = self.work / "containerd" / "config.toml"
        self.launch("containerd", self.wrap(["containerd", f"--config={config}"]))

    def containerd_ready(self) -> bool:
        if not self.socket.exists():
            return False
        probe = subprocess.run(self.ctr("version"), capture_output=True, timeout=10)
        return probe.returncode == 0

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args]

    def import_image(self, archive: Path, ref: str) -> bool:
        """Import an archive unless this very archive is already in; True if it imported."""
        try:
            imported = json.loads(self._imported.read_text())
        except (OSError, ValueError):
            imported = {}
        if imported.get(ref) == archive.name and ref in self.images():
            return False
        run(self.ctr("images", "import", str(archive)), f"import {ref}", self.log)
        imported[ref] = archive.name
        self._imported.write_text(json.dumps(imported, indent=1, sort_keys=True))
        return True

    def images(self) -> list[str]:
        out = run(self.ctr("images", "list", "--quiet"), "ctr images list", self.log)
        return out.split()

    def start_kubelet(self) -> None:
        k = self.work / "kubelet"
        self.launch(
            "kubelet",
            self.wrap(
                [
                    str(self.bindir / "kubelet"),
                    f"--config={k / 'config.yaml'}",
                    f"--kubeconfig={self.kubelet_kubeconfig}",
                    f"--root-dir={k / 'root'}",
                    f"--hostname-override={self.name}",
                    f"--node-ip={self.net.node_ip}",
                    "--v=1",
                ]
            ),
        )

    def start_kube_proxy(self) -> None:
        self.launch(
            "kube-proxy",
            self.wrap(
                [
                    str(self.bindir / "kube-proxy"),
                    f"--kubeconfig={self.proxy_kubeconfig}",
                    "--proxy-mode=iptables",
                    f"--cluster-cidr={self.net.pod_cidr}",
                    f"--hostname-override={self.name}",
                    # 0 = leave the host's (global) conntrack sysctls alone.
                    "--conntrack-max-per-core=0",
                    "--conntrack-tcp-timeout-established=0",
                    "--conntrack-tcp-timeout-close-wait=0",
                    "--metrics-bind-address=127.0.0.1:10249",
                    "--healthz-bind-address=127.0.0.1:10256",
                    "--v=1",
                ]
            ),
        )

    def proxy_synced(self) -> bool:
        """kube-proxy has written the `kubernetes` Service's rules (Service traffic may flow)."""
        out = run(self.net.in_netns("iptables-save", "-t", "nat"), "iptables-save", check=False)
        return f"-d {self.net.kubernetes_service_ip}/32" in out and "KUBE-SEP-" in out

    # -- stop ------------------------------------------------------------------------------

    def kill_containers(self) -> None:
        """Every container of the node, killed and removed while containerd still runs."""
        if not self.socket.exists():
            return
        for task in _first_column(self._ctr_out("tasks", "list")):
            subprocess.run(self.ctr("tasks", "kill", "--signal", "SIGKILL", task),
                           capture_output=True, timeout=20)  # fmt: skip
        for task in _first_column(self._ctr_out("tasks", "list")):
            subprocess.run(self.ctr("tasks", "delete", "--force", task), capture_output=True,
                           timeout=20)  # fmt: skip
        for container in self._ctr_out("containers", "list", "--quiet").split():
            subprocess.run(self.ctr("containers", "delete", container), capture_output=True,
                           timeout=20)  # fmt: skip

    def _ctr_out(self, *args: str) -> str:
        try:
            proc = subprocess.run(self.ctr(*args), capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout if proc.returncode == 0 else ""


def _first_column(table: str) -> list[str]:
    lines = table.strip().splitlines()[1:]  # header: TASK PID STATUS
    return [line.split()[0] for line in lines if line.strip()]


def _is_sleep(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
    except OSError:
        return False


# -- leftovers ------------------------------------------------------------------------------


def host_leftovers(net: NodeNetwork, work: Path | None = None) -> list[str]:
    """What a node of this slot left on the host (empty after a clean tear-down)."""
    left = []
    if net.netns_path.exists():
        left.append(f"network namespace {net.netns}")
    if Path(f"/sys/class/net/{net.host_veth}").exists():
        left.append(f"link {net.host_veth}")
    if Path("/sys/class/net/cni0").exists():
        left.append("bridge cni0 on the host")
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for line in routes.splitlines():
        if line.startswith(net.route_prefixes):
            left.append(f"route {line.strip()}")
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    left += [f"iptables chain {m}" for m in re.findall(r"^:((?:KUBE|CNI)-\S+)", rules, re.M)]
    for hierarchy in _hierarchies():
        if (hierarchy / net.cgroup_name).exists():
            left.append(f"cgroup {hierarchy / net.cgroup_name}")
    mounts = Path("/proc/self/mountinfo").read_text()
    if work is not None and str(work) in mounts:
        left.append(f"mounts under {work}")
    left += [f"mount {m}" for m in re.findall(r" (/run/netns/cni-\S+) ", mounts)]
    return left


def cleanup(net: NodeNetwork, log: Path | None = None) -> None:
    """Remove a slot's node from the host, whatever state it is in (also a killed run's)."""
    kill_all(pids_in_cgroup(net.cgroup_name))
    kill_all(pids_in_netns(net.netns_path))
    time.sleep(0.1)
    net.delete(log)
    left = remove_cgroup(net.cgroup_name)
    if left:  # processes still exiting: once more
        time.sleep(0.5)
        kill_all(pids_in_cgroup(net.cgroup_name))
        remove_cgroup(net.cgroup_name)


def ensure_tools() -> None:
    missing = [
        t
        for t in ("containerd", "ctr", "runc", "ip", "iptables-save", "nsenter", "unshare")
        if not shutil.which(t)
    ]
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("/usr/lib/cni/bridge (containernetworking-plugins)")
    if missing:
        raise NodeError(
            "real node: missing "
            + ", ".join(missing)
            + " (bash scripts/install-deps installs containerd runc containernetworking-plugins"
            " iptables conntrack)"
        )
    if os.geteuid() != 0:
        raise NodeError("real node: needs root (network namespaces, mounts, cgroups)")


__all__ = [
    "NodeError",
    "NodeNetwork",
    "RealNode",
    "SlotLock",
    "cleanup",
    "ensure_tools",
    "host_leftovers",
]
