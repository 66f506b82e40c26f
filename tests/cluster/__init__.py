"""A real Kubernetes control plane for krally's tests, CI and the local demo.

etcd, kube-apiserver and kube-controller-manager run on loopback from binaries built by
scripts/build-control-plane.sh; a "process node" (tests/cluster/node.py) stands in for a kubelet
and runs each pod's containers as local processes. Nothing here ships in the operator package.

    from tests.cluster import start
    with start() as cluster:
        cluster.kubectl("get", "nodes")
"""

from tests.cluster.controlplane import Cluster, ClusterError, KubectlError, start
from tests.cluster.waiting import WaitTimeout, wait_for

__all__ = ["Cluster", "ClusterError", "KubectlError", "WaitTimeout", "start", "wait_for"]
